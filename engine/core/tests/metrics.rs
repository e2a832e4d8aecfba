//! The engine's metrics, read back through a debugging recorder (installed globally, so
//! this test has its own binary).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{Config, Engine, State};
use common::{count, wait_until, Bundle, CountingLauncher};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn starts_failures_latencies_and_gauges_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    berth_engine::metrics::describe();

    let bundle = Bundle::new();
    let mut l = CountingLauncher {
        delay: Duration::from_millis(1),
        ..Default::default()
    };
    l.fail.insert("c7".into());
    let config = Config {
        workers: 4,
        ..Config::default()
    };
    let e = Engine::new(config, Arc::new(l)).unwrap();
    for i in 0..20 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || count(
        &e,
        State::Running
    ) == 19
        && count(&e, State::Failed) == 1));
    assert!(wait_until(Duration::from_secs(5), || e.in_flight() == 0));

    let mut seen: HashMap<String, DebugValue> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        seen.insert(name, value);
    }
    let counter = |n: &str| match seen.get(n) {
        Some(DebugValue::Counter(v)) => *v,
        other => panic!("{n}: {other:?} in {:?}", seen.keys()),
    };
    let gauge = |n: &str| match seen.get(n) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{n}: {other:?} in {:?}", seen.keys()),
    };
    let histogram = |n: &str| match seen.get(n) {
        Some(DebugValue::Histogram(v)) => v.len(),
        other => panic!("{n}: {other:?} in {:?}", seen.keys()),
    };
    assert_eq!(counter("berth_starts_total"), 19);
    assert_eq!(counter("berth_start_failures_total{reason=create}"), 1);
    assert_eq!(histogram("berth_queue_wait_seconds"), 20);
    assert_eq!(histogram("berth_start_latency_seconds"), 19);
    assert_eq!(gauge("berth_containers{state=running}"), 19.0);
    assert_eq!(gauge("berth_containers{state=failed}"), 1.0);
    assert_eq!(gauge("berth_containers{state=queued}"), 0.0);
    assert_eq!(gauge("berth_live_shims"), 19.0);
    assert_eq!(gauge("berth_busy_workers"), 0.0);
    assert_eq!(gauge("berth_queue_depth"), 0.0);
    assert_eq!(gauge("berth_workers"), 4.0);
    e.set_workers(6).unwrap();
    let workers = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(k, _, _, v)| (k.key().name() == "berth_workers").then_some(v));
    assert!(matches!(workers, Some(DebugValue::Gauge(v)) if v.into_inner() == 6.0));
}
