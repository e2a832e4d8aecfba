//! What the kernel says about processes and the machine, in the loadtest's units: memory
//! (VmHWM, RSS), CPU time, and this run's shims, found by their command lines. The reading
//! and parsing is berth-procfs's; this module only converts and finds shims.

use std::path::Path;
use std::time::Duration;

/// Clock ticks as a duration.
fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / berth_procfs::ticks_per_second() as f64)
}

/// A `kB` field of /proc/PID/status (VmHWM, VmRSS), in bytes.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    berth_procfs::kb_field(&text, field)
}

/// Resident set of `pid` and its private part (pages no other process maps), in bytes,
/// from smaps_rollup. The resident set counts the shared binary and libraries in every
/// process — and, for forked shims, the pages still shared with their spawner — the
/// private part is what each one really adds.
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    berth_procfs::rss_and_private(&text)
}

/// User plus system CPU time of `pid` (its threads included).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = berth_procfs::Stat::read(i32::try_from(pid).ok()?).ok()?;
    Some(ticks(stat.cpu_ticks()?))
}

/// The machine's CPU time so far: (busy, total), all CPUs together.
pub fn machine_cpu() -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let (busy, total) = berth_procfs::machine_cpu_ticks(&text)?;
    Some((ticks(busy), ticks(total)))
}

/// This process's own CPU time (user + system).
pub fn own_cpu() -> Duration {
    cpu_time(std::process::id()).unwrap_or_default()
}

/// Pids of the `berth-shim` processes of containers whose id starts with `prefix`
/// (the shim is run as `berth-shim --id ID ...`).
pub fn shims_of(prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // comm first: one short read rules out almost every process.
        let comm = std::fs::read(entry.path().join("comm")).unwrap_or_default();
        if comm != b"berth-shim\n" {
            continue;
        }
        if is_shim_of(&entry.path(), prefix) {
            found.push(pid);
        }
    }
    found
}

fn is_shim_of(proc_dir: &Path, prefix: &str) -> bool {
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    shim_id_starts_with(&cmdline, prefix)
}

/// Whether a shim's command line has `--id` with an id starting with `prefix`. Its
/// arguments are NUL-separated, or space-separated in one string when its spawner had to
/// rewrite them in place (see berth-shim's proctitle).
fn shim_id_starts_with(cmdline: &[u8], prefix: &str) -> bool {
    let mut args = cmdline
        .split(|&b| b == 0 || b == b' ')
        .filter(|a| !a.is_empty());
    while let Some(a) = args.next() {
        if a == b"--id" {
            return args
                .next()
                .is_some_and(|id| id.starts_with(prefix.as_bytes()));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_known_by_their_id_however_their_arguments_are_separated() {
        let exec = b"/bin/berth-shim\0--id\0lt-1-7\0--bundle\0/b\0";
        let forked = b"/bin/berth-shim --id lt-1-7 --bundle /b --control-stdin\0\0";
        for line in [&exec[..], &forked[..]] {
            assert!(shim_id_starts_with(line, "lt-1-"));
            assert!(!shim_id_starts_with(line, "lt-2-"));
        }
        assert!(!shim_id_starts_with(b"/bin/berth-shim --spawner", "lt-"));
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        assert!(cpu_time(me).is_some());
        assert!(rss(me).is_some_and(|(r, p)| r > 0 && p <= r));
        assert!(status_kb(me, "VmHWM").is_some_and(|r| r > 0));
        let (busy, total) = machine_cpu().unwrap();
        assert!(busy <= total);
    }
}
