//! The start queue and the worker pool, through the engine with a test launcher.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{Config, Engine, State, SubmitError};
use common::{count, wait_until, Bundle, CountingLauncher};

fn engine(workers: usize, launcher: Arc<CountingLauncher>) -> Engine {
    let config = Config {
        workers,
        ..Config::default()
    };
    Engine::new(config, launcher).unwrap()
}

#[test]
fn two_hundred_jobs_with_ten_workers_all_complete_never_more_than_ten_at_once() {
    let bundle = Bundle::new();
    let launcher = CountingLauncher::new(Duration::from_millis(5));
    let e = engine(10, Arc::clone(&launcher));
    for i in 0..200 {
        let r = e.submit(bundle.spec(format!("c{i}"))).unwrap();
        assert_eq!(r.state, State::Queued);
    }
    assert!(wait_until(Duration::from_secs(20), || count(
        &e,
        State::Running
    ) == 200));
    let max = launcher.max.load(SeqCst);
    assert!(max <= 10, "{max} launches ran at once with 10 workers");
    assert!(max >= 5, "only {max} launches ran at once with 10 workers");
    assert_eq!(launcher.done.load(SeqCst), 200);
    for r in e.list() {
        let t = &r.timestamps;
        assert!(t.queued <= t.dequeued && t.dequeued <= t.created && t.created <= t.started);
        assert!(r.queue_wait().is_some() && r.start_latency().is_some());
        assert_eq!((r.pid, r.shim_pid), (Some(1000), Some(999)));
    }
    let stats = e.stats();
    assert_eq!(
        stats.by_state[State::Running.index()],
        (State::Running, 200)
    );
    assert_eq!(stats.live_shims, 200);
    assert_eq!((stats.busy, stats.queued_jobs), (0, 0));
}

#[test]
fn a_failing_job_in_the_middle_fails_alone() {
    let bundle = Bundle::new();
    let mut l = CountingLauncher {
        delay: Duration::from_millis(1),
        ..Default::default()
    };
    l.fail.insert("c50".into());
    l.panic.insert("c70".into());
    let e = engine(4, Arc::new(l));
    for i in 0..100 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    // Bad input in the middle is refused at once and records nothing.
    let bad = e.submit(bundle.spec("../etc")).unwrap_err();
    assert_eq!(bad.code(), "invalid_id");
    assert!(e.get("../etc").is_none());
    assert!(wait_until(Duration::from_secs(20), || {
        count(&e, State::Running) == 98 && count(&e, State::Failed) == 2
    }));
    let c50 = e.get("c50").unwrap();
    assert_eq!(c50.state, State::Failed);
    assert_eq!(c50.error.as_deref(), Some("c50: bad spec"));
    assert!(c50.timestamps.finished.is_some());
    let c70 = e.get("c70").unwrap();
    assert_eq!(c70.error.as_deref(), Some("the launcher panicked"));
    // The pool is whole afterwards.
    e.submit(bundle.spec("after")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || e
        .get("after")
        .is_some_and(|r| r.state == State::Running)));
}

#[test]
fn changing_the_worker_count_mid_burst_takes_effect() {
    let bundle = Bundle::new();
    let launcher = CountingLauncher::new(Duration::from_millis(10));
    let e = engine(10, Arc::clone(&launcher));
    for i in 0..400 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || launcher
        .done
        .load(SeqCst)
        >= 30));
    assert!(launcher.max.load(SeqCst) > 3);

    // Shrink: once the surplus finished their job, never more than 3 at once.
    e.set_workers(3).unwrap();
    assert_eq!(e.workers(), 3);
    assert!(wait_until(Duration::from_secs(5), || launcher
        .current
        .load(SeqCst)
        <= 3));
    launcher.reset_max();
    let before = launcher.done.load(SeqCst);
    assert!(wait_until(Duration::from_secs(10), || launcher
        .done
        .load(SeqCst)
        >= before + 60));
    let shrunk = launcher.max.load(SeqCst);
    assert!(shrunk <= 3, "{shrunk} at once after shrinking to 3");
    assert!(e.in_flight() <= 3);

    // Grow: more at once again, at most the new count.
    e.set_workers(8).unwrap();
    launcher.reset_max();
    let before = launcher.done.load(SeqCst);
    assert!(wait_until(Duration::from_secs(10), || launcher
        .done
        .load(SeqCst)
        >= before + 80));
    let grown = launcher.max.load(SeqCst);
    assert!(
        (4..=8).contains(&grown),
        "{grown} at once after growing to 8"
    );

    assert!(wait_until(Duration::from_secs(30), || count(
        &e,
        State::Running
    ) == 400));
    assert!(e.set_workers(0).is_err());
}

#[test]
fn a_full_queue_is_a_typed_error_and_records_nothing() {
    let bundle = Bundle::new();
    let gate = Arc::new(parking_lot::Mutex::new(()));
    let held = gate.lock();
    let g2 = Arc::clone(&gate);
    let launcher = move |job: &berth_engine::Job| {
        drop(g2.lock());
        berth_engine::NoopLauncher.launch(job)
    };
    use berth_engine::Launcher;
    let config = Config {
        workers: 1,
        max_queued: 2,
        ..Config::default()
    };
    let e = Engine::new(config, Arc::new(launcher)).unwrap();
    e.submit(bundle.spec("a")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || e.in_flight() == 1));
    e.submit(bundle.spec("b")).unwrap();
    e.submit(bundle.spec("c")).unwrap();
    let err = e.submit(bundle.spec("d")).unwrap_err();
    assert_eq!(err, SubmitError::QueueFull { capacity: 2 });
    assert_eq!(err.code(), "queue_full");
    assert!(e.get("d").is_none());
    assert_eq!(e.list().len(), 3);
    // Duplicates and bad specs are refused too.
    assert_eq!(
        e.submit(bundle.spec("b")).unwrap_err(),
        SubmitError::Exists("b".into())
    );
    let missing = e
        .submit(berth_engine::ContainerSpec::bundle(
            "m",
            "/nonexistent/bundle",
        ))
        .unwrap_err();
    assert_eq!(missing.code(), "invalid_spec");
    assert!(
        missing
            .to_string()
            .contains("/nonexistent/bundle/config.json"),
        "{missing}"
    );
    let relative = e
        .submit(berth_engine::ContainerSpec::bundle("r", "rel"))
        .unwrap_err();
    assert!(relative.to_string().contains("absolute"), "{relative}");
    let long = e.submit(bundle.spec("x".repeat(65))).unwrap_err();
    assert_eq!(long.code(), "invalid_id");
    drop(held);
    assert!(wait_until(Duration::from_secs(5), || count(
        &e,
        State::Running
    ) == 3));
    // Room again.
    e.submit(bundle.spec("d")).unwrap();
}

#[test]
fn shutdown_leaves_queued_jobs_queued_and_refuses_new_ones() {
    let bundle = Bundle::new();
    let launcher = CountingLauncher::new(Duration::from_millis(20));
    let e = engine(1, Arc::clone(&launcher));
    for i in 0..5 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(5), || e.in_flight() == 1));
    let left = e.shutdown();
    assert!(!left.is_empty() && left.len() <= 4, "{left:?}");
    for id in &left {
        assert_eq!(e.get(id).unwrap().state, State::Queued);
    }
    assert_eq!(
        e.submit(bundle.spec("late")).unwrap_err(),
        SubmitError::ShuttingDown
    );
}
