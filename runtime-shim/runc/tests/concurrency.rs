//! State under --root is safe under concurrency: many creates of distinct ids at once,
//! the same id twice at once, concurrent runs and lifecycles with `list` running alongside.
//! (Tests only spawn the runtime binary; threads here merely wait for those processes.)

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use berth_testkit::runc::*;
use serde_json::Value;

fn shared_root(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-test-root-{name}-"))
        .tempdir()
        .unwrap()
}

fn list_json(root: &std::path::Path, io: &std::path::Path) -> Vec<Value> {
    try_list_json(root, io).unwrap_or_else(|out| panic!("list failed: {out}"))
}

/// `list --format json`, or the failed command (a list that *succeeds* must print JSON).
fn try_list_json(
    root: &std::path::Path,
    io: &std::path::Path,
) -> Result<Vec<Value>, Box<CmdOutput>> {
    let out = runtime_cmd(root, io, &["list", "--format", "json"]);
    if !out.success() {
        return Err(Box::new(out));
    }
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("list printed invalid JSON ({e}): {out}"));
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => Ok(a),
        other => panic!("list json is not an array: {other}"),
    }
}

#[test]
fn twenty_concurrent_creates_then_deletes() {
    const N: usize = 20;
    let root = shared_root("many");
    let containers: Vec<TestContainer> = (0..N)
        .map(|_| TestContainer::with_root("cc-many", &["sleep", "1000"], root.path()))
        .collect();
    for c in &containers {
        c.write_config();
    }
    // Launch all creates before waiting for any.
    let running: Vec<RunningCmd> = containers.iter().map(|c| c.spawn_create()).collect();
    let outs: Vec<CmdOutput> = running.into_iter().map(RunningCmd::wait).collect();
    for (c, out) in containers.iter().zip(&outs) {
        assert!(out.success(), "create of {} failed: {out}", c.id);
    }
    for c in &containers {
        let st = c.state().unwrap_or_else(|o| panic!("{o}"));
        assert_eq!(st["status"], "created", "{st}");
        assert!(process_alive(c.pid()));
    }
    let listed: BTreeSet<String> = list_json(root.path(), &containers[0].io)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let ids: BTreeSet<String> = containers.iter().map(|c| c.id.clone()).collect();
    assert_eq!(listed, ids);

    // All deletes at once too.
    let running: Vec<RunningCmd> = containers
        .iter()
        .map(|c| c.spawn(&["delete", "--force", &c.id]))
        .collect();
    for out in running.into_iter().map(RunningCmd::wait) {
        out.assert_success();
    }
    assert!(list_json(root.path(), &containers[0].io).is_empty());
    for c in &containers {
        c.assert_nothing_left();
    }
}

#[test]
fn same_id_concurrently_exactly_one_wins() {
    if skip_under_runc(
        "runc 1.1 does not serialize concurrent creates of one id: both may fail, and the \
         loser removes the winner's cgroups and leaks others",
    ) {
        return;
    }
    for _round in 0..5 {
        let c = TestContainer::new("cc-same", &["sh", "-c", "echo winner-ran"]);
        c.write_config();
        let a = c.spawn_create();
        let b = c.spawn_create();
        let (a, b) = (a.wait(), b.wait());
        let (winner, loser) = match (a.success(), b.success()) {
            (true, false) => (a, b),
            (false, true) => (b, a),
            _ => panic!("exactly one create must succeed:\n{a}\n{b}"),
        };
        loser.assert_one_line_error(&["exist", "in use", "duplicate", "lock", "busy"], &[]);

        // The loser did not damage the winner: state, init, cgroup all intact.
        let st = c.state().unwrap_or_else(|o| panic!("{o}"));
        assert_eq!(st["status"], "created", "{st}");
        let pid = c.pid();
        assert!(process_alive(pid));
        let procs = read_trim(&cgroup_file("pids", &c.cgroups_path, "cgroup.procs"));
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "the loser removed the winner's cgroup or moved its init: {procs:?}"
        );
        c.start().assert_success();
        wait_for_file(&winner.stdout_path, "winner-ran", |t| {
            t.contains("winner-ran")
        });
        c.wait_for_status("stopped");
        c.delete().assert_success();
        c.assert_nothing_left();
    }
}

#[test]
fn concurrent_foreground_runs_keep_their_exit_codes() {
    const N: usize = 10;
    let root = shared_root("runs");
    let containers: Vec<TestContainer> = (0..N)
        .map(|i| {
            let script = format!("echo me-{i}; exit {}", 10 + i);
            TestContainer::with_root("cc-run", &["sh", "-c", &script], root.path())
        })
        .collect();
    for c in &containers {
        c.write_config();
    }
    let running: Vec<RunningCmd> = containers
        .iter()
        .map(|c| c.spawn(&["run", "--bundle", c.bundle.to_str().unwrap(), &c.id]))
        .collect();
    for (i, out) in running.into_iter().map(RunningCmd::wait).enumerate() {
        assert_eq!(out.code(), Some(10 + i as i32), "{out}");
        assert_eq!(out.stdout.trim(), format!("me-{i}"), "{out}");
    }
    assert!(list_json(root.path(), &containers[0].io).is_empty());
    for c in &containers {
        c.assert_nothing_left();
    }
}

#[test]
fn concurrent_lifecycles_with_list_alongside() {
    const N: usize = 8;
    let root = shared_root("mix");
    let containers: Vec<Arc<TestContainer>> = (0..N)
        .map(|_| {
            Arc::new(TestContainer::with_root(
                "cc-mix",
                &["sh", "-c", "echo hi"],
                root.path(),
            ))
        })
        .collect();

    // A reader that lists continuously: every listing must be valid JSON.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let root = root.path().to_path_buf();
        let io = containers[0].io.clone();
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                match try_list_json(&root, &io) {
                    Ok(_) => {}
                    // runc 1.1's list fails when a container vanishes while it lists.
                    Err(out) if runtime_is_runc() => {
                        eprintln!("relaxed under runc: list failed: {}", out.stderr.trim())
                    }
                    Err(out) => panic!("list failed while containers come and go: {out}"),
                }
                n += 1;
            }
            n
        })
    };

    let workers: Vec<_> = containers
        .iter()
        .map(|c| {
            let c = c.clone();
            thread::spawn(move || {
                for _ in 0..3 {
                    let created = c.create();
                    created.assert_success();
                    c.start().assert_success();
                    c.wait_for_status("stopped");
                    c.delete().assert_success();
                    assert!(created.stdout_now().contains("hi"));
                }
            })
        })
        .collect();
    let mut failed = Vec::new();
    for w in workers {
        if let Err(e) = w.join() {
            failed.push(e);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let listings = reader
        .join()
        .expect("a listing failed or was not valid JSON");
    assert!(
        failed.is_empty(),
        "{} lifecycle thread(s) failed",
        failed.len()
    );
    assert!(listings > 0);
    for c in &containers {
        c.assert_nothing_left();
    }
}
