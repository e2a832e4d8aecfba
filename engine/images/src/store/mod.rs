//! The content store under a persistent root (default `/var/lib/berth`): blobs by
//! sha256 in `blobs/sha256/<hex>`, partial writes in `ingest/`, and one JSON record per
//! image name in `images/` (the file named by the sha256 of the name, so any name is a
//! safe file name and writers of different names never touch one file).
//!
//! Garbage collection ([`Store::gc_blobs`]) removes blobs no record reaches; callers run
//! it while no pull or import is between committing blobs and putting their record (the
//! images service holds a lock for that: [`crate::Images::gc`]).

mod ingest;
mod records;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::{media, Descriptor, ImageConfig, Manifest};
use crate::snapshot::chain_ids;
use crate::{Digest, DigestError};

pub use ingest::{Ingest, IngestWriter};

/// The default root of the store.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Content did not match its digest or size.
    #[error("content check failed: {0}")]
    Content(#[from] DigestError),
    /// A blob is not in the store.
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    /// A blob is larger than the caller accepts.
    #[error("blob {digest} has {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// No image has this name or id.
    #[error("no image {0:?}")]
    ImageNotFound(String),
    /// An id prefix matches more than one image.
    #[error("image id {0:?} matches more than one image")]
    Ambiguous(String),
    /// A stored JSON document does not parse.
    #[error("{what} {digest} does not parse: {source}")]
    BadDocument {
        /// manifest, config, index.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A manifest and its config disagree (layer count).
    #[error("manifest {manifest}: {layers} layers but {diff_ids} diff_ids in config {config}")]
    LayerCount {
        /// The manifest.
        manifest: Digest,
        /// The config.
        config: Digest,
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
}

impl StoreError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One named image: the name, what it points at, and its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The full reference, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    /// What the name points at: an index or a manifest.
    pub target: Digest,
    /// The manifest for this host's platform.
    pub manifest: Digest,
    /// The image config (its digest is docker's image id).
    pub config: Digest,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Bytes of the manifest, config and layer blobs.
    pub size: u64,
    /// When it was pulled or imported (RFC 3339, UTC).
    pub created: String,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The layer blob as the manifest lists it.
    pub descriptor: Descriptor,
    /// The uncompressed content's digest (from the config).
    pub diff_id: Digest,
    /// The ChainID of the layers up to and including this one.
    pub chain_id: Digest,
}

/// What [`Store::gc_blobs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Blobs removed.
    pub removed: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs kept.
    pub kept: usize,
}

/// The content store (see the module doc).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Largest JSON document (manifest, index, config) the store parses.
pub const MAX_DOCUMENT: u64 = 8 << 20;

impl Store {
    /// Opens (making them if needed) the store's directories under `root` and removes
    /// partial files a crashed writer left.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in [store.blob_dir(), store.ingest_dir(), store.image_dir()] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("create dir", &dir, e))?;
        }
        store.clean_ingest()?;
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    fn image_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Where the blob `d` lives (whether or not it is there).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blob_dir().join(d.hex())
    }

    /// Whether the blob is in the store.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => StoreError::io("open blob", &path, e),
        })
    }

    /// Reads a blob of at most `max` bytes.
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
        let file = self.open_blob(d)?;
        let path = self.blob_path(d);
        let size = file
            .metadata()
            .map_err(|e| StoreError::io("stat blob", &path, e))?
            .len();
        if size > max {
            return Err(StoreError::TooLarge {
                digest: d.clone(),
                size,
                max,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read blob", &path, e))?;
        Ok(bytes)
    }

    /// Stores a small blob (a manifest, a config) and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let desc = Descriptor {
            media_type: "application/octet-stream".into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
        };
        if let Ingest::Writer(mut w) = self.ingest(&desc)? {
            let partial = self.ingest_dir();
            w.write_all(bytes)
                .map_err(|e| StoreError::io("write blob", &partial, e))?;
            w.commit()?;
        }
        Ok(desc.digest)
    }

    /// The size of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64, StoreError> {
        let path = self.blob_path(d);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(d.clone()))
            }
            Err(e) => Err(StoreError::io("stat blob", &path, e)),
        }
    }

    /// Every blob in the store, with its size.
    pub fn blobs(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        let dir = self.blob_dir();
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("read dir", &dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("read dir", &dir, e))?;
            let name = entry.file_name();
            let Ok(d) = format!("sha256:{}", name.to_string_lossy()).parse::<Digest>() else {
                continue;
            };
            if let Ok(meta) = entry.metadata() {
                out.push((d, meta.len()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Total bytes of the blobs (for metrics).
    pub fn size(&self) -> Result<u64, StoreError> {
        Ok(self.blobs()?.iter().map(|(_, n)| n).sum())
    }

    /// Reads and parses a manifest blob.
    pub fn manifest(&self, d: &Digest) -> Result<Manifest, StoreError> {
        parse(&self.read_blob(d, MAX_DOCUMENT)?, "manifest", d)
    }

    /// Reads and parses an image config blob.
    pub fn config(&self, d: &Digest) -> Result<ImageConfig, StoreError> {
        parse(&self.read_blob(d, MAX_DOCUMENT)?, "config", d)
    }

    /// Builds the record naming `name` → `target`, for the manifest `manifest` (both in
    /// the store, as is its config); layers' diff_ids and chain ids come from the config.
    pub fn image_record(
        &self,
        name: &str,
        target: &Digest,
        manifest: &Digest,
    ) -> Result<ImageRecord, StoreError> {
        let m = self.manifest(manifest)?;
        let config = self.config(&m.config.digest)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != m.layers.len() {
            return Err(StoreError::LayerCount {
                manifest: manifest.clone(),
                config: m.config.digest.clone(),
                layers: m.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let chains = chain_ids(diff_ids);
        let layers: Vec<LayerRecord> = m
            .layers
            .iter()
            .zip(diff_ids.iter().zip(chains))
            .map(|(d, (diff, chain))| LayerRecord {
                descriptor: d.clone(),
                diff_id: diff.clone(),
                chain_id: chain,
            })
            .collect();
        let size = self.blob_size(manifest)?
            + m.config.size
            + m.layers.iter().map(|l| l.size).sum::<u64>();
        Ok(ImageRecord {
            name: name.to_string(),
            target: target.clone(),
            manifest: manifest.clone(),
            config: m.config.digest,
            layers,
            size,
            created: now_rfc3339(),
        })
    }
}

/// Parses a stored JSON document.
fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    d: &Digest,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::BadDocument {
        what,
        digest: d.clone(),
        source,
    })
}

/// Whether `media_type` is an index or manifest list.
pub(crate) fn is_index(media_type: &str) -> bool {
    media::is_index(media_type)
}

/// Now, as RFC 3339 in UTC (seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert!(now_rfc3339().parse::<humantime::Timestamp>().is_ok());
    }
}
