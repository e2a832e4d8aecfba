//! v2 `pids` controller: the maximum number of tasks.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::stats::PidsStats;
use crate::cgroups::{fs, CgroupError, Controller};

/// Writes `pids.max`.
pub(crate) struct Pids;

impl Controller for Pids {
    const NAME: &'static str = "pids";

    fn needed(resources: &LinuxResources) -> bool {
        resources.pids().is_some()
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(pids) = resources.pids() else {
            return Ok(());
        };
        fs::write(dir, "pids.max", &max_value(pids.limit()))
    }
}

/// The OCI limit as `pids.max` spells it: 0 or negative means no limit (`max`).
fn max_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// `pids.current` and `pids.max` (0 for `max`).
pub(crate) fn stats(dir: &Path) -> Result<PidsStats, CgroupError> {
    Ok(PidsStats {
        current: fs::read_u64(dir, "pids.current")?.unwrap_or(0),
        limit: fs::read_u64(dir, "pids.max")?
            .filter(|max| *max != u64::MAX)
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_json(json: &str) -> String {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.max"), "").unwrap();
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Pids::apply(tmp.path(), &resources).unwrap();
        std::fs::read_to_string(tmp.path().join("pids.max")).unwrap()
    }

    #[test]
    fn positive_limit_is_written() {
        assert_eq!(apply_json(r#"{"pids": {"limit": 1000}}"#), "1000");
    }

    #[test]
    fn zero_and_negative_mean_max() {
        assert_eq!(apply_json(r#"{"pids": {"limit": 0}}"#), "max");
        assert_eq!(apply_json(r#"{"pids": {"limit": -1}}"#), "max");
    }

    #[test]
    fn absent_writes_nothing() {
        assert_eq!(apply_json("{}"), "");
        assert!(!Pids::needed(&LinuxResources::default()));
    }

    #[test]
    fn stats_read_current_and_max() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.current"), "2\n").unwrap();
        std::fs::write(tmp.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(
            stats(tmp.path()).unwrap(),
            PidsStats {
                current: 2,
                limit: 0
            }
        );
    }
}
