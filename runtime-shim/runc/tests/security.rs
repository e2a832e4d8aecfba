//! Capabilities and no_new_privileges, checked against /proc/self/status inside.

use berth_testkit::runc::*;
use serde_json::json;

/// The hex mask of a /proc/self/status capability line, e.g. `CapBnd`.
fn mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;

#[test]
fn root_gets_exactly_the_listed_capabilities() {
    let mut c = TestContainer::new("sec-caps-root", &["cat", "/proc/self/status"]);
    let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
    c.spec["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": []
    });
    let out = c.run_ok();
    assert_eq!(mask(&out, "CapBnd"), CAP_CHOWN | CAP_KILL);
    assert_eq!(mask(&out, "CapEff"), CAP_CHOWN | CAP_KILL);
    assert_eq!(mask(&out, "CapPrm"), CAP_CHOWN | CAP_KILL);
    assert_eq!(mask(&out, "CapInh"), 0);
    c.assert_nothing_left();
}

#[test]
fn a_user_keeps_its_ambient_capabilities() {
    let mut c = TestContainer::new("sec-caps-user", &["cat", "/proc/self/status"]);
    c.spec["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let caps = json!(["CAP_NET_BIND_SERVICE"]);
    c.spec["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
        "inheritable": caps, "ambient": caps
    });
    let out = c.run_ok();
    assert_eq!(mask(&out, "CapAmb"), CAP_NET_BIND_SERVICE);
    assert_eq!(mask(&out, "CapEff"), CAP_NET_BIND_SERVICE);
    assert_eq!(mask(&out, "CapBnd"), CAP_NET_BIND_SERVICE);
    c.assert_nothing_left();
}

#[test]
fn a_user_without_ambient_capabilities_has_none() {
    let mut c = TestContainer::new("sec-caps-none", &["cat", "/proc/self/status"]);
    c.spec["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let caps = json!(["CAP_KILL"]);
    c.spec["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    let out = c.run_ok();
    assert_eq!(mask(&out, "CapEff"), 0);
    assert_eq!(mask(&out, "CapPrm"), 0);
    c.assert_nothing_left();
}

#[test]
fn no_new_privileges_shows() {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut c = TestContainer::new("sec-nnp", &["cat", "/proc/self/status"]);
        c.spec["process"]["noNewPrivileges"] = json!(nnp);
        let out = c.run_ok();
        let line = out.lines().find(|l| l.starts_with("NoNewPrivs:")).unwrap();
        assert_eq!(line.split_whitespace().nth(1), Some(want), "{line}");
        c.assert_nothing_left();
    }
}

#[test]
fn unknown_capability_is_named() {
    if skip_under_runc("runc only warns about unknown capabilities") {
        return;
    }
    let mut c = TestContainer::new("sec-caps-bad", &["true"]);
    c.spec["process"]["capabilities"] = json!({ "bounding": ["CAP_KILL", "CAP_NO_SUCH_THING"] });
    c.create()
        .assert_one_line_error(&["CAP_NO_SUCH_THING", "NO_SUCH_THING"], &[]);
    c.assert_nothing_left();
}

#[test]
fn a_capability_left_out_is_a_warning_in_the_log_or_on_stderr() {
    // Issue 12.2: the init warned after closing the log, and stderr got nothing. As with
    // runc, the warning goes to --log when there is one (callers such as containerd give
    // the container's stdio to the runtime), else to stderr.
    if skip_under_runc("runc warns in its own words") {
        return;
    }
    for with_log in [true, false] {
        let mut c = TestContainer::new("sec-caps-warn", &["true"]);
        // Effective but not permitted: the kernel cannot grant it, on any host.
        c.spec["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN"]
        });
        let log = c.io.join("runtime.log");
        let log_arg = log.to_str().unwrap();
        let extra: &[&str] = if with_log { &["--log", log_arg] } else { &[] };
        let created = c.create_with(extra);
        created.assert_success();
        let warned = |text: &str| {
            text.lines()
                .any(|l| l.contains("level=warning") && l.contains("CAP_KILL"))
        };
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        if with_log {
            assert!(warned(&logged), "log: {logged}");
            assert!(
                created.stderr.trim().is_empty(),
                "stderr: {}",
                created.stderr
            );
        } else {
            assert!(warned(&created.stderr), "stderr: {}", created.stderr);
        }
        c.start().assert_success();
        c.wait_for_status("stopped");
        c.delete().assert_success();
        c.assert_nothing_left();
    }
}
