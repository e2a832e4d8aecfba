//! v2 `cpu` controller: weight (from v1-style shares), bandwidth (`cpu.max`, burst) and
//! the idle policy; usage and throttling statistics from `cpu.stat`. Realtime bandwidth
//! does not exist in v2 and is refused.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::cpu::{apply_idle_and_shares, check_idle, write_burst_early};
use crate::cgroups::stats::{CpuStats, CpuUsage};
use crate::cgroups::{fs, CgroupError, Controller};

const WEIGHT: &str = "cpu.weight";
const MAX: &str = "cpu.max";
const BURST: &str = "cpu.max.burst";

/// Writes `cpu.weight`, `cpu.max`, `cpu.max.burst` and `cpu.idle`. 0 means "leave
/// alone"; a negative quota means no limit (`max`).
pub(crate) struct Cpu;

impl Controller for Cpu {
    const NAME: &'static str = "cpu";

    fn needed(resources: &LinuxResources) -> bool {
        crate::cgroups::cpu::needed(resources)
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = resources.cpu() else {
            return Ok(());
        };
        let invalid = CgroupError::invalid(Self::NAME, dir);
        if cpu.realtime_runtime().unwrap_or(0) != 0 || cpu.realtime_period().unwrap_or(0) != 0 {
            return Err(invalid(
                "cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime bandwidth control"
                    .to_owned(),
            ));
        }
        check_idle(cpu).map_err(CgroupError::refused(Self::NAME, dir))?;
        apply_idle_and_shares(dir, cpu, WEIGHT, shares_to_weight)?;
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        // Burst before the new quota, unless it does not fit the current one.
        let burst_after = write_burst_early(dir, BURST, cpu, quota != 0)?;
        if quota != 0 || period != 0 {
            let mut max = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_owned()
            };
            if period != 0 {
                max = format!("{max} {period}");
            }
            fs::write(dir, MAX, &max)?;
        }
        if let Some(burst) = burst_after {
            fs::write(dir, BURST, &burst)?;
        }
        Ok(())
    }
}

/// Usage and throttling from `cpu.stat` (microseconds there, nanoseconds in [`CpuStats`]).
/// The usage lines are core (present without the cpu controller); the throttling lines
/// come with it.
pub(crate) fn stats(dir: &Path) -> Result<CpuStats, CgroupError> {
    let stat = fs::read_keyed(dir, "cpu.stat")?;
    let get = |key: &str| stat.get(key).copied().unwrap_or(0);
    Ok(CpuStats {
        usage: CpuUsage {
            total: get("usage_usec").saturating_mul(1000),
            user: get("user_usec").saturating_mul(1000),
            kernel: get("system_usec").saturating_mul(1000),
            ..CpuUsage::default()
        },
        throttling: crate::cgroups::cpu::throttling(&stat, "throttled_usec", 1000),
    })
}

/// v1 shares [2, 262144] mapped onto v2 weight [1, 10000], the formula runc and crun
/// use. Out-of-range shares are clamped first, as the v1 kernel does.
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::cpu::IDLE;

    fn apply_json(json: &str) -> (String, String) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(WEIGHT), "100").unwrap();
        std::fs::write(tmp.path().join(MAX), "max 100000").unwrap();
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Cpu::apply(tmp.path(), &resources).unwrap();
        (
            fs::read(tmp.path(), WEIGHT).unwrap(),
            fs::read(tmp.path(), MAX).unwrap(),
        )
    }

    #[test]
    fn weight_formula() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1, "clamped, no underflow");
        assert_eq!(shares_to_weight(u64::MAX), 10_000, "clamped, no overflow");
    }

    #[test]
    fn shares_quota_period() {
        let (weight, max) =
            apply_json(r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000}}"#);
        assert_eq!(weight, "39");
        assert_eq!(max, "50000 100000");
    }

    #[test]
    fn negative_quota_is_max() {
        let (_, max) = apply_json(r#"{"cpu": {"quota": -1, "period": 200000}}"#);
        assert_eq!(max, "max 200000");
        let (_, max) = apply_json(r#"{"cpu": {"quota": -1}}"#);
        assert_eq!(max, "max");
    }

    #[test]
    fn quota_alone_keeps_the_period() {
        let (_, max) = apply_json(r#"{"cpu": {"quota": 25000}}"#);
        assert_eq!(max, "25000");
    }

    #[test]
    fn idle_and_burst() {
        let tmp = tempfile::tempdir().unwrap();
        for (file, value) in [
            (WEIGHT, "100"),
            (MAX, "max 100000"),
            (BURST, "0"),
            (IDLE, "0"),
        ] {
            std::fs::write(tmp.path().join(file), value).unwrap();
        }
        let resources: LinuxResources = serde_json::from_str(
            r#"{"cpu": {"idle": 1, "shares": 4096, "quota": 20000, "burst": 5000}}"#,
        )
        .unwrap();
        assert!(Cpu::needed(&resources));
        Cpu::apply(tmp.path(), &resources).unwrap();
        assert_eq!(fs::read(tmp.path(), IDLE).unwrap(), "1");
        assert_eq!(
            fs::read(tmp.path(), WEIGHT).unwrap(),
            "100",
            "no weight when idle"
        );
        assert_eq!(fs::read(tmp.path(), MAX).unwrap(), "20000");
        assert_eq!(fs::read(tmp.path(), BURST).unwrap(), "5000");
    }

    #[test]
    fn realtime_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let resources: LinuxResources =
            serde_json::from_str(r#"{"cpu": {"realtimeRuntime": 1000}}"#).unwrap();
        assert!(Cpu::needed(&resources));
        let err = Cpu::apply(tmp.path(), &resources).unwrap_err();
        assert!(err.to_string().contains("realtime"), "{err}");
    }

    #[test]
    fn stats_from_cpu_stat() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("cpu.stat"),
            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 5\n\
             nr_throttled 1\nthrottled_usec 70\nnr_bursts 0\n",
        )
        .unwrap();
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats.usage.total, 3_000_000);
        assert_eq!(stats.usage.user, 2_000_000);
        assert_eq!(stats.usage.kernel, 1_000_000);
        assert_eq!(stats.throttling.periods, 5);
        assert_eq!(stats.throttling.throttled_time, 70_000);
    }

    #[test]
    fn zero_and_absent_write_nothing() {
        for json in ["{}", r#"{"cpu": {"shares": 0, "quota": 0, "period": 0}}"#] {
            assert_eq!(
                apply_json(json),
                ("100".to_owned(), "max 100000".to_owned())
            );
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Cpu::needed(&resources), "{json}");
        }
    }
}
