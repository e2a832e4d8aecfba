//! The test kit's private network namespaces: what is made inside stays inside, and
//! everything goes with the namespace.

use berth_testkit::netns::TestNetns;

#[test]
fn a_test_namespace_is_private_and_goes_away_when_dropped() {
    let ns = TestNetns::new("kit");
    let path = ns.path().to_path_buf();
    assert!(ns.ip(&["link", "show", "lo"]).contains("UP"), "lo is up");
    ns.ip(&["link", "add", "kit-br0", "type", "bridge"]);
    assert!(ns.ip(&["link", "show"]).contains("kit-br0"));
    let host = std::process::Command::new("ip")
        .args(["link", "show"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&host.stdout).contains("kit-br0"));
    // A thread and a child process see the namespace's links.
    let inside = ns.run(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap());
    assert!(inside.contains("kit-br0"), "{inside}");
    let out = ns
        .command("cat")
        .arg("/proc/self/net/dev")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("kit-br0"));
    // A later `ip netns add` (which bind-mounts /run/netns over itself unless it is a
    // mount point already) must not hide the namespace from its own drop.
    let other = format!("berth-kit-ip-{}", std::process::id());
    let added = std::process::Command::new("ip")
        .args(["netns", "add", &other])
        .status()
        .unwrap();
    assert!(added.success());
    drop(ns);
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &other])
        .status();
    assert!(!path.exists(), "{} left", path.display());
}

#[test]
fn a_loopback_port_inside_reaches_the_same_port_outside() {
    use std::io::{Read, Write};
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = outside.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut c, _) = outside.accept().unwrap();
        c.write_all(b"hello from outside").unwrap();
    });
    let ns = TestNetns::new("fwd");
    let _fwd = ns.forward_loopback(port);
    let got = ns.run(|| {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    });
    assert_eq!(got, "hello from outside");
    server.join().unwrap();
}
