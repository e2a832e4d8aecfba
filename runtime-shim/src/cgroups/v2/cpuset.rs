//! v2 `cpuset` controller: the CPUs and memory nodes a container may use.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError, Controller};

const CPUS: &str = "cpuset.cpus";
const MEMS: &str = "cpuset.mems";

/// Writes `cpuset.cpus` and `cpuset.mems` from `resources.cpu.{cpus,mems}`. Unlike v1,
/// an empty v2 cpuset uses its parent's, so nothing needs copying.
pub(crate) struct Cpuset;

impl Controller for Cpuset {
    const NAME: &'static str = "cpuset";

    fn needed(resources: &LinuxResources) -> bool {
        resources.cpu().as_ref().is_some_and(|cpu| {
            non_empty(cpu.cpus().as_deref()).is_some() || non_empty(cpu.mems().as_deref()).is_some()
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = resources.cpu() else {
            return Ok(());
        };
        if let Some(cpus) = non_empty(cpu.cpus().as_deref()) {
            fs::write(dir, CPUS, cpus)?;
        }
        if let Some(mems) = non_empty(cpu.mems().as_deref()) {
            fs::write(dir, MEMS, mems)?;
        }
        Ok(())
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_cpus_and_mems() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CPUS), "").unwrap();
        std::fs::write(tmp.path().join(MEMS), "").unwrap();
        let resources: LinuxResources =
            serde_json::from_str(r#"{"cpu": {"cpus": "0-1", "mems": "0"}}"#).unwrap();
        assert!(Cpuset::needed(&resources));
        Cpuset::apply(tmp.path(), &resources).unwrap();
        assert_eq!(fs::read(tmp.path(), CPUS).unwrap(), "0-1");
        assert_eq!(fs::read(tmp.path(), MEMS).unwrap(), "0");
    }

    #[test]
    fn absent_or_empty_is_not_needed() {
        for json in [
            "{}",
            r#"{"cpu": {"quota": 1000}}"#,
            r#"{"cpu": {"mems": " "}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Cpuset::needed(&resources), "{json}");
        }
    }
}
