//! The result of an ADD (CNI 1.0's shape; 0.3.1 and 0.4.0 results, which add a
//! `version` to each address, read the same): the interfaces made, their addresses,
//! routes and DNS settings, and the raw JSON, which the next plugin gets as `prevResult`.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a chain of plugins reports after an ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// The version the result is written in.
    pub cni_version: String,
    /// Interfaces made or used (host side, container side).
    pub interfaces: Vec<Interface>,
    /// Addresses given.
    pub ips: Vec<IpConfig>,
    /// Routes added in the container.
    pub routes: Vec<Route>,
    /// DNS settings the network suggests.
    pub dns: Dns,
    /// The result as the last plugin printed it.
    pub raw: Value,
}

/// One interface of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The network namespace it is in (the container's); none: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// One address of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix length.
    pub address: IpNet,
    /// The gateway of its subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The index in `interfaces` of the interface it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// One route of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination.
    pub dst: IpNet,
    /// The next hop; none: the interface's default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// DNS settings of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in order.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// The local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// resolv.conf options.
    #[serde(default)]
    pub options: Vec<String>,
}

/// The typed fields, as they are in the JSON (absent lists are empty).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    cni_version: String,
    #[serde(default)]
    interfaces: Option<Vec<Interface>>,
    #[serde(default)]
    ips: Option<Vec<IpConfig>>,
    #[serde(default)]
    routes: Option<Vec<Route>>,
    #[serde(default)]
    dns: Option<Dns>,
}

impl CniResult {
    /// Read a result from a plugin's output, keeping the JSON as it was.
    pub fn from_value(raw: Value) -> Result<CniResult, serde_json::Error> {
        let wire: Wire = serde_json::from_value(raw.clone())?;
        Ok(CniResult {
            cni_version: wire.cni_version,
            interfaces: wire.interfaces.unwrap_or_default(),
            ips: wire.ips.unwrap_or_default(),
            routes: wire.routes.unwrap_or_default(),
            dns: wire.dns.unwrap_or_default(),
            raw,
        })
    }

    /// The first IPv4 address and its gateway.
    pub fn first_ipv4(&self) -> Option<(Ipv4Net, Option<Ipv4Addr>)> {
        self.ips.iter().find_map(|ip| match ip.address {
            IpNet::V4(net) => {
                let gateway = match ip.gateway {
                    Some(IpAddr::V4(gw)) => Some(gw),
                    _ => None,
                };
                Some((net, gateway))
            }
            IpNet::V6(_) => None,
        })
    }

    /// The interface named `ifname` inside the container (the one with a sandbox).
    pub fn container_interface(&self, ifname: &str) -> Option<&Interface> {
        self.interfaces
            .iter()
            .find(|i| i.name == ifname && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_bridge_result_and_its_first_ipv4() {
        let raw = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                           {"name": "eth0", "mac": "aa:bb:cc:dd:ee:00", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "fd00::5/64", "interface": 1},
                    {"address": "10.22.0.5/24", "gateway": "10.22.0.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {}
        });
        let r = CniResult::from_value(raw.clone()).unwrap();
        assert_eq!(r.raw, raw);
        let (net, gw) = r.first_ipv4().unwrap();
        assert_eq!(net.to_string(), "10.22.0.5/24");
        assert_eq!(gw, Some(Ipv4Addr::new(10, 22, 0, 1)));
        assert_eq!(r.container_interface("eth0").unwrap().name, "eth0");
        assert_eq!(r.routes[0].gw, None);
    }

    #[test]
    fn reads_a_0_4_0_result_and_an_empty_one() {
        let old = json!({"cniVersion": "0.4.0",
            "ips": [{"version": "4", "address": "10.0.0.2/8", "interface": 0}]});
        assert_eq!(CniResult::from_value(old).unwrap().ips.len(), 1);
        let empty = CniResult::from_value(json!({"cniVersion": "1.0.0"})).unwrap();
        assert!(empty.first_ipv4().is_none());
        assert!(CniResult::from_value(json!({"ips": 3})).is_err());
    }
}
