//! v1 `cpuset` controller: the CPUs and memory nodes a container may use. Writing them
//! is the same as on v2 ([`crate::cgroups::cpuset`]); v1 alone has to fill a new cpuset
//! from its parent.

use std::path::Path;

pub(crate) use crate::cgroups::cpuset::Cpuset;
use crate::cgroups::cpuset::{CPUS, MEMS};
use crate::cgroups::{fs, CgroupError};

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

/// Make new children of `dir` start with its cpus and mems (`cgroup.clone_children`),
/// for the runtime's own shared parent only (see the caller).
pub(crate) fn clone_children(dir: &Path) -> Result<(), CgroupError> {
    if !clones_children(dir)? {
        fs::write(dir, CLONE_CHILDREN, "1")?;
    }
    Ok(())
}

/// Whether new children of `dir` start with its cpus and mems.
pub(crate) fn clones_children(dir: &Path) -> Result<bool, CgroupError> {
    Ok(fs::read(dir, CLONE_CHILDREN)? == "1")
}

const CLONE_CHILDREN: &str = "cgroup.clone_children";

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxResources;

    use super::*;
    use crate::cgroups::Controller;

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
