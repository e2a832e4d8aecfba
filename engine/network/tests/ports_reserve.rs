//! Host port reservations against real sockets, inside a private network namespace.

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};

use berth_network::ports::{reserve, PortError};
use berth_network::{PortMapping, Protocol};
use berth_testkit::netns::TestNetns;

fn mapping(host_port: u16, protocol: Protocol) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port,
        container_port: 80,
        protocol,
    }
}

#[test]
fn reserve_refuses_a_port_in_use_and_holds_nothing_then() {
    let host = TestNetns::new("ports");
    host.run(|| {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let free = mapping(0, Protocol::Tcp);
        let taken = PortMapping {
            host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..mapping(port, Protocol::Tcp)
        };
        let err = reserve(&[free, taken]).expect_err("a held port");
        match err {
            PortError::InUse {
                host_port,
                protocol,
                ..
            } => assert_eq!((host_port, protocol), (port, Protocol::Tcp)),
            other => panic!("{other}"),
        }
        // Nothing stays reserved: the port is free once the holder goes.
        drop(held);
        let (ports, reservation) = reserve(&[mapping(port, Protocol::Tcp)]).unwrap();
        assert_eq!(ports[0].host_port, port);
        assert_eq!(reservation.len(), 1);
    });
}

#[test]
fn a_reservation_holds_its_ports_until_dropped() {
    let host = TestNetns::new("ports");
    host.run(|| {
        let (ports, reservation) =
            reserve(&[mapping(0, Protocol::Tcp), mapping(0, Protocol::Udp)]).unwrap();
        let (tcp, udp) = (ports[0].host_port, ports[1].host_port);
        assert!(tcp != 0 && udp != 0, "{ports:?}");
        // std's TcpListener sets SO_REUSEADDR: still refused.
        assert!(TcpListener::bind(("0.0.0.0", tcp)).is_err());
        assert!(TcpListener::bind(("127.0.0.1", tcp)).is_err());
        assert!(UdpSocket::bind(("0.0.0.0", udp)).is_err());
        let again = reserve(&[mapping(tcp, Protocol::Tcp)]).expect_err("held");
        assert!(matches!(again, PortError::InUse { .. }), "{again}");
        drop(reservation);
        TcpListener::bind(("0.0.0.0", tcp)).unwrap();
        UdpSocket::bind(("0.0.0.0", udp)).unwrap();
    });
}

#[test]
fn reserve_validates_first() {
    let dup = [mapping(8080, Protocol::Udp), mapping(8080, Protocol::Udp)];
    let err = reserve(&dup).expect_err("twice").to_string();
    assert!(err.contains("8080"), "{err}");
}
