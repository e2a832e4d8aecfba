//! v2 `cpu` controller: weight (from v1-style shares) and bandwidth (`cpu.max`).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError, Controller};

const WEIGHT: &str = "cpu.weight";
const MAX: &str = "cpu.max";

/// Writes `cpu.weight` and `cpu.max`. 0 means "leave alone"; a negative quota means no
/// limit (`max`).
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
            fs::write(dir, WEIGHT, &shares_to_weight(shares).to_string())?;
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
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
        Ok(())
    }
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
