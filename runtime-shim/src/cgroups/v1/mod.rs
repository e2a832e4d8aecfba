//! cgroup v1: one hierarchy per controller (or per group of co-mounted controllers).

mod cpu;
mod cpuset;
mod memory;
mod pids;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{fs, CgroupError, Controller, Hierarchy, MOUNTINFO};

/// Create the container's directory in every mounted hierarchy (and the hybrid unified
/// one), then apply `resources`. The caller removes what was made if this fails.
pub(crate) fn create(
    controllers: &BTreeMap<String, Hierarchy>,
    unified: Option<&Hierarchy>,
    resources: &LinuxResources,
) -> Result<(), CgroupError> {
    // Refuse before making anything if a needed controller is not mounted.
    let pids = hierarchy_for::<pids::Pids>(controllers, resources)?;
    let memory = hierarchy_for::<memory::Memory>(controllers, resources)?;
    let cpu = hierarchy_for::<cpu::Cpu>(controllers, resources)?;
    let cpuset = hierarchy_for::<cpuset::Cpuset>(controllers, resources)?;

    let mut made: Vec<&Path> = Vec::new();
    for (name, hierarchy) in controllers {
        if made.contains(&hierarchy.path()) {
            continue; // co-mounted with a controller already done
        }
        let holds_cpuset = controllers
            .iter()
            .any(|(other, h)| other == cpuset::Cpuset::NAME && h.path() == hierarchy.path());
        for level in fs::levels(hierarchy)? {
            fs::create_dir(&level)?;
            if holds_cpuset {
                // A new cpuset starts empty, and a process cannot join an empty cpuset
                // (ENOSPC): give each level its parent's cpus and mems.
                cpuset::inherit_from_parent(&level)?;
            }
        }
        tracing::trace!(controller = %name, path = %hierarchy.path().display(), "cgroup created");
        made.push(hierarchy.path());
    }
    if let Some(unified) = unified {
        for level in fs::levels(unified)? {
            fs::create_dir(&level)?;
        }
    }

    apply::<pids::Pids>(pids, resources)?;
    apply::<memory::Memory>(memory, resources)?;
    apply::<cpu::Cpu>(cpu, resources)?;
    apply::<cpuset::Cpuset>(cpuset, resources)
}

/// The hierarchy of controller `C` if `resources` need it; an error if they need it and
/// it is not mounted.
fn hierarchy_for<'a, C: Controller>(
    controllers: &'a BTreeMap<String, Hierarchy>,
    resources: &LinuxResources,
) -> Result<Option<&'a Hierarchy>, CgroupError> {
    if !C::needed(resources) {
        return Ok(None);
    }
    match controllers.get(C::NAME) {
        Some(hierarchy) => Ok(Some(hierarchy)),
        None => Err(CgroupError::ControllerUnavailable {
            controller: C::NAME,
            path: PathBuf::from(MOUNTINFO),
        }),
    }
}

fn apply<C: Controller>(
    hierarchy: Option<&Hierarchy>,
    resources: &LinuxResources,
) -> Result<(), CgroupError> {
    match hierarchy {
        Some(hierarchy) => C::apply(hierarchy.path(), resources),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_controller_is_refused_before_anything_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().join("memory");
        std::fs::create_dir(&mount).unwrap();
        let controllers = BTreeMap::from([(
            "memory".to_owned(),
            Hierarchy {
                mount: mount.clone(),
                path: mount.join("c1"),
            },
        )]);
        let resources: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 3}}"#).unwrap();
        let err = create(&controllers, None, &resources).unwrap_err();
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
        assert!(!mount.join("c1").exists());
    }
}
