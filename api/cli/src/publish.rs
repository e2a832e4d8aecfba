//! Published ports on the command line: `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]` read
//! as docker reads it, into the object `POST /v1/containers` takes in `ports`, and the
//! lines `berth port` prints. (The CLI depends on no engine crate: the shape is the
//! API's, written out here.)

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What `-p` expects, for error messages.
const SHAPE: &str = "expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] (IPv6 in brackets)";

/// A transport protocol a port is published for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (docker's default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One published port, as the API's `ports` entries are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// The host address; none: every address of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// The host port; 0: one the kernel picks.
    #[serde(default)]
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// tcp or udp.
    #[serde(default)]
    pub protocol: Protocol,
}

impl Publish {
    /// The line `berth port` prints for it: `80/tcp -> 0.0.0.0:8080`.
    pub fn line(&self) -> String {
        format!(
            "{}/{} -> {}",
            self.container_port,
            self.protocol,
            self.host_address()
        )
    }

    /// Where it is on the host: `0.0.0.0:8080`, `127.0.0.1:8080`, `[::1]:8080`.
    pub fn host_address(&self) -> String {
        match self.host_ip {
            None => format!("0.0.0.0:{}", self.host_port),
            Some(IpAddr::V4(ip)) => format!("{ip}:{}", self.host_port),
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.host_port),
        }
    }
}

/// Why a `-p` value (or `berth port`'s PORT) is refused; each variant names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Not of the form `[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`.
    #[error("{0:?}: {SHAPE}")]
    Shape(String),
    /// A protocol other than tcp or udp.
    #[error("{value:?}: protocol {protocol:?} is not tcp or udp")]
    Protocol {
        /// The value given.
        value: String,
        /// The protocol in it.
        protocol: String,
    },
    /// A port that is not a number in range.
    #[error("{value:?}: {port:?} is not a port number ({range})")]
    Port {
        /// The value given.
        value: String,
        /// The port in it.
        port: String,
        /// The numbers allowed.
        range: &'static str,
    },
    /// A host address that is not an IP address.
    #[error("{value:?}: {ip:?} is not an IP address")]
    Ip {
        /// The value given.
        value: String,
        /// The address in it.
        ip: String,
    },
    /// A range of ports (`8000-8010:80-90`), which the API has no form for.
    #[error("{0:?}: port ranges are not supported; publish each port with its own -p")]
    Range(String),
}

/// Parse a `-p` value: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
/// `[::1]:8080:80`, each optionally ending in `/tcp` or `/udp`.
pub fn parse(value: &str) -> Result<Publish, PublishError> {
    let (rest, protocol) = split_protocol(value)?;
    let (ip, ports) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let (ip, tail) = bracketed
                .split_once(']')
                .ok_or_else(|| PublishError::Shape(value.to_owned()))?;
            let tail = tail
                .strip_prefix(':')
                .ok_or_else(|| PublishError::Shape(value.to_owned()))?;
            (Some(ip), tail)
        }
        None => match rest.split_once(':') {
            Some((ip, tail)) if tail.contains(':') => (Some(ip), tail),
            _ => (None, rest),
        },
    };
    let (host_port, container_port) = match ports.split_once(':') {
        Some((host, container)) => (host, container),
        // `[::1]:80` names an address without a host port field: ambiguous, refused.
        None if ip.is_some() => return Err(PublishError::Shape(value.to_owned())),
        None => ("", ports),
    };
    if container_port.contains(':') {
        return Err(PublishError::Shape(value.to_owned()));
    }
    if host_port.contains('-') || container_port.contains('-') {
        return Err(PublishError::Range(value.to_owned()));
    }
    Ok(Publish {
        host_ip: host_ip(value, ip)?,
        host_port: match host_port {
            "" => 0,
            port => number(value, port, 0)?,
        },
        container_port: number(value, container_port, 1)?,
        protocol,
    })
}

/// `berth port`'s PORT: `80` or `80/udp` (tcp unless said).
pub fn parse_private(value: &str) -> Result<(u16, Protocol), PublishError> {
    let (port, protocol) = split_protocol(value)?;
    Ok((number(value, port, 1)?, protocol))
}

/// `value` without its `/PROTO` suffix, and the protocol (tcp when there is none).
fn split_protocol(value: &str) -> Result<(&str, Protocol), PublishError> {
    let Some((rest, name)) = value.rsplit_once('/') else {
        return Ok((value, Protocol::Tcp));
    };
    let protocol = match name.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => {
            return Err(PublishError::Protocol {
                value: value.to_owned(),
                protocol: name.to_owned(),
            })
        }
    };
    Ok((rest, protocol))
}

/// The host address field: absent or empty means every address.
fn host_ip(value: &str, ip: Option<&str>) -> Result<Option<IpAddr>, PublishError> {
    match ip {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| PublishError::Ip {
            value: value.to_owned(),
            ip: text.to_owned(),
        }),
    }
}

/// A port number from `min` to 65535 (digits only: no sign, no spaces).
fn number(value: &str, port: &str, min: u16) -> Result<u16, PublishError> {
    let bad = || PublishError::Port {
        value: value.to_owned(),
        port: port.to_owned(),
        range: if min == 0 { "0-65535" } else { "1-65535" },
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    port.parse::<u16>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ip: Option<&str>, host_port: u16, container_port: u16, protocol: Protocol) -> Publish {
        Publish {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port,
            container_port,
            protocol,
        }
    }

    #[test]
    fn every_form_docker_takes() {
        use Protocol::{Tcp, Udp};
        for (text, want) in [
            ("80", p(None, 0, 80, Tcp)),
            ("80/udp", p(None, 0, 80, Udp)),
            ("80/TCP", p(None, 0, 80, Tcp)),
            ("8080:80", p(None, 8080, 80, Tcp)),
            (":80", p(None, 0, 80, Tcp)),
            ("0:80", p(None, 0, 80, Tcp)),
            ("8080:80/udp", p(None, 8080, 80, Udp)),
            ("127.0.0.1:8080:80", p(Some("127.0.0.1"), 8080, 80, Tcp)),
            ("127.0.0.1::80", p(Some("127.0.0.1"), 0, 80, Tcp)),
            (":8080:80", p(None, 8080, 80, Tcp)),
            ("10.0.0.1:53:53/udp", p(Some("10.0.0.1"), 53, 53, Udp)),
            ("[::1]:8080:80", p(Some("::1"), 8080, 80, Tcp)),
            ("[::]::80/udp", p(Some("::"), 0, 80, Udp)),
            ("65535:1", p(None, 65535, 1, Tcp)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn the_api_shape() {
        let json = serde_json::to_value(parse("127.0.0.1:8080:80/udp").unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"host_ip": "127.0.0.1", "host_port": 8080,
                               "container_port": 80, "protocol": "udp"})
        );
        let json = serde_json::to_value(parse("80").unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"host_port": 0, "container_port": 80, "protocol": "tcp"})
        );
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let shape = |v: &str| PublishError::Shape(v.into());
        let port = |v: &str, port: &str, range| PublishError::Port {
            value: v.into(),
            port: port.into(),
            range,
        };
        for (text, want) in [
            ("", port("", "", "1-65535")),
            ("0", port("0", "0", "1-65535")),
            ("65536", port("65536", "65536", "1-65535")),
            ("8080:", port("8080:", "", "1-65535")),
            ("x:80", port("x:80", "x", "0-65535")),
            ("+80", port("+80", "+80", "1-65535")),
            (" 80", port(" 80", " 80", "1-65535")),
            ("70000:80", port("70000:80", "70000", "0-65535")),
            ("1.2.3.4:5:6:7", shape("1.2.3.4:5:6:7")),
            ("::1:8080:80", shape("::1:8080:80")),
            ("[::1]:80", shape("[::1]:80")),
            ("[::1:8080:80", shape("[::1:8080:80")),
            ("[::1]8080:80", shape("[::1]8080:80")),
            (
                "8000-8010:80-90",
                PublishError::Range("8000-8010:80-90".into()),
            ),
            ("80-81", PublishError::Range("80-81".into())),
            (
                "80/sctp",
                PublishError::Protocol {
                    value: "80/sctp".into(),
                    protocol: "sctp".into(),
                },
            ),
            (
                "80/",
                PublishError::Protocol {
                    value: "80/".into(),
                    protocol: "".into(),
                },
            ),
            (
                "localhost:8080:80",
                PublishError::Ip {
                    value: "localhost:8080:80".into(),
                    ip: "localhost".into(),
                },
            ),
            (
                "[nope]:1:2",
                PublishError::Ip {
                    value: "[nope]:1:2".into(),
                    ip: "nope".into(),
                },
            ),
        ] {
            assert_eq!(parse(text), Err(want), "{text:?}");
        }
        assert_eq!(
            parse("80/sctp").unwrap_err().to_string(),
            r#""80/sctp": protocol "sctp" is not tcp or udp"#
        );
        assert_eq!(
            parse("a:b:c:d").unwrap_err().to_string(),
            r#""a:b:c:d": expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] (IPv6 in brackets)"#
        );
    }

    #[test]
    fn port_lines_as_docker_prints_them() {
        assert_eq!(parse("8080:80").unwrap().line(), "80/tcp -> 0.0.0.0:8080");
        assert_eq!(
            parse("127.0.0.1:53:53/udp").unwrap().line(),
            "53/udp -> 127.0.0.1:53"
        );
        assert_eq!(parse("[::1]:8080:80").unwrap().host_address(), "[::1]:8080");
        assert_eq!(parse_private("80"), Ok((80, Protocol::Tcp)));
        assert_eq!(parse_private("53/udp"), Ok((53, Protocol::Udp)));
        assert!(parse_private("8080:80").is_err());
        assert!(parse_private("80/icmp").is_err());
    }
}
