//! What a container asks of the network: a mode and the ports to publish.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ports::PortMapping;

/// Where a container's network comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// A namespace of its own with only `lo`.
    None,
    /// The host's namespace.
    Host,
    /// The namespace of another container (by id).
    Container(String),
    /// A namespace of its own attached to the named network.
    Network(String),
}

impl NetworkMode {
    /// The network it attaches to, if any.
    pub fn network(&self) -> Option<&str> {
        match self {
            NetworkMode::Network(name) => Some(name),
            _ => None,
        }
    }
}

impl FromStr for NetworkMode {
    type Err = String;

    /// `none`, `host`, `container:<id>`, or a network's name (`bridge` is the default
    /// bridge network, as in docker).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("the network mode is empty".into()),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "bridge" => Ok(NetworkMode::Network(crate::config::DEFAULT_NETWORK.into())),
            _ => match s.strip_prefix("container:") {
                Some("") => Err("container: names no container".into()),
                Some(id) => Ok(NetworkMode::Container(id.to_owned())),
                None => Ok(NetworkMode::Network(s.to_owned())),
            },
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Container(id) => write!(f, "container:{id}"),
            NetworkMode::Network(name) => f.write_str(name),
        }
    }
}

impl Serialize for NetworkMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetworkMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A container's network request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// The mode.
    pub mode: NetworkMode,
    /// Ports to publish (only on a network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_back() {
        for text in ["none", "host", "container:web", "front"] {
            assert_eq!(text.parse::<NetworkMode>().unwrap().to_string(), text);
        }
        assert_eq!(
            "bridge".parse::<NetworkMode>().unwrap(),
            NetworkMode::Network("berth0".into())
        );
        assert!("".parse::<NetworkMode>().is_err());
        assert!("container:".parse::<NetworkMode>().is_err());
    }
}
