//! Signals as people name them: `"KILL"`, `"SIGKILL"`, `"sigkill"` or `"9"`. The one
//! parser of Berth: the runtime's `kill` and the API's kill route both read signals here.

use std::fmt;

/// Signal names without `SIG` and their numbers (Linux on x86, Arm, RISC-V: the generic
/// numbering).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
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
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Highest signal number accepted (real-time signals included).
pub const MAX_SIGNAL: i64 = 64;

/// A signal that names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalError {
    /// Neither a known name nor a number.
    Unknown(String),
    /// A number outside 1–[`MAX_SIGNAL`].
    OutOfRange(i64),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::Unknown(name) => write!(
                f,
                "unknown signal {name:?} (use a name such as KILL or TERM, or a number)"
            ),
            SignalError::OutOfRange(n) => {
                write!(f, "signal {n} is out of range 1–{MAX_SIGNAL}")
            }
        }
    }
}

impl std::error::Error for SignalError {}

/// A signal number from its name (with or without `SIG`, any case, spaces around
/// ignored) or its number.
pub fn parse(text: &str) -> Result<i32, SignalError> {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return number(n);
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, s)| *s)
        .ok_or_else(|| SignalError::Unknown(text.to_owned()))
}

/// A signal number, checked to be in range.
pub fn number(n: i64) -> Result<i32, SignalError> {
    if (1..=MAX_SIGNAL).contains(&n) {
        Ok(n as i32)
    } else {
        Err(SignalError::OutOfRange(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_or_without_sig_in_any_case() {
        for name in ["KILL", "SIGKILL", "sigkill", "Kill", " KILL "] {
            assert_eq!(parse(name), Ok(9), "{name}");
        }
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("STKFLT"), Ok(16));
        assert_eq!(parse("IOT"), parse("ABRT"));
    }

    #[test]
    fn numbers_in_range_real_time_included() {
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("64"), Ok(64));
        assert_eq!(number(34), Ok(34));
        assert_eq!(parse("0"), Err(SignalError::OutOfRange(0)));
        assert_eq!(parse("-9"), Err(SignalError::OutOfRange(-9)));
        assert_eq!(number(65), Err(SignalError::OutOfRange(65)));
    }

    #[test]
    fn unknown_names_say_what_to_use() {
        let err = parse("NOPE").unwrap_err();
        assert_eq!(err, SignalError::Unknown("NOPE".into()));
        assert_eq!(
            err.to_string(),
            "unknown signal \"NOPE\" (use a name such as KILL or TERM, or a number)"
        );
        assert!(parse("").is_err());
        assert!(parse("SIG").is_err());
    }

    #[test]
    fn every_number_in_the_table_is_a_signal() {
        for (name, n) in SIGNALS {
            assert_eq!(parse(name), number((*n).into()), "{name}");
        }
    }
}
