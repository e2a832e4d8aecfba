//! The CNI driver with Debian's real plugins (bridge, host-local, portmap, firewall,
//! loopback), each test inside a private "host" network namespace of its own with a
//! second namespace as the container's: ADD gives the container an address and a
//! published port that answers, CHECK passes, DEL takes everything away (also twice,
//! also after a restart from the cache alone), and the machine's own network is untouched.

mod cni_common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use berth_network::cni::{CniArgs, CniError, NetworkList};
use berth_network::{PortMapping, Protocol};
use berth_testkit::netns::TestNetns;
use cni_common::{Env, Proc, RootLinks};
use ipnet::Ipv4Net;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(20);

/// The fixture's network name and gateway.
const NET: &str = "berth-cni-test";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 7, 1);

fn published(host_port: u16) -> CniArgs {
    CniArgs {
        args: vec![],
        port_mappings: vec![PortMapping {
            host_ip: None,
            host_port,
            container_port: 80,
            protocol: Protocol::Tcp,
        }],
    }
}

/// Serve `text` over HTTP on port 80 inside `ns` (busybox httpd).
fn serve(env: &Env, ns: &TestNetns, text: &str) -> Proc {
    let www = env.tmp.path().join(format!("www-{}", ns.name()));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), text).unwrap();
    let child = ns
        .command("/bin/busybox")
        .args(["httpd", "-f", "-p", "80", "-h"])
        .arg(&www)
        .spawn()
        .unwrap();
    Proc(child)
}

/// GET / from `addr` (run inside the host namespace), waiting up to 10 s for the
/// server to listen.
fn http_get(addr: SocketAddr) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if !body.is_empty() || Instant::now() > until {
                    return body;
                }
            }
            Err(e) if Instant::now() > until => panic!("connecting to {addr}: {e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How portmap's and bridge's rule comments name container `id` in iptables-save.
fn id_comment(id: &str) -> String {
    format!("id: \\\"{id}\\\"")
}

/// The container `id` (at `addr`) has nothing left on network `net`.
fn assert_detached(env: &Env, net: &str, id: &str, addr: &Ipv4Net) {
    assert_eq!(env.host_veths(), Vec::<String>::new(), "veths left");
    assert!(!env.allocations(net).contains(&addr.addr().to_string()));
    let rules = env.iptables();
    assert!(
        !rules.contains(&id_comment(id)),
        "rules of {id} left:\n{rules}"
    );
    assert!(
        !rules.contains(&format!("{}/32", addr.addr())),
        "rules left:\n{rules}"
    );
}

/// The links of namespace `ns`.
fn link_names(ns: &TestNetns) -> Vec<String> {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// Wait (up to 10 s) for the kernel to take away the veths of a namespace that is gone.
fn wait_no_veths(env: &Env) {
    let until = Instant::now() + Duration::from_secs(10);
    while !env.host_veths().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_chain_attaches_serves_a_published_port_and_detaches() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnifull");
    let net = env.full_list();
    let cni = env.cni(TIMEOUT);
    let (ctr, args) = (env.ctr.path(), published(18080));
    let result = env
        .host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &args))
        .unwrap();
    let (addr, gw) = result.first_ipv4().expect("an IPv4 address");
    assert_eq!(gw, Some(GATEWAY));
    assert!("10.88.7.0/24".parse::<Ipv4Net>().unwrap().contains(&addr));
    assert!(
        result.container_interface("eth0").is_some(),
        "{:?}",
        result.raw
    );
    let shown = env.ctr.ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(shown.contains(&addr.to_string()), "{shown}");
    assert_eq!(env.allocations(NET), [addr.addr().to_string()]);
    let rules = env.iptables();
    assert!(
        rules.contains(&id_comment("ctr1")),
        "portmap rules:\n{rules}"
    );

    let _httpd = serve(&env, &env.ctr, "hello from the container");
    for host_ip in [IpAddr::V4(GATEWAY), IpAddr::V4(Ipv4Addr::LOCALHOST)] {
        let body = env.host.run(|| http_get(SocketAddr::new(host_ip, 18080)));
        assert!(
            body.contains("hello from the container"),
            "{host_ip}: {body}"
        );
    }

    // (No CHECK here: Debian's portmap 1.1.1 fails CHECK for an IPv4-only container,
    // containernetworking/plugins#819; CHECK is tested on a chain without it.)
    env.host
        .run(|| cni.del(&net, "ctr1", Some(ctr), "eth0"))
        .unwrap();
    assert_eq!(env.ctr_links(), ["lo"]);
    assert_detached(&env, NET, "ctr1", &addr);
    assert!(cni.cached().is_empty());
    // A second DEL (nothing cached) is fine.
    env.host
        .run(|| cni.del(&net, "ctr1", Some(ctr), "eth0"))
        .unwrap();
    root.assert_unchanged();
}

#[test]
fn del_after_a_restart_works_from_the_cache_alone() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnirestart");
    let ctr2 = TestNetns::new("cnirestart-c2");
    let net = env.full_list();
    let cni = env.cni(TIMEOUT);
    let (p1, p2) = (env.ctr.path(), ctr2.path());
    let (a1, a2) = env.host.run(|| {
        let a1 = cni.add(&net, "ctr1", p1, "eth0", &published(18081));
        let a2 = cni.add(&net, "ctr2", p2, "eth0", &published(18082));
        (a1.unwrap(), a2.unwrap())
    });
    let (addr1, addr2) = (a1.first_ipv4().unwrap().0, a2.first_ipv4().unwrap().0);
    drop(cni);
    std::fs::remove_file(&net.file).unwrap();

    // "The daemon restarted": a new driver on the same cache; the file is gone.
    let cni = env.cni(TIMEOUT);
    let mut cached = cni.cached();
    cached.sort_by(|a, b| a.container_id.cmp(&b.container_id));
    let ids: Vec<_> = cached.iter().map(|c| c.container_id.as_str()).collect();
    assert_eq!(ids, ["ctr1", "ctr2"]);
    assert_eq!(cached[1].netns.as_deref(), Some(p2));
    assert_eq!(cached[0].network, NET);

    // The configuration changed under the same name: the cached one is what DEL runs.
    let changed = NetworkList {
        plugins: vec![json!({"type": "loopback"})],
        ..net.clone()
    };
    env.host
        .run(|| cni.del(&changed, "ctr1", Some(p1), "eth0"))
        .unwrap();
    assert_eq!(env.ctr_links(), ["lo"]);

    // ctr2 from its cache entry alone.
    env.host.run(|| cni.del_cached(&cached[1])).unwrap();
    assert_eq!(link_names(&ctr2), ["lo"]);
    assert_detached(&env, NET, "ctr1", &addr1);
    assert_detached(&env, NET, "ctr2", &addr2);
    assert!(cni.cached().is_empty());
    // From the cache again: nothing cached, nothing to do.
    env.host.run(|| cni.del_cached(&cached[1])).unwrap();
    root.assert_unchanged();
}

#[test]
fn check_passes_on_an_intact_attachment_and_fails_on_a_broken_one() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnicheck");
    let fw = json!({"type": "firewall", "backend": "iptables"});
    let net = env.bridge_list("checked", &[fw, json!({"type": "loopback"})]);
    let cni = env.cni(TIMEOUT);
    let ctr = env.ctr.path();
    let no_args = CniArgs::default();
    env.host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &no_args))
        .unwrap();
    env.host
        .run(|| cni.check(&net, "ctr1", ctr, "eth0"))
        .unwrap();
    // Not attached: nothing cached to check against.
    let err = env.host.run(|| cni.check(&net, "other", ctr, "eth0"));
    assert!(matches!(err, Err(CniError::NotAttached { .. })), "{err:?}");
    // The container's address taken away: the bridge plugin's CHECK says so.
    env.ctr.ip(&["addr", "flush", "dev", "eth0"]);
    let err = env
        .host
        .run(|| cni.check(&net, "ctr1", ctr, "eth0"))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("plugin bridge CHECK"), "{text}");
    env.host
        .run(|| cni.del(&net, "ctr1", Some(ctr), "eth0"))
        .unwrap();
    assert_eq!(env.host_veths(), Vec::<String>::new());
    assert!(env.allocations("checked").is_empty());
    root.assert_unchanged();
}

#[test]
fn del_with_the_container_namespace_gone_releases_the_address_and_the_rules() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnigone");
    let ctr = TestNetns::new("cnigone-c2");
    let pm = json!({"type": "portmap", "capabilities": {"portMappings": true}});
    let fw = json!({"type": "firewall", "backend": "iptables"});
    // No ipMasq: the bridge plugin (1.1.1) removes its masquerade rules only when it can
    // enter the namespace to read the addresses.
    let net = env.bridge_list("gone", &[pm, fw]);
    let cni = env.cni(TIMEOUT);
    let path = ctr.path().to_owned();
    let result = env
        .host
        .run(|| cni.add(&net, "ctr1", &path, "eth0", &published(18083)))
        .unwrap();
    let addr = result.first_ipv4().unwrap().0;
    drop(ctr);
    // The path no longer exists: passed as an empty CNI_NETNS.
    env.host
        .run(|| cni.del(&net, "ctr1", Some(&path), "eth0"))
        .unwrap();
    wait_no_veths(&env);
    assert_detached(&env, "gone", "ctr1", &addr);
    assert!(cni.cached().is_empty());
    root.assert_unchanged();
}
