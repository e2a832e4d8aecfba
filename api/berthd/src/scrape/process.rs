//! berthd's own process metrics, as Prometheus client libraries name them, read from
//! `/proc/self` at scrape time.

use berth_procfs::{self as procfs, Stat};

use super::{Family, Kind};

/// What `/proc/self` says about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sample {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// OS threads.
    pub threads: u64,
}

/// Read this process's sample; `None` if `/proc` cannot be read or parsed.
pub fn read() -> Option<Sample> {
    let stat = Stat::read_self().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    // Counting the entries opens one more descriptor, which is counted too (as other
    // client libraries do).
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    sample(
        &stat,
        &boot,
        &limits,
        procfs::ticks_per_second() as f64,
        open_fds,
    )
}

/// Build a sample from `/proc/self/stat` and the text of `/proc/stat` and
/// `/proc/self/limits`.
fn sample(stat: &Stat, boot: &str, limits: &str, ticks: f64, open_fds: u64) -> Option<Sample> {
    let btime = procfs::boot_time(boot)?;
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|soft| soft.parse().ok());
    Some(Sample {
        cpu_seconds: stat.cpu_ticks()? as f64 / ticks,
        resident_bytes: stat.field(24)? * procfs::page_size(),
        virtual_bytes: stat.field(23)?,
        open_fds,
        max_fds,
        start_time_seconds: btime as f64 + stat.start_time()? as f64 / ticks,
        threads: stat.threads()?,
    })
}

/// Append the `process_*` families for `sample` to `out`.
pub fn render(sample: &Sample, out: &mut String) {
    Family::new(
        out,
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
    )
    .sample(sample.cpu_seconds);
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Some(sample.resident_bytes as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Some(sample.virtual_bytes as f64),
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            Some(sample.open_fds as f64),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            sample.max_fds.map(|n| n as f64),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Some(sample.start_time_seconds),
        ),
        (
            "process_threads",
            "Number of OS threads in the process.",
            Some(sample.threads as f64),
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            Family::new(out, name, Kind::Gauge, help).sample(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text() {
        let stat = "4242 (berth d) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        let limits = "Limit Soft Limit Hard Limit Units\nMax open files 1024 20000 files\n";
        let s = sample(&Stat::parse(stat).unwrap(), boot, limits, 100.0, 9).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0);
        assert_eq!(s.virtual_bytes, 123_456_789);
        assert_eq!(s.resident_bytes, 300 * procfs::page_size());
        assert_eq!(s.max_fds, Some(1024));
        assert_eq!(s.open_fds, 9);
        let short = Stat::parse("1 (x) S 1 2 3").unwrap();
        assert!(sample(&short, boot, limits, 100.0, 1).is_none());
        let stat = Stat::parse(stat).unwrap();
        assert!(sample(&stat, "cpu 1\n", limits, 100.0, 1).is_none());
    }

    #[test]
    fn reads_this_process() {
        let s = read().unwrap();
        assert!(s.resident_bytes > 0 && s.threads >= 1 && s.open_fds >= 3);
        assert!(s.start_time_seconds > 1_000_000_000.0);
    }
}
