//! v1 `pids` controller: the maximum number of tasks.

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

/// `pids.current` and `pids.max` (0 for `max`), the same files on v1 and v2.
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

    fn apply_json(json: &str) -> (tempfile::TempDir, Result<(), CgroupError>) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.max"), "").unwrap();
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        let result = Pids::apply(tmp.path(), &resources);
        (tmp, result)
    }

    fn pids_max(tmp: &tempfile::TempDir) -> String {
        std::fs::read_to_string(tmp.path().join("pids.max")).unwrap()
    }

    #[test]
    fn positive_limit_is_written() {
        let (tmp, result) = apply_json(r#"{"pids": {"limit": 10}}"#);
        result.unwrap();
        assert_eq!(pids_max(&tmp), "10");
    }

    #[test]
    fn zero_and_negative_mean_max() {
        for json in [r#"{"pids": {"limit": 0}}"#, r#"{"pids": {"limit": -1}}"#] {
            let (tmp, result) = apply_json(json);
            result.unwrap();
            assert_eq!(pids_max(&tmp), "max", "{json}");
        }
    }

    #[test]
    fn absent_writes_nothing() {
        let (tmp, result) = apply_json("{}");
        result.unwrap();
        assert_eq!(pids_max(&tmp), "");
        assert!(!Pids::needed(&LinuxResources::default()));
    }

    #[test]
    fn stats_read_current_and_max() {
        let (tmp, _) = apply_json(r#"{"pids": {"limit": 0}}"#);
        std::fs::write(tmp.path().join("pids.current"), "3\n").unwrap();
        assert_eq!(
            stats(tmp.path()).unwrap(),
            PidsStats {
                current: 3,
                limit: 0
            }
        );
        std::fs::write(tmp.path().join("pids.max"), "12\n").unwrap();
        assert_eq!(stats(tmp.path()).unwrap().limit, 12);
    }

    #[test]
    fn missing_file_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let resources: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 1}}"#).unwrap();
        let err = Pids::apply(tmp.path(), &resources).unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
    }
}
