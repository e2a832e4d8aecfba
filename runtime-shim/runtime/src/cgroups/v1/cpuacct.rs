//! v1 `cpuacct` controller: CPU time used, in total, per CPU and by mode. Nothing to
//! write; statistics only.

use std::path::Path;

use crate::cgroups::stats::CpuUsage;
use crate::cgroups::{fs, CgroupError};

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The CPU usage of the cgroup at `dir`, in nanoseconds. Files this kernel lacks read
/// as zero (or empty per-CPU lists).
pub(crate) fn usage(dir: &Path) -> Result<CpuUsage, CgroupError> {
    let mut usage = CpuUsage {
        total: fs::read_u64(dir, "cpuacct.usage")?.unwrap_or(0),
        ..CpuUsage::default()
    };
    if let Some(text) = fs::read_optional(dir, "cpuacct.usage_percpu")? {
        let path = dir.join("cpuacct.usage_percpu");
        usage.percpu = text
            .split_whitespace()
            .map(|n| fs::parse_u64(&path, n))
            .collect::<Result<_, _>>()?;
    }
    if let Some(text) = fs::read_optional(dir, "cpuacct.usage_all")? {
        let (user, kernel) = parse_usage_all(&dir.join("cpuacct.usage_all"), &text)?;
        usage.percpu_user = user;
        usage.percpu_kernel = kernel;
    }
    // cpuacct.stat counts clock ticks (USER_HZ).
    let stat = fs::read_keyed(dir, "cpuacct.stat")?;
    let ticks = clock_ticks();
    let nanos = |key: &str| {
        stat.get(key)
            .map_or(0, |t| t.saturating_mul(NANOS_PER_SECOND) / ticks)
    };
    usage.user = nanos("user");
    usage.kernel = nanos("system");
    Ok(usage)
}

/// `cpuacct.usage_all`: a `cpu user system` header, then one line per CPU. Returns the
/// per-CPU user and system times.
fn parse_usage_all(path: &Path, text: &str) -> Result<(Vec<u64>, Vec<u64>), CgroupError> {
    let mut user = Vec::new();
    let mut kernel = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_cpu, u, s] = fields[..] else {
            return Err(CgroupError::Parse {
                path: path.to_path_buf(),
                content: line.to_owned(),
            });
        };
        user.push(fs::parse_u64(path, u)?);
        kernel.push(fs::parse_u64(path, s)?);
    }
    Ok((user, kernel))
}

/// USER_HZ, the unit of `cpuacct.stat` (100 on every Linux ABI in practice).
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_usage_file() {
        let tmp = tempfile::tempdir().unwrap();
        for (file, content) in [
            ("cpuacct.usage", "3000000000\n"),
            ("cpuacct.usage_percpu", "1000000000 2000000000 \n"),
            (
                "cpuacct.usage_all",
                "cpu user system\n0 600 400\n1 1500 500\n",
            ),
            ("cpuacct.stat", "user 200\nsystem 100\n"),
        ] {
            std::fs::write(tmp.path().join(file), content).unwrap();
        }
        let usage = usage(tmp.path()).unwrap();
        assert_eq!(usage.total, 3_000_000_000);
        assert_eq!(usage.percpu, [1_000_000_000, 2_000_000_000]);
        assert_eq!(usage.percpu_user, [600, 1500]);
        assert_eq!(usage.percpu_kernel, [400, 500]);
        let ticks = clock_ticks();
        assert_eq!(usage.user, 200 * NANOS_PER_SECOND / ticks);
        assert_eq!(usage.kernel, 100 * NANOS_PER_SECOND / ticks);
    }

    #[test]
    fn missing_files_are_zero_and_garbage_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(usage(tmp.path()).unwrap(), CpuUsage::default());
        std::fs::write(
            tmp.path().join("cpuacct.usage_all"),
            "cpu user system\n0 1\n",
        )
        .unwrap();
        assert!(matches!(usage(tmp.path()), Err(CgroupError::Parse { .. })));
    }
}
