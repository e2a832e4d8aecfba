//! Links, addresses and routes over rtnetlink: a blocking handle on a netlink socket of
//! the network namespace of the thread that opens it (a socket keeps the namespace it
//! was made in, whichever thread uses it later).
//!
//! Messages are built by `netlink-packet-route`; this module only sends one request at
//! a time and reads its replies up to the acknowledgement (or the end of a dump).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use ipnet::Ipv4Net;
use netlink_packet_core::{
    DecodeError, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO,
    NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// The longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// The loopback device is the first device of every network namespace.
pub const LOOPBACK_INDEX: u32 = 1;

/// What failed talking rtnetlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be made.
    #[error("opening an rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused a request (or the socket failed during it).
    #[error("{op}: {source}")]
    Kernel {
        /// What was asked, naming the link/address/route.
        op: String,
        /// The errno.
        source: io::Error,
    },
    /// A reply did not parse.
    #[error("{op}: reply does not parse: {source}")]
    Decode {
        /// What was asked.
        op: String,
        /// Why.
        source: DecodeError,
    },
    /// An interface name the kernel would refuse.
    #[error("invalid interface name {name:?}: 1 to {MAX_IFNAME} bytes, no '/', ':' or whitespace")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// A link of that name exists and is something else.
    #[error("link {name} exists and is not a bridge")]
    NotABridge {
        /// The link.
        name: String,
    },
    /// The kernel answered a query with no link.
    #[error("link {link}: not in the reply")]
    NoLink {
        /// The link asked about (name or index).
        link: String,
    },
    /// The link has no hardware address.
    #[error("link {index} has no hardware address")]
    NoMac {
        /// The link's index.
        index: u32,
    },
}

impl NetlinkError {
    /// The kernel's errno, when the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A failure of one exchange, before it is told what was asked.
enum Raw {
    Io(io::Error),
    Decode(DecodeError),
}

impl Raw {
    fn errno(&self) -> Option<i32> {
        match self {
            Raw::Io(e) => e.raw_os_error(),
            Raw::Decode(_) => None,
        }
    }

    fn named(self, op: impl FnOnce() -> String) -> NetlinkError {
        match self {
            Raw::Io(source) => NetlinkError::Kernel { op: op(), source },
            Raw::Decode(source) => NetlinkError::Decode { op: op(), source },
        }
    }
}

/// A blocking rtnetlink handle in the network namespace of the thread that opened it.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

/// What a link query tells.
struct Link {
    index: u32,
    up: bool,
    kind: Option<InfoKind>,
    address: Option<Vec<u8>>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        // Errors then carry only the failed request's header, not all of it.
        socket.set_cap_ack(true).map_err(NetlinkError::Socket)?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// The index of link `name`; none: there is no such link.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.link_by_name(name)?.map(|link| link.index))
    }

    /// Make bridge `name` (MTU `mtu`) unless it exists, and set it up; its index.
    pub fn ensure_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32, NetlinkError> {
        self.ensure_bridge_with(name, mtu, None)
    }

    /// [`Netlink::ensure_bridge`], with the hardware address a new bridge gets (a
    /// bridge with an address of its own keeps it as ports come and go).
    pub fn ensure_bridge_with(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
    ) -> Result<u32, NetlinkError> {
        check_name(name)?;
        if let Some(link) = self.link_by_name(name)? {
            return self.existing_bridge(name, link);
        }
        let mut msg = up_link(name, mtu);
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
        match self.exchange(RouteNetlinkMessage::NewLink(msg), flags) {
            Ok(replies) => match created_index(&replies) {
                Some(index) => Ok(index),
                None => self.index_of(name),
            },
            // Made meanwhile by someone else: take it as it is.
            Err(e) if e.errno() == Some(libc::EEXIST) => match self.link_by_name(name)? {
                Some(link) => self.existing_bridge(name, link),
                None => Err(e.named(|| format!("creating bridge {name}"))),
            },
            Err(e) => Err(e.named(|| format!("creating bridge {name}"))),
        }
    }

    fn existing_bridge(&mut self, name: &str, link: Link) -> Result<u32, NetlinkError> {
        if link.kind != Some(InfoKind::Bridge) {
            return Err(NetlinkError::NotABridge { name: name.into() });
        }
        if !link.up {
            self.set_up(link.index)?;
        }
        Ok(link.index)
    }

    /// Give link `index` the address `addr` (with its prefix); present already is fine.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Net) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = addr.prefix_len();
        msg.header.index = index;
        let ip = IpAddr::V4(addr.addr());
        msg.attributes.push(AddressAttribute::Local(ip));
        msg.attributes.push(AddressAttribute::Address(ip));
        if addr.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(addr.broadcast()));
        }
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        match self.exchange(RouteNetlinkMessage::NewAddress(msg), flags) {
            Ok(_) => Ok(()),
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e.named(|| format!("adding address {addr} to link {index}"))),
        }
    }

    /// Delete link `name` (a veth takes its peer along); false: it was not there.
    pub fn delete_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        check_name(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        match self.exchange(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e.named(|| format!("deleting link {name}"))),
        }
    }

    /// Delete the links named (veths take their peers along) in one kernel batch: each
    /// is tagged with a link group of this call's own, then the group is deleted — the
    /// kernel then waits out its RCU grace periods once for all of them instead of once
    /// each (~20 ms a link here). How many were there.
    pub fn delete_links(&mut self, names: &[&str]) -> Result<usize, NetlinkError> {
        let group = batch_group();
        let mut tagged = 0;
        for name in names {
            check_name(name)?;
            let mut msg = LinkMessage::default();
            msg.attributes.push(LinkAttribute::IfName((*name).into()));
            msg.attributes.push(LinkAttribute::Group(group));
            match self.exchange(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK) {
                Ok(_) => tagged += 1,
                Err(e) if e.errno() == Some(libc::ENODEV) => {}
                Err(e) => return Err(e.named(|| format!("tagging link {name} for deletion"))),
            }
        }
        if tagged == 0 {
            return Ok(0);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Group(group));
        match self.exchange(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK) {
            Ok(_) => Ok(tagged),
            // Gone meanwhile (a namespace deleted takes its veths' peers along).
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(tagged),
            Err(e) => Err(e.named(|| format!("deleting links {names:?} (group {group})"))),
        }
    }

    /// Make the veth pair `host_name` (here, up, port of bridge `master`) and
    /// `peer_name`, made directly inside `peer_netns` — never moved there, which costs
    /// far more — and left down there (the kernel cannot set it up while making it).
    /// The host end's index.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: BorrowedFd<'_>,
        master: u32,
        mtu: Option<u32>,
    ) -> Result<u32, NetlinkError> {
        let index = self.create_veth_with(host_name, peer_name, peer_netns, master, mtu, None)?;
        self.set_up(index)?;
        Ok(index)
    }

    /// [`Netlink::create_veth`], with the peer's hardware address, and the host end left
    /// down too (to be set up once configured: an interface that comes up starts its
    /// IPv6 autoconfiguration at once).
    pub fn create_veth_with(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: BorrowedFd<'_>,
        master: u32,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<u32, NetlinkError> {
        check_name(host_name)?;
        check_name(peer_name)?;
        // The peer stays down: setting it up while it is made fails (ENOTCONN, its
        // own peer is not linked yet); the caller sets it up inside its namespace.
        let mut peer = new_link(peer_name, mtu);
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        if let Some(mac) = peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut msg = new_link(host_name, mtu);
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
        let replies = self
            .exchange(RouteNetlinkMessage::NewLink(msg), flags)
            .map_err(|e| {
                e.named(|| {
                    format!("creating veth {host_name} (port of link {master}) with peer {peer_name} in the container's namespace")
                })
            })?;
        match created_index(&replies) {
            Some(index) => Ok(index),
            None => self.index_of(host_name),
        }
    }

    /// Give link `index` (still down) no IPv6 addresses of its own: no link-local
    /// address, so no duplicate address detection, router or multicast chatter when it
    /// comes up. (The kernel takes this only for a link that exists, not in the message
    /// that makes it.)
    pub fn no_ipv6_addresses(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        self.exchange(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
            .map_err(|e| e.named(|| format!("turning off IPv6 addresses of link {index}")))
    }

    /// Set link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.exchange(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
            .map_err(|e| e.named(|| format!("setting link {index} up")))
    }

    /// Make (or replace) the default route of the main table: via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut msg = main_route();
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.exchange(RouteNetlinkMessage::NewRoute(msg), flags)
            .map(drop)
            .map_err(|e| e.named(|| format!("adding the default route via {gateway}")))
    }

    /// The destinations of the main table's IPv4 routes, the default route left out
    /// (what a new subnet must not overlap).
    pub fn routes_v4(&mut self) -> Result<Vec<Ipv4Net>, NetlinkError> {
        let msg = main_route();
        let replies = self
            .exchange(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)
            .map_err(|e| e.named(|| "listing IPv4 routes".to_string()))?;
        Ok(replies.iter().filter_map(main_destination).collect())
    }

    /// The hardware address of link `index`, as `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&mut self, index: u32) -> Result<String, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let link = self
            .query_link(msg, || format!("querying link {index}"))?
            .ok_or_else(|| NetlinkError::NoLink {
                link: index.to_string(),
            })?;
        match link.address {
            Some(bytes) if !bytes.is_empty() => Ok(format_mac(&bytes)),
            _ => Err(NetlinkError::NoMac { index }),
        }
    }

    fn index_of(&mut self, name: &str) -> Result<u32, NetlinkError> {
        self.link_index(name)?
            .ok_or_else(|| NetlinkError::NoLink { link: name.into() })
    }

    fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        check_name(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        self.query_link(msg, || format!("querying link {name}"))
    }

    fn query_link(
        &mut self,
        msg: LinkMessage,
        op: impl FnOnce() -> String,
    ) -> Result<Option<Link>, NetlinkError> {
        match self.exchange(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link_of(link)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e.named(op)),
        }
    }

    /// Send one request; the messages replied up to its acknowledgement or the end of
    /// the dump (a request without `NLM_F_ACK` ends with its first reply).
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Raw> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::from(msg);
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(Raw::Io)?;
        let single = flags & (NLM_F_ACK | NLM_F_DUMP) == 0;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(Raw::Io)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(Raw::Decode)?;
                let len = reply.header.length as usize;
                offset += len.max(16).next_multiple_of(4);
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies),
                        Some(code) => {
                            return Err(Raw::Io(io::Error::from_raw_os_error(-code.get())))
                        }
                    },
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if single {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A link group no one else uses: a high, berth-only range, distinct per process and
/// per call (a group is deleted whole, so it must hold only this call's links).
fn batch_group() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let call = NEXT.fetch_add(1, Ordering::Relaxed) & 0xfff;
    let pid = std::process::id() & 0xffff;
    0xb000_0000 | (pid << 12) | call
}

/// A link message for a new link `name`, up, with MTU `mtu`.
fn up_link(name: &str, mtu: Option<u32>) -> LinkMessage {
    let mut msg = new_link(name, mtu);
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg
}

/// A link message for a new link `name` with MTU `mtu`.
fn new_link(name: &str, mtu: Option<u32>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.into()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    msg
}

/// An IPv4 route message of the main table, no destination (the default route).
fn main_route() -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.kind = RouteType::Unicast;
    msg
}

/// The destination of a main-table IPv4 route other than the default one.
fn main_destination(reply: &RouteNetlinkMessage) -> Option<Ipv4Net> {
    let RouteNetlinkMessage::NewRoute(route) = reply else {
        return None;
    };
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table));
    let prefix = route.header.destination_prefix_length;
    if table != u32::from(RouteHeader::RT_TABLE_MAIN)
        || route.header.address_family != AddressFamily::Inet
        || prefix == 0
    {
        return None;
    }
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(dst)) => Ipv4Net::new(*dst, prefix).ok(),
        _ => None,
    })
}

/// The index of the link an echoed creation reports.
fn created_index(replies: &[RouteNetlinkMessage]) -> Option<u32> {
    replies.iter().find_map(|reply| match reply {
        RouteNetlinkMessage::NewLink(link) if link.header.index != 0 => Some(link.header.index),
        _ => None,
    })
}

fn link_of(msg: LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        kind: None,
        address: None,
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::Address(bytes) => link.address = Some(bytes),
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.into_iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    link
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Refuse a name the kernel would refuse (or that would escape a sysctl path).
pub fn check_name(name: &str) -> Result<(), NetlinkError> {
    let bad = name.is_empty()
        || name.len() > MAX_IFNAME
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(NetlinkError::InvalidName { name: name.into() });
    }
    Ok(())
}
