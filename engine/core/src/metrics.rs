//! The engine's metrics, through the `metrics` crate facade. No exporter here: the
//! daemon installs `metrics-exporter-prometheus` (with histogram buckets from 1 ms to
//! 10 s) and then calls [`describe`].

/// Counter: containers that reached `created`/`running` through a worker.
pub const STARTS: &str = "berth_starts_total";
/// Counter, label `reason`: starts that failed (`spawn`, `create`, `panic`, …).
pub const FAILURES: &str = "berth_start_failures_total";
/// Every `reason` a start failure is counted under (the `kind`s of
/// [`crate::launcher::LaunchError`]), registered at zero so alerts see no gap.
pub const FAILURE_REASONS: &[&str] = &[
    "spawn",
    "bundle",
    "create",
    "refused",
    "shim_gone",
    "timeout",
    "unsupported",
    "panic",
];
/// Counter: submissions refused because the queue was full.
pub const REJECTED: &str = "berth_jobs_rejected_total";
/// Histogram, seconds: from queued to taken by a worker.
pub const QUEUE_WAIT: &str = "berth_queue_wait_seconds";
/// Histogram, seconds: from taken by a worker to running (or created).
pub const START_LATENCY: &str = "berth_start_latency_seconds";
/// Gauge: jobs waiting in the start queue.
pub const QUEUE_DEPTH: &str = "berth_queue_depth";
/// Gauge: workers running a job now.
pub const BUSY_WORKERS: &str = "berth_busy_workers";
/// Gauge: workers wanted.
pub const WORKERS: &str = "berth_workers";
/// Gauge, label `state`: containers by state.
pub const CONTAINERS: &str = "berth_containers";
/// Gauge: shims the engine believes alive.
pub const LIVE_SHIMS: &str = "berth_live_shims";
/// Counter: OOM kills reported by shims.
pub const OOM: &str = "berth_oom_events_total";
/// Counter: state changes that could not be written to the state directory.
pub const PERSIST_ERRORS: &str = "berth_persist_errors_total";

/// Histogram buckets (seconds) resolving 1 ms to 10 s, for the exporter.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Register help text and units with the installed recorder, and every series at
/// zero ([`register`]).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(STARTS, "Containers started by the start workers.");
    describe_counter!(FAILURES, "Container starts that failed, by reason.");
    describe_counter!(
        REJECTED,
        "Start requests refused because the queue was full."
    );
    describe_histogram!(
        QUEUE_WAIT,
        Unit::Seconds,
        "Time a start job waited in the queue."
    );
    describe_histogram!(
        START_LATENCY,
        Unit::Seconds,
        "Time from a worker taking a start job to the container running."
    );
    describe_gauge!(QUEUE_DEPTH, "Start jobs waiting in the queue.");
    describe_gauge!(BUSY_WORKERS, "Start workers running a job.");
    describe_gauge!(WORKERS, "Start workers configured.");
    describe_gauge!(CONTAINERS, "Containers by state.");
    describe_gauge!(LIVE_SHIMS, "Shims the engine believes alive.");
    describe_counter!(OOM, "OOM kills reported by shims.");
    describe_counter!(
        PERSIST_ERRORS,
        "State changes that could not be written to the state directory."
    );
    register();
}

/// Make every series exist from the first scrape (counters at 0, gauges unchanged,
/// histograms empty): a series that appears only after traffic leaves `rate()` and
/// alerts a gap. Labelled series: each failure `reason` and each live state.
pub fn register() {
    use metrics::{counter, gauge, histogram};
    for name in [STARTS, REJECTED, OOM, PERSIST_ERRORS] {
        counter!(name).increment(0);
    }
    for reason in FAILURE_REASONS {
        counter!(FAILURES, "reason" => *reason).increment(0);
    }
    for name in [QUEUE_DEPTH, BUSY_WORKERS, WORKERS, LIVE_SHIMS] {
        gauge!(name).increment(0.0);
    }
    for state in crate::State::ALL
        .iter()
        .filter(|s| **s != crate::State::Deleted)
    {
        gauge!(CONTAINERS, "state" => state.as_str()).increment(0.0);
    }
    for name in [QUEUE_WAIT, START_LATENCY] {
        // A handle registers the histogram; it renders with empty buckets.
        let _ = histogram!(name);
    }
}
