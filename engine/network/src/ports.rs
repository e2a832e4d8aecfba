//! Published ports: a host address and port forwarded to a port of a container.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::str::FromStr;

use nix::sys::socket::{
    getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};

use serde::{Deserialize, Serialize};

/// A transport protocol a port is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address it is published on; none: every address of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// The host port; 0 in a request: one the kernel picks.
    #[serde(default)]
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP (the default) or UDP.
    #[serde(default = "tcp")]
    pub protocol: Protocol,
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

/// Why published ports were refused.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A `-p` text that does not parse.
    #[error("invalid port mapping {text:?}: {reason}")]
    Parse {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A mapping that parses but cannot be published.
    #[error("invalid port mapping {mapping}: {reason}")]
    Invalid {
        /// The mapping, in `-p` syntax.
        mapping: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host port is taken (by another process or another mapping).
    #[error("host port {host_ip}:{host_port}/{protocol} is already in use")]
    InUse {
        /// The host address it was asked on.
        host_ip: IpAddr,
        /// The host port.
        host_port: u16,
        /// TCP or UDP.
        protocol: Protocol,
    },
    /// Binding the host port failed for another reason.
    #[error("reserving host port {host_ip}:{host_port}/{protocol}: {source}")]
    Bind {
        /// The host address.
        host_ip: IpAddr,
        /// The host port.
        host_port: u16,
        /// TCP or UDP.
        protocol: Protocol,
        /// The error of bind(2).
        source: io::Error,
    },
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(format!("protocol {other:?} is not tcp or udp")),
        }
    }
}

impl fmt::Display for PortMapping {
    /// The mapping in docker's `-p` syntax (`[IP:]HOST:CONTAINER/PROTO`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

impl FromStr for PortMapping {
    type Err = PortError;

    /// Docker's `-p` syntax: `80`, `8080:80`, `8080:80/udp`, `127.0.0.1:8080:80`,
    /// `127.0.0.1::80` (the kernel picks the host port), `[::1]:8080:80`.
    fn from_str(text: &str) -> Result<Self, PortError> {
        parse_mapping(text).map_err(|reason| PortError::Parse {
            text: text.to_string(),
            reason,
        })
    }
}

fn parse_mapping(text: &str) -> Result<PortMapping, String> {
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto.parse()?),
        None => (text, Protocol::Tcp),
    };
    let (host_ip, ports) = split_host_ip(rest)?;
    let (host_port, container_port) = match ports.split_once(':') {
        Some((host, container)) => (parse_port(host, true)?, container),
        None if host_ip.is_some() => return Err("expected IP:HOST_PORT:CONTAINER_PORT".into()),
        None => (0, ports),
    };
    let container_port = parse_port(container_port, false)?;
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

/// `IP:PORTS`, `[IPV6]:PORTS` or `PORTS` (at most one `:` in `PORTS`).
fn split_host_ip(text: &str) -> Result<(Option<IpAddr>, &str), String> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (ip, rest) = bracketed
            .split_once("]:")
            .ok_or("an IPv6 host address is written [ADDR]:HOST_PORT:CONTAINER_PORT")?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        return Ok((Some(IpAddr::V6(ip)), rest));
    }
    match text.matches(':').count() {
        0 | 1 => Ok((None, text)),
        2 => {
            let (ip, rest) = text.split_once(':').unwrap_or((text, ""));
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
            Ok((Some(IpAddr::V4(ip)), rest))
        }
        _ => Err("too many ':' (write an IPv6 address in brackets)".into()),
    }
}

/// A port number; an empty host port (`IP::80`) is 0, one the kernel picks.
fn parse_port(text: &str, host: bool) -> Result<u16, String> {
    let what = if host { "host port" } else { "container port" };
    if text.is_empty() && host {
        return Ok(0);
    }
    if text.contains('-') {
        return Err(format!("{what} {text:?}: port ranges are not supported"));
    }
    let port: u32 = text
        .parse()
        .map_err(|_| format!("{what} {text:?} is not a number"))?;
    match port {
        0 if !host => Err("container port 0 is out of range 1-65535".into()),
        0..=65535 => Ok(port as u16),
        _ => Err(format!("{what} {port} is out of range 1-65535")),
    }
}

/// Check mappings before anything is made: container ports in range, host addresses
/// IPv4 (or unspecified), no host address, port and protocol taken twice.
pub fn validate(ports: &[PortMapping]) -> Result<(), PortError> {
    for (i, p) in ports.iter().enumerate() {
        let invalid = |reason: &str| PortError::Invalid {
            mapping: p.to_string(),
            reason: reason.to_string(),
        };
        if p.container_port == 0 {
            return Err(invalid("container port 0 is out of range 1-65535"));
        }
        if matches!(p.host_ip, Some(IpAddr::V6(ip)) if !ip.is_unspecified()) {
            return Err(invalid("IPv6 host addresses are not supported"));
        }
        if let Some(other) = ports[..i].iter().find(|q| overlaps(p, q)) {
            return Err(invalid(&format!(
                "its host port is also published by {other}"
            )));
        }
    }
    Ok(())
}

/// Two mappings that would need the same host socket.
fn overlaps(a: &PortMapping, b: &PortMapping) -> bool {
    a.protocol == b.protocol
        && a.host_port != 0
        && a.host_port == b.host_port
        && (a.bind_ip() == b.bind_ip()
            || a.bind_ip().is_unspecified()
            || b.bind_ip().is_unspecified())
}

impl PortMapping {
    /// The host address its port is bound on (`0.0.0.0` when none is given).
    pub fn bind_ip(&self) -> IpAddr {
        match self.host_ip {
            Some(ip) if !ip.is_unspecified() => ip,
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// Host ports held for a container: bound sockets, so that no other process takes a
/// published port while the container lives. Dropping it releases them.
#[derive(Debug, Default)]
pub struct Reservation {
    /// TCP sockets are bound but not listening: a connection that arrives before the
    /// DNAT rule is refused rather than left hanging in a backlog, and without
    /// `SO_REUSEADDR` on ours no other socket can bind the port, even one with it.
    sockets: Vec<OwnedFd>,
}

impl Reservation {
    /// How many sockets it holds.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}

/// Bind every mapping's host port (validated first); host port 0 becomes the port the
/// kernel gave. A port in use is [`PortError::InUse`], and then nothing stays reserved.
pub fn reserve(ports: &[PortMapping]) -> Result<(Vec<PortMapping>, Reservation), PortError> {
    validate(ports)?;
    let mut reservation = Reservation::default();
    let mut resolved = Vec::with_capacity(ports.len());
    for p in ports {
        let (socket, port) = bind(p)?;
        reservation.sockets.push(socket);
        resolved.push(PortMapping {
            host_port: port,
            ..p.clone()
        });
    }
    Ok((resolved, reservation))
}

/// Bind one mapping's host socket; the socket and its port.
fn bind(p: &PortMapping) -> Result<(OwnedFd, u16), PortError> {
    let addr = SocketAddr::new(p.bind_ip(), p.host_port);
    let failed = |source: io::Error| match source.raw_os_error() {
        Some(libc::EADDRINUSE) => PortError::InUse {
            host_ip: addr.ip(),
            host_port: p.host_port,
            protocol: p.protocol,
        },
        _ => PortError::Bind {
            host_ip: addr.ip(),
            host_port: p.host_port,
            protocol: p.protocol,
            source,
        },
    };
    match p.protocol {
        Protocol::Udp => {
            let socket = UdpSocket::bind(addr).map_err(failed)?;
            let port = socket.local_addr().map_err(failed)?.port();
            Ok((socket.into(), port))
        }
        Protocol::Tcp => bind_tcp(addr).map_err(failed),
    }
}

/// A TCP socket bound to `addr` without listening (std's `TcpListener` would listen
/// and set `SO_REUSEADDR`); the port it got.
fn bind_tcp(addr: SocketAddr) -> io::Result<(OwnedFd, u16)> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    let port = match addr {
        SocketAddr::V4(a) => {
            nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn::from(a))?;
            getsockname::<SockaddrIn>(fd.as_raw_fd())?.port()
        }
        SocketAddr::V6(a) => {
            nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?;
            getsockname::<SockaddrIn6>(fd.as_raw_fd())?.port()
        }
    };
    Ok((fd, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PortMapping {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn mapping(ip: Option<&str>, host: u16, container: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.map(|ip| ip.parse().unwrap()),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn every_form_parses() {
        use Protocol::{Tcp, Udp};
        assert_eq!(parse("80"), mapping(None, 0, 80, Tcp));
        assert_eq!(parse("8080:80"), mapping(None, 8080, 80, Tcp));
        assert_eq!(parse("8080:80/udp"), mapping(None, 8080, 80, Udp));
        assert_eq!(parse("53/udp"), mapping(None, 0, 53, Udp));
        assert_eq!(parse(":80"), mapping(None, 0, 80, Tcp));
        assert_eq!(parse("8080:80/tcp"), mapping(None, 8080, 80, Tcp));
        let local = Some("127.0.0.1");
        assert_eq!(parse("127.0.0.1:8080:80"), mapping(local, 8080, 80, Tcp));
        assert_eq!(parse("127.0.0.1::80"), mapping(local, 0, 80, Tcp));
        assert_eq!(parse("[::1]:8080:80"), mapping(Some("::1"), 8080, 80, Tcp));
        assert_eq!(
            parse("0.0.0.0:1:65535/udp"),
            mapping(Some("0.0.0.0"), 1, 65535, Udp)
        );
    }

    #[test]
    fn display_parses_back() {
        for text in ["8080:80/tcp", "127.0.0.1:0:80/udp", "[::1]:8080:80/tcp"] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn bad_text_is_refused_and_named() {
        for text in [
            "0",
            "70000",
            "80/sctp",
            "a:b",
            "1.2.3.4:x:80",
            "",
            "8080:",
            "8080:0",
            "1:2:3:4",
            "[::1]8080:80",
            "[x]:1:80",
            "1.2.3:80:80",
            "8000-8010:80",
            "-1",
            "8080:80/",
            "65536:80",
        ] {
            let err = text.parse::<PortMapping>().expect_err(text).to_string();
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }

    #[test]
    fn validate_refuses_what_cannot_be_published() {
        use Protocol::{Tcp, Udp};
        let ok = [
            mapping(None, 8080, 80, Tcp),
            mapping(None, 8080, 80, Udp),
            mapping(Some("127.0.0.1"), 8081, 80, Tcp),
            mapping(Some("127.0.0.2"), 8081, 80, Tcp),
            mapping(None, 0, 80, Tcp),
            mapping(None, 0, 81, Tcp),
            mapping(Some("::"), 9000, 80, Tcp),
        ];
        validate(&ok).unwrap();
        let refused = [
            vec![mapping(None, 8080, 0, Tcp)],
            vec![mapping(None, 8080, 80, Tcp), mapping(None, 8080, 81, Tcp)],
            vec![
                mapping(Some("127.0.0.1"), 80, 80, Udp),
                mapping(None, 80, 81, Udp),
            ],
            vec![mapping(Some("::1"), 8080, 80, Tcp)],
        ];
        for ports in refused {
            let err = validate(&ports)
                .expect_err(&format!("{ports:?}"))
                .to_string();
            assert!(err.contains(&ports.last().unwrap().to_string()), "{err}");
        }
    }
}
