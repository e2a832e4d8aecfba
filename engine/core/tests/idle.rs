//! Idle workers park: an engine with nothing to do uses no CPU. Alone in its own test
//! binary so no other test's threads are measured.

mod common;

use std::time::Duration;

use berth_engine::{Config, Engine, State};
use common::{count, wait_until, Bundle, CountingLauncher};

/// CPU time (ns) used so far by this process's start-worker threads.
fn worker_cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("berth-start") {
            continue;
        }
        // schedstat: time on CPU (ns), wait time (ns), timeslices.
        let s = std::fs::read_to_string(dir.join("schedstat")).unwrap();
        total += s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
    }
    total
}

#[test]
fn idle_workers_use_no_cpu() {
    let bundle = Bundle::new();
    let launcher = CountingLauncher::new(Duration::from_millis(1));
    let e = Engine::new(Config::default(), launcher).unwrap();
    // Work once, so the workers have been through the park/wake cycle.
    for i in 0..50 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || count(
        &e,
        State::Running
    ) == 50));
    std::thread::sleep(Duration::from_millis(50));

    let before = worker_cpu_ns();
    std::thread::sleep(Duration::from_millis(500));
    let used = worker_cpu_ns() - before;
    eprintln!("10 idle workers used {used} ns of CPU in 500 ms");
    // 10 parked threads over 500 ms: nothing (a spinning one would use ~500 ms).
    assert!(
        used < 2_000_000,
        "idle workers used {used} ns of CPU in 500 ms"
    );
    assert_eq!(e.stats().busy, 0);

    // And they still wake up.
    e.submit(bundle.spec("again")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || e
        .get("again")
        .is_some_and(|r| r.state == State::Running)));
}
