//! Berth's container networking: what gives a container an interface, an address, routes
//! and published ports, and takes them away again.
//!
//! Layers of this crate, bottom up: [`netns`] (entering a container's network namespace
//! on a thread of its own), [`netlink`] (links, addresses and routes over rtnetlink: the
//! bridge, a veth pair whose peer is made inside the container's namespace), [`ipam`]
//! (subnets and addresses, allocations persisted one file each), [`ports`] (published
//! ports: parsing, validation, host port reservations), [`firewall`] (NAT, forwarding and
//! port publishing as batched `iptables-restore` transactions), [`bridge`] (the native
//! bridge driver over those), [`cni`] (the CNI driver: `.conflist` networks and their
//! plugins, spec 1.0), [`config`] (a network's definition), [`request`] (what a container asks for), [`store`] (networks and
//! attachments on disk) and [`stats`] (a container's interface counters).
//!
//! Over them, [`service`] is what the scheduler and the front ends call: create, list,
//! inspect and remove networks; attach a container between create and start, detach it
//! at delete, recover every attachment after a restart.
//!
//! It depends on no other engine crate: the scheduler and the front ends use it.

pub mod bridge;
pub mod cni;
pub mod config;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod request;
pub mod service;
pub mod stats;
pub mod store;

pub use config::{BridgeOptions, Driver, NetworkConfig};
pub use ports::{PortMapping, Protocol};
pub use request::{NetworkMode, NetworkRequest};
pub use service::{NetworkError, Networks, NetworksConfig};
