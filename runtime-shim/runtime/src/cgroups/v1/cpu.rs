//! v1 `cpu` controller: CFS shares, bandwidth (quota per period, burst), the idle
//! policy and realtime (RT) bandwidth; throttling statistics.

use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxResources};

use crate::cgroups::cpu::{apply_idle_and_shares, check_idle, write_burst_early};
use crate::cgroups::stats::Throttling;
use crate::cgroups::{fs, CgroupError, Controller};

const SHARES: &str = "cpu.shares";
const PERIOD: &str = "cpu.cfs_period_us";
const QUOTA: &str = "cpu.cfs_quota_us";
const BURST: &str = "cpu.cfs_burst_us";
const RT_PERIOD: &str = "cpu.rt_period_us";
const RT_RUNTIME: &str = "cpu.rt_runtime_us";

/// Writes `cpu.shares`, `cpu.cfs_{period,quota,burst}_us`, `cpu.idle` and
/// `cpu.rt_{period,runtime}_us`. 0 means "leave alone"; a quota of -1 means no limit.
/// Applied before the container's process joins, so a realtime process can join.
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
        let quota = cpu.quota().filter(|q| *q != 0);
        if let Some(quota) = quota.filter(|q| *q < -1) {
            return Err(invalid(format!(
                "cpu.quota is {quota}; use microseconds, or -1 for no limit"
            )));
        }
        check_idle(cpu).map_err(CgroupError::refused(Self::NAME, dir))?;
        apply_realtime(dir, cpu)?;
        apply_idle_and_shares(dir, cpu, SHARES, |shares| shares)?;
        apply_bandwidth(dir, cpu, quota)
    }
}

/// Period, quota and burst, ordered so that each write is valid against the values
/// already in place (as runc orders them).
fn apply_bandwidth(dir: &Path, cpu: &LinuxCpu, quota: Option<i64>) -> Result<(), CgroupError> {
    // Burst first, unless it does not fit the current quota: then after the new quota.
    let burst_after = write_burst_early(dir, BURST, cpu, quota.is_some())?;
    // Period before quota, so the quota is checked against the new period.
    let mut quota_written = false;
    if let Some(period) = cpu.period().filter(|p| *p != 0) {
        let period = period.to_string();
        if let Err(err) = fs::write_raw(&dir.join(PERIOD), &period) {
            // A smaller period can be refused while the old quota no longer fits it:
            // then set the quota first and retry, as runc does.
            let Some(quota) = quota.filter(|_| err.raw_os_error() == Some(libc::EINVAL)) else {
                return Err(CgroupError::Write {
                    path: dir.join(PERIOD),
                    value: period,
                    source: err,
                });
            };
            fs::write(dir, QUOTA, &quota.to_string())?;
            fs::write(dir, PERIOD, &period)?;
            quota_written = true;
        }
    }
    if let Some(quota) = quota.filter(|_| !quota_written) {
        fs::write(dir, QUOTA, &quota.to_string())?;
    }
    if let Some(burst) = burst_after {
        fs::write(dir, BURST, &burst)?;
    }
    Ok(())
}

/// Realtime bandwidth. The period and runtime constrain each other, so a period the
/// kernel refuses is retried after the runtime (runc's order).
fn apply_realtime(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let runtime = cpu.realtime_runtime().filter(|r| *r != 0);
    let mut period_after = None;
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        let value = period.to_string();
        match fs::write_raw(&dir.join(RT_PERIOD), &value) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && runtime.is_some() => {
                period_after = Some(value);
            }
            Err(source) => {
                return Err(CgroupError::Write {
                    path: dir.join(RT_PERIOD),
                    value,
                    source,
                })
            }
        }
    }
    let Some(runtime) = runtime else {
        return Ok(());
    };
    let value = runtime.to_string();
    if let Err(source) = fs::write_raw(&dir.join(RT_RUNTIME), &value) {
        // The usual cause: the parent has less realtime runtime than asked for (a new
        // cgroup's parent often has none). Say so rather than just "invalid argument".
        let parent = dir.parent().unwrap_or(dir);
        let available = match source.raw_os_error() {
            Some(libc::EINVAL) => fs::read_optional(parent, RT_RUNTIME).ok().flatten(),
            _ => None,
        };
        if let Some(available) = available {
            return Err(CgroupError::InvalidResource {
                controller: Cpu::NAME,
                path: dir.to_path_buf(),
                reason: format!(
                    "cpu.realtimeRuntime {runtime} was refused ({source}); the parent {} has \
                     {available}us of realtime runtime for all its children",
                    parent.display()
                ),
            });
        }
        return Err(CgroupError::Write {
            path: dir.join(RT_RUNTIME),
            value,
            source,
        });
    }
    if let Some(period) = period_after {
        fs::write(dir, RT_PERIOD, &period)?;
    }
    Ok(())
}

/// CFS throttling from `cpu.stat` (`throttled_time` is in nanoseconds on v1).
pub(crate) fn throttling(dir: &Path) -> Result<Throttling, CgroupError> {
    let stat = fs::read_keyed(dir, "cpu.stat")?;
    Ok(crate::cgroups::cpu::throttling(&stat, "throttled_time", 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::cpu::IDLE;

    fn cgroupfs() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for (file, value) in [(SHARES, "1024"), (PERIOD, "100000"), (QUOTA, "-1")] {
            std::fs::write(tmp.path().join(file), value).unwrap();
        }
        tmp
    }

    fn apply_json(tmp: &tempfile::TempDir, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Cpu::apply(tmp.path(), &resources)
    }

    fn value(tmp: &tempfile::TempDir, file: &str) -> String {
        fs::read(tmp.path(), file).unwrap()
    }

    #[test]
    fn shares_quota_period() {
        let tmp = cgroupfs();
        apply_json(
            &tmp,
            r#"{"cpu": {"shares": 512, "quota": 50000, "period": 250000}}"#,
        )
        .unwrap();
        assert_eq!(value(&tmp, SHARES), "512");
        assert_eq!(value(&tmp, PERIOD), "250000");
        assert_eq!(value(&tmp, QUOTA), "50000");
    }

    #[test]
    fn minus_one_quota_is_unlimited() {
        let tmp = cgroupfs();
        std::fs::write(tmp.path().join(QUOTA), "20000").unwrap();
        apply_json(&tmp, r#"{"cpu": {"quota": -1}}"#).unwrap();
        assert_eq!(value(&tmp, QUOTA), "-1");
        assert_eq!(value(&tmp, PERIOD), "100000");
    }

    #[test]
    fn zero_and_absent_write_nothing() {
        let tmp = cgroupfs();
        for json in [
            "{}",
            r#"{"cpu": {}}"#,
            r#"{"cpu": {"shares": 0, "quota": 0, "period": 0}}"#,
        ] {
            apply_json(&tmp, json).unwrap();
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Cpu::needed(&resources), "{json}");
        }
        assert_eq!(value(&tmp, SHARES), "1024");
        assert_eq!(value(&tmp, PERIOD), "100000");
        assert_eq!(value(&tmp, QUOTA), "-1");
    }

    #[test]
    fn idle_burst_and_realtime() {
        let tmp = cgroupfs();
        for (file, value) in [
            (BURST, "0"),
            (IDLE, "0"),
            (RT_PERIOD, "1000000"),
            (RT_RUNTIME, "0"),
        ] {
            std::fs::write(tmp.path().join(file), value).unwrap();
        }
        let json = r#"{"cpu": {"idle": 1, "shares": 2048, "quota": 50000, "burst": 10000,
                               "realtimePeriod": 500000, "realtimeRuntime": 20000}}"#;
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        assert!(Cpu::needed(&resources));
        apply_json(&tmp, json).unwrap();
        assert_eq!(value(&tmp, IDLE), "1");
        assert_eq!(
            value(&tmp, SHARES),
            "1024",
            "shares skipped for an idle group"
        );
        assert_eq!(value(&tmp, QUOTA), "50000");
        assert_eq!(value(&tmp, BURST), "10000");
        assert_eq!(value(&tmp, RT_PERIOD), "500000");
        assert_eq!(value(&tmp, RT_RUNTIME), "20000");
    }

    #[test]
    fn burst_without_kernel_support_is_ignored() {
        let tmp = cgroupfs();
        apply_json(&tmp, r#"{"cpu": {"burst": 1000}}"#).unwrap();
        assert!(!tmp.path().join(BURST).exists());
    }

    #[test]
    fn realtime_alone_is_needed() {
        for json in [
            r#"{"cpu": {"realtimeRuntime": 1000}}"#,
            r#"{"cpu": {"realtimePeriod": 1000}}"#,
            r#"{"cpu": {"idle": 0}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(Cpu::needed(&resources), "{json}");
        }
    }

    #[test]
    fn bad_idle_is_refused() {
        let tmp = cgroupfs();
        let err = apply_json(&tmp, r#"{"cpu": {"idle": 2}}"#).unwrap_err();
        assert!(err.to_string().contains("cpu.idle"), "{err}");
    }

    #[test]
    fn throttling_from_cpu_stat() {
        let tmp = cgroupfs();
        std::fs::write(
            tmp.path().join("cpu.stat"),
            "nr_periods 10\nnr_throttled 3\nthrottled_time 123456\n",
        )
        .unwrap();
        let throttling = throttling(tmp.path()).unwrap();
        assert_eq!(
            (
                throttling.periods,
                throttling.throttled_periods,
                throttling.throttled_time
            ),
            (10, 3, 123_456)
        );
    }

    #[test]
    fn negative_quota_is_refused() {
        let tmp = cgroupfs();
        let err = apply_json(&tmp, r#"{"cpu": {"quota": -5}}"#).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidResource { .. }), "{err}");
    }
}
