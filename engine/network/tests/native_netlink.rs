//! The rtnetlink handle against the kernel: every test inside network namespaces it
//! makes (a "host" and, where needed, a container's).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use berth_network::netlink::{Netlink, NetlinkError};
use berth_network::netns;
use berth_testkit::netns::TestNetns;
use ipnet::Ipv4Net;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// RTNLGRP_LINK: link notifications.
const LINK_GROUP: u32 = 1;

#[test]
fn a_bridge_is_made_idempotently() {
    let host = TestNetns::new("nl-br");
    let (first, second, index) = host.run(|| {
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.link_index("brt0").unwrap(), None);
        let first = nl.ensure_bridge("brt0", Some(1400)).unwrap();
        let second = nl.ensure_bridge("brt0", None).unwrap();
        (first, second, nl.link_index("brt0").unwrap())
    });
    assert_eq!(first, second);
    assert_eq!(index, Some(first));
    let shown = host.ip(&["-d", "link", "show", "brt0"]);
    assert!(shown.contains("mtu 1400"), "{shown}");
    assert!(shown.contains("bridge "), "{shown}");
    assert!(shown.contains("<BROADCAST,MULTICAST,UP"), "{shown}");
    // Set down behind its back: ensuring it again sets it up.
    host.ip(&["link", "set", "brt0", "down"]);
    host.run(|| {
        Netlink::open()
            .unwrap()
            .ensure_bridge("brt0", None)
            .unwrap()
    });
    let shown = host.ip(&["link", "show", "brt0"]);
    assert!(shown.contains(",UP"), "{shown}");
}

#[test]
fn a_link_that_is_no_bridge_or_a_bad_name_is_refused() {
    let host = TestNetns::new("nl-notbr");
    host.ip(&[
        "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    host.run(|| {
        let mut nl = Netlink::open().unwrap();
        let err = nl.ensure_bridge("veth0", None).unwrap_err();
        assert!(matches!(err, NetlinkError::NotABridge { .. }), "{err}");
        assert_eq!(err.to_string(), "link veth0 exists and is not a bridge");
        for bad in ["", "a/b", "sixteen-bytes-xx", "a b", ".."] {
            let err = nl.ensure_bridge(bad, None).unwrap_err();
            assert!(matches!(err, NetlinkError::InvalidName { .. }), "{err}");
        }
    });
    let links = host.ip(&["-o", "link", "show"]);
    assert_eq!(
        links.lines().count(),
        3,
        "only lo and the veth pair: {links}"
    );
}

#[test]
fn an_address_added_twice_is_fine_and_its_route_listed() {
    let host = TestNetns::new("nl-addr");
    let routes = host.run(|| {
        let mut nl = Netlink::open().unwrap();
        let index = nl.ensure_bridge("brt0", None).unwrap();
        let addr: Ipv4Net = "10.20.0.1/24".parse().unwrap();
        nl.add_address(index, addr).unwrap();
        nl.add_address(index, addr).unwrap();
        nl.add_default_route(Ipv4Addr::new(10, 20, 0, 254)).unwrap();
        // Replacing the default route is fine too.
        nl.add_default_route(Ipv4Addr::new(10, 20, 0, 253)).unwrap();
        let err = nl.add_address(9999, addr).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENODEV), "{err}");
        assert!(err.to_string().contains("link 9999"), "{err}");
        nl.routes_v4().unwrap()
    });
    let shown = host.ip(&["-4", "-o", "addr", "show", "brt0"]);
    assert_eq!(shown.matches("10.20.0.1/24").count(), 1, "{shown}");
    assert!(shown.contains("brd 10.20.0.255"), "{shown}");
    // The default route is left out of what a subnet must not overlap.
    assert_eq!(routes, vec!["10.20.0.0/24".parse::<Ipv4Net>().unwrap()]);
    let shown = host.ip(&["-4", "route", "show", "default"]);
    assert!(shown.contains("via 10.20.0.253"), "{shown}");
}

#[test]
fn the_veth_peer_is_made_inside_the_container_namespace() {
    let host = TestNetns::new("nl-veth");
    let container = TestNetns::new("nl-veth-ctr");
    let ctr = File::open(container.path()).unwrap();
    let (seen, peer_here, mac) = host.run(|| {
        let mut nl = Netlink::open().unwrap();
        let bridge = nl.ensure_bridge("brt0", None).unwrap();
        let monitor = link_monitor();
        let index = nl
            .create_veth("vetht0", "eth0", ctr.as_fd(), bridge, Some(1450))
            .unwrap();
        assert_eq!(nl.link_index("vetht0").unwrap(), Some(index));
        let mac = nl.mac(index).unwrap();
        (link_names(&monitor), nl.link_index("eth0").unwrap(), mac)
    });
    // The host saw its own end made, and never an eth0 (a peer moved in from the
    // host would have been announced here first).
    assert!(seen.iter().any(|n| n == "vetht0"), "{seen:?}");
    assert!(!seen.iter().any(|n| n == "eth0"), "{seen:?}");
    assert_eq!(peer_here, None);
    let host_end = host.ip(&["link", "show", "vetht0"]);
    assert!(host_end.contains("master brt0"), "{host_end}");
    assert!(host_end.contains("mtu 1450"), "{host_end}");
    assert!(host_end.contains(&mac), "{host_end}");
    let peer = container.ip(&["link", "show", "eth0"]);
    assert!(peer.contains("eth0@"), "{peer}");
    assert!(
        !peer.contains(",UP"),
        "made down, to be set up inside: {peer}"
    );
    assert!(peer.contains("mtu 1450"), "{peer}");
    // A second one of the same name is refused, and makes nothing.
    let err = host
        .run(|| {
            let mut nl = Netlink::open().unwrap();
            let bridge = nl.link_index("brt0").unwrap().unwrap();
            nl.create_veth("vetht0", "eth1", ctr.as_fd(), bridge, None)
        })
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    assert!(err.to_string().contains("creating veth vetht0"), "{err}");
    assert_eq!(container.ip(&["-o", "link", "show"]).lines().count(), 2);
    // Deleting the host end takes the peer along; a second delete finds nothing.
    let (first, second) = host.run(|| {
        let mut nl = Netlink::open().unwrap();
        (
            nl.delete_link("vetht0").unwrap(),
            nl.delete_link("vetht0").unwrap(),
        )
    });
    assert!(first);
    assert!(!second);
    let left = container.ip(&["-o", "link", "show"]);
    assert_eq!(left.lines().count(), 1, "only lo: {left}");

    // The control: a peer made in the host and moved in is seen by the same check.
    let seen = host.run(|| {
        let monitor = link_monitor();
        host.ip(&[
            "link", "add", "vetht1", "type", "veth", "peer", "name", "eth0",
        ]);
        host.ip(&["link", "set", "eth0", "netns", container.name()]);
        link_names(&monitor)
    });
    assert!(seen.iter().any(|n| n == "eth0"), "{seen:?}");
}

#[test]
fn run_in_enters_the_namespace_and_reports_a_bad_descriptor() {
    let host = TestNetns::new("nl-runin");
    host.ip(&[
        "link", "add", "veth7", "type", "veth", "peer", "name", "veth8",
    ]);
    let ns = netns::open_path(host.path()).unwrap();
    let here = netns::run_in(ns.as_fd(), || {
        Netlink::open().unwrap().link_index("veth7").unwrap()
    })
    .unwrap();
    assert!(here.is_some());
    let not_a_netns = File::open("/proc/self/status").unwrap();
    let err = netns::run_in(not_a_netns.as_fd(), || ()).unwrap_err();
    assert!(err.to_string().contains("setns"), "{err}");
    let err = netns::open(i32::MAX).unwrap_err();
    assert!(err.to_string().contains("/proc/2147483647/ns/net"), "{err}");
}

/// A socket of the calling thread's namespace subscribed to link notifications.
fn link_monitor() -> Socket {
    let mut socket = Socket::new(NETLINK_ROUTE).unwrap();
    socket.bind(&SocketAddr::new(0, 0)).unwrap();
    socket.add_membership(LINK_GROUP).unwrap();
    socket
}

/// The names of the links the notifications queued on `socket` are about.
fn link_names(socket: &Socket) -> Vec<String> {
    socket.set_non_blocking(true).unwrap();
    let mut names = Vec::new();
    while let Ok((data, _)) = socket.recv_from_full() {
        let mut offset = 0;
        while offset < data.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]).unwrap();
            offset += (msg.header.length as usize).next_multiple_of(4);
            let NetlinkPayload::InnerMessage(
                RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link),
            ) = msg.payload
            else {
                continue;
            };
            names.extend(link.attributes.into_iter().filter_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name),
                _ => None,
            }));
        }
    }
    names
}
