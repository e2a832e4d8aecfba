//! cgroup v2: one unified hierarchy; controllers are handed down level by level through
//! each parent's `cgroup.subtree_control`.

mod bpf;
mod cpu;
mod cpuset;
mod devices;
pub(crate) mod freezer;
mod hugetlb;
mod io;
mod memory;
mod pids;
pub(crate) mod unified;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::rdma::Rdma;
use super::stats::Stats;
use super::{fs, CgroupError, Controller, Hierarchy, Mode};

/// Controllers enabled for the container's cgroup whenever the host offers them, so its
/// usage is accounted even without limits. Failing to enable one is only an error if the
/// resources need it.
const ACCOUNTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// The controllers `resources` need enabled, and the v1-only resources refused: v2 has
/// no network classes or priorities (use eBPF).
fn required(dir: &Path, resources: &LinuxResources) -> Result<Vec<&'static str>, CgroupError> {
    if let Some(network) = resources.network() {
        if network.class_id().is_some()
            || network.priorities().as_ref().is_some_and(|p| !p.is_empty())
        {
            return Err(CgroupError::InvalidResource {
                controller: "network",
                path: dir.to_path_buf(),
                reason: "network classID/priorities need the v1 net_cls/net_prio controllers, \
                         which cgroup v2 does not have"
                    .to_owned(),
            });
        }
    }
    unified::check(dir, resources)?;
    let mut required: Vec<&'static str> = [
        (pids::Pids::NAME, pids::Pids::needed(resources)),
        (memory::Memory::NAME, memory::Memory::needed(resources)),
        (cpu::Cpu::NAME, cpu::Cpu::needed(resources)),
        (cpuset::Cpuset::NAME, cpuset::Cpuset::needed(resources)),
        (io::Io::NAME, io::Io::needed(resources)),
        (hugetlb::Hugetlb::NAME, hugetlb::Hugetlb::needed(resources)),
        (Rdma::NAME, Rdma::needed(resources)),
    ]
    .into_iter()
    .filter_map(|(name, needed)| needed.then_some(name))
    .collect();
    for name in unified::controllers(resources) {
        if !required.contains(&name) {
            required.push(name);
        }
    }
    Ok(required)
}

/// Create the container's cgroup (and any missing parents), enable the controllers it
/// uses in every parent's `cgroup.subtree_control`, then apply `resources`. The caller
/// removes what was made if this fails.
pub(crate) fn create(unified: &Hierarchy, resources: &LinuxResources) -> Result<(), CgroupError> {
    let required = required(unified.path(), resources)?;
    let mut parent = unified.mount();
    for level in fs::levels(unified)?.iter() {
        enable_controllers(parent, &required)?;
        fs::create_dir(level)?;
        parent = level;
    }
    apply_all(unified.path(), resources, Mode::Create)
}

/// Apply `resources` to the existing cgroup (enabling any controller they need that is
/// not enabled yet): only what they set is written.
pub(crate) fn update(unified: &Hierarchy, resources: &LinuxResources) -> Result<(), CgroupError> {
    let required = required(unified.path(), resources)?;
    if !required.is_empty() {
        let mut parent = unified.mount();
        for level in fs::levels(unified)?.iter() {
            enable_controllers(parent, &required)?;
            parent = level;
        }
    }
    apply_all(unified.path(), resources, Mode::Update)
}

fn apply_all(dir: &Path, resources: &LinuxResources, mode: Mode) -> Result<(), CgroupError> {
    apply::<cpuset::Cpuset>(dir, resources)?;
    apply::<memory::Memory>(dir, resources)?;
    memory::warn_ignored(resources);
    apply::<cpu::Cpu>(dir, resources)?;
    apply::<pids::Pids>(dir, resources)?;
    apply::<io::Io>(dir, resources)?;
    apply::<hugetlb::Hugetlb>(dir, resources)?;
    apply::<Rdma>(dir, resources)?;
    if devices::Devices::needed(resources) {
        devices::Devices::apply(dir, resources)?;
    } else if mode == Mode::Create {
        // A new cgroup gets the default device list even unasked, as with runc; where
        // eBPF is not available to us, that is worth a warning, not a failed container.
        if let Err(err) = devices::Devices::apply(dir, resources) {
            tracing::warn!(error = %err, "default device rules not applied");
        }
    }
    // Last, so that raw unified values override everything above (runc's order).
    unified::apply(dir, resources)
}

fn apply<C: Controller>(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
    if C::needed(resources) {
        C::apply(dir, resources)
    } else {
        Ok(())
    }
}

/// Usage from the unified cgroup at `dir`; files of controllers that are not enabled
/// read as zero.
pub(crate) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    Ok(Stats {
        cpu: cpu::stats(dir)?,
        memory: memory::stats(dir)?,
        pids: pids::stats(dir)?,
        blkio: io::stats(dir)?,
        hugetlb: hugetlb::stats(dir)?,
    })
}

/// The OOM kill count from `memory.events`.
pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64, CgroupError> {
    memory::oom_kill_count(dir)
}

/// How many device programs are attached directly to the cgroup at `dir`.
#[cfg(test)]
pub(crate) fn attached_device_programs(dir: &Path) -> Result<usize, CgroupError> {
    devices::attached(dir)
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

    #[test]
    fn v1_only_resources_are_refused_before_anything_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        level(tmp.path(), "cpu memory pids", "");
        let hierarchy = Hierarchy {
            mount: tmp.path().to_path_buf(),
            path: tmp.path().join("c1"),
        };
        for json in [
            r#"{"network": {"classID": 1}}"#,
            r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
            r#"{"unified": {"../x": "1"}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            let err = create(&hierarchy, &resources).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidResource { .. }),
                "{json}: {err}"
            );
            assert!(!tmp.path().join("c1").exists(), "{json}");
        }
    }

    #[test]
    fn unified_keys_enable_their_controllers() {
        let resources: LinuxResources =
            serde_json::from_str(r#"{"unified": {"memory.high": "1", "cgroup.max.depth": "2"}}"#)
                .unwrap();
        assert_eq!(required(Path::new("/x"), &resources).unwrap(), ["memory"]);
        let tmp = tempfile::tempdir().unwrap();
        level(tmp.path(), "cpu pids", "");
        let err = enable_controllers(tmp.path(), &["memory"]).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::ControllerUnavailable {
                    controller: "memory",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn update_applies_without_creating() {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().to_path_buf();
        level(&mount, "cpu memory pids", "cpu memory pids");
        let leaf = mount.join("c1");
        std::fs::create_dir(&leaf).unwrap();
        std::fs::write(leaf.join("pids.max"), "max").unwrap();
        std::fs::write(leaf.join("memory.high"), "max").unwrap();
        let hierarchy = Hierarchy {
            mount,
            path: leaf.clone(),
        };
        let resources: LinuxResources =
            serde_json::from_str(r#"{"pids": {"limit": 5}, "unified": {"memory.high": "4096"}}"#)
                .unwrap();
        update(&hierarchy, &resources).unwrap();
        assert_eq!(fs::read(&leaf, "pids.max").unwrap(), "5");
        assert_eq!(fs::read(&leaf, "memory.high").unwrap(), "4096");
        let gone = Hierarchy {
            mount: tmp.path().to_path_buf(),
            path: tmp.path().join("gone"),
        };
        assert!(update(&gone, &resources).is_err());
    }

    #[test]
    fn stats_from_fixture_files() {
        let tmp = tempfile::tempdir().unwrap();
        for (file, content) in [
            ("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n"),
            ("memory.current", "8192"),
            ("memory.max", "max"),
            ("pids.current", "1"),
            ("pids.max", "max"),
            (
                "io.stat",
                "254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
            ),
        ] {
            std::fs::write(tmp.path().join(file), content).unwrap();
        }
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats.cpu.usage.total, 10_000);
        assert_eq!(stats.memory.usage.usage, 8192);
        assert_eq!(stats.memory.usage.limit, u64::MAX);
        assert_eq!(stats.pids.current, 1);
        assert_eq!(stats.blkio.io_serviced_recursive.len(), 3);
    }
}
