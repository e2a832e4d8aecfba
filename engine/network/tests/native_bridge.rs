//! The native bridge driver end to end: a private "host" namespace holds the bridge, a
//! namespace per "container" gets eth0; traffic only between them.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use berth_network::bridge::{host_ifname, BridgeDriver, BridgeError};
use berth_network::BridgeOptions;
use berth_testkit::netns::TestNetns;

const MACHINE_IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn options(bridge: &str, internal: bool) -> BridgeOptions {
    BridgeOptions {
        bridge: bridge.into(),
        subnet: "10.88.0.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 88, 0, 1),
        masquerade: !internal,
        internal,
        mtu: None,
    }
}

/// The machine's own ip_forward, to show the tests never change it.
fn machine_ip_forward() -> String {
    fs::read_to_string(MACHINE_IP_FORWARD).unwrap()
}

fn ping(from: &TestNetns, to: &str) -> bool {
    from.command("/bin/busybox")
        .args(["ping", "-c1", "-W2", to])
        .output()
        .unwrap()
        .status
        .success()
}

fn links(ns: &TestNetns) -> Vec<String> {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

#[test]
fn two_containers_on_one_bridge_reach_each_other_and_the_gateway() {
    let before = machine_ip_forward();
    let host = TestNetns::new("br-e2e");
    let (a, b) = (TestNetns::new("br-e2e-a"), TestNetns::new("br-e2e-b"));
    let (fd_a, fd_b) = (File::open(a.path()).unwrap(), File::open(b.path()).unwrap());
    let opts = options("brt0", false);
    let driver = BridgeDriver::new();
    let (info_a, forward, localnet) = host.run(|| {
        driver.ensure_network(&opts).unwrap();
        driver.ensure_network(&opts).unwrap();
        let ip_a = Ipv4Addr::new(10, 88, 0, 2);
        let info_a = driver
            .attach(&opts, fd_a.as_fd(), &host_ifname("a"), ip_a)
            .unwrap();
        let ip_b = Ipv4Addr::new(10, 88, 0, 3);
        driver
            .attach(&opts, fd_b.as_fd(), &host_ifname("b"), ip_b)
            .unwrap();
        (
            info_a,
            fs::read_to_string(MACHINE_IP_FORWARD).unwrap(),
            fs::read_to_string("/proc/sys/net/ipv4/conf/brt0/route_localnet").unwrap(),
        )
    });
    assert_eq!(
        forward.trim(),
        "1",
        "forwarding on inside the host namespace"
    );
    assert_eq!(localnet.trim(), "1");
    assert_eq!(info_a.interface, "eth0");
    assert_eq!(info_a.host_interface, host_ifname("a"));
    assert_eq!(info_a.mac, "02:42:0a:58:00:02");
    let eth0 = a.ip(&["addr", "show", "eth0"]);
    assert!(eth0.contains("inet 10.88.0.2/24"), "{eth0}");
    assert!(eth0.contains(&info_a.mac), "{eth0}");
    assert!(eth0.contains(",UP,LOWER_UP"), "{eth0}");
    // No IPv6 on either end: its autoconfiguration would flood every port.
    assert!(!eth0.contains("inet6"), "{eth0}");
    let veth = host.ip(&["addr", "show", &info_a.host_interface]);
    assert!(
        veth.contains(",UP,LOWER_UP") && !veth.contains("inet6"),
        "{veth}"
    );
    let route = a.ip(&["route", "show", "default"]);
    assert!(route.contains("default via 10.88.0.1 dev eth0"), "{route}");
    let bridge = host.ip(&["-4", "addr", "show", "brt0"]);
    assert!(bridge.contains("inet 10.88.0.1/24"), "{bridge}");
    // The bridge keeps an address of its own (derived from the gateway's) as ports come.
    let bridge = host.ip(&["link", "show", "brt0"]);
    assert!(bridge.contains("link/ether 02:42:0a:58:00:01"), "{bridge}");
    assert!(ping(&a, "10.88.0.3"), "a reaches b");
    assert!(ping(&b, "10.88.0.2"), "b reaches a");
    assert!(ping(&a, "10.88.0.1"), "a reaches the gateway");
    assert!(ping(&a, "127.0.0.1"), "lo is up");
    assert_eq!(machine_ip_forward(), before);
}

#[test]
fn an_internal_network_leaves_forwarding_off() {
    let before = machine_ip_forward();
    let host = TestNetns::new("br-internal");
    let ctr = TestNetns::new("br-internal-c");
    let fd = File::open(ctr.path()).unwrap();
    let opts = options("brt1", true);
    // A fresh namespace starts from the machine's value (net.core.devconf_inherit_init_net):
    // an internal network must leave it as it was.
    let (fresh, forward) = host.run(|| {
        let fresh = fs::read_to_string(MACHINE_IP_FORWARD).unwrap();
        let driver = BridgeDriver::new();
        driver.ensure_network(&opts).unwrap();
        driver
            .attach(&opts, fd.as_fd(), "vethint", Ipv4Addr::new(10, 88, 0, 9))
            .unwrap();
        (fresh, fs::read_to_string(MACHINE_IP_FORWARD).unwrap())
    });
    assert_eq!(forward, fresh);
    // The gateway is there for it all the same.
    assert!(ping(&ctr, "10.88.0.1"));
    assert_eq!(machine_ip_forward(), before);
}

#[test]
fn detach_removes_the_veth_and_remove_network_the_bridge() {
    let host = TestNetns::new("br-detach");
    let ctr = TestNetns::new("br-detach-c");
    let fd = File::open(ctr.path()).unwrap();
    let opts = options("brt2", false);
    let driver = BridgeDriver::new();
    let name = host_ifname("detach-me");
    host.run(|| {
        driver.ensure_network(&opts).unwrap();
        driver
            .attach(&opts, fd.as_fd(), &name, Ipv4Addr::new(10, 88, 0, 5))
            .unwrap();
    });
    assert!(links(&host).contains(&name));
    host.run(|| {
        driver.detach(&name).unwrap();
        driver.detach(&name).unwrap();
    });
    assert_eq!(links(&host), ["lo", "brt2"]);
    assert_eq!(links(&ctr), ["lo"]);
    host.run(|| {
        driver.remove_network(&opts).unwrap();
        driver.remove_network(&opts).unwrap();
    });
    assert_eq!(links(&host), ["lo"]);
}

#[test]
fn detach_many_removes_them_in_one_batch_and_nothing_else() {
    let host = TestNetns::new("br-many");
    let ctrs: Vec<_> = (0..3).map(|_| TestNetns::new("br-many-c")).collect();
    let fds: Vec<_> = ctrs.iter().map(|c| File::open(c.path()).unwrap()).collect();
    let opts = options("brt5", false);
    let driver = BridgeDriver::new();
    host.ip(&[
        "link",
        "add",
        "vethother",
        "type",
        "veth",
        "peer",
        "name",
        "vethother1",
    ]);
    host.run(|| {
        driver.ensure_network(&opts).unwrap();
        for (n, fd) in fds.iter().enumerate() {
            let ip = Ipv4Addr::new(10, 88, 0, n as u8 + 2);
            driver
                .attach(&opts, fd.as_fd(), &format!("vethm{n}"), ip)
                .unwrap();
        }
        driver
            .detach_many(&["vethm0", "vethm1", "vethm2", "vethgone"])
            .unwrap();
        driver.detach_many(&["vethm0", "vethm1"]).unwrap();
        driver.detach_many(&[]).unwrap();
    });
    assert_eq!(links(&host), ["lo", "vethother1", "vethother", "brt5"]);
    for ctr in &ctrs {
        assert_eq!(links(ctr), ["lo"]);
    }
}

#[test]
fn a_failed_attach_leaves_nothing_behind() {
    let host = TestNetns::new("br-fail");
    let ctr = TestNetns::new("br-fail-c");
    let fd = File::open(ctr.path()).unwrap();
    let opts = options("brt3", false);
    let driver = BridgeDriver::new();
    let ip = Ipv4Addr::new(10, 88, 0, 7);

    // No bridge yet.
    let err = host
        .run(|| driver.attach(&opts, fd.as_fd(), "vethnobr", ip))
        .unwrap_err();
    assert!(matches!(err, BridgeError::NoBridge { .. }), "{err}");
    host.run(|| driver.ensure_network(&opts).unwrap());

    // The host name is taken: refused, and what holds the name is not ours to delete.
    host.ip(&[
        "link",
        "add",
        "vethtaken",
        "type",
        "veth",
        "peer",
        "name",
        "vethtaken1",
    ]);
    let err = host
        .run(|| driver.attach(&opts, fd.as_fd(), "vethtaken", ip))
        .unwrap_err();
    assert!(
        err.to_string().contains("veth vethtaken on bridge brt3"),
        "{err}"
    );
    assert_eq!(links(&host), ["lo", "brt3", "vethtaken1", "vethtaken"]);
    assert_eq!(links(&ctr), ["lo"]);

    // Failing midway, inside the container (no route to a gateway off the subnet):
    // the veth made before is gone again, on both sides.
    let mut off_subnet = opts.clone();
    off_subnet.gateway = Ipv4Addr::new(10, 99, 0, 1);
    let err = host
        .run(|| driver.attach(&off_subnet, fd.as_fd(), "vethmidway", ip))
        .unwrap_err();
    assert!(matches!(err, BridgeError::Inside { .. }), "{err}");
    assert!(
        err.to_string().contains("default route via 10.99.0.1"),
        "{err}"
    );
    assert_eq!(links(&host), ["lo", "brt3", "vethtaken1", "vethtaken"]);
    assert_eq!(links(&ctr), ["lo"]);

    // The container already has an eth0: refused, nothing made.
    ctr.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    let err = host
        .run(|| driver.attach(&opts, fd.as_fd(), "vetheth0", ip))
        .unwrap_err();
    assert!(matches!(err, BridgeError::Veth { .. }), "{err}");
    assert_eq!(links(&host), ["lo", "brt3", "vethtaken1", "vethtaken"]);
    assert_eq!(links(&ctr), ["lo", "eth0p", "eth0"]);
}
