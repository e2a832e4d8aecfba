//! Cgroups: the container's cgroup at cgroupsPath with the spec's limits (seen from the
//! host while it exists, gone after delete), enforced from inside (pids, memory).

use std::fs;

use berth_testkit::runc::*;
use serde_json::json;

const MIB: u64 = 1024 * 1024;

/// (controller, file, expected content) for the limits set by [`with_limits`].
fn expected_limit_files() -> Vec<(&'static str, &'static str, String)> {
    if cgroup_v2_unified() {
        vec![
            ("pids", "pids.max", "42".into()),
            ("memory", "memory.max", (64 * MIB).to_string()),
            // runc's shares -> weight conversion: 1 + ((512 - 2) * 9999) / 262142.
            ("cpu", "cpu.weight", "20".into()),
            ("cpu", "cpu.max", "50000 100000".into()),
        ]
    } else {
        vec![
            ("pids", "pids.max", "42".into()),
            ("memory", "memory.limit_in_bytes", (64 * MIB).to_string()),
            ("cpu", "cpu.shares", "512".into()),
            ("cpu", "cpu.cfs_quota_us", "50000".into()),
            ("cpu", "cpu.cfs_period_us", "100000".into()),
        ]
    }
}

fn with_limits(c: &mut TestContainer) {
    let res = &mut c.spec["linux"]["resources"];
    res["pids"] = json!({ "limit": 42 });
    res["memory"] = json!({ "limit": 64 * MIB });
    res["cpu"] = json!({ "shares": 512, "quota": 50000, "period": 100000 });
}

#[test]
fn limits_visible_on_host_then_removed() {
    let mut c = TestContainer::new("cg-limits", &["sleep", "1000"]);
    with_limits(&mut c);
    c.create().assert_success();
    for (ctrl, file, want) in expected_limit_files() {
        let path = cgroup_file(ctrl, &c.cgroups_path, file);
        assert_eq!(read_trim(&path), want, "{}", path.display());
    }
    c.start().assert_success();
    c.wait_for_status("running");
    for (ctrl, file, want) in expected_limit_files() {
        assert_eq!(read_trim(&cgroup_file(ctrl, &c.cgroups_path, file)), want);
    }
    c.delete_force().assert_success();
    for (ctrl, _, _) in expected_limit_files() {
        let dir = cgroup_file(ctrl, &c.cgroups_path, "");
        assert!(!dir.exists(), "{} survived delete", dir.display());
    }
    c.assert_nothing_left();
}

#[test]
fn init_joins_cgroup_before_user_code() {
    let mut c = TestContainer::new("cg-join", &["sleep", "1000"]);
    with_limits(&mut c);
    c.create().assert_success();
    let pid = c.pid();
    for ctrl in ["pids", "memory", "cpu"] {
        let procs = read_trim(&cgroup_file(ctrl, &c.cgroups_path, "cgroup.procs"));
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "init {pid} not in the {ctrl} cgroup before start: {procs:?}"
        );
    }
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn limits_visible_inside() {
    // With a cgroup namespace the container's own cgroup is the root of its view.
    let file = if cgroup_v2_unified() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    let mut c = TestContainer::new("cg-inside", &["cat", file]);
    with_limits(&mut c);
    assert_eq!(c.run_ok().trim(), "42");
    c.assert_nothing_left();
}

#[test]
fn pids_limit_stops_fork_loop() {
    let mut c = TestContainer::new(
        "cg-pids",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); done; echo all-forked",
        ],
    );
    c.spec["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    let out = c.run();
    assert!(!out.success(), "the fork loop was not stopped: {out}");
    assert!(!out.stdout.contains("all-forked"), "{out}");
    assert!(
        out.stderr.to_lowercase().contains("fork"),
        "no fork failure reported: {out}"
    );
    c.assert_nothing_left();
}

#[test]
fn pids_limit_allows_below_limit() {
    let mut c = TestContainer::new(
        "cg-pids-ok",
        &[
            "sh",
            "-c",
            "sleep 30 & sleep 30 & sleep 30 & echo forked-3; kill $(jobs -p) 2>/dev/null; true",
        ],
    );
    c.spec["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    let out = c.run();
    out.assert_success();
    assert!(out.stdout.contains("forked-3"), "{out}");
    c.assert_nothing_left();
}

const OOM_SCRIPT: &str = "head -c 200M /dev/zero | tail";

#[test]
fn memory_limit_oom_kills() {
    let mut c = TestContainer::new("cg-oom", &["sh", "-c", OOM_SCRIPT]);
    c.spec["linux"]["resources"]["memory"] = json!({ "limit": 16 * MIB });
    let out = c.run();
    // `tail` (buffering 200M without a newline) is OOM-killed: the shell exits 128+9.
    assert_eq!(out.code(), Some(137), "not OOM-killed: {out}");
    c.assert_nothing_left();
}

#[test]
fn memory_oom_recorded_in_cgroup() {
    let mut c = TestContainer::new("cg-oom-events", &["sh", "-c", OOM_SCRIPT]);
    c.spec["linux"]["resources"]["memory"] = json!({ "limit": 16 * MIB });
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    let (file, key) = if cgroup_v2_unified() {
        ("memory.events", "oom_kill")
    } else {
        ("memory.oom_control", "oom_kill")
    };
    let text = read_trim(&cgroup_file("memory", &c.cgroups_path, file));
    let kills: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {file}: {text}"));
    assert!(kills >= 1, "no OOM kill recorded: {text}");
    if !cgroup_v2_unified() {
        let failcnt: u64 = read_trim(&cgroup_file("memory", &c.cgroups_path, "memory.failcnt"))
            .parse()
            .unwrap();
        assert!(failcnt > 0, "memory.failcnt is 0");
    }
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn memory_below_limit_is_fine() {
    let mut c = TestContainer::new(
        "cg-mem-ok",
        &["sh", "-c", "head -c 4M /dev/zero | tail -c 1 | wc -c"],
    );
    c.spec["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    assert_eq!(c.run_ok().trim(), "1");
    c.assert_nothing_left();
}

#[test]
fn nested_cgroups_path() {
    let mut c = TestContainer::new("cg-nested", &["sleep", "1000"]);
    let parent = format!("/berth-test-{}-parent", c.id);
    c.set_cgroups_path(&format!("{parent}/mid/leaf"));
    c.spec["linux"]["resources"]["pids"] = json!({ "limit": 7 });

    // Removes the parents this test caused, after the container's own cleanup.
    struct Parents(String);
    impl Drop for Parents {
        fn drop(&mut self) {
            for mp in cgroup_mountpoints() {
                let top = mp.join(self.0.trim_start_matches('/'));
                let _ = fs::remove_dir(top.join("mid"));
                let _ = fs::remove_dir(&top);
            }
        }
    }
    let _parents = Parents(parent.clone());

    c.create().assert_success();
    assert_eq!(
        read_trim(&cgroup_file("pids", &c.cgroups_path, "pids.max")),
        "7"
    );
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn cgroups_path_is_used_verbatim() {
    // Two containers with distinct cgroupsPath get distinct cgroups.
    let a = TestContainer::new("cg-two-a", &["sleep", "1000"]);
    let b = TestContainer::with_root("cg-two-b", &["sleep", "1000"], &a.root);
    a.create().assert_success();
    b.create().assert_success();
    let procs_a = read_trim(&cgroup_file("pids", &a.cgroups_path, "cgroup.procs"));
    let procs_b = read_trim(&cgroup_file("pids", &b.cgroups_path, "cgroup.procs"));
    assert_eq!(procs_a, a.pid().to_string());
    assert_eq!(procs_b, b.pid().to_string());
    a.delete_force().assert_success();
    b.delete_force().assert_success();
    a.assert_nothing_left();
    b.assert_nothing_left();
}
