//! `/metrics` beyond the engine's counters: berthd's process metrics and per-container
//! cgroup metrics for a real running container, gone once the container is deleted,
//! and the whole exposition accepted by promtool.

use berth_testkit::daemon as harness;

use std::time::{Duration, Instant};

use berth_testkit::bundle;
use harness::{promtool_check, Daemon, Scratch};
use serde_json::json;

/// The value of the sample `series` (name and labels exactly as written) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Every series an alert or `rate()` will use exists on an idle daemon's first scrape,
/// at zero: the engine's counters and gauges (each failure reason, each state), its
/// histograms (empty), and the request counter per route and documented status.
#[test]
fn an_idle_berthd_exports_every_series_at_zero() {
    let scratch = Scratch::new("metrics-idle");
    let d = Daemon::start(&scratch, &[], &[]);
    let text = d.call("GET", "/metrics", None).text;
    let mut series = vec![
        "berth_starts_total".to_owned(),
        "berth_jobs_rejected_total".into(),
        "berth_oom_events_total".into(),
        "berth_persist_errors_total".into(),
        "berth_queue_depth".into(),
        "berth_busy_workers".into(),
        "berth_live_shims".into(),
        "berth_queue_wait_seconds_count".into(),
        "berth_start_latency_seconds_count".into(),
        "berth_start_latency_seconds_bucket{le=\"0.001\"}".into(),
        "berth_http_requests_total{route=\"/v1/containers\",status=\"202\"}".into(),
        "berth_http_requests_total{route=\"/v1/containers/{id}\",status=\"500\"}".into(),
        "berth_http_request_duration_seconds_count{route=\"/v1/containers\"}".into(),
    ];
    for reason in ["spawn", "create", "shim_gone", "timeout", "panic"] {
        series.push(format!("berth_start_failures_total{{reason=\"{reason}\"}}"));
    }
    for state in [
        "queued", "creating", "created", "running", "paused", "stopped", "failed",
    ] {
        series.push(format!("berth_containers{{state=\"{state}\"}}"));
    }
    for s in &series {
        assert_eq!(sample(&text, s), Some(0.0), "{s} not at 0 in:\n{text}");
    }
    assert_eq!(sample(&text, "berth_workers"), Some(10.0), "{text}");
    promtool_check(&text);
}

#[test]
fn process_and_container_metrics() {
    let scratch = Scratch::new("metrics");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("metrics-{}", std::process::id());
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running&timeout=60",
        Some(&json!({"id": id, "bundle": b}).to_string()),
    );
    assert!(r.status == 201 || r.status == 200, "{r:?}");
    assert_eq!(r.json["state"], "running", "{r:?}");

    let r = d.call("GET", "/metrics", None);
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.text;
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
    ] {
        let v = sample(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        assert!(v >= 0.0, "{name} {v}");
    }
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter"),
        "{text}"
    );
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(sample(&text, "process_threads").unwrap() >= 1.0);

    let label = format!("{{id=\"{id}\"}}");
    let memory = sample(&text, &format!("container_memory_usage_bytes{label}"));
    assert!(
        memory.is_some_and(|m| m > 0.0),
        "memory {memory:?} in:\n{text}"
    );
    let pids = sample(&text, &format!("container_pids{label}"));
    assert!(pids.is_some_and(|p| p >= 1.0), "pids {pids:?} in:\n{text}");
    let cpu = sample(&text, &format!("container_cpu_usage_seconds_total{label}"));
    assert!(cpu.is_some_and(|c| c >= 0.0), "cpu {cpu:?} in:\n{text}");
    assert!(text.contains("# TYPE container_cpu_usage_seconds_total counter"));
    assert!(sample(&text, &format!("container_spec_memory_limit_bytes{label}")).is_some());
    promtool_check(&text);

    // Paused containers are still measured.
    let r = d.call("POST", &format!("/v1/containers/{id}/pause"), None);
    assert!(r.status < 300, "{r:?}");
    let text = d.call("GET", "/metrics", None).text;
    assert!(
        sample(&text, &format!("container_pids{label}")).is_some(),
        "{text}"
    );
    let _ = d.call("POST", &format!("/v1/containers/{id}/resume"), None);

    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = d.call("GET", "/metrics", None).text;
        if !text.contains(&id) {
            assert!(sample(&text, "process_threads").is_some());
            promtool_check(&text);
            break;
        }
        assert!(Instant::now() < deadline, "{id} still in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn containers_of_an_external_runtime_are_measured_too() {
    let runc = std::path::Path::new("/usr/sbin/runc");
    if !runc.is_file() {
        eprintln!("runc not installed: the external-runtime case is not checked");
        return;
    }
    let scratch = Scratch::new("metrics-runc");
    let d = Daemon::start(&scratch, &["--runtime", runc.to_str().unwrap()], &[]);
    let id = format!("metrics-runc-{}", std::process::id());
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running&timeout=60",
        Some(&json!({"id": id, "bundle": b}).to_string()),
    );
    assert_eq!(r.json["state"], "running", "{r:?}");
    let text = d.call("GET", "/metrics", None).text;
    let label = format!("{{id=\"{id}\"}}");
    let pids = sample(&text, &format!("container_pids{label}"));
    assert!(pids.is_some_and(|p| p >= 1.0), "pids {pids:?} in:\n{text}");
    let memory = sample(&text, &format!("container_memory_usage_bytes{label}"));
    assert!(
        memory.is_some_and(|m| m > 0.0),
        "memory {memory:?} in:\n{text}"
    );
    promtool_check(&text);
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    let text = d.call("GET", "/metrics", None).text;
    assert!(!text.contains(&id), "{text}");
}
