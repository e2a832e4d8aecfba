//! v1 `cpuset` controller: the CPUs and memory nodes a container may use.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError, Controller};

const CPUS: &str = "cpuset.cpus";
const MEMS: &str = "cpuset.mems";

/// Writes `cpuset.cpus` and `cpuset.mems` from `resources.cpu.{cpus,mems}`.
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

/// Fill an empty `cpuset.cpus`/`cpuset.mems` in `dir` from its parent. A v1 cpuset is
/// created empty (unless `cgroup.clone_children` is set), and adding a process to an
/// empty cpuset fails with `ENOSPC`. Call it top-down so the parent is filled first.
pub(crate) fn inherit_from_parent(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in [CPUS, MEMS] {
        if fs::read(dir, file)?.is_empty() {
            let value = fs::read(parent, file)?;
            fs::write(dir, file, &value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(parent: (&str, &str), child: (&str, &str)) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CPUS), parent.0).unwrap();
        std::fs::write(tmp.path().join(MEMS), parent.1).unwrap();
        let child_dir = tmp.path().join("c1");
        std::fs::create_dir(&child_dir).unwrap();
        std::fs::write(child_dir.join(CPUS), child.0).unwrap();
        std::fs::write(child_dir.join(MEMS), child.1).unwrap();
        tmp
    }

    #[test]
    fn empty_child_inherits_parent() {
        let tmp = fixture(("0-1\n", "0\n"), ("\n", "\n"));
        let child = tmp.path().join("c1");
        inherit_from_parent(&child).unwrap();
        assert_eq!(fs::read(&child, CPUS).unwrap(), "0-1");
        assert_eq!(fs::read(&child, MEMS).unwrap(), "0");
    }

    #[test]
    fn populated_child_is_kept() {
        let tmp = fixture(("0-1", "0"), ("1", "0"));
        let child = tmp.path().join("c1");
        inherit_from_parent(&child).unwrap();
        assert_eq!(fs::read(&child, CPUS).unwrap(), "1");
    }

    #[test]
    fn spec_cpus_and_mems_are_written() {
        let tmp = fixture(("0-1", "0"), ("", ""));
        let child = tmp.path().join("c1");
        let resources: LinuxResources =
            serde_json::from_str(r#"{"cpu": {"cpus": "1", "mems": "0"}}"#).unwrap();
        assert!(Cpuset::needed(&resources));
        Cpuset::apply(&child, &resources).unwrap();
        assert_eq!(fs::read(&child, CPUS).unwrap(), "1");
        assert_eq!(fs::read(&child, MEMS).unwrap(), "0");
    }

    #[test]
    fn absent_or_empty_is_not_needed() {
        for json in [
            "{}",
            r#"{"cpu": {"shares": 512}}"#,
            r#"{"cpu": {"cpus": ""}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Cpuset::needed(&resources), "{json}");
        }
    }
}
