//! What a run measured, for people (a summary) and for machines (JSON).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::api::{self, Record};
use crate::burst::Outcome;
use crate::stats::Percentiles;

/// Memory figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// berthd's peak resident set (VmHWM), bytes.
    pub berthd_peak_bytes: Option<u64>,
    /// Total resident set of the run's shims after the burst, bytes.
    pub shims_peak_total_bytes: u64,
    /// Total private memory of the shims after the burst (pages mapped by no other
    /// process, from smaps_rollup), bytes: what they cost beyond what they share.
    pub shims_peak_private_bytes: u64,
    /// Shims alive after the burst.
    pub shims_peak_count: usize,
    /// `shims_peak_private_bytes / shims_peak_count`.
    pub per_shim_private_bytes: Option<u64>,
}

/// Bytes in MiB.
fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Memory {
    /// The summary's memory lines: the shims' private memory is what they cost; their
    /// resident sets summed count every shared page (binary, libraries, pages shared
    /// with the spawner) once per shim, so that sum is not memory in use.
    fn summary(&self) -> String {
        let per_shim = self
            .per_shim_private_bytes
            .map_or("-".into(), |b| format!("{:.0} KiB each", b as f64 / 1024.0));
        format!(
            "  memory          berthd peak {}; {} shims: {:.1} MiB private ({per_shim}: \
             pages only they map, what they cost)\n                  \
             their resident sets sum to {:.1} MiB, shared pages counted once per shim\n",
            self.berthd_peak_bytes
                .map_or("?".into(), |b| format!("{:.1} MiB", mb(b))),
            self.shims_peak_count,
            mb(self.shims_peak_private_bytes),
            mb(self.shims_peak_total_bytes),
        )
    }
}

/// CPU time spent during the burst (first request to last `running`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cpu {
    /// berthd's user + system time, seconds.
    pub berthd_seconds: Option<f64>,
    /// Busy CPU time of the whole machine (all cores), seconds.
    pub machine_busy_seconds: f64,
    /// Wall time × cores of the same window, seconds.
    pub machine_total_seconds: f64,
    /// This harness's own user + system time, seconds.
    pub harness_seconds: f64,
}

/// The settings a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Concurrent clients.
    pub concurrency: usize,
    /// berthd's start workers (own daemon only).
    pub workers: Option<usize>,
    /// Runtime.
    pub runtime: String,
    /// Batch size, if batched.
    pub batch: Option<usize>,
    /// `own` (a private berthd) or the `--host` socket.
    pub daemon: String,
    /// The image the containers ran from (`--image`); none: a root filesystem.
    pub image: Option<String>,
    /// The network every container was on (`--network`); none: no network.
    pub network: Option<String>,
    /// Whether each container published a port (`--publish`).
    pub published: bool,
}

/// One run's report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Run id (container ids are `lt-<run>-<n>`).
    pub run: String,
    /// Containers asked for.
    pub containers: usize,
    /// Containers seen running.
    pub running: usize,
    /// Containers that did not start.
    pub failed: usize,
    /// Failures by reason.
    pub failures: BTreeMap<String, usize>,
    /// Running containers ÷ seconds from the first request to the last `running`.
    pub starts_per_second: f64,
    /// Seconds from the first request to the last `running`.
    pub seconds: f64,
    /// Seconds from the first request to the last answer of a create.
    pub submit_seconds: f64,
    /// Request sent → container running (event time), ms.
    pub latency_ms: Percentiles,
    /// Request sent → record queued (the API accepting the create), ms.
    pub accept_ms: Percentiles,
    /// Record queued → dequeued (waiting for a start worker), ms.
    pub queue_wait_ms: Percentiles,
    /// Record dequeued → started (the start itself), ms.
    pub start_ms: Percentiles,
    /// Memory.
    pub memory: Memory,
    /// CPU.
    pub cpu: Cpu,
    /// `--check`: containers verified and what was wrong.
    pub checked: usize,
    /// Problems `--check` found.
    pub check_errors: Vec<String>,
    /// Deletes through the API and their time.
    pub cleanup: crate::cleanup::Cleaned,
    /// What was left behind after cleanup (empty is good).
    pub left_behind: Vec<String>,
    /// `--keep`: nothing was cleaned up.
    pub kept: bool,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    /// Settings.
    pub settings: Settings,
    /// Seconds after the first request at which each container ran (sorted), for plots.
    #[serde(skip)]
    pub running_at: Vec<f64>,
    /// Every request→running latency, ms, for plots.
    #[serde(skip)]
    pub latencies: Vec<f64>,
}

fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl RunReport {
    /// Build the timing part of a report from the burst and the records.
    pub fn new(
        run: &str,
        outcome: &Outcome,
        records: &[Record],
        prefix: &str,
        settings: Settings,
    ) -> Self {
        let t0 = outcome.t0;
        let mut running_at: Vec<f64> = outcome
            .tracks
            .iter()
            .filter_map(|t| t.running.map(|r| secs_between(t0, r)))
            .collect();
        running_at.sort_by(f64::total_cmp);
        let latencies: Vec<f64> = outcome
            .tracks
            .iter()
            .filter_map(|t| Some(secs_between(t.sent?, t.running?) * 1e3))
            .collect();
        let mut failures = BTreeMap::new();
        for t in &outcome.tracks {
            if let Some(f) = &t.failed {
                *failures.entry(reason_class(f, prefix)).or_insert(0) += 1;
            }
        }
        let running = running_at.len();
        let seconds = running_at.last().copied().unwrap_or(0.0);
        let ms = |a: &Option<String>, b: &Option<String>| {
            Some(secs_between(api::instant(a)?, api::instant(b)?) * 1e3)
        };
        let accept: Vec<f64> = records
            .iter()
            .filter_map(|r| {
                let i: usize = r.id.strip_prefix(prefix)?.parse().ok()?;
                let sent = outcome.tracks.get(i)?.sent?;
                Some(secs_between(sent, api::instant(&r.timestamps.queued)?) * 1e3)
            })
            .collect();
        let queue: Vec<f64> = records
            .iter()
            .filter_map(|r| ms(&r.timestamps.queued, &r.timestamps.dequeued))
            .collect();
        let start: Vec<f64> = records
            .iter()
            .filter_map(|r| ms(&r.timestamps.dequeued, &r.timestamps.started))
            .collect();
        RunReport {
            run: run.to_owned(),
            containers: outcome.tracks.len(),
            running,
            failed: outcome.tracks.len() - running,
            failures,
            starts_per_second: if seconds > 0.0 {
                running as f64 / seconds
            } else {
                0.0
            },
            seconds,
            submit_seconds: outcome.last_answer.map_or(0.0, |l| secs_between(t0, l)),
            latency_ms: Percentiles::of(&latencies),
            accept_ms: Percentiles::of(&accept),
            queue_wait_ms: Percentiles::of(&queue),
            start_ms: Percentiles::of(&start),
            memory: Memory::default(),
            cpu: Cpu::default(),
            checked: 0,
            check_errors: Vec::new(),
            cleanup: Default::default(),
            left_behind: Vec::new(),
            kept: false,
            error: outcome.stopped_by.as_ref().map(ToString::to_string),
            settings,
            running_at,
            latencies,
        }
    }

    /// Whether the run is a success: all running, checks passed, nothing left.
    pub fn ok(&self) -> bool {
        self.failed == 0
            && self.check_errors.is_empty()
            && self.left_behind.is_empty()
            && self.error.is_none()
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let pct = |p: &Percentiles| {
            format!(
                "p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  max {:>8.1} ms",
                p.p50, p.p90, p.p99, p.max
            )
        };
        let st = &self.settings;
        s += &format!(
            "run {}: {} containers{}, {} clients{}, runtime {}, {} daemon{}\n",
            self.run,
            self.containers,
            st.image
                .as_ref()
                .map_or(String::new(), |i| format!(" from image {i}")),
            st.concurrency,
            st.batch
                .map_or(String::new(), |b| format!(" (batches of {b})")),
            st.runtime,
            st.daemon,
            st.workers
                .map_or(String::new(), |w| format!(" with {w} workers")),
        );
        s += &format!(
            "  network         {}\n",
            match &st.network {
                Some(n) if st.published => format!(
                    "{n} (in the run's own namespace), one published port each \
                     (8080/tcp on host ports {}..)",
                    crate::cli::PUBLISH_BASE
                ),
                Some(n) => format!("{n} (in the run's own namespace), no published port"),
                None => "none".to_owned(),
            }
        );
        s += &format!(
            "  starts/second   {:>8.1}   ({} running in {:.2} s; creates answered in {:.2} s)\n",
            self.starts_per_second, self.running, self.seconds, self.submit_seconds
        );
        s += &format!("  request→running {}\n", pct(&self.latency_ms));
        s += &format!("    accept        {}\n", pct(&self.accept_ms));
        s += &format!("    queue wait    {}\n", pct(&self.queue_wait_ms));
        s += &format!("    start         {}\n", pct(&self.start_ms));
        s += &self.memory.summary();
        let c = &self.cpu;
        s += &format!(
            "  cpu             berthd {}, machine busy {:.2} of {:.2} s, harness {:.2} s\n",
            c.berthd_seconds.map_or("?".into(), |x| format!("{x:.2} s")),
            c.machine_busy_seconds,
            c.machine_total_seconds,
            c.harness_seconds
        );
        if self.failed > 0 {
            s += &format!("  failures        {}\n", self.failed);
            let mut reasons: Vec<(&String, &usize)> = self.failures.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1));
            for (why, n) in reasons.iter().take(REASONS_SHOWN) {
                s += &format!("    {n:>5} × {why}\n");
            }
            if reasons.len() > REASONS_SHOWN {
                let rest: usize = reasons[REASONS_SHOWN..].iter().map(|r| r.1).sum();
                s += &format!(
                    "    {rest:>5} × {} other reasons (--json lists them all)\n",
                    reasons.len() - REASONS_SHOWN
                );
            }
        } else {
            s += "  failures        0\n";
        }
        if self.checked > 0 || !self.check_errors.is_empty() {
            s += &format!(
                "  checked         {} container(s) from the inside: {}\n",
                self.checked,
                if self.check_errors.is_empty() {
                    "own pid/mnt/uts/ipc/net namespaces, init is pid 1, own cgroup".to_owned()
                } else {
                    self.check_errors.join("; ")
                }
            );
        }
        if self.kept {
            s += "  cleanup         none: --keep (see stderr for how to clean up)\n";
            return s;
        }
        s += &format!(
            "  cleanup         {} deleted in {:.2} s; {}\n",
            self.cleanup.deleted,
            self.cleanup.delete_seconds,
            if self.left_behind.is_empty() {
                "nothing left behind".to_owned()
            } else {
                format!("LEFT BEHIND: {}", self.left_behind.join("; "))
            }
        );
        for e in &self.cleanup.errors {
            s += &format!("    cleanup error: {e}\n");
        }
        if let Some(e) = &self.error {
            s += &format!("  stopped early   {e}\n");
        }
        s
    }
}

/// Distinct failure reasons the summary lists, the most frequent first.
const REASONS_SHOWN: usize = 10;

/// A failure reason with this run's ids taken out, so equal causes group together.
fn reason_class(reason: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        out.push_str("<id>");
        rest = rest[at + prefix.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_lines_say_what_each_figure_counts() {
        let m = Memory {
            berthd_peak_bytes: Some(30 << 20),
            shims_peak_total_bytes: 3773 << 20,
            shims_peak_private_bytes: 152 << 20,
            shims_peak_count: 1000,
            per_shim_private_bytes: Some(156 << 10),
        };
        let text = m.summary();
        assert!(
            text.contains("152.0 MiB private (156 KiB each: pages only they map"),
            "{text}"
        );
        assert!(
            text.contains("resident sets sum to 3773.0 MiB, shared pages counted once per shim"),
            "{text}"
        );
    }

    #[test]
    fn reasons_group_without_ids() {
        assert_eq!(
            reason_class(
                "container lt-ab-12 failed: cgroup /berth-lt-ab/lt-ab-12 busy",
                "lt-ab-"
            ),
            "container <id> failed: cgroup /berth-lt-ab/<id> busy"
        );
    }
}
