//! `save`: an OCI image layout plus a docker `manifest.json`, streamed into a tar.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::names::{familiar_tagged, tag_of};
use super::ArchiveError;
use crate::manifest::{media, Descriptor, Index};
use crate::store::{ImageRecord, Store, StoreError};
use crate::Digest;

/// One entry of docker's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// One image to save: its record and the name it is saved under (none when asked by id).
struct Item {
    rec: ImageRecord,
    name: Option<String>,
}

/// Writes the images `names` (names or ids, as [`Store::get_image`] takes them) as one
/// archive that `docker load` and OCI tools read.
pub fn save(store: &Store, names: &[String], writer: impl Write) -> Result<(), ArchiveError> {
    // Everything is read and checked before the first byte goes out: a caller streaming
    // the archive somewhere gets an error, not half an archive.
    let items = items(store, names)?;
    let (index, docker) = documents(store, &items)?;
    let blobs = blob_list(store, &items)?;
    let mut tar = tar::Builder::new(writer);
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(0, tar::EntryType::Directory, 0o755);
        tar.append_data(&mut h, dir, io::empty())
            .map_err(ArchiveError::Write)?;
    }
    for d in &blobs {
        append_blob(&mut tar, store, d)?;
    }
    append(&mut tar, "index.json", &index)?;
    append(&mut tar, "manifest.json", &docker)?;
    tar.into_inner()
        .map_err(ArchiveError::Write)?
        .flush()
        .map_err(ArchiveError::Write)
}

/// The records `names` resolve to, with the name each is saved under.
fn items(store: &Store, names: &[String]) -> Result<Vec<Item>, ArchiveError> {
    names
        .iter()
        .map(|n| {
            let rec = store.resolve_image(n).map_err(|e| match e {
                StoreError::ImageNotFound(_) | StoreError::Ambiguous(_) => {
                    ArchiveError::ImageNotFound(n.clone())
                }
                other => ArchiveError::Store(other),
            })?;
            let name = (rec.name == *n && !n.starts_with("sha256:")).then(|| n.clone());
            Ok(Item { rec, name })
        })
        .collect()
}

/// Every blob the items need, once each, checked present.
fn blob_list(store: &Store, items: &[Item]) -> Result<Vec<Digest>, ArchiveError> {
    let mut blobs: Vec<Digest> = Vec::new();
    for rec in items.iter().map(|i| &i.rec) {
        let parts = [&rec.manifest, &rec.config]
            .into_iter()
            .chain(rec.layers.iter().map(|l| &l.descriptor.digest));
        for d in parts {
            if !blobs.contains(d) {
                store.blob_size(d)?;
                blobs.push(d.clone());
            }
        }
    }
    Ok(blobs)
}

/// `index.json` (one entry per item) and `manifest.json` (one entry per image, its tags).
fn documents(store: &Store, items: &[Item]) -> Result<(Vec<u8>, Vec<u8>), ArchiveError> {
    let mut manifests = Vec::new();
    let mut docker: Vec<(Digest, DockerEntry)> = Vec::new();
    for item in items {
        let rec = &item.rec;
        let m = store.manifest(&rec.manifest)?;
        let mut annotations = BTreeMap::new();
        if let Some(name) = &item.name {
            annotations.insert("io.containerd.image.name".to_string(), name.clone());
            if let Some(tag) = tag_of(name) {
                annotations.insert(
                    "org.opencontainers.image.ref.name".to_string(),
                    tag.to_string(),
                );
            }
        }
        manifests.push(Descriptor {
            media_type: m
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.into()),
            digest: rec.manifest.clone(),
            size: store.blob_size(&rec.manifest)?,
            platform: None,
            annotations,
        });
        let tag = item.name.as_deref().and_then(familiar_tagged);
        match docker.iter_mut().find(|(d, _)| *d == rec.manifest) {
            Some((_, e)) => e.repo_tags.extend(tag.filter(|t| !e.repo_tags.contains(t))),
            None => docker.push((
                rec.manifest.clone(),
                DockerEntry {
                    config: blob_path(&rec.config),
                    repo_tags: tag.into_iter().collect(),
                    layers: rec
                        .layers
                        .iter()
                        .map(|l| blob_path(&l.descriptor.digest))
                        .collect(),
                },
            )),
        }
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests,
        annotations: BTreeMap::new(),
    };
    let docker: Vec<DockerEntry> = docker.into_iter().map(|(_, e)| e).collect();
    let encode = |e: serde_json::Error| ArchiveError::Write(io::Error::other(e));
    Ok((
        serde_json::to_vec(&index).map_err(encode)?,
        serde_json::to_vec(&docker).map_err(encode)?,
    ))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A tar header for a file of `size` bytes, owned by root, dated the epoch (the archive
/// of one image is then the same bytes every time).
fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    let mut h = header(bytes.len() as u64, tar::EntryType::Regular, 0o644);
    tar.append_data(&mut h, path, bytes)
        .map_err(ArchiveError::Write)
}

/// Streams one blob from the store into the tar.
fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &Store,
    d: &Digest,
) -> Result<(), ArchiveError> {
    let file = store.open_blob(d)?;
    let size = store.blob_size(d)?;
    let mut h = header(size, tar::EntryType::Regular, 0o644);
    tar.append_data(&mut h, blob_path(d), file)
        .map_err(ArchiveError::Write)
}
