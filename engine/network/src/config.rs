//! A network's definition, as created through the API and kept on disk.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The name of the default bridge network (containers from images join it unless the
/// request says otherwise).
pub const DEFAULT_NETWORK: &str = "berth0";

/// Names no network may take: the network modes of a request.
pub const RESERVED_NAMES: [&str; 3] = ["none", "host", "bridge"];

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Its name (unique; `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 characters).
    pub name: String,
    /// 64 hex characters, made at create.
    pub id: String,
    /// How containers are attached.
    pub driver: Driver,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// How a network attaches containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Driver {
    /// Berth's own bridge driver, in-process over netlink.
    Bridge(BridgeOptions),
    /// A CNI network: a `.conflist` (or `.conf`) file and the plugins it names.
    Cni(CniOptions),
}

/// The native bridge driver's settings of one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeOptions {
    /// The bridge interface on the host (at most 15 bytes), e.g. `berth0`, `br-1a2b3c4d5e6f`.
    pub bridge: String,
    /// The subnet containers get addresses from.
    pub subnet: Ipv4Net,
    /// The bridge's own address in it, the containers' default route.
    pub gateway: Ipv4Addr,
    /// Masquerade traffic from the subnet leaving through another interface.
    pub masquerade: bool,
    /// No route out: containers reach each other and nothing else; no published ports.
    pub internal: bool,
    /// The MTU of the bridge and the containers' interfaces (default: 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A CNI network's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniOptions {
    /// The configuration file it was read from.
    pub file: PathBuf,
    /// The network's name in that file.
    pub cni_name: String,
}
