//! cgroup v1: one hierarchy per controller (or per group of co-mounted controllers).

mod blkio;
mod cpu;
mod cpuacct;
mod cpuset;
mod devices;
pub(crate) mod freezer;
mod hugetlb;
mod memory;
mod net_cls;
mod net_prio;
mod pids;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::rdma::Rdma;
use super::stats::Stats;
use super::{fs, v2, CgroupError, Controller, Hierarchy, Mode, CGROUP_ROOT, MOUNTINFO};

/// One controller's entry points, so that the controllers can be walked as a list.
struct Entry {
    name: &'static str,
    needed: fn(&LinuxResources) -> bool,
    apply: fn(&Path, &LinuxResources) -> Result<(), CgroupError>,
}

fn entry<C: Controller>() -> Entry {
    Entry {
        name: C::NAME,
        needed: C::needed,
        apply: C::apply,
    }
}

/// Every controller that takes resources, in the order they are applied (runc's).
fn controllers_in_order() -> [Entry; 10] {
    [
        entry::<cpuset::Cpuset>(),
        entry::<devices::Devices>(),
        entry::<memory::Memory>(),
        entry::<cpu::Cpu>(),
        entry::<pids::Pids>(),
        entry::<blkio::Blkio>(),
        entry::<hugetlb::Hugetlb>(),
        entry::<net_cls::NetCls>(),
        entry::<net_prio::NetPrio>(),
        entry::<Rdma>(),
    ]
}

/// The controllers `resources` need, each with its directory; an error, before anything
/// is touched, if one is not mounted or a v2-only resource is asked for. A new cgroup
/// always gets a device list (the defaults at least), as runc's do.
fn plan<'a>(
    controllers: &'a BTreeMap<String, Hierarchy>,
    resources: &LinuxResources,
    mode: Mode,
) -> Result<Vec<(Entry, &'a Path)>, CgroupError> {
    if v2::unified::needed(resources) {
        return Err(CgroupError::InvalidResource {
            controller: "unified",
            path: PathBuf::from(CGROUP_ROOT),
            reason: "unified (cgroup v2) resources cannot be used on a cgroup v1 host".to_owned(),
        });
    }
    let mut plan = Vec::new();
    for entry in controllers_in_order() {
        let needed = (entry.needed)(resources);
        let always = mode == Mode::Create && entry.name == devices::Devices::NAME;
        match controllers.get(entry.name) {
            Some(hierarchy) if needed || always => plan.push((entry, hierarchy.path())),
            Some(_) => {}
            None if needed => {
                return Err(CgroupError::ControllerUnavailable {
                    controller: entry.name,
                    path: PathBuf::from(MOUNTINFO),
                })
            }
            None => {}
        }
    }
    Ok(plan)
}

fn apply_plan(plan: Vec<(Entry, &Path)>, resources: &LinuxResources) -> Result<(), CgroupError> {
    for (entry, dir) in plan {
        (entry.apply)(dir, resources)?;
    }
    Ok(())
}

/// Create the container's directory in every mounted hierarchy (and the hybrid unified
/// one), then apply `resources`. `default_parent` names the runtime's own parent when the
/// cgroup is placed there. The caller removes what was made if this fails.
pub(crate) fn create(
    controllers: &BTreeMap<String, Hierarchy>,
    unified: Option<&Hierarchy>,
    resources: &LinuxResources,
    default_parent: Option<&str>,
) -> Result<(), CgroupError> {
    // Refuse before making anything if a needed controller is not mounted.
    let plan = plan(controllers, resources, Mode::Create)?;

    let mut made: Vec<&Path> = Vec::new();
    for (name, hierarchy) in controllers {
        if made.contains(&hierarchy.path()) {
            continue; // co-mounted with a controller already done
        }
        let holds_cpuset = controllers
            .iter()
            .any(|(other, h)| other == cpuset::Cpuset::NAME && h.path() == hierarchy.path());
        if !holds_cpuset {
            fs::create_all(hierarchy)?;
            tracing::trace!(controller = %name, path = %hierarchy.path().display(), "cgroup created");
            made.push(hierarchy.path());
            continue;
        }
        let levels = fs::levels(hierarchy)?;
        // Set once a level makes its new children copy its cpus and mems by itself.
        let mut parent_clones = false;
        for (i, level) in levels.iter().enumerate() {
            let made_now = fs::create_dir_new(level)?;
            // A new cpuset starts empty, and a process cannot join an empty cpuset
            // (ENOSPC): give each level its parent's cpus and mems.
            // One that existed already may be empty too (made by someone else).
            if !parent_clones || !made_now {
                cpuset::inherit_from_parent(level)?;
            }
            // A parent that fills its children at mkdir (cgroup.clone_children) saves
            // every later start six reads and two writes, among them a write to
            // cpuset.cpus, which rebuilds the scheduler's domains. We set it on
            // parents that are ours: made by this call, or the runtime's default
            // `<root>/berth-<hash>`; others' parents are only read.
            if i + 1 < levels.len() {
                let ours = made_now
                    || (i == 0
                        && default_parent
                            .is_some_and(|name| level.file_name() == Some(name.as_ref())));
                parent_clones = if ours {
                    cpuset::clone_children(level)?;
                    true
                } else {
                    cpuset::clones_children(level)?
                };
            }
        }
        tracing::trace!(controller = %name, path = %hierarchy.path().display(), "cgroup created");
        made.push(hierarchy.path());
    }
    if let Some(unified) = unified {
        fs::create_all(unified)?;
    }
    apply_plan(plan, resources)
}

/// Apply `resources` to the existing cgroup: only what they set is written.
pub(crate) fn update(
    controllers: &BTreeMap<String, Hierarchy>,
    resources: &LinuxResources,
) -> Result<(), CgroupError> {
    let plan = plan(controllers, resources, Mode::Update)?;
    apply_plan(plan, resources)
}

/// The directory of `controller`, if mounted.
fn dir_of<'a>(controllers: &'a BTreeMap<String, Hierarchy>, controller: &str) -> Option<&'a Path> {
    controllers.get(controller).map(Hierarchy::path)
}

/// Usage from every mounted controller that reports any.
pub(crate) fn stats(controllers: &BTreeMap<String, Hierarchy>) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    if let Some(dir) = dir_of(controllers, "cpuacct") {
        stats.cpu.usage = cpuacct::usage(dir)?;
    }
    if let Some(dir) = dir_of(controllers, cpu::Cpu::NAME) {
        stats.cpu.throttling = cpu::throttling(dir)?;
    }
    if let Some(dir) = dir_of(controllers, memory::Memory::NAME) {
        stats.memory = memory::stats(dir)?;
    }
    if let Some(dir) = dir_of(controllers, pids::Pids::NAME) {
        stats.pids = pids::stats(dir)?;
    }
    if let Some(dir) = dir_of(controllers, blkio::Blkio::NAME) {
        stats.blkio = blkio::stats(dir)?;
    }
    if let Some(dir) = dir_of(controllers, hugetlb::Hugetlb::NAME) {
        stats.hugetlb = hugetlb::stats(dir)?;
    }
    Ok(stats)
}

/// The OOM kill count from the memory controller.
pub(crate) fn oom_kill_count(
    controllers: &BTreeMap<String, Hierarchy>,
) -> Result<u64, CgroupError> {
    match dir_of(controllers, memory::Memory::NAME) {
        Some(dir) => memory::oom_kill_count(dir),
        None => Err(CgroupError::ControllerUnavailable {
            controller: memory::Memory::NAME,
            path: PathBuf::from(MOUNTINFO),
        }),
    }
}

/// The v1 freezer's directory, if the freezer is mounted.
pub(crate) fn freezer_dir(controllers: &BTreeMap<String, Hierarchy>) -> Option<&Path> {
    dir_of(controllers, "freezer")
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
        let err = create(&controllers, None, &resources, None).unwrap_err();
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

    fn hierarchies(root: &Path, names: &[&str]) -> BTreeMap<String, Hierarchy> {
        names
            .iter()
            .map(|name| {
                let mount = root.join(name);
                std::fs::create_dir_all(mount.join("c1")).unwrap();
                let hierarchy = Hierarchy {
                    path: mount.join("c1"),
                    mount,
                };
                ((*name).to_owned(), hierarchy)
            })
            .collect()
    }

    #[test]
    fn unified_resources_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let controllers = hierarchies(tmp.path(), &["memory"]);
        let resources: LinuxResources =
            serde_json::from_str(r#"{"unified": {"memory.high": "1"}}"#).unwrap();
        let err = update(&controllers, &resources).unwrap_err();
        assert!(err.to_string().contains("cgroup v1 host"), "{err}");
    }

    #[test]
    fn unavailable_controllers_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let controllers = hierarchies(tmp.path(), &["memory", "cpu"]);
        for (json, controller) in [
            (
                r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
                "hugetlb",
            ),
            (r#"{"network": {"classID": 1}}"#, "net_cls"),
            (
                r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
                "net_prio",
            ),
            (r#"{"blockIO": {"weight": 100}}"#, "blkio"),
            (r#"{"devices": []}"#, "devices"),
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            let err = update(&controllers, &resources).unwrap_err();
            assert!(
                matches!(err, CgroupError::ControllerUnavailable { controller: c, .. } if c == controller),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn update_writes_only_what_is_set() {
        let tmp = tempfile::tempdir().unwrap();
        let controllers = hierarchies(tmp.path(), &["pids", "devices", "memory"]);
        let pids_dir = controllers["pids"].path().to_path_buf();
        std::fs::write(pids_dir.join("pids.max"), "max").unwrap();
        // No devices files: an update without devices must not touch them.
        let resources: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 9}}"#).unwrap();
        update(&controllers, &resources).unwrap();
        assert_eq!(fs::read(&pids_dir, "pids.max").unwrap(), "9");
    }

    #[test]
    fn stats_and_oom_from_fixture_files() {
        let tmp = tempfile::tempdir().unwrap();
        let controllers = hierarchies(tmp.path(), &["pids", "memory", "cpuacct"]);
        std::fs::write(controllers["pids"].path().join("pids.current"), "4").unwrap();
        std::fs::write(
            controllers["memory"].path().join("memory.usage_in_bytes"),
            "100",
        )
        .unwrap();
        std::fs::write(
            controllers["memory"].path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        std::fs::write(controllers["cpuacct"].path().join("cpuacct.usage"), "77").unwrap();
        let stats = stats(&controllers).unwrap();
        assert_eq!(stats.pids.current, 4);
        assert_eq!(stats.memory.usage.usage, 100);
        assert_eq!(stats.cpu.usage.total, 77);
        assert_eq!(oom_kill_count(&controllers).unwrap(), 2);
        let without_memory = hierarchies(&tmp.path().join("other"), &["pids"]);
        assert!(oom_kill_count(&without_memory).is_err());
    }
}
