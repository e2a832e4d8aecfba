//! cgroup v2: one unified hierarchy; controllers are handed down level by level through
//! each parent's `cgroup.subtree_control`.

mod cpu;
mod cpuset;
mod memory;
mod pids;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{fs, CgroupError, Controller, Hierarchy};

/// Controllers enabled for the container's cgroup whenever the host offers them, so its
/// usage is accounted even without limits. Failing to enable one is only an error if the
/// resources need it.
const ACCOUNTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// Create the container's cgroup (and any missing parents), enable the controllers it
/// uses in every parent's `cgroup.subtree_control`, then apply `resources`. The caller
/// removes what was made if this fails.
pub(crate) fn create(unified: &Hierarchy, resources: &LinuxResources) -> Result<(), CgroupError> {
    let required: Vec<&'static str> = [
        (pids::Pids::NAME, pids::Pids::needed(resources)),
        (memory::Memory::NAME, memory::Memory::needed(resources)),
        (cpu::Cpu::NAME, cpu::Cpu::needed(resources)),
        (cpuset::Cpuset::NAME, cpuset::Cpuset::needed(resources)),
    ]
    .into_iter()
    .filter_map(|(name, needed)| needed.then_some(name))
    .collect();

    let mut parent = unified.mount();
    for level in fs::levels(unified)?.iter() {
        enable_controllers(parent, &required)?;
        fs::create_dir(level)?;
        parent = level;
    }

    let dir = unified.path();
    apply::<pids::Pids>(dir, resources)?;
    apply::<memory::Memory>(dir, resources)?;
    apply::<cpu::Cpu>(dir, resources)?;
    apply::<cpuset::Cpuset>(dir, resources)
}

fn apply<C: Controller>(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
    if C::needed(resources) {
        C::apply(dir, resources)
    } else {
        Ok(())
    }
}

/// Make the controllers in [`ACCOUNTED`] and `required` available to `dir`'s children.
/// Only missing ones are written, one at a time, so the usual case is two reads.
fn enable_controllers(dir: &Path, required: &[&'static str]) -> Result<(), CgroupError> {
    let available = fs::read(dir, "cgroup.controllers")?;
    let enabled = fs::read(dir, "cgroup.subtree_control")?;
    let has = |list: &str, name: &str| list.split_whitespace().any(|c| c == name);
    let extra = required.iter().filter(|name| !ACCOUNTED.contains(name));
    for &name in ACCOUNTED.iter().chain(extra) {
        if has(&enabled, name) {
            continue;
        }
        let needed = required.contains(&name);
        if !has(&available, name) {
            if needed {
                return Err(CgroupError::ControllerUnavailable {
                    controller: name,
                    path: dir.join("cgroup.controllers"),
                });
            }
            continue;
        }
        match fs::write(dir, "cgroup.subtree_control", &format!("+{name}")) {
            Err(err) if !needed => {
                tracing::debug!(error = %err, "controller not enabled; only used for accounting");
            }
            result => result?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn level(dir: &Path, controllers: &str, enabled: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(dir.join("cgroup.subtree_control"), enabled).unwrap();
    }

    #[test]
    fn enables_only_missing_available_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        level(tmp.path(), "cpu memory pids\n", "memory\n");
        enable_controllers(tmp.path(), &["pids"]).unwrap();
        // A plain file keeps the last write: "+pids" came after "+cpu"; "memory" was skipped.
        assert_eq!(
            fs::read(tmp.path(), "cgroup.subtree_control").unwrap(),
            "+pids"
        );
    }

    #[test]
    fn required_but_unavailable_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        level(tmp.path(), "memory\n", "");
        let err = enable_controllers(tmp.path(), &["pids"]).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::ControllerUnavailable {
                    controller: "pids",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("cgroup.controllers"), "{err}");
    }

    #[test]
    fn create_walks_down_and_applies() {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().to_path_buf();
        level(&mount, "cpu memory pids", "cpu memory pids");
        level(&mount.join("berth"), "cpu memory pids", "cpu memory pids");
        // The leaf already exists here (a plain directory cannot grow control files).
        let leaf = mount.join("berth/c1");
        std::fs::create_dir(&leaf).unwrap();
        std::fs::write(leaf.join("pids.max"), "max").unwrap();
        let hierarchy = Hierarchy {
            mount,
            path: leaf.clone(),
        };
        let resources: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 7}}"#).unwrap();
        create(&hierarchy, &resources).unwrap();
        assert_eq!(fs::read(&leaf, "pids.max").unwrap(), "7");
    }

    #[test]
    fn create_fails_when_a_parent_is_not_a_cgroup() {
        let tmp = tempfile::tempdir().unwrap();
        let hierarchy = Hierarchy {
            mount: tmp.path().to_path_buf(),
            path: tmp.path().join("c1"),
        };
        let err = create(&hierarchy, &LinuxResources::default()).unwrap_err();
        let CgroupError::Read { path, .. } = err else {
            panic!("expected a read error, got {err}");
        };
        assert_eq!(path, PathBuf::from(tmp.path()).join("cgroup.controllers"));
    }
}
