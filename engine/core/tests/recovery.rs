//! Persistence through the engine, recovery by a new engine on the same state directory,
//! and the state machine's refusals as the engine's callers see them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use berth_engine::persist::Store;
use berth_engine::{
    CgroupDirs, Change, ChangeError, Config, Engine, Exit, NoopLauncher, Observation, ShimView,
    State, Status,
};
use common::{count, wait_until, Bundle, CountingLauncher};

/// An exit at RFC 3339 time `at`.
fn exit(code: i32, at: &str) -> Exit {
    Exit {
        code,
        at: Some(humantime::parse_rfc3339(at).unwrap()),
    }
}

fn config(dir: &std::path::Path, workers: usize) -> Config {
    Config {
        workers,
        state_dir: Some(dir.to_owned()),
        ..Config::default()
    }
}

#[test]
fn every_state_change_is_on_disk_and_a_new_engine_finds_it() {
    let bundle = Bundle::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::new(state.path());
    let e = Engine::new(config(state.path(), 4), Arc::new(NoopLauncher)).unwrap();
    for i in 0..20 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || count(
        &e,
        State::Running
    ) == 20));
    e.observe("c3", Observation::Exited(exit(7, "2026-01-01T00:00:00Z")))
        .unwrap();
    e.apply("c4", Change::Paused).unwrap();
    for r in e.list() {
        assert_eq!(
            store.load(&r.id).unwrap(),
            r,
            "disk and memory differ for {}",
            r.id
        );
    }
    let before = {
        let mut v = e.list();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    drop(e);

    let e2 = Engine::new(config(state.path(), 4), Arc::new(NoopLauncher)).unwrap();
    let mut after = e2.list();
    after.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(after, before);
    let c3 = e2.get("c3").unwrap();
    assert_eq!((c3.state, c3.exit_code), (State::Stopped, Some(7)));
    assert_eq!(e2.stats().live_shims, 20);

    // Reconcile with what the shims say: one gone, one stopped meanwhile, one paused.
    let gone = e2.reconcile("c5", None).unwrap();
    assert_eq!(gone.state, State::Failed);
    assert!(gone.error.unwrap().contains("shim is gone"));
    let shim = |status, code: Option<i32>| ShimView {
        status,
        pid: 1000,
        exit: code.map(|code| exit(code, "2026-01-01T00:00:01Z")),
        cgroups: None,
    };
    let stopped = e2
        .reconcile("c6", Some(&shim(Status::Stopped, Some(137))))
        .unwrap();
    assert_eq!(
        (stopped.state, stopped.exit_code),
        (State::Stopped, Some(137))
    );
    let paused = e2
        .reconcile("c7", Some(&shim(Status::Paused, None)))
        .unwrap();
    assert_eq!(paused.state, State::Paused);
    // A record without its cgroup (written by an older berthd) learns it from a shim
    // still running the same container, so its metrics come back.
    assert_eq!(e2.get("c8").unwrap().cgroups, None);
    let dirs = CgroupDirs {
        v1: [("memory".to_owned(), "/sys/fs/cgroup/memory/x/c8".into())].into(),
        v2: None,
    };
    let running = e2
        .reconcile(
            "c8",
            Some(&ShimView {
                cgroups: Some(dirs.clone()),
                ..shim(Status::Running, None)
            }),
        )
        .unwrap();
    assert_eq!(
        (running.state, running.cgroups),
        (State::Running, Some(dirs))
    );
    assert_eq!(e2.stats().live_shims, 19);

    // Delete removes the record and its directory.
    e2.delete("c6").unwrap();
    assert!(e2.get("c6").is_none());
    assert!(!store.dir("c6").exists());
}

#[test]
fn queued_jobs_survive_a_shutdown_and_run_in_the_next_engine() {
    let bundle = Bundle::new();
    let state = tempfile::tempdir().unwrap();
    let launcher = CountingLauncher::new(Duration::from_millis(30));
    let e = Engine::new(config(state.path(), 1), launcher).unwrap();
    for i in 0..5 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    let left = e.shutdown();
    assert!(!left.is_empty());
    drop(e);
    let e2 = Engine::new(config(state.path(), 2), Arc::new(NoopLauncher)).unwrap();
    assert!(wait_until(Duration::from_secs(10), || count(
        &e2,
        State::Running
    ) == 5));
    assert_eq!(e2.list().len(), 5);
}

#[test]
fn illegal_changes_are_refused_and_change_nothing() {
    let bundle = Bundle::new();
    let state = tempfile::tempdir().unwrap();
    let e = Engine::new(config(state.path(), 2), Arc::new(NoopLauncher)).unwrap();
    e.submit(bundle.spec("a")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || count(
        &e,
        State::Running
    ) == 1));
    let before = e.get("a").unwrap();
    for change in [
        Change::Created {
            pid: 1,
            shim_pid: None,
            cgroups: None,
        },
        Change::Dequeued,
        Change::Resumed,
        Change::Started,
        Change::Deleted,
    ] {
        match e.apply("a", change.clone()) {
            Err(ChangeError::Illegal(err)) => {
                assert_eq!(err.from, State::Running);
                assert_eq!(err.to, change.target());
            }
            other => panic!("{change:?}: {other:?}"),
        }
    }
    assert_eq!(e.get("a").unwrap(), before);
    assert_eq!(Store::new(state.path()).load("a").unwrap(), before);
    assert_eq!(
        e.apply("nope", Change::Paused).unwrap_err(),
        ChangeError::NotFound("nope".into())
    );
    // A duplicate shim event is not an error: the record already says so.
    assert!(e.observe("a", Observation::Started).unwrap().is_none());
    // OOM is an event, not a state change.
    let r = e.observe("a", Observation::Oom).unwrap().unwrap();
    assert_eq!(r.state, State::Running);
    // Legal: stop then delete.
    e.apply("a", Change::Exited { code: 0, at: None }).unwrap();
    e.delete("a").unwrap();
    assert!(e.list().is_empty());
}

#[test]
fn a_lost_shim_fails_a_live_container_or_stops_it_with_the_exit_it_recorded() {
    let bundle = Bundle::new();
    let e = Engine::new(Config::default(), Arc::new(NoopLauncher)).unwrap();
    for id in ["lost", "exited", "stopped"] {
        e.submit(bundle.spec(id)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || count(
        &e,
        State::Running
    ) == 3));
    let lost = |exit| Observation::Lost {
        exit,
        reason: "its shim died; its processes were killed".into(),
    };
    let failed = e.observe("lost", lost(None)).unwrap().unwrap();
    assert_eq!(failed.state, State::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("its shim died; its processes were killed")
    );
    let r = e.observe("exited", lost(Some(exit(3, "2026-01-01T00:00:02Z"))));
    let stopped = r.unwrap().unwrap();
    assert_eq!(
        (stopped.state, stopped.exit_code),
        (State::Stopped, Some(3))
    );
    // A container that stopped already keeps what its record says.
    e.observe(
        "stopped",
        Observation::Exited(exit(0, "2026-01-01T00:00:03Z")),
    )
    .unwrap();
    assert!(e.observe("stopped", lost(None)).unwrap().is_none());
    let kept = e.get("stopped").unwrap();
    assert_eq!((kept.state, kept.exit_code), (State::Stopped, Some(0)));
    assert_eq!(e.stats().live_shims, 2);
}
