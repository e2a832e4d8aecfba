//! Times for humans: an instant's age (`5s ago`) and a short RFC 3339 form.

use std::time::{Duration, SystemTime};

/// `at` (RFC 3339) as an age relative to `now`: `12s ago`, `3m ago`, `5h ago`, `2d ago`;
/// `-` when absent or unreadable.
pub fn age(at: Option<&str>, now: SystemTime) -> String {
    let Some(then) = at.and_then(|s| humantime::parse_rfc3339_weak(s).ok()) else {
        return "-".into();
    };
    let secs = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// `at` (RFC 3339, any precision) to the millisecond; unreadable text as it is.
pub fn short(at: &str) -> String {
    match humantime::parse_rfc3339_weak(at) {
        Ok(t) => humantime::format_rfc3339_millis(t).to_string(),
        Err(_) => at.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_short_times() {
        let at = "2026-01-01T00:00:00.123456789Z";
        let t0 = humantime::parse_rfc3339_weak(at).unwrap();
        assert_eq!(age(Some(at), t0 + Duration::from_secs(5)), "5s ago");
        assert_eq!(age(Some(at), t0 + Duration::from_secs(125)), "2m ago");
        assert_eq!(age(Some(at), t0 + Duration::from_secs(7300)), "2h ago");
        assert_eq!(age(Some(at), t0 + Duration::from_secs(200_000)), "2d ago");
        assert_eq!(age(Some(at), t0 - Duration::from_secs(3)), "0s ago");
        assert_eq!(age(None, t0), "-");
        assert_eq!(age(Some("yesterday"), t0), "-");
        assert_eq!(short(at), "2026-01-01T00:00:00.123Z");
        assert_eq!(short("x"), "x");
    }
}
