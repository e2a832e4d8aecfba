//! Where berthd listens, as given to `--host` / `BERTH_HOST`.

use std::fmt;
use std::path::PathBuf;

/// The default endpoint: berthd's default socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Why a `--host` value names no endpoint; each variant carries the value given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// `tcp://` without a numeric port.
    #[error("{0:?}: expected tcp://HOST:PORT")]
    Tcp(String),
    /// `unix://` without a path.
    #[error("{0:?}: no socket path")]
    NoPath(String),
    /// Neither a unix socket nor a TCP address.
    #[error("{0:?}: expected unix:///PATH, an absolute socket path or tcp://HOST:PORT")]
    Form(String),
}

/// A daemon endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl Endpoint {
    /// Parse `unix:///path`, `/path` (or `./path`) or `tcp://host:port`.
    pub fn parse(s: &str) -> Result<Self, HostError> {
        if let Some(path) = s.strip_prefix("unix://") {
            return Self::unix(path, s);
        }
        if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
            return Self::unix(s, s);
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            let port = addr.rsplit_once(':').map(|(_, p)| p);
            return match port.map(str::parse::<u16>) {
                Some(Ok(_)) => Ok(Endpoint::Tcp(addr.to_owned())),
                _ => Err(HostError::Tcp(s.to_owned())),
            };
        }
        Err(HostError::Form(s.to_owned()))
    }

    fn unix(path: &str, whole: &str) -> Result<Self, HostError> {
        if path.is_empty() {
            return Err(HostError::NoPath(whole.to_owned()));
        }
        Ok(Endpoint::Unix(PathBuf::from(path)))
    }

    /// The value of the `Host` header for requests to this endpoint.
    pub fn host_header(&self) -> &str {
        match self {
            // A unix socket has no host name; any valid one will do.
            Endpoint::Unix(_) => "berth",
            Endpoint::Tcp(addr) => addr,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            Endpoint::parse(DEFAULT_HOST),
            Ok(Endpoint::Unix("/run/berth/berth.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("/tmp/b.sock"),
            Ok(Endpoint::Unix("/tmp/b.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            Ok(Endpoint::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:80/"),
            Ok(Endpoint::Tcp("[::1]:80".into()))
        );
        for bad in [
            "tcp://host",
            "tcp://host:x",
            "unix://",
            "http://x:1",
            "b.sock",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Endpoint::parse("unix://"),
            Err(HostError::NoPath("unix://".into()))
        );
        for bad in ["tcp://host", "tcp://host:x"] {
            assert_eq!(Endpoint::parse(bad), Err(HostError::Tcp(bad.into())));
        }
        assert_eq!(
            Endpoint::parse("unix:///a").unwrap().to_string(),
            "unix:///a"
        );
    }
}
