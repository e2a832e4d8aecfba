//! Content digests (`sha256:<64 hex>`) and a reader that checks one while it streams.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A content digest. Only sha256 is accepted: it is what registries and images use.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    /// The 64 lower-case hex digits, without the `sha256:` prefix.
    hex: String,
}

/// Why a digest string or a piece of content was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// Not `sha256:` followed by 64 lower-case hex digits.
    #[error("invalid digest {0:?}: want sha256: and 64 lower-case hex digits")]
    Invalid(String),
    /// The content hashed to something else.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// What the content was supposed to hash to.
        expected: Digest,
        /// What it hashed to.
        actual: Digest,
    },
    /// The content had another length than announced.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    Size {
        /// The content's digest.
        digest: Digest,
        /// The announced size.
        expected: u64,
        /// The bytes seen.
        actual: u64,
    },
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest a finished hasher computed.
    pub(crate) fn from_hasher(h: Sha256) -> Digest {
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }

    /// The hex part (what file names in the store use).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm (always `sha256`).
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// Checks that `bytes` hash to this digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), DigestError> {
        let actual = Digest::of(bytes);
        if actual == *self {
            Ok(())
        } else {
            Err(DigestError::Mismatch {
                expected: self.clone(),
                actual,
            })
        }
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or_else(|| DigestError::Invalid(s.to_string()))?;
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// A reader that hashes what passes through it and, at the end of the stream, fails
/// with `InvalidData` (carrying a [`DigestError`]) unless the content matched: nobody
/// downstream sees a clean EOF for content that was wrong.
pub struct Verified<R> {
    inner: R,
    hasher: Sha256,
    expected: Digest,
    size: Option<u64>,
    seen: u64,
    done: bool,
}

impl<R: Read> Verified<R> {
    /// Wraps `inner`, which must yield the content of `expected` (of `size` bytes if known).
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        Verified {
            inner,
            hasher: Sha256::new(),
            expected,
            size,
            seen: 0,
            done: false,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    /// The digest this reader checks against.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    fn finish(&mut self) -> Result<(), DigestError> {
        if let Some(expected) = self.size.filter(|&s| s != self.seen) {
            return Err(DigestError::Size {
                digest: self.expected.clone(),
                expected,
                actual: self.seen,
            });
        }
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if actual != self.expected {
            return Err(DigestError::Mismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.finish()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.done = true;
            return Ok(0);
        }
        self.seen += n as u64;
        if self.size.is_some_and(|s| self.seen > s) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                DigestError::Size {
                    digest: self.expected.clone(),
                    expected: self.size.unwrap_or_default(),
                    actual: self.seen,
                },
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn parses_prints_and_hashes() {
        let d: Digest = HELLO.parse().unwrap();
        assert_eq!(d.to_string(), HELLO);
        assert_eq!(Digest::of(b"hello"), d);
        assert!(d.verify(b"hello").is_ok());
        assert!(matches!(
            d.verify(b"hullo"),
            Err(DigestError::Mismatch { .. })
        ));
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "",
            "sha256:",
            "sha512:00",
            "sha256:ABC",
            &HELLO.to_uppercase(),
            &HELLO[..70],
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&Digest::of(b"hello")).unwrap();
        assert_eq!(json, format!("\"{HELLO}\""));
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn a_verified_reader_passes_good_content_and_fails_bad_content_at_the_end() {
        let d = Digest::of(b"hello");
        let mut out = Vec::new();
        Verified::new(&b"hello"[..], d.clone(), Some(5))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let err = Verified::new(&b"hullo"[..], d.clone(), None)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let short = Verified::new(&b"hell"[..], d.clone(), Some(5)).read_to_end(&mut Vec::new());
        assert!(short.unwrap_err().to_string().contains("size mismatch"));
        let long = Verified::new(&b"hello!"[..], d, Some(5)).read_to_end(&mut Vec::new());
        assert!(long.unwrap_err().to_string().contains("size mismatch"));
    }
}
