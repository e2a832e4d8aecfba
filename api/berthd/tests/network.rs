//! Networks through berthd's API, with real bridges, veths, addresses, iptables rules and
//! CNI plugins — every daemon here runs inside a network namespace the test makes (its
//! private "host"), so nothing touches the machine's own network: a web server in a
//! container answers on its published port (also on 127.0.0.1), containers on one
//! network reach each other, `container:<id>` and `host` share namespaces, the CNI path
//! does what the native path does, bad requests leave nothing half-made, and a restart
//! after SIGKILL keeps live attachments and releases the rest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testkit::daemon::{wait_state, Daemon, Resp, Scratch};
use berth_testkit::image::ImageBuilder;
use berth_testkit::netns::TestNetns;
use berth_testkit::registry::{Mode, Registry};
use serde_json::{json, Value};

/// The page every web server here serves.
const PAGE: &str = "hello from a berth container\n";

/// A root filesystem of busybox (static) and its applets, with /www/index.html.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "httpd", "wget", "nc", "sleep", "cat", "ip", "ifconfig",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("www/index.html"), PAGE).unwrap();
    root
}

/// The body creating container `id` running `args` in `rootfs`, with `extra` fields.
fn body(id: &str, rootfs: &Path, args: &[&str], extra: Value) -> String {
    let mut b = json!({
        "id": id,
        "spec": berth_testkit::daemon::inline_spec(id, args),
        "rootfs": rootfs,
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b.to_string()
}

/// Create and wait until running; the record (with its network attachment).
fn run(d: &Daemon, id: &str, rootfs: &Path, args: &[&str], extra: Value) -> Value {
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&body(id, rootfs, args, extra)),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(d, id, "running");
    let r = d.call("GET", &format!("/v1/containers/{id}"), None);
    assert_eq!(r.status, 200, "{r:?}");
    r.json
}

/// Create, wait until it stops with status 0; its output.
fn run_to_end(d: &Daemon, id: &str, rootfs: &Path, args: &[&str], extra: Value) -> String {
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&body(id, rootfs, args, extra)),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let done = wait_state(d, id, "stopped");
    assert_eq!(done["exit_code"], 0, "{done}");
    d.call("GET", &format!("/v1/containers/{id}/logs"), None)
        .text
}

/// A GET of `url` by busybox wget in a container of `network`; the body.
/// (busybox 1.35's wget -T crashes: no timeout option.)
fn fetch_from(d: &Daemon, id: &str, rootfs: &Path, url: &str, network: &str) -> String {
    let args = ["wget", "-q", "-O", "-", url];
    run_to_end(d, id, rootfs, &args, json!({ "network": network }))
}

/// An HTTP GET of `http://HOST:PORT/` from inside `ns` (a few tries: a server may still
/// be starting); the body or the last error.
fn fetch(ns: &TestNetns, url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let get = || -> std::io::Result<String> {
        let mut c = std::net::TcpStream::connect(&addr)?;
        c.set_read_timeout(Some(Duration::from_secs(3)))?;
        c.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
        let mut text = String::new();
        c.read_to_string(&mut text)?;
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
                Ok(body.to_owned())
            }
            _ => Err(std::io::Error::other(format!("answer: {text:?}"))),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ns.run(get) {
            Ok(body) => return Ok(body),
            Err(e) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn delete(d: &Daemon, id: &str) {
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert!(r.status == 200 || r.status == 204, "{r:?}");
}

/// The container's address without its prefix.
fn address(record: &Value) -> String {
    let a = record["network_attachment"]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address: {record}"));
    a.split('/').next().unwrap().to_owned()
}

/// Links of the namespace whose name starts with `veth`.
fn veths(ns: &TestNetns) -> Vec<String> {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        .filter(|n| n.starts_with("veth"))
        .collect()
}

/// `iptables-save` inside `ns`.
fn rules(ns: &TestNetns) -> String {
    let out = ns.command("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `port` (TCP) can be bound on every address inside `ns`.
fn port_free(ns: &TestNetns, port: u16) -> bool {
    ns.run(|| std::net::TcpListener::bind(("0.0.0.0", port)).is_ok())
}

/// A free TCP port inside `ns`.
fn free_port(ns: &TestNetns) -> u16 {
    ns.run(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
}

#[test]
fn a_published_port_reaches_a_web_server_and_delete_removes_everything() {
    let ns = TestNetns::new("pub");
    let scratch = Scratch::new("net-pub");
    let rootfs = busybox_rootfs(&scratch.0);
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let port = free_port(&ns);
    let id = format!("web-{}", std::process::id());
    let record = run(
        &d,
        &id,
        &rootfs,
        &["httpd", "-f", "-p", "8080", "-h", "/www"],
        json!({"network": "bridge", "ports": [{"host_port": port, "container_port": 8080}]}),
    );
    let att = &record["network_attachment"];
    assert_eq!(att["network"], "berth0", "{record}");
    assert_eq!(att["interface"], "eth0");
    assert_eq!(att["ports"][0]["host_port"], port, "{record}");
    let ip = address(&record);

    // From the "host": on 127.0.0.1, on the bridge's address, and straight to the container.
    let gateway = att["gateway"].as_str().unwrap().to_owned();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://{gateway}:{port}/"),
        format!("http://{ip}:8080/"),
    ] {
        assert_eq!(fetch(&ns, &url).as_deref(), Ok(PAGE), "{url}");
    }
    // The network lists it; the port is held while it lives.
    let net = d.call("GET", "/v1/networks/berth0", None);
    assert_eq!(net.status, 200, "{net:?}");
    assert!(
        net.json["containers"][&id]["address"].is_string(),
        "{net:?}"
    );
    assert!(!port_free(&ns, port), "the published port is held");
    assert_eq!(veths(&ns).len(), 1, "{:?}", veths(&ns));
    // Its interface's counters, labelled by container and interface.
    let m = d.call("GET", "/metrics", None);
    let line = m
        .text
        .lines()
        .find(|l| {
            l.starts_with("container_network_transmit_bytes_total{")
                && l.contains(&format!("id=\"{id}\""))
                && l.contains("interface=\"eth0\"")
        })
        .unwrap_or_else(|| panic!("no transmit counter for {id}:\n{}", m.text));
    let sent: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(sent >= PAGE.len() as f64 * 3.0, "{line}");
    berth_testkit::daemon::promtool_check(&m.text);

    delete(&d, &id);
    assert!(veths(&ns).is_empty(), "veth left: {:?}", veths(&ns));
    assert!(port_free(&ns, port), "the port is released");
    assert!(
        !rules(&ns).contains(&format!("{port}")),
        "port rules left:\n{}",
        rules(&ns)
    );
    assert!(fetch(&ns, &format!("http://127.0.0.1:{port}/")).is_err());
    let net = d.call("GET", "/v1/networks/berth0", None);
    assert_eq!(net.json["containers"], json!({}), "{net:?}");
}

#[test]
fn containers_on_a_network_reach_each_other_and_modes_share_namespaces() {
    let ns = TestNetns::new("peers");
    let scratch = Scratch::new("net-peers");
    let rootfs = busybox_rootfs(&scratch.0);
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let r = d.call(
        "POST",
        "/v1/networks",
        Some(r#"{"name":"front","subnet":"10.77.0.0/24"}"#),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["driver"]["gateway"], "10.77.0.1", "{r:?}");
    let pid = std::process::id();
    let (a, b, c) = (format!("a-{pid}"), format!("b-{pid}"), format!("c-{pid}"));
    let server = run(
        &d,
        &a,
        &rootfs,
        &["httpd", "-f", "-p", "8080", "-h", "/www"],
        json!({"network": "front"}),
    );
    let ip = address(&server);
    assert!(ip.starts_with("10.77.0."), "{server}");

    // Another container on the network fetches the page from the first.
    let client = format!("{b}-client");
    let url = format!("http://{ip}:8080/");
    assert_eq!(fetch_from(&d, &client, &rootfs, &url, "front"), PAGE);

    // container:<id> joins the first one's namespace: its server is on 127.0.0.1.
    let joined = format!("container:{a}");
    assert_eq!(
        fetch_from(&d, &c, &rootfs, "http://127.0.0.1:8080/", &joined),
        PAGE
    );
    // host: the daemon's namespace, where the bridge is.
    let dev = run_to_end(
        &d,
        &b,
        &rootfs,
        &["cat", "/proc/net/dev"],
        json!({"network": "host"}),
    );
    assert!(dev.contains("br-"), "host mode sees the bridge: {dev}");

    // A network with running containers is not removed; without, it is, bridge and all.
    let r = d.call("DELETE", "/v1/networks/front", None);
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (409, json!("network_in_use")),
        "{r:?}"
    );
    // Once the running one is gone, the stopped client's place is released with it.
    delete(&d, &a);
    let r = d.call("DELETE", "/v1/networks/front", None);
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.call("GET", &format!("/v1/containers/{client}"), None);
    assert!(r.json.get("network_attachment").is_none(), "{r:?}");
    for id in [&b, &c, &client] {
        delete(&d, id);
    }
    assert!(
        !ns.ip(&["-o", "link", "show"]).contains("br-"),
        "bridge left"
    );
    assert!(veths(&ns).is_empty(), "{:?}", veths(&ns));
}

#[test]
fn bad_network_requests_are_refused_and_leave_nothing() {
    let ns = TestNetns::new("bad");
    let scratch = Scratch::new("net-bad");
    let rootfs = busybox_rootfs(&scratch.0);
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let create = |extra: Value| {
        let id = format!("bad-{}-{}", std::process::id(), next_n());
        let r = d.call(
            "POST",
            "/v1/containers",
            Some(&body(&id, &rootfs, &["sleep", "100"], extra)),
        );
        (id, r)
    };
    let expect = |r: &Resp, status: u16, code: &str| {
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{r:?}"
        );
    };
    let (_, r) = create(json!({"network": "nowhere"}));
    expect(&r, 404, "network_not_found");
    let (_, r) =
        create(json!({"ports": [{"host_port": 8080, "container_port": 80, "protocol": "sctp"}]}));
    assert_eq!(r.status, 400, "{r:?}");
    let (_, r) = create(json!({"ports": [{"host_port": 70000, "container_port": 80}]}));
    expect(&r, 422, "invalid_port");
    let (_, r) = create(json!({"ports": [{"host_port": 8080, "container_port": 0}]}));
    expect(&r, 422, "invalid_port");
    let (_, r) =
        create(json!({"network": "none", "ports": [{"host_port": 8080, "container_port": 80}]}));
    expect(&r, 422, "invalid_network");
    let (_, r) = create(json!({"network": "container:nobody"}));
    expect(&r, 409, "container_not_running");
    // A host port somebody holds: 409 before anything is made.
    let held = ns.run(|| std::net::TcpListener::bind("0.0.0.0:0").unwrap());
    let port = held.local_addr().unwrap().port();
    let (id, r) = create(json!({"ports": [{"host_port": port, "container_port": 80}]}));
    expect(&r, 409, "port_in_use");
    assert_eq!(
        d.call("GET", &format!("/v1/containers/{id}"), None).status,
        404
    );
    drop(held);
    // A start that fails holds its port no longer than it takes to fail.
    let id = format!("bad-{}-noprog", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&body(
            &id,
            &rootfs,
            &["/no/such/program"],
            json!({"ports": [{"host_port": port, "container_port": 80}]}),
        )),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &id, "failed");
    assert!(port_free(&ns, port), "a failed start still holds its port");
    delete(&d, &id);

    // Networks: names, subnets, overlap.
    let net = |b: &str| d.call("POST", "/v1/networks", Some(b));
    expect(
        &net(r#"{"name":"x","subnet":"10.9.0.1/24"}"#),
        422,
        "invalid_network",
    );
    expect(
        &net(r#"{"name":"x","subnet":"300.1.0.0/16"}"#),
        422,
        "invalid_network",
    );
    expect(
        &net(r#"{"name":"x","subnet":"10.9.0.0/24","gateway":"10.8.0.1"}"#),
        422,
        "invalid_network",
    );
    expect(&net(r#"{"name":"bad name"}"#), 422, "invalid_network");
    expect(&net(r#"{"name":"host"}"#), 422, "invalid_network");
    expect(
        &net(r#"{"name":"x","driver":"macvlan"}"#),
        422,
        "invalid_network",
    );
    assert_eq!(net(r#"{"name":"one","subnet":"10.9.0.0/24"}"#).status, 201);
    expect(
        &net(r#"{"name":"one","subnet":"10.10.0.0/24"}"#),
        409,
        "conflict",
    );
    expect(
        &net(r#"{"name":"two","subnet":"10.9.0.128/25"}"#),
        409,
        "subnet_overlap",
    );
    expect(
        &d.call("DELETE", "/v1/networks/berth0", None),
        409,
        "predefined_network",
    );
    expect(
        &d.call("DELETE", "/v1/networks/nowhere", None),
        404,
        "network_not_found",
    );

    // A full subnet: a /30 holds the gateway and one container; the second fails to
    // start with the reason, and leaves no veth or address.
    assert_eq!(
        net(r#"{"name":"tiny","subnet":"10.11.0.0/30"}"#).status,
        201
    );
    let (first, r) = create(json!({"network": "tiny"}));
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &first, "running");
    let (second, r) = create(json!({"network": "tiny"}));
    assert_eq!(r.status, 202, "{r:?}");
    let failed = wait_state(&d, &second, "failed");
    assert!(
        failed["error"].as_str().unwrap_or("").contains("full"),
        "{failed}"
    );
    assert_eq!(veths(&ns).len(), 1, "{:?}", veths(&ns));
    delete(&d, &second);
    delete(&d, &first);
    assert!(veths(&ns).is_empty(), "{:?}", veths(&ns));
    let left: Vec<_> = std::fs::read_dir(scratch.state().join("network/attachments"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "attachments left: {left:?}");
}

fn next_n() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn a_restart_after_sigkill_keeps_live_attachments_and_releases_gone_ones() {
    let ns = TestNetns::new("restart");
    let scratch = Scratch::new("net-restart");
    let rootfs = busybox_rootfs(&scratch.0);
    let mut d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let (p1, p2) = (free_port(&ns), free_port(&ns) + 1);
    let pid = std::process::id();
    let (live, gone) = (format!("live-{pid}"), format!("gone-{pid}"));
    let args = ["httpd", "-f", "-p", "8080", "-h", "/www"];
    let rec_live = run(
        &d,
        &live,
        &rootfs,
        &args,
        json!({"ports": [{"host_port": p1, "container_port": 8080}]}),
    );
    let rec_gone = run(
        &d,
        &gone,
        &rootfs,
        &args,
        json!({"ports": [{"host_port": p2, "container_port": 8080}]}),
    );
    d.kill_hard();
    // While the daemon is down one container dies with its shim (the test kills them:
    // the daemon never kills what it did not start).
    for key in ["pid", "shim_pid"] {
        let p = rec_gone[key].as_i64().unwrap() as i32;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(300));
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    // The live one still serves on its port and keeps its address.
    assert_eq!(
        fetch(&ns, &format!("http://127.0.0.1:{p1}/")).as_deref(),
        Ok(PAGE)
    );
    let again = d.call("GET", &format!("/v1/containers/{live}"), None);
    assert_eq!(
        again.json["network_attachment"]["address"],
        rec_live["network_attachment"]["address"]
    );
    assert!(
        !port_free(&ns, p1),
        "the live container's port is held again"
    );
    // The gone one's port rules, address and port are released.
    assert!(port_free(&ns, p2), "the gone container's port is free");
    assert!(!rules(&ns).contains(&p2.to_string()), "{}", rules(&ns));
    let gone_ip = address(&rec_gone);
    let net = d.call("GET", "/v1/networks/berth0", None);
    assert!(net.json["containers"].get(&gone).is_none(), "{net:?}");
    // Its address can be given again.
    let ipam = std::fs::read_dir(scratch.state().join("network/ipam"))
        .unwrap()
        .flat_map(|n| std::fs::read_dir(n.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(!ipam.iter().any(|f| f.contains(&gone_ip)), "{ipam:?}");
    delete(&d, &gone);
    delete(&d, &live);
    assert!(veths(&ns).is_empty(), "{:?}", veths(&ns));
}

/// A CNI network of Debian's plugins (bridge + host-local + portmap + firewall), its
/// host-local allocations kept under `dir`.
fn write_cni_conf(conf_dir: &Path, dir: &Path) {
    std::fs::create_dir_all(conf_dir).unwrap();
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "cninet",
        "plugins": [
            {"type": "bridge", "bridge": "cni-berth0", "isGateway": true, "ipMasq": true,
             "ipam": {"type": "host-local", "dataDir": dir.join("ipam"),
                      "ranges": [[{"subnet": "10.88.7.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall"}
        ]
    });
    std::fs::write(conf_dir.join("10-cninet.conflist"), conf.to_string()).unwrap();
}

#[test]
fn the_cni_path_serves_a_published_port_and_cleans_up() {
    let ns = TestNetns::new("cni");
    let scratch = Scratch::new("net-cni");
    let rootfs = busybox_rootfs(&scratch.0);
    write_cni_conf(&scratch.0.join("cni"), &scratch.0);
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let list = d.call("GET", "/v1/networks", None);
    assert!(
        list.json
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "cninet" && n["driver"]["type"] == "cni"),
        "{list:?}"
    );
    let port = free_port(&ns);
    let id = format!("cniweb-{}", std::process::id());
    let record = run(
        &d,
        &id,
        &rootfs,
        &["httpd", "-f", "-p", "8080", "-h", "/www"],
        json!({"network": "cninet", "ports": [{"host_port": port, "container_port": 8080}]}),
    );
    let ip = address(&record);
    assert!(ip.starts_with("10.88.7."), "{record}");
    assert_eq!(
        fetch(&ns, &format!("http://{ip}:8080/")).as_deref(),
        Ok(PAGE)
    );
    let host_ip = ns.ip(&["-4", "-o", "addr", "show", "cni-berth0"]);
    let gw = host_ip
        .split_whitespace()
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        fetch(&ns, &format!("http://{gw}:{port}/")).as_deref(),
        Ok(PAGE)
    );
    let allocations = || {
        std::fs::read_dir(scratch.0.join("ipam/cninet"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("10.")
                })
                .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        fetch(&ns, &format!("http://127.0.0.1:{port}/")).as_deref(),
        Ok(PAGE),
        "portmap publishes on 127.0.0.1 too"
    );
    // Another container of the CNI network reaches the first by its address, as on the
    // native bridge.
    let client = format!("{id}-client");
    let url = format!("http://{ip}:8080/");
    assert_eq!(fetch_from(&d, &client, &rootfs, &url, "cninet"), PAGE);
    delete(&d, &client);
    assert_eq!(allocations(), 1);
    // A daemon killed and started again still undoes the attachment (the CNI result
    // and the namespace held again), with the conflist it was made with.
    let mut d = d;
    d.kill_hard();
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    assert_eq!(
        fetch(&ns, &format!("http://{ip}:8080/")).as_deref(),
        Ok(PAGE)
    );
    delete(&d, &id);
    assert_eq!(allocations(), 0, "host-local allocation left");
    assert!(veths(&ns).is_empty(), "{:?}", veths(&ns));
    assert!(
        !rules(&ns).contains(&id),
        "rules naming the container left:\n{}",
        rules(&ns)
    );
}

#[test]
fn an_image_container_joins_the_default_network_and_names_its_address() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "net/busybox:latest");
    let ns = TestNetns::new("img");
    let port: u16 = reg.host().rsplit(':').next().unwrap().parse().unwrap();
    let _forward = ns.forward_loopback(port);
    let scratch = Scratch::new("net-img");
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let id = format!("img-{}", std::process::id());
    let image = format!("{}/net/busybox:latest", reg.host());
    let b = json!({"id": id, "image": image, "args": ["sh", "-c", "cat /etc/hosts; busybox ip -4 -o addr show eth0"]});
    let r = d.call("POST", "/v1/containers", Some(&b.to_string()));
    assert_eq!(r.status, 202, "{r:?}");
    let rec = wait_state(&d, &id, "stopped");
    assert_eq!(rec["exit_code"], 0, "{rec}");
    let logs = d
        .call("GET", &format!("/v1/containers/{id}/logs"), None)
        .text;
    let hostname = &id[..12.min(id.len())];
    let addr_line = logs
        .lines()
        .find(|l| l.ends_with(&format!("\t{hostname}")))
        .unwrap_or_else(|| panic!("/etc/hosts names the container: {logs}"))
        .to_owned();
    let ip = addr_line.split('\t').next().unwrap();
    assert!(
        logs.contains(&format!("inet {ip}/")),
        "eth0 has {ip}: {logs}"
    );
    delete(&d, &id);
    assert!(veths(&ns).is_empty());
}

#[test]
fn cni_files_that_do_not_parse_or_name_a_missing_plugin_fail_clearly_and_leave_nothing() {
    let ns = TestNetns::new("cnibad");
    let scratch = Scratch::new("net-cnibad");
    let rootfs = busybox_rootfs(&scratch.0);
    let conf = scratch.0.join("cni");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("10-broken.conflist"), "{ not json").unwrap();
    let missing = json!({"cniVersion": "1.0.0", "name": "ghost", "plugins": [
        {"type": "bridge", "bridge": "cni-ghost", "ipam": {"type": "host-local",
         "dataDir": scratch.0.join("ipam"), "ranges": [[{"subnet": "10.89.0.0/24"}]]}},
        {"type": "no-such-plugin"}]});
    std::fs::write(conf.join("20-ghost.conflist"), missing.to_string()).unwrap();
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    // The file that does not parse is no network.
    let list = d.call("GET", "/v1/networks", None);
    let names: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert!(
        names.contains(&"ghost") && !names.contains(&"broken"),
        "{names:?}"
    );
    // A network naming a plugin that is not there: the start fails saying so, and the
    // bridge plugin that does exist never ran (no bridge, no address).
    let id = format!("ghost-{}", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&body(
            &id,
            &rootfs,
            &["sleep", "100"],
            json!({"network": "ghost"}),
        )),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let failed = wait_state(&d, &id, "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or("")
            .contains("no-such-plugin"),
        "{failed}"
    );
    // No plugin of it publishes ports: a request to is refused, not silently ignored.
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&body(
            &format!("{id}-p"),
            &rootfs,
            &["sleep", "100"],
            json!({"network": "ghost", "ports": [{"host_port": 18080, "container_port": 80}]}),
        )),
    );
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (422, json!("invalid_network")),
        "{r:?}"
    );
    assert!(
        !ns.ip(&["-o", "link", "show"]).contains("cni-ghost"),
        "bridge made"
    );
    assert!(veths(&ns).is_empty(), "{:?}", veths(&ns));
    delete(&d, &id);
}
