//! `berth-loadtest` end to end (as root): the built harness runs small bursts against
//! its own berthd and must report them correctly and leave nothing behind — also when
//! every start fails, and when it is interrupted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{harness, json_of, Scratch};

/// Nothing of run `run` remains: no shim, no cgroup directory, no temp dir.
fn assert_nothing_left(scratch: &Scratch, run: &str) {
    let marker = format!("lt-{run}-");
    let shims: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("berth-shim") && c.contains(&marker))
        .collect();
    assert!(shims.is_empty(), "shims left: {shims:?}");
    let cgroups: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(format!("berth-lt-{run}")))
        .filter(|p| p.exists())
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    scratch.assert_empty();
}

fn assert_ordered(report: &Value, key: &str) {
    let p = &report[key];
    let v: Vec<f64> = ["p50", "p90", "p99", "max"]
        .iter()
        .map(|k| p[k].as_f64().unwrap_or_else(|| panic!("{key}.{k} in {p}")))
        .collect();
    assert!(v[0] > 0.0, "{key}: {p}");
    assert!(v.windows(2).all(|w| w[0] <= w[1]), "{key} not ordered: {p}");
}

#[test]
fn a_small_burst_runs_every_container_and_cleans_up() {
    let scratch = Scratch::new("burst");
    let out = harness(
        &scratch,
        &[
            "--containers",
            "30",
            "--concurrency",
            "10",
            "--check",
            "3",
            "--json",
        ],
    )
    .output()
    .unwrap();
    let report = json_of(&out);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["containers"], 30, "{report}");
    assert_eq!(report["running"], 30, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["failures"], serde_json::json!({}), "{report}");
    assert!(
        report["starts_per_second"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    for key in ["latency_ms", "queue_wait_ms", "start_ms"] {
        assert_ordered(&report, key);
    }
    assert_eq!(report["latency_ms"]["count"], 30, "{report}");
    // Its stderr is a pipe, not a terminal: progress comes as plain lines.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("berth-loadtest:") && l.contains("/30 settled, answered")),
        "no progress line on a pipe: {stderr}"
    );
    assert_eq!(report["checked"], 3, "{report}");
    assert_eq!(report["check_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["cleanup"]["deleted"], 30, "{report}");
    assert_eq!(report["left_behind"], serde_json::json!([]), "{report}");
    assert!(report["memory"]["berthd_peak_bytes"].as_u64().unwrap() > 0);
    assert!(report["memory"]["shims_peak_count"].as_u64().unwrap() > 0);
    assert!(report["cpu"]["machine_busy_seconds"].as_f64().unwrap() > 0.0);
    assert_nothing_left(&scratch, report["run"].as_str().unwrap());
}

#[test]
fn a_batched_burst_runs_every_container() {
    let scratch = Scratch::new("batch");
    let out = harness(
        &scratch,
        &[
            "--containers",
            "20",
            "--concurrency",
            "2",
            "--batch",
            "7",
            "--json",
        ],
    )
    .output()
    .unwrap();
    let report = json_of(&out);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["settings"]["batch"], 7, "{report}");
    assert_eq!(report["running"], 20, "{report}");
    assert_eq!(report["accept_ms"]["count"], 20, "{report}");
    assert_eq!(report["cleanup"]["deleted"], 20, "{report}");
    assert_nothing_left(&scratch, report["run"].as_str().unwrap());
}

#[test]
fn failed_starts_are_reported_by_reason_and_fail_the_run() {
    let scratch = Scratch::new("fail");
    // A "runtime" that refuses everything: every start fails.
    let out = harness(
        &scratch,
        &[
            "--containers",
            "5",
            "--concurrency",
            "5",
            "--runtime",
            "/bin/false",
            "--json",
        ],
    )
    .output()
    .unwrap();
    let report = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["running"], 0, "{report}");
    assert_eq!(report["failed"], 5, "{report}");
    let reasons = report["failures"].as_object().unwrap();
    assert_eq!(
        reasons.values().filter_map(Value::as_u64).sum::<u64>(),
        5,
        "{report}"
    );
    assert!(
        reasons
            .keys()
            .all(|r| !r.contains(&format!("lt-{}-", report["run"].as_str().unwrap()))),
        "{report}"
    );
    assert_eq!(report["ok"], false);
    assert_nothing_left(&scratch, report["run"].as_str().unwrap());
}

#[test]
fn an_interrupted_burst_still_removes_every_container() {
    let scratch = Scratch::new("sigint");
    let mut child = harness(&scratch, &["--containers", "200", "--concurrency", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once some containers exist (or the burst is over: then it just ends).
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_shims_under(&scratch.0) < 5 && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(130) | Some(0)),
        "{:?}: {stderr}",
        out.status
    );
    if out.status.code() == Some(130) {
        assert!(stderr.contains("nothing left behind"), "{stderr}");
    }
    scratch.assert_empty();
    assert_eq!(count_shims_under(&scratch.0), 0, "{stderr}");
}

/// Shims whose command line names a path under `dir` (the harness's temp dir).
fn count_shims_under(dir: &Path) -> usize {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("berth-shim") && c.contains(&needle))
        .count()
}

#[test]
fn a_burst_from_an_image_in_a_registry() {
    use berth_testkit::image::ImageBuilder;
    use berth_testkit::registry::{Mode, Registry};

    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/busybox:1");
    let image = format!("{}/test/busybox:1", reg.host());
    let scratch = Scratch::new("image");
    let out = harness(
        &scratch,
        &["-n", "30", "-c", "5", "--image", &image, "--json"],
    )
    .output()
    .unwrap();
    let report = json_of(&out);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["settings"]["image"], image.as_str(), "{report}");
    assert_eq!(report["running"], 30, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["failures"], serde_json::json!({}), "{report}");
    assert_eq!(report["cleanup"]["deleted"], 30, "{report}");
    assert_eq!(report["left_behind"], serde_json::json!([]), "{report}");
    assert_nothing_left(&scratch, report["run"].as_str().unwrap());
}
