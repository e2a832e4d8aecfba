//! The native bridge driver: a Linux bridge per network with the gateway address on it,
//! and per container a veth pair whose container end (`eth0`) is made directly inside
//! the container's network namespace, all over netlink in-process.
//!
//! Containers of internal networks get their default route via the gateway too (as
//! docker gives them a gateway address): the bridge answers for it, only forwarding
//! and NAT beyond it are missing (the firewall module's business).

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::config::BridgeOptions;
use crate::netlink::{self, Netlink, NetlinkError, LOOPBACK_INDEX};
use crate::netns::{self, NetnsError};

/// The interface a container gets on its network: its end of the veth pair, and the
/// ifname CNI plugins are given.
pub const CONTAINER_IFNAME: &str = "eth0";

/// What failed setting up or tearing down a network or an attachment.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Making, addressing or removing the bridge failed.
    #[error("bridge {bridge}: {source}")]
    Bridge {
        /// The bridge.
        bridge: String,
        /// Why.
        source: NetlinkError,
    },
    /// The network's bridge is missing (the network was not set up).
    #[error("bridge {bridge} does not exist: the network is not set up")]
    NoBridge {
        /// The bridge.
        bridge: String,
    },
    /// A sysctl could not be written.
    #[error("writing {path}: {source}")]
    Sysctl {
        /// Under /proc/sys/net.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Making the container's veth pair failed.
    #[error("veth {host_ifname} on bridge {bridge}: {source}")]
    Veth {
        /// The host end.
        host_ifname: String,
        /// The bridge.
        bridge: String,
        /// Why.
        source: NetlinkError,
    },
    /// Removing the container's veth pair failed.
    #[error("removing veth {host_ifname}: {source}")]
    Detach {
        /// The host end.
        host_ifname: String,
        /// Why.
        source: NetlinkError,
    },
    /// Setting up eth0 inside the container's namespace failed.
    #[error(
        "setting up {CONTAINER_IFNAME} ({address}) in the container's network namespace: {source}"
    )]
    Inside {
        /// The container's address.
        address: Ipv4Net,
        /// Why.
        source: NetlinkError,
    },
    /// The container's network namespace could not be entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// What an attachment made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachInfo {
    /// The container's interface (`eth0`).
    pub interface: String,
    /// The host end of the veth pair.
    pub host_interface: String,
    /// The container interface's hardware address.
    pub mac: String,
}

/// The native bridge driver (stateless: each call opens its own netlink socket).
#[derive(Debug, Default, Clone, Copy)]
pub struct BridgeDriver;

impl BridgeDriver {
    /// The driver.
    pub fn new() -> BridgeDriver {
        BridgeDriver
    }

    /// Make the network's bridge with its gateway address, up, in the calling thread's
    /// namespace; turn on IPv4 forwarding there (unless internal) and `route_localnet`
    /// on the bridge (for ports published on 127.0.0.1). Idempotent.
    pub fn ensure_network(&self, opts: &BridgeOptions) -> Result<(), BridgeError> {
        let bridge_err = |source| BridgeError::Bridge {
            bridge: opts.bridge.clone(),
            source,
        };
        let mut nl = Netlink::open().map_err(bridge_err)?;
        let mac = mac_for(opts.gateway);
        let index = nl
            .ensure_bridge_with(&opts.bridge, opts.mtu, Some(mac))
            .map_err(bridge_err)?;
        let address = Ipv4Net::new(opts.gateway, opts.subnet.prefix_len()).unwrap_or(opts.subnet);
        nl.add_address(index, address).map_err(bridge_err)?;
        if !opts.internal {
            set_sysctl("net/ipv4/ip_forward", "1")?;
        }
        set_sysctl(
            &format!("net/ipv4/conf/{}/route_localnet", opts.bridge),
            "1",
        )
    }

    /// Remove the network's bridge (its ports' veths stay, unenslaved). Idempotent.
    pub fn remove_network(&self, opts: &BridgeOptions) -> Result<(), BridgeError> {
        let bridge_err = |source| BridgeError::Bridge {
            bridge: opts.bridge.clone(),
            source,
        };
        let mut nl = Netlink::open().map_err(bridge_err)?;
        nl.delete_link(&opts.bridge).map_err(bridge_err)?;
        Ok(())
    }

    /// Attach the container whose network namespace is `netns`: veth `host_ifname` on
    /// the bridge, `eth0` inside with `address`, up, `lo` up, the default route via the
    /// gateway. On failure nothing of it is left.
    pub fn attach(
        &self,
        opts: &BridgeOptions,
        netns: BorrowedFd<'_>,
        host_ifname: &str,
        address: Ipv4Addr,
    ) -> Result<AttachInfo, BridgeError> {
        let veth_err = |source| BridgeError::Veth {
            host_ifname: host_ifname.into(),
            bridge: opts.bridge.clone(),
            source,
        };
        let mut nl = Netlink::open().map_err(veth_err)?;
        let master = nl
            .link_index(&opts.bridge)
            .map_err(veth_err)?
            .ok_or_else(|| BridgeError::NoBridge {
                bridge: opts.bridge.clone(),
            })?;
        let mac = mac_for(address);
        // Made whole or not at all by the kernel: nothing to undo if this fails (and
        // an existing host_ifname is someone else's, never to be deleted here).
        let host_index = nl
            .create_veth_with(
                host_ifname,
                CONTAINER_IFNAME,
                netns,
                master,
                opts.mtu,
                Some(mac),
            )
            .map_err(veth_err)?;
        let address = Ipv4Net::new(address, opts.subnet.prefix_len()).unwrap_or(opts.subnet);
        // Both ends without IPv6 addresses (an IPv4 network): otherwise every new port's
        // duplicate address detection and multicast reports are flooded to every other
        // port of the bridge, a cost that grows with the square of the containers. (Not
        // the disable_ipv6 sysctl: its handler spins on the rtnl lock under load.)
        let host_up = nl
            .no_ipv6_addresses(host_index)
            .and_then(|()| nl.set_up(host_index))
            .map_err(veth_err);
        let inside = host_up.and_then(|()| {
            netns::run_in(netns, || configure_inside(address, opts.gateway))
                .map_err(BridgeError::from)
                .and_then(|done| done)
        });
        if let Err(e) = inside {
            // Deleting the host end takes eth0 along.
            if let Err(undo) = nl.delete_link(host_ifname) {
                tracing::warn!(host_ifname, error = %undo, "undoing a failed attach");
            }
            return Err(e);
        }
        Ok(AttachInfo {
            interface: CONTAINER_IFNAME.into(),
            host_interface: host_ifname.into(),
            mac: netlink::format_mac(&mac),
        })
    }

    /// Remove veth `host_ifname` (and with it the container's eth0). Idempotent.
    pub fn detach(&self, host_ifname: &str) -> Result<(), BridgeError> {
        let detach_err = |source| BridgeError::Detach {
            host_ifname: host_ifname.into(),
            source,
        };
        let mut nl = Netlink::open().map_err(detach_err)?;
        nl.delete_link(host_ifname).map_err(detach_err)?;
        Ok(())
    }

    /// Remove many veths at once (a burst's teardown): one kernel batch, far cheaper
    /// than one [`BridgeDriver::detach`] each. Idempotent.
    pub fn detach_many(&self, host_ifnames: &[&str]) -> Result<(), BridgeError> {
        let detach_err = |source| BridgeError::Detach {
            host_ifname: host_ifnames.join(","),
            source,
        };
        let mut nl = Netlink::open().map_err(detach_err)?;
        nl.delete_links(host_ifnames).map_err(detach_err)?;
        Ok(())
    }
}

/// Inside the container's namespace: eth0 without IPv6, its address, eth0 and lo up,
/// the default route.
fn configure_inside(address: Ipv4Net, gateway: Ipv4Addr) -> Result<(), BridgeError> {
    let inside = |source| BridgeError::Inside { address, source };
    let mut nl = Netlink::open().map_err(inside)?;
    let index = nl
        .link_index(CONTAINER_IFNAME)
        .map_err(inside)?
        .ok_or_else(|| {
            inside(NetlinkError::NoLink {
                link: CONTAINER_IFNAME.into(),
            })
        })?;
    nl.no_ipv6_addresses(index).map_err(inside)?;
    nl.add_address(index, address).map_err(inside)?;
    nl.set_up(index).map_err(inside)?;
    nl.set_up(LOOPBACK_INDEX).map_err(inside)?;
    nl.add_default_route(gateway).map_err(inside)
}

/// A hardware address derived from an IPv4 address (as docker did): locally
/// administered, unique within a subnet, stable for an address.
pub fn mac_for(addr: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = addr.octets();
    [0x02, 0x42, a, b, c, d]
}

/// The host end of a container's veth: "veth" and 11 hex digits of a stable hash of the
/// container's id (15 bytes, the kernel's longest name).
pub fn host_ifname(container_id: &str) -> String {
    format!(
        "veth{:011x}",
        fnv1a(container_id.as_bytes()) & 0xfff_ffff_ffff
    )
}

/// FNV-1a, 64 bits: stable across builds and releases (std's hasher is not promised to be).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Write a sysctl of the calling thread's network namespace (/proc/sys/net resolves to
/// the namespace of the thread that opens it), unless it holds the value already.
fn set_sysctl(key: &str, value: &str) -> Result<(), BridgeError> {
    let path = PathBuf::from("/proc/sys").join(key);
    if fs::read_to_string(&path).is_ok_and(|now| now.trim() == value) {
        return Ok(());
    }
    fs::write(&path, value).map_err(|source| BridgeError::Sysctl { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ifname_is_stable_and_fits() {
        let name = host_ifname("0123456789abcdef");
        assert_eq!(name.len(), 15);
        assert!(name.starts_with("veth"));
        assert_eq!(name, host_ifname("0123456789abcdef"));
        assert_ne!(name, host_ifname("0123456789abcdeg"));
        assert_eq!(
            host_ifname(""),
            format!("veth{:011x}", 0xcbf2_9ce4_8422_2325u64 & 0xfff_ffff_ffff)
        );
        assert!(netlink::check_name(&name).is_ok());
    }

    #[test]
    fn mac_follows_the_address() {
        assert_eq!(
            netlink::format_mac(&mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }
}
