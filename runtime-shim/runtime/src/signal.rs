//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `9`.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parse a signal given by name (with or without `SIG`, any case) or by number, with the
/// one table of `berth_runtime_types::signal`; a number nix has no `Signal` for (a
/// real-time one) is refused.
pub fn parse(text: &str) -> Result<Signal> {
    let bad = || Error::InvalidSignal(text.to_string());
    let n = berth_runtime_types::signal::parse(text).map_err(|_| bad())?;
    Signal::try_from(n).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("15").unwrap(), Signal::SIGTERM);
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
        assert!(parse("99").is_err());
    }
}
