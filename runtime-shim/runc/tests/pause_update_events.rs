//! pause/resume (freezer), update (new limits on a live container) and events (stats and
//! OOM notifications as JSON lines).

use berth_testkit::runc::*;
use serde_json::{json, Value};

fn running(prefix: &str, args: &[&str]) -> TestContainer {
    let c = TestContainer::new(prefix, args);
    c.run_with(&["-d"]).assert_success();
    c.wait_for_status("running");
    c
}

#[test]
fn pause_and_resume() {
    let c = running("pause-resume", &["sleep", "1000"]);
    c.cmd(&["pause", &c.id]).assert_success();
    assert_eq!(c.status(), "paused");
    if !cgroup_v2_unified() {
        let state = read_trim(&cgroup_file("freezer", &c.cgroups_path, "freezer.state"));
        assert_eq!(state, "FROZEN");
    }
    // Pausing twice, or exec into a paused container, is refused.
    c.cmd(&["pause", &c.id])
        .assert_one_line_error(&["paused", "not running"], &[]);
    c.cmd(&["exec", &c.id, "true"])
        .assert_one_line_error(&["paused"], &[]);
    c.cmd(&["resume", &c.id]).assert_success();
    assert_eq!(c.status(), "running");
    c.cmd(&["resume", &c.id])
        .assert_one_line_error(&["running", "not paused"], &[]);
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn paused_container_is_force_deleted() {
    let c = running("pause-delete", &["sleep", "1000"]);
    c.cmd(&["pause", &c.id]).assert_success();
    c.delete().assert_failure();
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn update_changes_live_limits() {
    let mut c = TestContainer::new("update-live", &["sleep", "1000"]);
    c.spec["linux"]["resources"]["pids"] = json!({ "limit": 50 });
    c.run_with(&["-d"]).assert_success();
    c.cmd(&["update", "--pids-limit", "12", "--cpu-share", "300", &c.id])
        .assert_success();
    if !cgroup_v2_unified() {
        assert_eq!(
            read_trim(&cgroup_file("pids", &c.cgroups_path, "pids.max")),
            "12"
        );
        assert_eq!(
            read_trim(&cgroup_file("cpu", &c.cgroups_path, "cpu.shares")),
            "300"
        );
    }
    let file = c.tmp_path().join("resources.json");
    std::fs::write(&file, json!({ "pids": { "limit": 13 } }).to_string()).unwrap();
    c.cmd(&["update", "-r", file.to_str().unwrap(), &c.id])
        .assert_success();
    if !cgroup_v2_unified() {
        assert_eq!(
            read_trim(&cgroup_file("pids", &c.cgroups_path, "pids.max")),
            "13"
        );
    }
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn events_stats_reports_the_cgroup() {
    let c = running("events-stats", &["sleep", "1000"]);
    let out = c.cmd(&["events", "--stats", &c.id]);
    out.assert_success();
    let event: Value = serde_json::from_str(out.stdout_now().trim()).unwrap();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], json!(c.id));
    assert_eq!(event["data"]["pids"]["current"], json!(1), "{event}");
    assert!(
        event["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{event}"
    );
    assert!(event["data"]["cpu"]["usage"]["total"].is_u64(), "{event}");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn events_reports_an_oom_kill() {
    if skip_under_runc("runc's OOM events need its own event loop timing") {
        return;
    }
    let mut c = TestContainer::new(
        "events-oom",
        &[
            "sh",
            "-c",
            "sleep 1; head -c 100000000 /dev/zero | tail; sleep 1000",
        ],
    );
    c.spec["linux"]["resources"]["memory"] = json!({ "limit": 16 * 1024 * 1024 });
    c.run_with(&["-d"]).assert_success();
    let events = c.spawn(&["events", "--interval", "1h", &c.id]);
    // The tail is OOM-killed, the shell goes on sleeping; stop it once the OOM is seen.
    let text = c.wait_for_file(events.stdout_path(), "an oom event", |t| {
        t.contains("\"oom\"")
    });
    assert!(
        text.lines().any(|l| l.contains("\"type\":\"oom\"")),
        "{text}"
    );
    c.delete_force().assert_success();
    let _ = events.wait();
    c.assert_nothing_left();
}
