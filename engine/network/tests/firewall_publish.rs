//! The firewall against real iptables: every test makes a private "host" namespace
//! (its own iptables tables), a bridge in it, container namespaces on veths and an
//! "outside" namespace routed via the host, and sends real traffic between them.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_network::firewall::Firewall;
use berth_network::ports::{reserve, Reservation};
use berth_network::{BridgeOptions, PortMapping, Protocol};
use berth_testkit::netns::TestNetns;

const TIMEOUT: Duration = Duration::from_secs(2);
const OUTSIDE_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);

/// The machine's own rules, without counters and timestamps.
fn machine_rules() -> String {
    let out = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(" [").next().unwrap_or(l).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks at drop that the machine's own rules are what they were at the start.
struct MachineUnchanged(String);

impl MachineUnchanged {
    fn new() -> Self {
        MachineUnchanged(machine_rules())
    }
}

impl Drop for MachineUnchanged {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(machine_rules(), self.0, "the machine's iptables changed");
        }
    }
}

/// A process killed and reaped at drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private host with a bridge, forwarding on, and an outside namespace on a veth.
struct Lab {
    host: TestNetns,
    outside: TestNetns,
    fw: Firewall,
    // Declared last: dropped after the namespaces are gone.
    _machine: MachineUnchanged,
}

impl Lab {
    fn new(outside_routes_back: bool) -> Lab {
        let machine = MachineUnchanged::new();
        let host = TestNetns::new("fwhost");
        let outside = TestNetns::new("fwout");
        sysctl(&host, "net.ipv4.ip_forward=1");
        host.ip(&[
            "link",
            "add",
            "veth-out",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            outside.name(),
        ]);
        host.ip(&[
            "addr",
            "add",
            &format!("{OUTSIDE_HOST}/24"),
            "dev",
            "veth-out",
        ]);
        host.ip(&["link", "set", "veth-out", "up"]);
        outside.ip(&["addr", "add", &format!("{OUTSIDE}/24"), "dev", "eth0"]);
        outside.ip(&["link", "set", "eth0", "up"]);
        if outside_routes_back {
            outside.ip(&["route", "add", "default", "via", &OUTSIDE_HOST.to_string()]);
        }
        let fw = host.run(Firewall::new).unwrap();
        Lab {
            host,
            outside,
            fw,
            _machine: machine,
        }
    }

    /// A bridge `name` with the first address of `subnet` (a /24 "a.b.c.0").
    fn bridge(&self, name: &str, subnet: &str, masquerade: bool, internal: bool) -> BridgeOptions {
        let subnet: ipnet::Ipv4Net = format!("{subnet}/24").parse().unwrap();
        let gateway = subnet.hosts().next().unwrap();
        self.host.ip(&["link", "add", name, "type", "bridge"]);
        self.host
            .ip(&["addr", "add", &format!("{gateway}/24"), "dev", name]);
        self.host.ip(&["link", "set", name, "up"]);
        sysctl(
            &self.host,
            &format!("net.ipv4.conf.{name}.route_localnet=1"),
        );
        BridgeOptions {
            bridge: name.to_string(),
            subnet,
            gateway,
            masquerade,
            internal,
            mtu: None,
        }
    }

    /// A container namespace on `opts`' bridge with address `.n` of its subnet.
    fn container(&self, opts: &BridgeOptions, n: u8) -> (TestNetns, Ipv4Addr) {
        let ns = TestNetns::new("fwctr");
        let veth = format!("v{}-{n}", opts.bridge);
        let o = opts.subnet.network().octets();
        let ip = Ipv4Addr::new(o[0], o[1], o[2], n);
        self.host.ip(&[
            "link",
            "add",
            &veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ]);
        self.host
            .ip(&["link", "set", &veth, "master", &opts.bridge, "up"]);
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["route", "add", "default", "via", &opts.gateway.to_string()]);
        (ns, ip)
    }

    /// Reserve (in the host) and publish ports of a container.
    fn publish(
        &self,
        id: &str,
        opts: &BridgeOptions,
        ip: Ipv4Addr,
        ports: &[PortMapping],
    ) -> (Vec<PortMapping>, Reservation) {
        self.host.run(|| {
            let (ports, reservation) = reserve(ports).unwrap();
            self.fw.publish(id, opts, ip, &ports).unwrap();
            (ports, reservation)
        })
    }

    /// The host's rules (its own namespace's iptables-save).
    fn rules(&self) -> String {
        let out = self.host.command("iptables-save").output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn sysctl(ns: &TestNetns, setting: &str) {
    let out = ns
        .command("sysctl")
        .args(["-qw", setting])
        .output()
        .unwrap();
    assert!(out.status.success(), "sysctl {setting}: {out:?}");
}

fn tcp(container_port: u16) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port: 0,
        container_port,
        protocol: Protocol::Tcp,
    }
}

/// busybox httpd on port 80 of `ns`, serving `text` as /index.html; waits until it
/// answers on `ip`.
fn httpd(ns: &TestNetns, ip: Ipv4Addr, text: &str) -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), text).unwrap();
    let child = ns
        .command("/bin/busybox")
        .args(["httpd", "-f", "-p", "80", "-h"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ns.run(|| get(ip, 80)).is_none() {
        assert!(
            Instant::now() < deadline,
            "httpd in {} never answered",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, dir)
}

/// GET /index.html from `ip:port` (from the calling thread's namespace): the body.
fn get(ip: Ipv4Addr, port: u16) -> Option<String> {
    let addr = SocketAddr::new(IpAddr::V4(ip), port);
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split("\r\n\r\n").nth(1)?.to_string())
}

fn host_port(ports: &[PortMapping]) -> u16 {
    ports[0].host_port
}

#[test]
fn published_tcp_port_answers_from_the_host_and_outside_until_unpublished() {
    let lab = Lab::new(true);
    let net = lab.bridge("br-fw", "10.89.0.0", true, false);
    let (ctr, ip) = lab.container(&net, 2);
    let (_httpd, _dir) = httpd(&ctr, ip, "hello from c1");
    lab.host.run(|| {
        lab.fw.ensure_base().unwrap();
        lab.fw.add_network(&net).unwrap();
    });
    let reach = |port| {
        let from_host = lab.host.run(|| {
            [
                get(Ipv4Addr::LOCALHOST, port),
                get(net.gateway, port),
                get(OUTSIDE_HOST, port),
            ]
        });
        let from_outside = lab.outside.run(|| get(OUTSIDE_HOST, port));
        [from_host.to_vec(), vec![from_outside]].concat()
    };
    let (ports, _reservation) = lab.publish("c1", &net, ip, &[tcp(80)]);
    let port = host_port(&ports);
    let hello = Some("hello from c1".to_string());
    assert_eq!(
        reach(port),
        vec![hello; 4],
        "127.0.0.1, gateway, host, outside"
    );
    assert_eq!(lab.host.run(|| lab.fw.published()).unwrap(), ["c1"]);
    // Behind NAT, the outside reaches the published port only, not the container's
    // address (although it has a route to the subnet).
    assert_eq!(lab.outside.run(|| get(ip, 80)), None);

    let started = Instant::now();
    lab.host.run(|| lab.fw.unpublish("c1")).unwrap();
    eprintln!("unpublish: {:?}", started.elapsed());
    assert_eq!(reach(port), vec![None; 4]);
    assert!(lab.host.run(|| lab.fw.published()).unwrap().is_empty());
    // Twice is fine.
    lab.host.run(|| lab.fw.unpublish("c1")).unwrap();
    let started = Instant::now();
    lab.host
        .run(|| lab.fw.publish("c1", &net, ip, &ports))
        .unwrap();
    eprintln!("publish: {:?}", started.elapsed());
}

#[test]
fn published_udp_port_receives_datagrams() {
    let lab = Lab::new(false);
    let net = lab.bridge("br-fw", "10.89.1.0", true, false);
    let (ctr, ip) = lab.container(&net, 2);
    let server = ctr.run(|| UdpSocket::bind("0.0.0.0:5353")).unwrap();
    server.set_read_timeout(Some(TIMEOUT)).unwrap();
    lab.host.run(|| lab.fw.add_network(&net)).unwrap();
    let udp = PortMapping {
        protocol: Protocol::Udp,
        ..tcp(5353)
    };
    let (ports, _reservation) = lab.publish("u1", &net, ip, &[udp]);
    let port = host_port(&ports);
    for (to, from) in [
        (Ipv4Addr::LOCALHOST, net.gateway),
        (net.gateway, net.gateway),
    ] {
        let client = lab.host.run(|| UdpSocket::bind("0.0.0.0:0")).unwrap();
        client.send_to(b"ping", (to, port)).unwrap();
        let mut buf = [0u8; 16];
        let (n, source) = server.recv_from(&mut buf).expect("a datagram");
        assert_eq!(&buf[..n], b"ping");
        // 127.0.0.1 is masqueraded to the bridge's address on its way out.
        assert_eq!(source.ip(), IpAddr::V4(from), "sent to {to}");
    }
    lab.host.run(|| lab.fw.unpublish("u1")).unwrap();
    let client = lab.host.run(|| UdpSocket::bind("0.0.0.0:0")).unwrap();
    client.send_to(b"gone", (net.gateway, port)).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        server.recv_from(&mut buf).is_err(),
        "a datagram after unpublish"
    );
}

#[test]
fn two_containers_publish_different_ports() {
    let lab = Lab::new(false);
    let net = lab.bridge("br-fw", "10.89.2.0", true, false);
    let (c1, ip1) = lab.container(&net, 2);
    let (c2, ip2) = lab.container(&net, 3);
    let _h1 = httpd(&c1, ip1, "one");
    let _h2 = httpd(&c2, ip2, "two");
    lab.host.run(|| lab.fw.add_network(&net)).unwrap();
    let (p1, _r1) = lab.publish("c1", &net, ip1, &[tcp(80)]);
    let (p2, _r2) = lab.publish("c2", &net, ip2, &[tcp(80)]);
    let (port1, port2) = (host_port(&p1), host_port(&p2));
    let got = lab.host.run(|| {
        [
            get(Ipv4Addr::LOCALHOST, port1),
            get(Ipv4Addr::LOCALHOST, port2),
        ]
    });
    assert_eq!(got, [Some("one".into()), Some("two".into())]);
    assert_eq!(lab.host.run(|| lab.fw.published()).unwrap(), ["c1", "c2"]);
    // A container reaches the other's published port on the host (hairpin), also
    // where bridged frames skip iptables (no br_netfilter): then only masquerading
    // makes the answer come back through the host.
    assert_eq!(c1.run(|| get(net.gateway, port2)), Some("two".into()));
    sysctl(&lab.host, "net.bridge.bridge-nf-call-iptables=0");
    assert_eq!(c1.run(|| get(net.gateway, port2)), Some("two".into()));

    lab.host.run(|| lab.fw.unpublish("c1")).unwrap();
    let got = lab.host.run(|| {
        [
            get(Ipv4Addr::LOCALHOST, port1),
            get(Ipv4Addr::LOCALHOST, port2),
        ]
    });
    assert_eq!(got, [None, Some("two".into())]);
    assert_eq!(lab.host.run(|| lab.fw.published()).unwrap(), ["c2"]);
}

/// A listener in `ns` on `addr`; whether a connection from `from` reaches it, and from
/// which address.
fn reaches(ns: &TestNetns, addr: SocketAddr, from: &TestNetns) -> Option<IpAddr> {
    let listener = ns.run(|| TcpListener::bind(addr)).unwrap();
    listener.set_nonblocking(true).unwrap();
    from.run(|| TcpStream::connect_timeout(&addr, Duration::from_millis(500)))
        .ok()?;
    let (_stream, peer) = listener.accept().ok()?;
    Some(peer.ip())
}

#[test]
fn an_internal_network_reaches_its_gateway_and_nothing_outside() {
    let lab = Lab::new(true);
    let net = lab.bridge("br-int", "10.89.3.0", false, true);
    let (ctr, _ip) = lab.container(&net, 2);
    let outside = SocketAddr::new(IpAddr::V4(OUTSIDE), 7001);
    let gateway = SocketAddr::new(IpAddr::V4(net.gateway), 7000);
    // Without the network's rules the outside is routed to: the check is meaningful.
    assert!(reaches(&lab.outside, outside, &ctr).is_some());
    lab.host.run(|| lab.fw.add_network(&net)).unwrap();
    assert_eq!(reaches(&lab.outside, outside, &ctr), None);
    assert!(reaches(&lab.host, gateway, &ctr).is_some());
    // Nor does the outside reach in.
    let inside = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 89, 3, 2)), 7002);
    assert_eq!(reaches(&ctr, inside, &lab.outside), None);
    // And nothing is published on it.
    let refused = lab.host.run(|| {
        let ports = [PortMapping {
            host_port: 8080,
            ..tcp(80)
        }];
        lab.fw
            .publish("i1", &net, Ipv4Addr::new(10, 89, 3, 2), &ports)
    });
    assert!(refused.unwrap_err().to_string().contains("internal"));
}

#[test]
fn masquerade_gives_outside_traffic_the_hosts_address() {
    let lab = Lab::new(false);
    let net = lab.bridge("br-fw", "10.89.4.0", true, false);
    let (ctr, _ip) = lab.container(&net, 2);
    let outside = SocketAddr::new(IpAddr::V4(OUTSIDE), 7001);
    // The outside has no route back to the subnet: only masquerade gets an answer.
    assert_eq!(reaches(&lab.outside, outside, &ctr), None);
    lab.host.run(|| lab.fw.add_network(&net)).unwrap();
    assert_eq!(
        reaches(&lab.outside, outside, &ctr),
        Some(IpAddr::V4(OUTSIDE_HOST))
    );
    lab.host.run(|| lab.fw.remove_network(&net)).unwrap();
    assert_eq!(reaches(&lab.outside, outside, &ctr), None);
}

/// Lines of `rules` containing `needle`.
fn count(rules: &str, needle: &str) -> usize {
    rules.lines().filter(|l| l.contains(needle)).count()
}

/// No rule twice in any chain.
fn no_duplicates(rules: &str) {
    let mut seen = std::collections::BTreeSet::new();
    let mut table = "";
    for line in rules.lines() {
        if line.starts_with('*') {
            table = line;
        }
        if line.starts_with("-A ") {
            assert!(seen.insert((table, line)), "twice: {line}\n{rules}");
        }
    }
}

#[test]
fn every_change_is_idempotent_and_leaves_nothing_behind() {
    let lab = Lab::new(false);
    let net = lab.bridge("br-fw", "10.89.5.0", true, false);
    let (_ctr, ip) = lab.container(&net, 2);
    let ports = [PortMapping {
        host_port: 8080,
        ..tcp(80)
    }];
    let twice = |f: &(dyn Fn() -> Result<(), berth_network::firewall::FirewallError> + Sync)| {
        lab.host.run(|| {
            f().unwrap();
            f().unwrap();
        });
    };
    twice(&|| lab.fw.ensure_base());
    let base = lab.rules();
    no_duplicates(&base);
    assert_eq!(count(&base, "berth:base"), 6, "{base}");
    twice(&|| lab.fw.add_network(&net));
    twice(&|| lab.fw.ensure_base());
    // A publish replaces what the container had.
    let more = [
        ports[0].clone(),
        PortMapping {
            host_port: 8081,
            ..tcp(81)
        },
    ];
    lab.host
        .run(|| lab.fw.publish("c1", &net, ip, &more))
        .unwrap();
    twice(&|| lab.fw.publish("c1", &net, ip, &ports));
    let all = lab.rules();
    no_duplicates(&all);
    assert_eq!(count(&all, "berth:base"), 6, "{all}");
    assert_eq!(count(&all, "berth:net:br-fw"), 7, "{all}");
    // Two rules (DNAT, accept) and three jumps.
    assert_eq!(count(&all, "berth:ctr:c1"), 5, "{all}");
    // The base jumps of BERTH-FORWARD stay in front of the network's rules.
    let forward: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("-A BERTH-FORWARD "))
        .collect();
    assert!(forward[0].ends_with("-j BERTH-PUBLISHED"), "{all}");
    assert!(forward[1].ends_with("-j BERTH-ISOLATION"), "{all}");

    twice(&|| lab.fw.unpublish("c1"));
    twice(&|| lab.fw.remove_network(&net));
    let after = lab.rules();
    assert_eq!(count(&after, "berth:ctr"), 0, "{after}");
    assert_eq!(count(&after, "berth:net"), 0, "{after}");
    assert_eq!(count(&after, "BERTH-C-"), 0, "{after}");
    assert_eq!(after.lines().filter(|l| l.starts_with("-A")).count(), 6);
    // A container publishing nothing costs nothing, and nothing is listed.
    lab.host
        .run(|| lab.fw.publish("c2", &net, ip, &[]))
        .unwrap();
    assert!(lab.host.run(|| lab.fw.published()).unwrap().is_empty());
}

#[test]
fn a_failed_transaction_changes_nothing_and_names_its_line() {
    let lab = Lab::new(false);
    let net = lab.bridge("br-fw", "10.89.6.0", true, false);
    let (_ctr, ip) = lab.container(&net, 2);
    let ports = [PortMapping {
        host_port: 8080,
        ..tcp(80)
    }];
    lab.host
        .run(|| lab.fw.publish("c1", &net, ip, &ports))
        .unwrap();
    // Someone else's jump to the container's chain: deleting the chain must fail.
    let chain = berth_network::firewall::container_chain("c1");
    let mut restore = lab.host.command("iptables-restore");
    restore.arg("--noflush").stdin(Stdio::piped());
    let mut child = restore.spawn().unwrap();
    let foreign = format!("*nat\n-A PREROUTING -p udp -j {chain}\nCOMMIT\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(foreign.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let before = lab.rules();

    let err = lab
        .host
        .run(|| lab.fw.unpublish("c1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("-X {chain}")), "{err}");
    assert!(err.contains("iptables"), "{err}");
    // The jumps deleted before the failing line are still there: all or nothing.
    let strip = |r: &str| {
        r.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&lab.rules()), strip(&before));
    assert_eq!(lab.host.run(|| lab.fw.published()).unwrap(), ["c1"]);
}

#[test]
fn bad_input_is_refused_before_any_rule() {
    let lab = Lab::new(false);
    let net = lab.bridge("br-fw", "10.89.7.0", true, false);
    let ip = Ipv4Addr::new(10, 89, 7, 2);
    let refused = |id: &str, ports: &[PortMapping]| {
        lab.host
            .run(|| lab.fw.publish(id, &net, ip, ports))
            .unwrap_err()
            .to_string()
    };
    let port = |host_port, host_ip: Option<&str>| PortMapping {
        host_port,
        host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        ..tcp(80)
    };
    assert!(refused("c1", &[port(0, None)]).contains("port 0"));
    assert!(refused("c1", &[port(8080, Some("::1"))]).contains("IPv6"));
    assert!(refused("a b", &[port(8080, None)]).contains("\"a b\""));
    let long = BridgeOptions {
        bridge: "br-0123456789abc".into(),
        ..net.clone()
    };
    let err = lab.host.run(|| lab.fw.add_network(&long)).unwrap_err();
    assert!(err.to_string().contains("br-0123456789abc"), "{err}");
    let rules = lab.rules();
    assert!(!rules.contains("BERTH"), "{rules}");
}
