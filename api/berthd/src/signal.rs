//! Signals as clients name them: `"KILL"`, `"SIGKILL"`, `"9"` or `9`.

/// Signal names and numbers (Linux x86_64 / generic).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Highest signal number accepted (real-time signals included).
const MAX_SIGNAL: i64 = 64;

/// A signal number from its name (with or without `SIG`, any case) or its number.
pub fn parse(name: &str) -> Result<i32, String> {
    let trimmed = name.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return number(n);
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            format!("unknown signal {name:?} (use a name such as KILL or TERM, or a number)")
        })
}

/// A signal number, checked to be in range.
pub fn number(n: i64) -> Result<i32, String> {
    if (1..=MAX_SIGNAL).contains(&n) {
        Ok(n as i32)
    } else {
        Err(format!("signal {n} is out of range 1–{MAX_SIGNAL}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL"), Ok(9));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("9"), Ok(9));
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
        assert!(number(65).is_err());
    }
}
