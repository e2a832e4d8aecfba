//! A layer's blob applied to a directory: decompressed while it streams (gzip, zstd or
//! none, by media type and magic bytes), its uncompressed bytes checked against the
//! config's diff_id, its tar entries written under the layer root with every path
//! resolved beneath it, and whiteouts turned into overlayfs's own format (a 0/0 char
//! device for `.wh.NAME`, `trusted.overlay.opaque=y` for `.wh..wh..opq`).
//!
//! The tar crate parses; the entries are applied here, because its own unpack knows
//! neither whiteouts nor a root it must not leave.

mod apply;
mod dirs;
mod pipe;
mod stream;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, DigestError};

pub use stream::Compression;

/// What one applied layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries applied (files, dirs, links, devices, whiteouts).
    pub files: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Bytes of the uncompressed tar stream (what the diff_id hashes).
    pub uncompressed: u64,
}

/// Why a layer could not be applied. The layer directory is then not to be committed.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A media type this crate does not unpack.
    #[error("layer media type {0:?} is not a tar layer (plain, gzip or zstd)")]
    MediaType(String),
    /// The media type names a compression the blob's first bytes do not have.
    #[error("layer of media type {media_type:?} is not {expected} (the blob starts with {found})")]
    Compression {
        /// The descriptor's media type.
        media_type: String,
        /// The compression the media type names.
        expected: Compression,
        /// The compression the magic bytes show.
        found: Compression,
    },
    /// Decompression or tar parsing failed (a corrupt or truncated layer).
    #[error("reading the layer stream: {0}")]
    Read(#[source] io::Error),
    /// The uncompressed stream was not what the diff_id names.
    #[error("layer content does not match its diff_id: {0}")]
    Digest(#[source] DigestError),
    /// An entry's path, or a hard link's target, leaves the layer root (by `..` or a
    /// symlink).
    #[error("layer entry {entry:?} escapes the layer root{}", via.as_ref().map(|t| format!(" (link target {t:?})")).unwrap_or_default())]
    Escape {
        /// The entry's path as the tar names it.
        entry: String,
        /// The hard link's target, when that is what escapes.
        via: Option<String>,
    },
    /// An entry type Berth does not apply.
    #[error("layer entry {entry:?}: unsupported tar entry type {kind}")]
    Unsupported {
        /// The entry's path.
        entry: String,
        /// The tar type byte, printed.
        kind: String,
    },
    /// A system call on an entry failed.
    #[error("layer entry {entry:?}: {syscall}: {source}")]
    Syscall {
        /// The entry's path.
        entry: String,
        /// The call that failed.
        syscall: &'static str,
        /// The error it returned.
        source: io::Error,
    },
    /// The destination directory could not be opened.
    #[error("layer root {path}: {source}")]
    Dest {
        /// The destination.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl UnpackError {
    /// An io error met while reading the stream: a digest failure surfaces as one (the
    /// verifying reader reports it at EOF), anything else is a corrupt stream.
    fn from_read(e: io::Error) -> UnpackError {
        if !e.get_ref().is_some_and(|inner| inner.is::<DigestError>()) {
            return UnpackError::Read(e);
        }
        match e.into_inner().map(|inner| inner.downcast::<DigestError>()) {
            Some(Ok(d)) => UnpackError::Digest(*d),
            _ => UnpackError::Read(io::Error::other("unreadable digest error")),
        }
    }
}

/// Applies the layer `blob` (of `media_type`) under `dest`, which must exist, and checks
/// its uncompressed content against `diff_id`. Streams: nothing is buffered whole. The
/// blob is read (and decompressed and hashed) on the caller's thread while a helper
/// thread writes the files.
pub fn apply_layer(
    blob: impl Read,
    media_type: &str,
    dest: &Path,
    diff_id: &Digest,
) -> Result<LayerStats, UnpackError> {
    let declared = Compression::from_media_type(media_type)?;
    let stream = stream::open(blob, declared, media_type, diff_id)?;
    let (sender, reader) = pipe::pipe();
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("berth-unpack".into())
            .spawn_scoped(scope, || apply_tar(reader, dest))
            .map_err(UnpackError::Read)?;
        sender.pump(stream);
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Applies the uncompressed tar stream `input` under `dest`, then reads what follows
/// the tar trailer: it is part of the digest too, and only the end of the stream says
/// whether the whole of it matched.
fn apply_tar(input: pipe::ChunkReader, dest: &Path) -> Result<LayerStats, UnpackError> {
    let mut applier = apply::Applier::new(dest)?;
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(UnpackError::from_read)?;
    for entry in entries {
        let entry = entry.map_err(UnpackError::from_read)?;
        applier.apply(entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(UnpackError::from_read)?;
    let mut stats = applier.finish()?;
    stats.uncompressed = rest.bytes_read();
    Ok(stats)
}
