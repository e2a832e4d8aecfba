//! The bearer token that guards berthd's TCP listener: checked in constant time, never
//! printed.

use hyper::header::HeaderValue;
use subtle::ConstantTimeEq;

/// The longest token accepted, in bytes.
const MAX_LEN: usize = 4096;

/// Why a token's text is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// No text at all.
    #[error("the token is empty")]
    Empty,
    /// More bytes than the limit.
    #[error("the token is longer than {0} bytes")]
    TooLong(usize),
    /// A space, control or non-ASCII byte.
    #[error("the token must be printable ASCII without spaces")]
    NotPrintable,
}

/// A configured bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl Token {
    /// A token from its text: visible ASCII, no spaces (so it fits in a header as is),
    /// at most 4096 bytes.
    pub fn new(text: &str) -> Result<Self, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(TokenError::TooLong(MAX_LEN));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotPrintable);
        }
        Ok(Token(text.as_bytes().to_vec()))
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>`. The
    /// comparison takes the same time wherever the first differing byte is (only the
    /// length may show), so the token cannot be guessed byte by byte from timings.
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.as_bytes();
        // The scheme is case-insensitive (RFC 7235); one space after it.
        let Some((scheme, given)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"Bearer ") && bool::from(given.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header() {
        let t = Token::new("s3cret").unwrap();
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(t.accepts(Some(&h("Bearer s3cret"))));
        assert!(t.accepts(Some(&h("bearer s3cret"))));
        assert!(!t.accepts(Some(&h("Bearer s3cre"))));
        assert!(!t.accepts(Some(&h("Bearer s3cretx"))));
        assert!(!t.accepts(Some(&h("Basic s3cret"))));
        assert!(!t.accepts(Some(&h("Bearer"))));
        assert!(!t.accepts(None));
        assert_eq!(Token::new("").unwrap_err(), TokenError::Empty);
        assert_eq!(Token::new("a b").unwrap_err(), TokenError::NotPrintable);
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
