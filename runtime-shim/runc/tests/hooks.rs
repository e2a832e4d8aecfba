//! OCI hooks: each kind runs at its point of the lifecycle with the state on stdin; a
//! failing or hanging hook fails the step it belongs to and leaves nothing behind, except
//! poststop, whose failures only warn.

use std::fs;
use std::path::Path;

use berth_testkit::runc::*;
use serde_json::{json, Value};

/// A hook that saves its stdin (the state) to `file`.
fn save_state(file: &Path) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", file.display())] })
}

/// A hook that runs `script` in sh.
fn sh(script: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

fn state_in(file: &Path) -> Value {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", file.display()))
}

#[test]
fn every_hook_runs_with_the_state() {
    let mut c = TestContainer::new("hooks-all", &["sh", "-c", "cat /dev/shm/start.json"]);
    let dir = c.tmp_path().to_path_buf();
    c.spec["hooks"] = json!({
        "prestart": [save_state(&dir.join("prestart.json"))],
        "createRuntime": [save_state(&dir.join("createRuntime.json"))],
        "createContainer": [save_state(&dir.join("createContainer.json"))],
        "startContainer": [save_state(Path::new("/dev/shm/start.json"))],
        "poststart": [save_state(&dir.join("poststart.json"))],
        "poststop": [save_state(&dir.join("poststop.json"))],
    });
    let out = c.run_ok();
    let start: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(start["id"], json!(c.id));
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        let state = state_in(&dir.join(format!("{kind}.json")));
        assert_eq!(state["id"], json!(c.id), "{kind}: {state}");
        assert!(state["ociVersion"].is_string(), "{kind}: {state}");
        assert_eq!(
            state["bundle"],
            json!(fs::canonicalize(&c.bundle).unwrap()),
            "{kind}: {state}"
        );
    }
    let created = state_in(&dir.join("createRuntime.json"));
    assert_eq!(created["status"], "creating");
    assert!(created["pid"].as_i64().unwrap() > 0, "{created}");
    assert_eq!(state_in(&dir.join("poststop.json"))["status"], "stopped");
    c.assert_nothing_left();
}

#[test]
fn failing_create_hooks_fail_create_and_leave_nothing() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut c = TestContainer::new("hooks-fail", &["true"]);
        c.spec["hooks"] = json!({ kind: [sh("echo broken-hook >&2; exit 3")] });
        let out = c.create();
        out.assert_one_line_error(&["hook", "exit"], &["broken-hook"]);
        c.assert_nothing_left();
    }
}

#[test]
fn hanging_hook_times_out() {
    if skip_under_runc("runc's timeout message differs") {
        return;
    }
    let mut c = TestContainer::new("hooks-timeout", &["true"]);
    c.spec["hooks"] = json!({ "createRuntime": [{
        "path": "/bin/sh", "args": ["sh", "-c", "sleep 100"], "timeout": 1
    }] });
    c.create().assert_one_line_error(&["timed out"], &[]);
    c.assert_nothing_left();
}

#[test]
fn failing_start_container_hook_fails_start() {
    if skip_under_runc("runc 1.1 reports startContainer failures differently") {
        return;
    }
    let mut c = TestContainer::new("hooks-startfail", &["sleep", "1000"]);
    c.spec["hooks"] = json!({ "startContainer": [sh("echo no-start >&2; exit 4")] });
    c.create().assert_success();
    let out = c.start();
    out.assert_one_line_error(&["startContainer"], &["no-start"]);
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn failing_poststop_only_warns() {
    let mut c = TestContainer::new("hooks-poststop", &["true"]);
    c.spec["hooks"] = json!({ "poststop": [sh("exit 5")] });
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn two_deletes_waiting_on_one_container_run_poststop_once() {
    // Two cleanups of one id (the daemon's janitor and a DELETE) both wait for the lock;
    // the one that gets it second must find the container gone, not delete it again.
    if skip_under_runc("the lock on the state directory is berth-runc's") {
        return;
    }
    let mut c = TestContainer::new("hooks-twice", &["true"]);
    let count = c.tmp_path().join("poststop.count");
    c.spec["hooks"] = json!({ "poststop": [sh(&format!("echo x >> {}", count.display()))] });
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    let dir = fs::File::open(c.root.join(&c.id)).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    // SAFETY: flock on a descriptor this test owns.
    let locked = unsafe { libc::flock(fd, libc::LOCK_EX) };
    assert_eq!(locked, 0);
    let first = c.spawn(&["delete", c.id.as_str()]);
    let second = c.spawn(&["delete", c.id.as_str()]);
    // Both are waiting for the lock by now (or fail to find the container: fine too).
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(dir);
    let outs = [first.wait(), second.wait()];
    assert!(outs.iter().any(|o| o.success()), "no delete succeeded");
    let runs = fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "poststop ran {runs:?}");
    c.assert_nothing_left();
}

#[test]
fn a_create_killed_in_a_prestart_hook_leaves_no_cgroup_after_delete() {
    // Killed before it recorded the container (a shim killed by a start timeout): the
    // cgroup it made must still go with `delete --force`.
    if skip_under_runc("the record of a half-made container is berth-runc's") {
        return;
    }
    let mut c = TestContainer::new("hooks-killed", &["true"]);
    let ppid = c.tmp_path().join("create.pid");
    let script = format!(
        "echo $PPID > {0}.tmp; /bin/mv {0}.tmp {0}; /bin/sleep 2",
        ppid.display()
    );
    c.spec["hooks"] = json!({ "prestart": [sh(&script)] });
    c.write_config();
    let create = c.spawn_create();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pid = loop {
        if let Ok(text) = fs::read_to_string(&ppid) {
            break text.trim().parse::<i32>().unwrap();
        }
        if std::time::Instant::now() > deadline {
            panic!("the prestart hook never ran: {}", create.wait());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: kill(2) of the create this test started (its child, not yet reaped).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    create.wait().assert_failure();
    c.cmd(&["delete", "--force", c.id.as_str()])
        .assert_success();
    std::thread::sleep(std::time::Duration::from_secs(2)); // the hook's sleep ends
    c.assert_nothing_left();
}
