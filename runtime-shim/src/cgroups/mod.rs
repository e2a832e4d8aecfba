//! Control groups: detection of v1/v2 and the per-container cgroup manager.
//!
//! [`Cgroup::new`] works out where a container's cgroup lives in every hierarchy the host
//! mounts (read from `/proc/self/mountinfo`, never hardcoded); [`Cgroup::create`] makes
//! the directories and writes the resource limits; [`Cgroup::destroy`] removes them
//! again. A `Cgroup` is plain data (serde), so the runtime stores it in the container's
//! state file and rebuilds it in `delete`/`ps` without the spec.
//!
//! Layout: one controller per file under [`v1`] and [`v2`], each a small [`Controller`]
//! implementation tested against a temporary directory standing in for cgroupfs.
//!
//! Resources applied: `pids.limit`, `memory.{limit,reservation,swap}`,
//! `cpu.{shares,quota,period,cpus,mems}`. Other resources (devices, blockIO, hugepages,
//! network, rdma, unified) are not applied by this module yet.

mod fs;
mod mountinfo;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use mountinfo::{CgroupMount, MountKind, OwnCgroups};

/// Where cgroupfs lives on a host. Only used to tell v2 from v1 (statfs magic); the v1
/// hierarchies themselves are found in `/proc/self/mountinfo`.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const MOUNTINFO: &str = "/proc/self/mountinfo";
const OWN_CGROUP: &str = "/proc/self/cgroup";
/// How long [`Cgroup::destroy`] keeps retrying `rmdir` on `EBUSY` while exiting tasks drain.
const DESTROY_PATIENCE: Duration = Duration::from_secs(1);

/// Everything that can go wrong with a container's cgroup. Every variant names the path
/// that failed (and the controller where one is involved).
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The spec's `linux.cgroupsPath` (or the container id used to make the default
    /// path) cannot name a cgroup.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The host's cgroup layout could not be worked out.
    #[error("detecting cgroups at {path}: {reason}")]
    Detect {
        /// The file or mount point that was examined.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A controller the resources need is not mounted (v1) or not available (v2).
    #[error("cgroup controller {controller} is not available (looked in {path})")]
    ControllerUnavailable {
        /// The controller's name, e.g. `pids`.
        controller: &'static str,
        /// Where we looked for it (`/proc/self/mountinfo` or a `cgroup.controllers` file).
        path: PathBuf,
    },
    /// A resource value in the spec makes no sense for the controller.
    #[error("invalid {controller} resource for {path}: {reason}")]
    InvalidResource {
        /// The controller the value is for.
        controller: &'static str,
        /// The cgroup directory it was to be written to.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading a cgroup file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A cgroup file held something we could not parse.
    #[error("parsing {path}: unexpected content {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending content.
        content: String,
    },
    /// Writing a value to a cgroup file failed.
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Creating a cgroup directory failed.
    #[error("creating cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Removing a cgroup directory failed (after retrying on `EBUSY`).
    #[error("removing cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A controller's resource writer: one per controller and cgroup version, each in its
/// own file, testable against a plain directory.
pub(crate) trait Controller {
    /// The controller's name as the kernel spells it (`pids`, `memory`, …).
    const NAME: &'static str;
    /// Whether `resources` asks anything of this controller.
    fn needed(resources: &LinuxResources) -> bool;
    /// Write this controller's files in the cgroup directory `dir`.
    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError>;
}

/// One hierarchy's view of the container's cgroup: the hierarchy's mount point and the
/// container's directory below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    mount: PathBuf,
    path: PathBuf,
}

impl Hierarchy {
    /// The mount point of the hierarchy (e.g. `/sys/fs/cgroup/pids`).
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The container's cgroup directory in this hierarchy.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where a container's cgroup lives, per hierarchy, as resolved by [`Cgroup::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum CgroupPaths {
    /// cgroup v1 ("legacy"), possibly with an empty cgroup2 hierarchy beside it ("hybrid").
    V1 {
        /// Controller name (`cpu`, `cpuacct`, `pids`, …) to its hierarchy. Controllers
        /// mounted together (e.g. `cpu,cpuacct`) share one directory.
        controllers: BTreeMap<String, Hierarchy>,
        /// The cgroup2 hierarchy of a hybrid host, which holds no controllers but tracks
        /// processes.
        unified: Option<Hierarchy>,
    },
    /// cgroup v2 ("unified"): one hierarchy for every controller.
    V2 {
        /// The unified hierarchy.
        unified: Hierarchy,
    },
}

/// The cgroup of one container, v1 or v2 inside. Plain data: store it (serde) and
/// rebuild it later to list or remove the cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    paths: CgroupPaths,
}

impl Cgroup {
    /// Resolve where the container's cgroup lives. `cgroups_path` is the spec's
    /// `linux.cgroupsPath` (`None` => `/berth/<id>`). Absolute paths are relative to each
    /// hierarchy's root; relative paths are relative to the calling process's own cgroup
    /// (as runc's fs driver does). Nothing is created.
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        let placement = Placement::parse(cgroups_path, id)?;
        let v2 = detect_v2(Path::new(CGROUP_ROOT))?;
        let mounts = mountinfo::parse_mountinfo(&read_proc(MOUNTINFO)?);
        let own = match placement {
            Placement::Relative(_) => Some(mountinfo::parse_own_cgroups(&read_proc(OWN_CGROUP)?)),
            Placement::Absolute(_) => None,
        };
        let paths = if v2 {
            resolve_v2(&mounts, own.as_ref(), &placement)?
        } else {
            resolve_v1(&mounts, own.as_ref(), &placement)?
        };
        Ok(Self { paths })
    }

    /// Create the directories (in every hierarchy we use) and apply `resources`. On
    /// failure everything created is removed again before the error is returned.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        let empty = LinuxResources::default();
        let resources = resources.unwrap_or(&empty);
        let result = match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => v1::create(controllers, unified.as_ref(), resources),
            CgroupPaths::V2 { unified } => v2::create(unified, resources),
        };
        if let Err(err) = result {
            if let Err(cleanup) = self.destroy() {
                tracing::warn!(error = %cleanup, "cleaning up a half-made cgroup");
            }
            return Err(err);
        }
        Ok(())
    }

    /// Move process `pid` into the cgroup: write `cgroup.procs` in every hierarchy (on a
    /// hybrid host the unified one too).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in self.dirs() {
            fs::write(dir, "cgroup.procs", &value)?;
        }
        Ok(())
    }

    /// The pids in the cgroup and its sub-cgroups, sorted and without duplicates (from the
    /// pids hierarchy on v1, or `cgroup.procs` on v2). Empty if the cgroup is gone.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => controllers
                .get("pids")
                .or_else(|| controllers.values().next())
                .or(unified.as_ref()),
            CgroupPaths::V2 { unified } => Some(unified),
        };
        let mut pids = Vec::new();
        if let Some(hierarchy) = dir {
            fs::collect_pids(hierarchy.path(), &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Remove the container's cgroup directory in every hierarchy, sub-cgroups first.
    /// Missing directories are fine; `EBUSY` (tasks still exiting) is retried for up to
    /// about a second. Shared parents (e.g. `/sys/fs/cgroup/pids/berth`) are left alone.
    /// Every hierarchy is attempted; the first error is returned.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + DESTROY_PATIENCE;
        let mut first_error = None;
        for dir in self.dirs() {
            if let Err(err) = fs::remove_tree(dir, deadline) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Where the cgroup lives, per hierarchy.
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// Whether the host uses cgroup v2 (unified) for this cgroup.
    pub fn is_v2(&self) -> bool {
        matches!(self.paths, CgroupPaths::V2 { .. })
    }

    /// The container's distinct cgroup directories, one per hierarchy (co-mounted
    /// controllers share one).
    fn dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = Vec::new();
        match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => {
                for hierarchy in controllers.values().chain(unified) {
                    if !dirs.contains(&hierarchy.path()) {
                        dirs.push(hierarchy.path());
                    }
                }
            }
            CgroupPaths::V2 { unified } => dirs.push(unified.path()),
        }
        dirs
    }
}

/// The spec's cgroups path, checked and split into normal components.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    /// Below each hierarchy's root.
    Absolute(PathBuf),
    /// Below the calling process's own cgroup in each hierarchy.
    Relative(PathBuf),
}

impl Placement {
    fn parse(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        let default;
        let raw = match cgroups_path {
            Some(path) if !path.as_os_str().is_empty() => path,
            _ => {
                if id.is_empty() || id.contains(['/', '\0']) || id == "." || id == ".." {
                    return Err(CgroupError::InvalidPath {
                        path: PathBuf::from(id),
                        reason: "the container id cannot name a cgroup directory",
                    });
                }
                default = Path::new("/berth").join(id);
                &default
            }
        };
        let invalid = |reason| CgroupError::InvalidPath {
            path: raw.to_path_buf(),
            reason,
        };
        if raw.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(invalid("contains a NUL byte"));
        }
        let mut rel = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::Normal(part) => rel.push(part),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir => return Err(invalid("\"..\" is not allowed")),
                Component::Prefix(_) => return Err(invalid("not a Unix path")),
            }
        }
        if rel.as_os_str().is_empty() {
            return Err(invalid("names a hierarchy root or the caller's own cgroup"));
        }
        Ok(if raw.is_absolute() {
            Self::Absolute(rel)
        } else {
            Self::Relative(rel)
        })
    }
}

/// Whether `root` is a cgroup2 file system (a pure v2 host).
fn detect_v2(root: &Path) -> Result<bool, CgroupError> {
    let stat = nix::sys::statfs::statfs(root).map_err(|errno| CgroupError::Detect {
        path: root.to_path_buf(),
        reason: format!("statfs: {errno}"),
    })?;
    Ok(stat.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: PathBuf::from(path),
        source,
    })
}

/// The container's directory in the hierarchy mounted at `mount`, whose own cgroup (for
/// relative placements) is `own`.
fn hierarchy_for(
    mount: &CgroupMount,
    own: Option<&str>,
    what: &str,
    placement: &Placement,
) -> Result<Hierarchy, CgroupError> {
    let path = match placement {
        Placement::Absolute(rel) => mount.mount_point.join(rel),
        Placement::Relative(rel) => {
            let detect = |reason: String| CgroupError::Detect {
                path: PathBuf::from(OWN_CGROUP),
                reason,
            };
            let own = own.ok_or_else(|| detect(format!("no entry for {what}")))?;
            let own = Path::new(own);
            if own.components().any(|c| c == Component::ParentDir) {
                return Err(detect(format!(
                    "own {what} cgroup {own:?} is outside this cgroup namespace"
                )));
            }
            let inside = own.strip_prefix(&mount.root).map_err(|_| {
                detect(format!(
                    "own {what} cgroup {own:?} is not below the mount's root {:?}",
                    mount.root
                ))
            })?;
            mount.mount_point.join(inside).join(rel)
        }
    };
    Ok(Hierarchy {
        mount: mount.mount_point.clone(),
        path,
    })
}

fn resolve_v2(
    mounts: &[CgroupMount],
    own: Option<&OwnCgroups>,
    placement: &Placement,
) -> Result<CgroupPaths, CgroupError> {
    let fallback;
    let mount = match mounts
        .iter()
        .find(|m| m.kind == MountKind::V2 && m.mount_point == Path::new(CGROUP_ROOT))
    {
        Some(mount) => mount,
        None => {
            fallback = CgroupMount {
                root: PathBuf::from("/"),
                mount_point: PathBuf::from(CGROUP_ROOT),
                kind: MountKind::V2,
            };
            &fallback
        }
    };
    let unified = own.and_then(|own| own.unified.as_deref());
    Ok(CgroupPaths::V2 {
        unified: hierarchy_for(mount, unified, "the unified hierarchy", placement)?,
    })
}

fn resolve_v1(
    mounts: &[CgroupMount],
    own: Option<&OwnCgroups>,
    placement: &Placement,
) -> Result<CgroupPaths, CgroupError> {
    let mut controllers = BTreeMap::new();
    let mut unified = None;
    for mount in mounts {
        match &mount.kind {
            MountKind::V1 { controllers: names } => {
                for name in names {
                    if controllers.contains_key(name) {
                        continue; // mounted twice: the first mount wins
                    }
                    let own = own
                        .and_then(|own| own.controllers.get(name))
                        .map(String::as_str);
                    let what = format!("controller {name}");
                    let hierarchy = hierarchy_for(mount, own, &what, placement)?;
                    controllers.insert(name.clone(), hierarchy);
                }
            }
            MountKind::V2 if unified.is_none() => {
                let own = own.and_then(|own| own.unified.as_deref());
                unified = Some(hierarchy_for(
                    mount,
                    own,
                    "the unified hierarchy",
                    placement,
                )?);
            }
            MountKind::V2 => {}
        }
    }
    if controllers.is_empty() {
        return Err(CgroupError::Detect {
            path: PathBuf::from(MOUNTINFO),
            reason: format!("{CGROUP_ROOT} is not cgroup2 and no cgroup v1 controller is mounted"),
        });
    }
    Ok(CgroupPaths::V1 {
        controllers,
        unified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: separate cpu and cpuacct mounts, hybrid unified.
    const HYBRID: &str = "\
10:31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
11:32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
12:33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
13:34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
14:35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
18:39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
19:40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
20:41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A classic systemd v1 layout with co-mounted controllers and no unified mount.
    const COMOUNTED: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids
";

    const V2_HOST: &str = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    fn dir_of<'a>(paths: &'a CgroupPaths, controller: &str) -> Option<&'a Path> {
        match paths {
            CgroupPaths::V1 { controllers, .. } => controllers.get(controller).map(|h| h.path()),
            CgroupPaths::V2 { unified } => Some(unified.path()),
        }
    }

    #[test]
    fn placement_defaults_to_berth_id() {
        let placement = Placement::parse(None, "web1").unwrap();
        assert_eq!(placement, Placement::Absolute(PathBuf::from("berth/web1")));
        let empty = Placement::parse(Some(Path::new("")), "web1").unwrap();
        assert_eq!(empty, placement);
    }

    #[test]
    fn placement_absolute_and_relative() {
        let abs = Placement::parse(Some(Path::new("/a/./b/")), "x").unwrap();
        assert_eq!(abs, Placement::Absolute(PathBuf::from("a/b")));
        let rel = Placement::parse(Some(Path::new("pod/c1")), "x").unwrap();
        assert_eq!(rel, Placement::Relative(PathBuf::from("pod/c1")));
    }

    #[test]
    fn placement_refuses_escapes_and_roots() {
        for bad in ["/a/../b", "../x", "/", ".", "/./"] {
            let err = Placement::parse(Some(Path::new(bad)), "x").unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidPath { .. }),
                "{bad}: {err}"
            );
        }
        for bad_id in ["", "a/b", "..", "."] {
            assert!(Placement::parse(None, bad_id).is_err(), "{bad_id:?}");
        }
    }

    #[test]
    fn resolves_hybrid_layout() {
        let mounts = mountinfo::parse_mountinfo(HYBRID);
        let placement = Placement::parse(None, "c1").unwrap();
        let paths = resolve_v1(&mounts, None, &placement).unwrap();
        let CgroupPaths::V1 {
            controllers,
            unified,
        } = &paths
        else {
            panic!("expected v1");
        };
        let names: Vec<&str> = controllers.keys().map(String::as_str).collect();
        assert_eq!(names, ["cpu", "cpuacct", "cpuset", "memory", "pids"]);
        assert_eq!(
            dir_of(&paths, "cpu"),
            Some(Path::new("/sys/fs/cgroup/cpu/berth/c1"))
        );
        assert_eq!(
            controllers["pids"].mount(),
            Path::new("/sys/fs/cgroup/pids")
        );
        let unified = unified.as_ref().unwrap();
        assert_eq!(unified.path(), Path::new("/sys/fs/cgroup/unified/berth/c1"));
    }

    #[test]
    fn comounted_controllers_share_a_directory() {
        let mounts = mountinfo::parse_mountinfo(COMOUNTED);
        let placement = Placement::parse(Some(Path::new("/x")), "c1").unwrap();
        let cgroup = Cgroup {
            paths: resolve_v1(&mounts, None, &placement).unwrap(),
        };
        let dir = Path::new("/sys/fs/cgroup/cpu,cpuacct/x");
        assert_eq!(dir_of(cgroup.paths(), "cpu"), Some(dir));
        assert_eq!(dir_of(cgroup.paths(), "cpuacct"), Some(dir));
        assert_eq!(
            cgroup.dirs(),
            [dir, Path::new("/sys/fs/cgroup/pids/x")],
            "one directory per hierarchy"
        );
        assert!(!cgroup.is_v2());
    }

    #[test]
    fn relative_path_is_below_own_cgroup() {
        let mounts = mountinfo::parse_mountinfo(HYBRID);
        let own = mountinfo::parse_own_cgroups(
            "9:name=systemd:/\n4:memory:/session/7\n1:cpu:/\n8:pids:/\n3:cpuset:/\n2:cpuacct:/\n0::/u\n",
        );
        let placement = Placement::parse(Some(Path::new("pod/c1")), "c1").unwrap();
        let paths = resolve_v1(&mounts, Some(&own), &placement).unwrap();
        assert_eq!(
            dir_of(&paths, "memory"),
            Some(Path::new("/sys/fs/cgroup/memory/session/7/pod/c1"))
        );
        assert_eq!(
            dir_of(&paths, "pids"),
            Some(Path::new("/sys/fs/cgroup/pids/pod/c1"))
        );
        let CgroupPaths::V1 {
            unified: Some(unified),
            ..
        } = &paths
        else {
            panic!("expected hybrid");
        };
        assert_eq!(unified.path(), Path::new("/sys/fs/cgroup/unified/u/pod/c1"));
    }

    #[test]
    fn relative_path_needs_own_cgroup_entry() {
        let mounts = mountinfo::parse_mountinfo(HYBRID);
        let own = mountinfo::parse_own_cgroups("1:cpu:/\n");
        let placement = Placement::parse(Some(Path::new("c1")), "c1").unwrap();
        let err = resolve_v1(&mounts, Some(&own), &placement).unwrap_err();
        assert!(matches!(err, CgroupError::Detect { .. }), "{err}");
        let escaped = mountinfo::parse_own_cgroups("0::/../../x\n");
        let err = resolve_v2(
            &mountinfo::parse_mountinfo(V2_HOST),
            Some(&escaped),
            &placement,
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn resolves_v2_host() {
        let mounts = mountinfo::parse_mountinfo(V2_HOST);
        let own = mountinfo::parse_own_cgroups("0::/user.slice/session-1.scope\n");
        let placement = Placement::parse(Some(Path::new("c1")), "c1").unwrap();
        let cgroup = Cgroup {
            paths: resolve_v2(&mounts, Some(&own), &placement).unwrap(),
        };
        assert!(cgroup.is_v2());
        assert_eq!(
            cgroup.dirs(),
            [Path::new("/sys/fs/cgroup/user.slice/session-1.scope/c1")]
        );
    }

    #[test]
    fn no_v1_controllers_is_an_error() {
        let mounts = mountinfo::parse_mountinfo(V2_HOST);
        let placement = Placement::parse(None, "c1").unwrap();
        assert!(matches!(
            resolve_v1(&mounts, None, &placement),
            Err(CgroupError::Detect { .. })
        ));
    }

    #[test]
    fn serde_round_trip() {
        let mounts = mountinfo::parse_mountinfo(HYBRID);
        let placement = Placement::parse(None, "c1").unwrap();
        let cgroup = Cgroup {
            paths: resolve_v1(&mounts, None, &placement).unwrap(),
        };
        let json = serde_json::to_string(&cgroup).unwrap();
        assert!(json.contains(r#""version":"v1""#), "{json}");
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cgroup);
    }

    #[test]
    fn pids_of_a_missing_cgroup_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let cgroup = Cgroup {
            paths: CgroupPaths::V2 {
                unified: Hierarchy {
                    mount: tmp.path().to_path_buf(),
                    path: tmp.path().join("gone"),
                },
            },
        };
        assert_eq!(cgroup.pids().unwrap(), Vec::<i32>::new());
        cgroup.destroy().unwrap();
    }

    /// Real cgroups on a root v1/hybrid host, like this project's machines. Skipped (with
    /// a reason) elsewhere.
    #[test]
    fn real_v1_lifecycle() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping real_v1_lifecycle: not root");
            return;
        }
        match detect_v2(Path::new(CGROUP_ROOT)) {
            Ok(false) => {}
            Ok(true) => {
                eprintln!("skipping real_v1_lifecycle: host is cgroup v2");
                return;
            }
            Err(err) => {
                eprintln!("skipping real_v1_lifecycle: {err}");
                return;
            }
        }
        let name = format!("/berth-test-{}", std::process::id());
        let cgroup = Cgroup::new(Some(Path::new(&name)), "unused").unwrap();
        assert!(!cgroup.is_v2());
        let resources: LinuxResources =
            serde_json::from_str(r#"{"pids": {"limit": 10}, "memory": {"limit": 268435456}}"#)
                .unwrap();
        cgroup.create(Some(&resources)).unwrap();

        let CgroupPaths::V1 { controllers, .. } = cgroup.paths() else {
            panic!("expected v1");
        };
        let pids_dir = controllers["pids"].path().to_path_buf();
        assert_eq!(fs::read(&pids_dir, "pids.max").unwrap(), "10");
        let memory_dir = controllers["memory"].path();
        assert_eq!(
            fs::read(memory_dir, "memory.limit_in_bytes").unwrap(),
            "268435456"
        );

        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let added = cgroup.add_process(pid);
        let listed = cgroup.pids();
        let _ = child.kill();
        let _ = child.wait();
        added.unwrap();
        assert_eq!(listed.unwrap(), [pid]);

        cgroup.destroy().unwrap();
        for dir in cgroup.dirs() {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert!(pids_dir.parent().is_some_and(Path::exists), "parent kept");
        cgroup.destroy().unwrap(); // a second destroy finds nothing and is fine
    }

    /// The v2 code path for real, in the hybrid host's controller-less cgroup2 mount:
    /// directories, `cgroup.procs`, removal. Skipped (with a reason) elsewhere.
    #[test]
    fn real_unified_lifecycle_without_controllers() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping real_unified_lifecycle_without_controllers: not root");
            return;
        }
        let mounts = match std::fs::read_to_string(MOUNTINFO) {
            Ok(text) => mountinfo::parse_mountinfo(&text),
            Err(err) => {
                eprintln!("skipping real_unified_lifecycle_without_controllers: {err}");
                return;
            }
        };
        let Some(mount) = mounts.iter().find(|m| {
            m.kind == MountKind::V2
                && m.mount_point != Path::new(CGROUP_ROOT)
                && m.root == Path::new("/")
        }) else {
            eprintln!(
                "skipping real_unified_lifecycle_without_controllers: no hybrid cgroup2 mount"
            );
            return;
        };
        let placement = Placement::Absolute(PathBuf::from(format!(
            "berth-test-{}-v2/nested",
            std::process::id()
        )));
        let hierarchy = hierarchy_for(mount, None, "the unified hierarchy", &placement).unwrap();
        let top = hierarchy.path().parent().unwrap().to_path_buf();
        let cgroup = Cgroup {
            paths: CgroupPaths::V2 { unified: hierarchy },
        };
        cgroup.create(None).unwrap();

        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let added = cgroup.add_process(pid);
        let listed = cgroup.pids();
        let _ = child.kill();
        let _ = child.wait();
        let destroyed = cgroup.destroy();
        let removed_top = std::fs::remove_dir(&top);
        added.unwrap();
        assert_eq!(listed.unwrap(), [pid]);
        destroyed.unwrap();
        removed_top.unwrap();
        assert!(!top.exists());
    }

    #[test]
    fn real_create_failure_leaves_nothing() {
        if !nix::unistd::geteuid().is_root()
            || !matches!(detect_v2(Path::new(CGROUP_ROOT)), Ok(false))
        {
            eprintln!("skipping real_create_failure_leaves_nothing: not root on a v1 host");
            return;
        }
        let name = format!("/berth-test-{}-fail", std::process::id());
        let cgroup = Cgroup::new(Some(Path::new(&name)), "unused").unwrap();
        // A quota below the kernel's 1ms minimum is refused with EINVAL.
        let resources: LinuxResources = serde_json::from_str(
            r#"{"pids": {"limit": 5}, "cpu": {"quota": 10, "period": 100000}}"#,
        )
        .unwrap();
        let err = cgroup.create(Some(&resources)).unwrap_err();
        assert!(err.to_string().contains("cpu.cfs_quota_us"), "{err}");
        for dir in cgroup.dirs() {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
}
