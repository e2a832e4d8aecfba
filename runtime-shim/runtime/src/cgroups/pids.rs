//! The `pids` controller, the same files on v1 and v2: the maximum number of tasks.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::stats::PidsStats;
use super::{fs, CgroupError, Controller};

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
