//! Image archives in and out: `docker save` tarballs (the legacy `<id>/layer.tar` layout
//! and docker 25+'s OCI-layout-plus-`manifest.json`) and OCI image-layout tarballs.
//!
//! [`import`] reads the tar once, front to back: blobs go into the store as they pass
//! (hashed while copied), the small JSON documents stay in memory, and the images are
//! recorded only once the whole archive checked out. An archive that fails leaves no
//! record; blobs it wrote meanwhile stay unreferenced until [`Store::gc_blobs`](crate::store::Store::gc_blobs) (another
//! import or pull may be sharing them, so removing them here could race).
//!
//! [`save`] writes an OCI image layout (`oci-layout`, `index.json` with ref-name
//! annotations, `blobs/sha256/…`) plus a docker `manifest.json` pointing at the same blobs,
//! as docker 25+ does, so `docker load` and OCI tools both read it.

mod import;
mod names;
mod save;

use std::io;
use std::path::PathBuf;

use crate::store::StoreError;
use crate::Digest;

pub use import::import;
pub use save::save;

/// Largest JSON document (`manifest.json`, `index.json`, a config) an archive may carry.
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// Largest sum of the JSON documents kept in memory during an import.
pub const MAX_DOCUMENTS_TOTAL: u64 = 64 << 20;

/// Why an import or save failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The tar stream itself could not be read (truncated or corrupt headers).
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    /// An entry's content could not be read or stored.
    #[error("archive entry {}: {source}", path.display())]
    Entry {
        /// The entry.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An entry ended before its announced size (a truncated archive).
    #[error("archive entry {}: truncated: {actual} of {expected} bytes", path.display())]
    Truncated {
        /// The entry.
        path: PathBuf,
        /// Its announced size.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// A blob's content did not match its name, or the store failed.
    #[error("archive entry {}: {source}", path.display())]
    Blob {
        /// The entry.
        path: PathBuf,
        /// The error.
        source: StoreError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream stopped between entries, without tar's end-of-archive block.
    #[error("the archive ends without tar's end-of-archive block: truncated")]
    Unterminated,
    /// Neither a `docker save` archive nor an OCI image layout.
    #[error("not an image archive: no manifest.json and no OCI layout (oci-layout + index.json)")]
    NotAnImage,
    /// A JSON document is larger than accepted.
    #[error("archive entry {path}: larger than the {max} bytes accepted for a document")]
    TooLarge {
        /// The entry.
        path: String,
        /// The limit.
        max: u64,
    },
    /// A JSON document does not parse.
    #[error("archive entry {path}: {source}")]
    BadJson {
        /// The entry (or blob digest).
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `manifest.json` names a file the archive does not have.
    #[error("manifest.json names {0:?}, which the archive does not contain")]
    MissingFile(String),
    /// The OCI index or a manifest names a blob the archive does not have.
    #[error("the archive lacks blob {0}")]
    MissingBlob(Digest),
    /// A layer's content is neither its diff_id nor compressed.
    #[error("layer {path}: content {actual} is not the config's diff_id {expected} and is not compressed")]
    DiffId {
        /// The layer file.
        path: String,
        /// The config's diff_id.
        expected: Digest,
        /// The content's digest.
        actual: Digest,
    },
    /// The layer count differs between manifest and config.
    #[error("image {config}: {layers} layers but {diff_ids} diff_ids in its config")]
    LayerCount {
        /// The config.
        config: Digest,
        /// Layers listed.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
    /// An image name in the archive does not parse.
    #[error("image name {name:?} in the archive: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An index in the archive has no manifest for this host.
    #[error("index {index} has no manifest for {platform}")]
    NoPlatform {
        /// The index.
        index: Digest,
        /// The host's platform.
        platform: String,
    },
    /// `save` was asked for an image the store does not have.
    #[error("no image {0:?} to save")]
    ImageNotFound(String),
    /// Writing the archive failed.
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
}
