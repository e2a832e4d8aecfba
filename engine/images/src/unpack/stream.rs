//! The layer's byte stream: compression told by media type and magic bytes, a
//! streaming decompressor, and the diff_id check on what comes out of it.

use std::fmt;
use std::io::{self, BufReader, Cursor, Read};

use super::UnpackError;
use crate::digest::{Digest, Verified};

/// Large reads: fewer calls through the decompressor and the hasher per file.
const BUF: usize = 256 * 1024;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl Compression {
    /// What a layer media type declares: `None` for a plain tar (whose bytes may still
    /// turn out compressed: docker's archives say "tar" for gzip blobs), an error for a
    /// type that is not a layer. An empty media type (legacy archives) means "look".
    pub fn from_media_type(media_type: &str) -> Result<Compression, UnpackError> {
        let m = media_type;
        if m.ends_with("+gzip") || m.ends_with(".tar.gzip") {
            Ok(Compression::Gzip)
        } else if m.ends_with("+zstd") || m.ends_with(".tar.zstd") {
            Ok(Compression::Zstd)
        } else if m.is_empty() || m.ends_with(".tar") || m.ends_with(".tar+plain") {
            Ok(Compression::None)
        } else {
            Err(UnpackError::MediaType(m.to_string()))
        }
    }

    /// What the first bytes of a blob show.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The uncompressed tar stream, verified against `diff_id` at its end.
pub type TarStream<'a> = Verified<Box<dyn Read + 'a>>;

/// Opens `blob` as a tar stream: the declared compression must match the magic bytes,
/// except that a plain-tar media type over compressed bytes is decompressed.
pub fn open<'a>(
    blob: impl Read + 'a,
    declared: Compression,
    media_type: &str,
    diff_id: &Digest,
) -> Result<TarStream<'a>, UnpackError> {
    let (head, blob) = peek(blob).map_err(UnpackError::Read)?;
    let found = Compression::sniff(&head);
    if declared != Compression::None && declared != found {
        return Err(UnpackError::Compression {
            media_type: media_type.to_string(),
            expected: declared,
            found,
        });
    }
    let raw = BufReader::with_capacity(BUF, Cursor::new(head).chain(blob));
    let plain: Box<dyn Read + 'a> = match found {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(UnpackError::Read)?)
        }
    };
    Ok(Verified::new(plain, diff_id.clone(), None))
}

/// Reads the first four bytes (fewer at EOF) and gives them back with the rest.
fn peek<R: Read>(mut blob: R) -> io::Result<(Vec<u8>, R)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match blob.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((head[..n].to_vec(), blob))
}
