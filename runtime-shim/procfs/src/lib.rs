//! The one /proc reader of Berth: `/proc/<pid>/stat` split into its numbered fields, the
//! `kB` lines of `/proc/<pid>/status`, the boot time, and the units their numbers are in.
//! Parsing is apart from reading, so it is tested on fixed text. [`mountinfo`] is the one
//! parser of `/proc/<pid>/mountinfo`.
//!
//! Depends on nothing of Berth (floor 0); the runtime, the shim, berthd and the loadtest
//! use it.

use std::io;

pub mod mountinfo;

/// `/proc/<pid>/stat` of one process, split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Field 2, the command name, without its parentheses.
    comm: String,
    /// Fields 3 onwards (state first), as the kernel wrote them.
    rest: Vec<String>,
}

impl Stat {
    /// Read `/proc/<pid>/stat`. `NotFound` (or `ESRCH`) means no such process.
    pub fn read(pid: i32) -> io::Result<Stat> {
        Stat::read_path(&format!("/proc/{pid}/stat"))
    }

    /// Read `/proc/self/stat`.
    pub fn read_self() -> io::Result<Stat> {
        Stat::read_path("/proc/self/stat")
    }

    fn read_path(path: &str) -> io::Result<Stat> {
        let text = std::fs::read_to_string(path)?;
        Stat::parse(&text)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {text:?}")))
    }

    /// Split the text of a stat file. The command name is in parentheses and may itself
    /// hold spaces or parentheses: the fields proper start after the last `)`.
    pub fn parse(text: &str) -> Option<Stat> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text.get(open + 1..close)?.to_owned();
        let rest: Vec<String> = text[close + 1..]
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        (!rest.is_empty()).then_some(Stat { comm, rest })
    }

    /// The command name (field 2).
    pub fn comm(&self) -> &str {
        &self.comm
    }

    /// Field 3: the state letter (`R`, `S`, `Z`, ...).
    pub fn state(&self) -> char {
        self.rest[0].chars().next().unwrap_or('?')
    }

    /// True for a zombie or a dead process: exited, whatever its pid still shows.
    pub fn exited(&self) -> bool {
        matches!(self.state(), 'Z' | 'X')
    }

    /// Numeric field `n`, numbered as in proc(5) (pid is 1, state is 3), from 4 on.
    pub fn field(&self, n: usize) -> Option<u64> {
        self.rest.get(n.checked_sub(3)?)?.parse().ok()
    }

    /// Field 4: the parent's pid.
    pub fn ppid(&self) -> Option<i32> {
        self.field(4)?.try_into().ok()
    }

    /// Fields 14 and 15: user plus system CPU time, in clock ticks.
    pub fn cpu_ticks(&self) -> Option<u64> {
        Some(self.field(14)? + self.field(15)?)
    }

    /// Field 20: the number of threads.
    pub fn threads(&self) -> Option<u64> {
        self.field(20)
    }

    /// Field 22: when the process started, in clock ticks since boot. With the pid it
    /// names a process: a pid alone is handed on once its process is gone.
    pub fn start_time(&self) -> Option<u64> {
        self.field(22)
    }
}

/// The command line of `pid`, its arguments separated by spaces.
pub fn cmdline(pid: i32) -> io::Result<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    Ok(parts.join(" "))
}

/// The value of a `kB` line (`VmHWM`, `Rss`, ...) of `/proc/<pid>/status` or
/// `smaps_rollup` text, in bytes.
pub fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The boot time in seconds since the Unix epoch, from the text of `/proc/stat`.
pub fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The resident set and its private part (`Private_Clean` + `Private_Dirty`, the pages
/// no other process maps), in bytes, from the text of `/proc/<pid>/smaps_rollup`.
pub fn rss_and_private(smaps_rollup: &str) -> Option<(u64, u64)> {
    let private =
        kb_field(smaps_rollup, "Private_Clean")? + kb_field(smaps_rollup, "Private_Dirty")?;
    Some((kb_field(smaps_rollup, "Rss")?, private))
}

/// The machine's CPU time so far in clock ticks, all CPUs together, as (busy, total), from
/// the `cpu ` line of the text of `/proc/stat`. Total is user nice system idle iowait irq
/// softirq steal (guest time is inside user); idle and iowait are not busy.
pub fn machine_cpu_ticks(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Clock ticks per second, the unit of times in `/proc/<pid>/stat`.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// The page size in bytes, the unit of the resident set in `/proc/<pid>/stat`.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value; no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (berth (d) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                        7 0 1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
                        1 0 0 0 0 0 11 12 13 14 15 16 0\n";

    #[test]
    fn fields_are_numbered_as_in_proc_5_whatever_the_command_name_holds() {
        let s = Stat::parse(STAT).unwrap();
        assert_eq!(s.comm(), "berth (d) x");
        assert_eq!(s.state(), 'S');
        assert!(!s.exited());
        assert_eq!(s.ppid(), Some(1));
        assert_eq!(s.cpu_ticks(), Some(300));
        assert_eq!(s.threads(), Some(7));
        assert_eq!(s.start_time(), Some(1000));
        assert_eq!(s.field(23), Some(123_456_789));
        assert_eq!(s.field(45), Some(11));
        assert_eq!(s.field(48), Some(14));
        assert_eq!(s.field(51), Some(0));
        assert_eq!(s.field(99), None);
        assert_eq!(s.field(2), None);
    }

    #[test]
    fn garbage_and_zombies() {
        assert_eq!(Stat::parse("garbage"), None);
        assert_eq!(Stat::parse("1 (x)"), None);
        assert!(Stat::parse("1 (x) Z 0").unwrap().exited());
        assert!(Stat::parse("1 (x) X 0").unwrap().exited());
    }

    #[test]
    fn kb_lines_and_boot_time() {
        let status = "Name:\tberthd\nVmHWM:\t   2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(kb_field(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(kb_field(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(kb_field(status, "VmSwap"), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(boot_time("cpu 1\n"), None);
    }

    #[test]
    fn smaps_rollup_and_machine_cpu() {
        let rollup = "00400000-7ffd [rollup]\nRss:  300 kB\nPss:  100 kB\n\
                      Private_Clean:  10 kB\nPrivate_Dirty:  20 kB\n";
        assert_eq!(rss_and_private(rollup), Some((300 * 1024, 30 * 1024)));
        assert_eq!(rss_and_private("Rss:  300 kB\n"), None);
        let stat = "cpu  10 1 5 100 4 1 1 0 7 0\ncpu0 10 1 5 100 4 1 1 0 7 0\nbtime 1\n";
        assert_eq!(machine_cpu_ticks(stat), Some((18, 122)));
        assert_eq!(machine_cpu_ticks("cpu0 1 2 3\n"), None);
    }

    #[test]
    fn reads_this_process_and_not_a_missing_one() {
        let me = Stat::read(std::process::id() as i32).unwrap();
        assert!(!me.exited());
        assert_eq!(Stat::read_self().unwrap().start_time(), me.start_time());
        let own = cmdline(std::process::id() as i32).unwrap();
        assert!(own.contains("berth_procfs"), "{own}");
        let err = Stat::read(i32::MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(ticks_per_second() > 0 && page_size() >= 4096);
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        assert!(rss_and_private(&rollup).is_some_and(|(r, p)| r > 0 && p <= r));
        let (busy, total) =
            machine_cpu_ticks(&std::fs::read_to_string("/proc/stat").unwrap()).unwrap();
        assert!(busy <= total);
    }
}
