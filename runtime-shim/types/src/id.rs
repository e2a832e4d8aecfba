//! The rule every container id follows: ids name directories and cgroups and appear on
//! runtimes' command lines, so they are checked before use.

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 1024;

/// Accept ids made of letters, digits and `_ + - .` (runc's characters) that start with a
/// letter or digit (docker's rule): an id must never read as an option (`-rf`, `--help`)
/// on the command line of a runtime. `Err` says why not.
pub fn check(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return Err("it is longer than 1024 bytes");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or digit");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return Err("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check("web-1.a_b+c").is_ok());
        assert!(check("1").is_ok());
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
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
