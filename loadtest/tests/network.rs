//! `berth-loadtest --network` and `--publish` end to end (as root): the harness runs its
//! berthd in a network namespace of its own, puts every container on the network, and
//! after teardown finds no veth, firewall rule, attachment or address left — and removes
//! the namespace. Nothing here touches the machine's own network.

use std::process::{Output, Stdio};

use serde_json::Value;

mod common;

use common::{json_of, Scratch};

/// Run the harness to its end.
fn harness(scratch: &Scratch, args: &[&str]) -> Output {
    common::harness(scratch, args).output().unwrap()
}

/// Processes whose command line names a path under `dir` (the harness's berthd and
/// shims do).
fn processes_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

/// A burst of 20 on `network`, asserted to run every container on it and leave
/// nothing: no leftover the harness reports (veths, rules, attachments, addresses), no
/// file or mount under its TMPDIR (the namespace was a mount there), no process of it.
fn burst_on(name: &str, extra: &[&str]) -> Value {
    let scratch = Scratch::new(name);
    let mut args = vec!["-n", "20", "-c", "5", "--check", "2", "--json"];
    args.extend_from_slice(extra);
    let out = harness(&scratch, &args);
    let report = json_of(&out);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["running"], 20, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["check_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["cleanup"]["deleted"], 20, "{report}");
    assert_eq!(report["left_behind"], serde_json::json!([]), "{report}");
    scratch.assert_empty();
    let procs = processes_under(&scratch.0);
    assert!(procs.is_empty(), "processes left: {procs:?}");
    report
}

#[test]
fn a_burst_on_the_default_bridge_leaves_nothing() {
    let report = burst_on("bridge", &["--network", "bridge"]);
    assert_eq!(report["settings"]["network"], "bridge", "{report}");
    assert_eq!(report["settings"]["published"], false, "{report}");
}

#[test]
fn a_burst_publishing_a_port_each_leaves_nothing() {
    let report = burst_on("publish", &["--network", "bridge", "--publish"]);
    assert_eq!(report["settings"]["network"], "bridge", "{report}");
    assert_eq!(report["settings"]["published"], true, "{report}");
}

#[test]
fn a_burst_on_a_network_it_defines_leaves_nothing() {
    let report = burst_on("named", &["--network", "lt-net"]);
    assert_eq!(report["settings"]["network"], "lt-net", "{report}");
}

#[test]
fn without_a_network_the_summary_says_none() {
    let scratch = Scratch::new("none");
    let out = harness(&scratch, &["-n", "3", "-c", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["network", "none"]),
        "{text}"
    );
    assert!(text.contains("nothing left behind"), "{text}");
    scratch.assert_empty();
}

#[test]
fn a_network_with_another_daemon_is_refused() {
    let scratch = Scratch::new("refused");
    let sock = scratch.0.join("nobody.sock");
    let out = harness(
        &scratch,
        &["--network", "x", "--host", sock.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--network x: only with the harness's own berthd"),
        "{stderr}"
    );
    // Refused before anything was made.
    scratch.assert_empty();
}

#[test]
fn publish_without_a_network_is_refused() {
    let scratch = Scratch::new("publish-alone");
    let out = harness(&scratch, &["--publish"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--network"), "{stderr}");
    scratch.assert_empty();
}

#[test]
fn an_interrupted_burst_on_a_network_removes_its_namespace() {
    let scratch = Scratch::new("sigint");
    let args = ["-n", "300", "-c", "20", "--network", "bridge", "--publish"];
    let mut child = common::harness(&scratch, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once containers are being made (or the burst is over: then it just ends).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while processes_under(&scratch.0).len() < 5 && std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(130) | Some(0)),
        "{:?}: {stderr}",
        out.status
    );
    if out.status.code() == Some(130) {
        assert!(stderr.contains("nothing left behind"), "{stderr}");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&*scratch.0.to_string_lossy()),
        "the namespace is still mounted: {stderr}"
    );
    scratch.assert_empty();
    let procs = processes_under(&scratch.0);
    assert!(procs.is_empty(), "processes left: {procs:?}");
}

/// A CNI network of `--cni-conf-dir`: Debian's bridge (masquerading) + host-local +
/// portmap, host-local's allocations in `dir`. (The bridge plugin removes its masquerade
/// rules only when DEL finds the container's namespace: before berthd held it until DEL,
/// 3 rules per container stayed, which this burst's leftover check found.)
fn cni_conf(dir: &std::path::Path) {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "lt-cni", "plugins": [
            {"type": "bridge", "bridge": "cni-lt0", "isGateway": true, "ipMasq": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/16"}]],
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": dir.join("data")}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    std::fs::write(dir.join("lt-cni.conflist"), conf.to_string()).unwrap();
}

#[test]
fn a_burst_on_a_cni_network_leaves_nothing() {
    let conf = tempfile::tempdir().unwrap();
    cni_conf(conf.path());
    let dir = conf.path().to_str().unwrap();
    let report = burst_on(
        "cni",
        &["--network", "lt-cni", "--cni-conf-dir", dir, "--publish"],
    );
    assert_eq!(report["settings"]["network"], "lt-cni", "{report}");
}
