//! The HTTP odds and ends under the client: hosts, loopback, retry decisions, errors.

use std::io::{self, Read};
use std::net::IpAddr;

use super::RegistryError;

/// `host[:port]` of a URL as references write it (`[::1]:5000`, no default port).
pub fn host_port(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Whether `host[:port]` is loopback: 127.0.0.0/8, ::1 or localhost.
pub fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match host_port.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host_port,
        },
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Connection errors, 5xx and 429 are worth another try; other statuses are answers.
pub fn retryable(outcome: &Result<ureq::Response, ureq::Error>) -> bool {
    match outcome {
        Ok(_) => false,
        Err(ureq::Error::Status(code, _)) => *code >= 500 || *code == 429,
        Err(ureq::Error::Transport(t)) => {
            matches!(
                t.kind(),
                ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io
            )
        }
    }
}

/// The response whatever its status; transport failures as unreachable or timed out.
pub fn response(
    outcome: Result<ureq::Response, ureq::Error>,
    url: &url::Url,
) -> Result<ureq::Response, RegistryError> {
    let t = match outcome {
        Ok(r) | Err(ureq::Error::Status(_, r)) => return Ok(r),
        Err(ureq::Error::Transport(t)) => t,
    };
    let registry = host_port(url);
    let reason = match t.message() {
        Some(m) => format!("{url}: {m}"),
        None => format!("{url}: {}", t.kind()),
    };
    let timed_out = std::error::Error::source(&t)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            )
        });
    if timed_out {
        return Err(RegistryError::Timeout {
            registry,
            reason: format!("{url}: no answer in time"),
        });
    }
    let reason = match std::error::Error::source(&t) {
        Some(s) => format!("{reason}: {s}"),
        None => reason,
    };
    Err(RegistryError::Unreachable { registry, reason })
}

/// A response body whose read errors say what was being read (a stalled blob times out
/// with the blob's name in the message).
pub struct Annotated<R> {
    inner: R,
    what: String,
}

impl<R> Annotated<R> {
    /// Wraps `inner`, the body of `what`.
    pub fn new(inner: R, what: String) -> Self {
        Annotated { inner, what }
    }
}

impl<R: Read> Read for Annotated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let kind = match e.kind() {
                io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut,
                k => k,
            };
            let why = if kind == io::ErrorKind::TimedOut {
                "read timed out".to_string()
            } else {
                e.to_string()
            };
            io::Error::new(kind, format!("{}: {why}", self.what))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for h in [
            "127.0.0.1:5000",
            "127.3.2.1",
            "localhost",
            "LOCALHOST:1",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "[::2]:5000",
            "localhost.example",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
