//! v1 `cpu` controller: CFS shares and bandwidth (quota per period).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError, Controller};

const SHARES: &str = "cpu.shares";
const PERIOD: &str = "cpu.cfs_period_us";
const QUOTA: &str = "cpu.cfs_quota_us";

/// Writes `cpu.shares`, `cpu.cfs_period_us` and `cpu.cfs_quota_us`. 0 means "leave
/// alone"; a quota of -1 means no limit.
pub(crate) struct Cpu;

impl Controller for Cpu {
    const NAME: &'static str = "cpu";

    fn needed(resources: &LinuxResources) -> bool {
        resources.cpu().as_ref().is_some_and(|cpu| {
            cpu.shares().unwrap_or(0) != 0
                || cpu.quota().unwrap_or(0) != 0
                || cpu.period().unwrap_or(0) != 0
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = resources.cpu() else {
            return Ok(());
        };
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fs::write(dir, SHARES, &shares.to_string())?;
        }
        let quota = cpu.quota().filter(|q| *q != 0);
        if let Some(quota) = quota {
            if quota < -1 {
                return Err(CgroupError::InvalidResource {
                    controller: Self::NAME,
                    path: dir.to_path_buf(),
                    reason: format!("cpu.quota is {quota}; use microseconds, or -1 for no limit"),
                });
            }
        }
        // Period before quota, so the quota is checked against the new period.
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
                return Ok(());
            }
        }
        if let Some(quota) = quota {
            fs::write(dir, QUOTA, &quota.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn negative_quota_is_refused() {
        let tmp = cgroupfs();
        let err = apply_json(&tmp, r#"{"cpu": {"quota": -5}}"#).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidResource { .. }), "{err}");
    }
}
