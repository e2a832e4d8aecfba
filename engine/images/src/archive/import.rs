//! `import`: one pass over the tar, then the images it describes are checked and recorded.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use serde::Deserialize;

use super::names::normalize;
use super::{ArchiveError, MAX_DOCUMENT, MAX_DOCUMENTS_TOTAL};
use crate::manifest::{media, Descriptor, ImageConfig, Index, Manifest};
use crate::store::{ImageRecord, Ingest, Store};
use crate::Digest;

/// The containerd annotation carrying an image's full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation carrying a reference (often just a tag).
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Symlink hops followed when resolving a path in the archive.
const MAX_LINK_HOPS: usize = 16;

/// One entry of a `docker save` `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What one pass over the tar found.
#[derive(Default)]
struct Seen {
    /// Top-level JSON documents (and `oci-layout`), by path.
    docs: HashMap<String, Vec<u8>>,
    docs_total: u64,
    /// Files stored by their hash (docker-save layers), by path.
    files: HashMap<String, (Digest, u64)>,
    /// Symlinks and hard links: path → target path (from the archive root).
    links: HashMap<String, String>,
}

/// Imports a `docker save` or OCI image-layout tar into `store`; returns the records made.
pub fn import(store: &Store, reader: impl Read) -> Result<Vec<ImageRecord>, ArchiveError> {
    let mut seen = Seen::default();
    let consumed = Rc::new(Cell::new(0u64));
    let mut archive = tar::Archive::new(Counting {
        inner: BufReader::with_capacity(READ_BUFFER, reader),
        count: Rc::clone(&consumed),
    });
    // Where the last entry's data (padded to a block) ends: a complete tar has its
    // end-of-archive block there; a stream that just stops was cut.
    let mut data_end = None;
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        data_end = Some(entry.raw_file_position() + entry.size().div_ceil(BLOCK) * BLOCK);
        let raw = entry.path().map_err(ArchiveError::Read)?.into_owned();
        let Some(path) = clean(&raw) else { continue };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name().map_err(ArchiveError::Read)? {
                let base = if kind.is_symlink() {
                    parent(&path)
                } else {
                    String::new()
                };
                if let Some(t) = clean(&Path::new(&base).join(target)) {
                    seen.links.insert(path, t);
                }
            }
        } else if kind.is_file() {
            seen.entry(store, &path, &mut entry)?;
        }
    }
    if data_end.is_some_and(|end| consumed.get() < end + BLOCK) {
        return Err(ArchiveError::Unterminated);
    }
    let records = if seen.docs.contains_key("index.json") && seen.docs.contains_key("oci-layout") {
        seen.oci_records(store)?
    } else if seen.docs.contains_key("manifest.json") {
        seen.docker_records(store)?
    } else {
        return Err(ArchiveError::NotAnImage);
    };
    for rec in &records {
        store.put_image(rec)?;
    }
    Ok(records)
}

/// Bytes read from the archive at a time (tar itself asks for 512-byte headers).
const READ_BUFFER: usize = 256 << 10;

/// A tar block.
const BLOCK: u64 = 512;

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// `p` as a relative path string without `.` parts; `None` if it climbs out.
fn clean(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn parent(path: &str) -> String {
    path.rsplit_once('/')
        .map_or(String::new(), |(d, _)| d.to_string())
}

/// The digest a `blobs/sha256/<hex>` path names.
fn blob_digest(path: &str) -> Option<Digest> {
    format!("sha256:{}", path.strip_prefix("blobs/sha256/")?)
        .parse()
        .ok()
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &str) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::BadJson {
        path: path.to_string(),
        source,
    })
}

/// Checks that a copy got all the bytes an entry announced.
fn check_len(path: &str, expected: u64, actual: u64) -> Result<(), ArchiveError> {
    if expected == actual {
        return Ok(());
    }
    Err(ArchiveError::Truncated {
        path: path.into(),
        expected,
        actual,
    })
}

impl Seen {
    /// Takes one regular file: a blob, a document, a layer file, or nothing we need.
    fn entry<R: Read>(
        &mut self,
        store: &Store,
        path: &str,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ArchiveError> {
        let size = entry.size();
        let entry_err = |source| ArchiveError::Entry {
            path: path.into(),
            source,
        };
        let blob_err = |source| ArchiveError::Blob {
            path: path.into(),
            source,
        };
        if let Some(digest) = blob_digest(path) {
            let desc = Descriptor {
                media_type: "application/octet-stream".into(),
                digest,
                size,
                platform: None,
                annotations: BTreeMap::new(),
            };
            if let Ingest::Writer(mut w) = store.ingest(&desc).map_err(blob_err)? {
                let n = io::copy(entry, &mut w).map_err(entry_err)?;
                check_len(path, size, n)?;
                w.commit().map_err(blob_err)?;
            }
        } else if !path.contains('/') && (path.ends_with(".json") || path == "oci-layout") {
            if size > MAX_DOCUMENT || self.docs_total + size > MAX_DOCUMENTS_TOTAL {
                return Err(ArchiveError::TooLarge {
                    path: path.into(),
                    max: MAX_DOCUMENT,
                });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(entry_err)?;
            check_len(path, size, bytes.len() as u64)?;
            self.docs_total += size;
            self.docs.insert(path.to_string(), bytes);
        } else if path.ends_with(".tar") {
            let mut w = store.ingest_unknown().map_err(blob_err)?;
            let n = io::copy(entry, &mut w).map_err(entry_err)?;
            check_len(path, size, n)?;
            let (digest, n) = w.commit().map_err(blob_err)?;
            self.files.insert(path.to_string(), (digest, n));
        }
        Ok(())
    }

    /// `path` with links followed.
    fn resolve(&self, path: &str) -> String {
        let mut p = clean(Path::new(path)).unwrap_or_default();
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    }

    /// The bytes of a document `manifest.json` names (top-level or a blob).
    fn document(&self, store: &Store, path: &str) -> Result<Vec<u8>, ArchiveError> {
        let p = self.resolve(path);
        if let Some(bytes) = self.docs.get(&p) {
            return Ok(bytes.clone());
        }
        match blob_digest(&p) {
            Some(d) if store.has_blob(&d) => Ok(store.read_blob(&d, MAX_DOCUMENT)?),
            _ => Err(ArchiveError::MissingFile(path.into())),
        }
    }

    /// The stored blob of a layer file `manifest.json` names.
    fn layer(&self, store: &Store, path: &str) -> Result<(Digest, u64), ArchiveError> {
        let p = self.resolve(path);
        if let Some(found) = self.files.get(&p) {
            return Ok(found.clone());
        }
        match blob_digest(&p) {
            Some(d) if store.has_blob(&d) => {
                let size = store.blob_size(&d)?;
                Ok((d, size))
            }
            _ => Err(ArchiveError::MissingFile(path.into())),
        }
    }

    /// `docker save`: an OCI manifest written for each image, records from `RepoTags`.
    fn docker_records(&self, store: &Store) -> Result<Vec<ImageRecord>, ArchiveError> {
        let entries: Vec<DockerEntry> = parse_json(&self.docs["manifest.json"], "manifest.json")?;
        let mut records = Vec::new();
        for e in &entries {
            let manifest = self.docker_manifest(store, e)?;
            let tags = e.repo_tags.clone().unwrap_or_default();
            let mut names = tags
                .iter()
                .map(|t| normalize(t))
                .collect::<Result<Vec<_>, _>>()?;
            if names.is_empty() {
                names.push(manifest.to_string());
            }
            for name in names {
                records.push(store.image_record(&name, &manifest, &manifest)?);
            }
        }
        Ok(dedup(records))
    }

    /// Stores the config and a manifest for one `manifest.json` entry; returns its digest.
    fn docker_manifest(&self, store: &Store, e: &DockerEntry) -> Result<Digest, ArchiveError> {
        let config_bytes = self.document(store, &e.config)?;
        let config: ImageConfig = parse_json(&config_bytes, &e.config)?;
        let config_d = store.write_blob(&config_bytes)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != e.layers.len() {
            return Err(ArchiveError::LayerCount {
                config: config_d,
                layers: e.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(diff_ids) {
            let (digest, size) = self.layer(store, path)?;
            let media_type = layer_media_type(store, path, &digest, diff_id)?;
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest,
                size,
                platform: None,
                annotations: BTreeMap::new(),
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: media::OCI_CONFIG.into(),
                digest: config_d,
                size: config_bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::BadJson {
            path: e.config.clone(),
            source,
        })?;
        Ok(store.write_blob(&bytes)?)
    }

    /// OCI layout (also docker 25+): records from `index.json`'s annotations.
    fn oci_records(&self, store: &Store) -> Result<Vec<ImageRecord>, ArchiveError> {
        let index: Index = parse_json(&self.docs["index.json"], "index.json")?;
        let docker_tags = self.docker_tags_by_config(store);
        // A layout may list one manifest per platform directly: take this host's.
        let entries: Vec<&Descriptor> = index.manifests.iter().filter(|e| for_host(e)).collect();
        if entries.is_empty() && !index.manifests.is_empty() {
            return Err(ArchiveError::NoPlatform {
                index: Digest::of(&self.docs["index.json"]),
                platform: format!("linux/{}", host_architecture()),
            });
        }
        let mut records = Vec::new();
        for entry in entries {
            let manifest = pick_manifest(store, entry)?;
            let m = store
                .manifest(&manifest)
                .map_err(|e| missing_or(e, &manifest))?;
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if !store.has_blob(&d.digest) {
                    return Err(ArchiveError::MissingBlob(d.digest.clone()));
                }
            }
            let mut names = oci_names(entry)?;
            if names.is_empty() {
                names = docker_tags
                    .get(&m.config.digest)
                    .cloned()
                    .unwrap_or_default();
            }
            if names.is_empty() {
                names.push(entry.digest.to_string());
            }
            for name in names {
                records.push(store.image_record(&name, &entry.digest, &manifest)?);
            }
        }
        Ok(dedup(records))
    }

    /// Names from a docker 25+ `manifest.json` beside an OCI layout, by config digest.
    fn docker_tags_by_config(&self, store: &Store) -> HashMap<Digest, Vec<String>> {
        let Some(bytes) = self.docs.get("manifest.json") else {
            return HashMap::new();
        };
        let entries: Vec<DockerEntry> = serde_json::from_slice(bytes).unwrap_or_default();
        let mut out = HashMap::new();
        for e in entries {
            let Ok(config) = self.document(store, &e.config) else {
                continue;
            };
            let names = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .filter_map(|t| normalize(t).ok())
                .collect();
            out.insert(Digest::of(&config), names);
        }
        out
    }
}

/// Later records of one name replace earlier ones (an archive may list a name twice).
fn dedup(records: Vec<ImageRecord>) -> Vec<ImageRecord> {
    let mut by_name: BTreeMap<String, ImageRecord> = BTreeMap::new();
    for r in records {
        by_name.insert(r.name.clone(), r);
    }
    by_name.into_values().collect()
}

/// A store error reading a blob the archive should have held, as "the archive lacks it".
fn missing_or(e: crate::store::StoreError, d: &Digest) -> ArchiveError {
    match e {
        crate::store::StoreError::BlobNotFound(_) => ArchiveError::MissingBlob(d.clone()),
        other => ArchiveError::Store(other),
    }
}

/// The names an OCI index entry carries: containerd's full name, else a ref.name that is
/// a reference (not a bare tag).
fn oci_names(entry: &Descriptor) -> Result<Vec<String>, ArchiveError> {
    if let Some(full) = entry.annotations.get(CONTAINERD_NAME) {
        return Ok(vec![normalize(full)?]);
    }
    match entry.annotations.get(OCI_REF_NAME) {
        Some(r) if r.contains(['/', ':', '@']) => Ok(vec![normalize(r)?]),
        _ => Ok(Vec::new()),
    }
}

/// The manifest an index entry stands for on this host: itself, or its index's entry for
/// the host's platform.
fn pick_manifest(store: &Store, entry: &Descriptor) -> Result<Digest, ArchiveError> {
    if !store.has_blob(&entry.digest) {
        return Err(ArchiveError::MissingBlob(entry.digest.clone()));
    }
    if !media::is_index(&entry.media_type) {
        return Ok(entry.digest.clone());
    }
    let bytes = store.read_blob(&entry.digest, MAX_DOCUMENT)?;
    let index: Index = parse_json(&bytes, &entry.digest.to_string())?;
    let only = index.manifests.len() == 1;
    let found = index
        .manifests
        .iter()
        .find(|m| (m.platform.is_some() && for_host(m)) || (only && m.platform.is_none()));
    match found {
        Some(m) if media::is_index(&m.media_type) => pick_manifest(store, m),
        Some(m) if store.has_blob(&m.digest) => Ok(m.digest.clone()),
        Some(m) => Err(ArchiveError::MissingBlob(m.digest.clone())),
        None => Err(ArchiveError::NoPlatform {
            index: entry.digest.clone(),
            platform: format!("linux/{}", host_architecture()),
        }),
    }
}

/// Whether an index entry is for this host (entries without a platform are).
fn for_host(entry: &Descriptor) -> bool {
    match &entry.platform {
        Some(p) => p.os == "linux" && p.architecture == host_architecture(),
        None => true,
    }
}

/// This host's architecture in OCI's words.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A docker-save layer's media type: uncompressed when its digest is the diff_id,
/// otherwise by the compression its first bytes show.
fn layer_media_type(
    store: &Store,
    path: &str,
    digest: &Digest,
    diff_id: &Digest,
) -> Result<&'static str, ArchiveError> {
    if digest == diff_id {
        return Ok(media::OCI_LAYER);
    }
    let mut magic = [0u8; 4];
    let mut file = store.open_blob(digest)?;
    let n = file
        .read(&mut magic)
        .map_err(|source| ArchiveError::Entry {
            path: PathBuf::from(path),
            source,
        })?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Ok(media::OCI_LAYER_GZIP),
        [0x28, 0xb5, 0x2f, 0xfd] => Ok(media::OCI_LAYER_ZSTD),
        _ => Err(ArchiveError::DiffId {
            path: path.into(),
            expected: diff_id.clone(),
            actual: digest.clone(),
        }),
    }
}
