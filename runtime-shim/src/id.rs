//! Container ids: they name directories and cgroups, so they are checked before use.

use crate::error::{Error, Result};

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 1024;

/// Accept ids made of letters, digits and `_ + - .` (runc's characters) that start with a
/// letter or digit (docker's rule): an id must never read as an option (`-rf`, `--help`)
/// on the command line of a runtime.
pub fn validate(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.chars().take(80).collect(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("it is longer than 1024 bytes");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or digit");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate("web-1.a_b+c").is_ok());
        assert!(validate("1").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "é",
            "-rf",
            "--help",
            "_x",
            "+x",
            ".hidden",
            &"x".repeat(1025),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
