//! Published ports: a host address and port forwarded to a port of a container.

use std::net::IpAddr;

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
// STUB part
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("in use {host_port}")]
    InUse {
        host_ip: Option<IpAddr>,
        host_port: u16,
        protocol: Protocol,
    },
    #[error("bad")]
    Invalid(String),
}
pub struct Reservation;
pub fn validate(_ports: &[PortMapping]) -> Result<(), PortError> {
    Ok(())
}
pub fn reserve(ports: &[PortMapping]) -> Result<(Vec<PortMapping>, Reservation), PortError> {
    Ok((ports.to_vec(), Reservation))
}
impl std::str::FromStr for PortMapping {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, PortError> {
        Err(PortError::Invalid(s.into()))
    }
}
