//! Control groups: detection of v1/v2 and the per-container cgroup manager.
//!
//! [`Cgroup::new`] works out where a container's cgroup lives in every hierarchy the host
//! mounts (read from `/proc/self/mountinfo`, never hardcoded); [`Cgroup::create`] makes
//! the directories and writes the resource limits; [`Cgroup::destroy`] removes them
//! again. A `Cgroup` is plain data (serde), so the runtime stores it in the container's
//! state file and rebuilds it in `delete`/`ps` without the spec.
//!
//! Layout: one controller per file under [`v1`] and [`v2`], each a small [`Controller`]
//! implementation tested against a temporary directory standing in for cgroupfs. What
//! both versions share sits in a file of the same name here: whole controllers where the
//! files are the same on both (`pids`, `cpuset`, `rdma`), otherwise the common parts
//! (`blkio`, `cpu`, `devices`, `hugetlb`, `memory`).
//!
//! Resources applied, v1 and v2 unless noted: `memory` (limit, reservation, swap;
//! swappiness, disableOOMKiller and kernelTCP on v1 only — ignored with a warning on v2,
//! as runc does), `cpu` (shares/weight, quota, period, burst, idle, cpus, mems; realtime
//! on v1 only — refused on v2), `pids`, `blockIO` (weights, throttles), `hugepageLimits`,
//! `devices` (v1 allow/deny files; v2 an eBPF program), `network` (v1 only — refused on
//! v2), `rdma`, `unified` (v2 only — refused on v1). A resource whose controller the
//! host does not have is a [`CgroupError::ControllerUnavailable`], never silently
//! dropped.
//!
//! Beyond creation: [`Cgroup::update`] (the `update` command), [`Cgroup::freeze`] /
//! [`Cgroup::thaw`] / [`Cgroup::is_frozen`] (`pause`/`resume`), [`Cgroup::stats`] (runc's
//! `events --stats` shape) and [`Cgroup::oom_kill_count`] (OOM notifications).

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod fs;
mod hugetlb;
mod lock;
mod memory;
mod mountinfo;
mod pids;
mod rdma;
use berth_runtime_types::stats;
mod v1;
mod v2;

pub use mountinfo::{CgroupDirs, CgroupMounts};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

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
/// How the directory, in each hierarchy's root, that holds the cgroups of containers
/// whose spec names no `cgroupsPath` begins: `/berth-<hash of the runtime root>/<id>`;
/// the runtime's own, shared by them (see [`default_parent`]).
pub(crate) const DEFAULT_PARENT_PREFIX: &str = "berth-";
/// How often a create starts over after losing the default parent to a delete.
const PARENT_RACE_RETRIES: usize = 3;
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
    /// A resource value the spec's checks refuse, before anything is written.
    #[error("invalid {controller} resource for {path}: {reason}")]
    Refused {
        /// The controller the value is for.
        controller: &'static str,
        /// The cgroup directory it was to be written to.
        path: PathBuf,
        /// Which value, and why.
        #[source]
        reason: ResourceError,
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
    /// Freezing did not complete (the cgroup is thawed again), or a freezer state made no
    /// sense.
    #[error("freezing {path}: {reason}")]
    Freeze {
        /// The cgroup directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Loading or attaching the v2 eBPF device program failed.
    #[error("{operation} for {path}: {source}{detail}")]
    Bpf {
        /// The cgroup directory the program is for.
        path: PathBuf,
        /// The `bpf(2)` command or step, e.g. `BPF_PROG_LOAD`.
        operation: &'static str,
        /// The underlying error.
        source: std::io::Error,
        /// Extra context, such as the verifier's log (empty if none).
        detail: String,
    },
    /// The cgroup exists already and holds processes: joining it would make them the
    /// container's (`kill --all`, a forced delete would signal them).
    #[error("cgroup {path} is not ours and not empty: {count} process(es) in it")]
    NotEmpty {
        /// The container's cgroup directory that holds them.
        path: PathBuf,
        /// How many processes it (and its sub-cgroups) holds.
        count: usize,
    },
    /// Locking a hierarchy (see `lock`) failed.
    #[error("locking cgroup hierarchy {path}: {source}")]
    Lock {
        /// The hierarchy's mount point.
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

impl CgroupError {
    /// For `map_err`: a reason made into an [`CgroupError::InvalidResource`] about
    /// `controller`'s resources for the cgroup at `dir`.
    pub(crate) fn invalid<'a>(
        controller: &'static str,
        dir: &'a Path,
    ) -> impl Fn(String) -> Self + Copy + 'a {
        move |reason| Self::InvalidResource {
            controller,
            path: dir.to_path_buf(),
            reason,
        }
    }

    /// For `map_err`: a [`ResourceError`] made into a [`CgroupError::Refused`] about
    /// `controller`'s resources for the cgroup at `dir`.
    pub(crate) fn refused<'a>(
        controller: &'static str,
        dir: &'a Path,
    ) -> impl Fn(ResourceError) -> Self + Copy + 'a {
        move |reason| Self::Refused {
            controller,
            path: dir.to_path_buf(),
            reason,
        }
    }
}

/// Why a resource value of the spec is refused: each variant names the field and value.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// A negative major or minor device number.
    #[error("device {major}:{minor} is not a device number")]
    DeviceNumber {
        /// The major number given.
        major: i64,
        /// The minor number given.
        minor: i64,
    },
    /// An idle policy other than 0 or 1.
    #[error("cpu.idle is {0}; use 0 or 1")]
    CpuIdle(i64),
    /// A device rule of a type other than a, b or c.
    #[error("devices[{index}]: type {typ:?} cannot be used in a cgroup rule (use a, b or c)")]
    DeviceType {
        /// The rule's index in `devices`.
        index: usize,
        /// The type given.
        typ: String,
    },
    /// A device rule's major or minor number above the kernel's limit.
    #[error("devices[{index}]: {what} {value} is too large")]
    DeviceNumberTooLarge {
        /// The rule's index in `devices`.
        index: usize,
        /// `major` or `minor`.
        what: &'static str,
        /// The number given.
        value: i64,
    },
    /// A device rule with no access.
    #[error("devices[{0}]: access cannot be empty")]
    EmptyAccess(usize),
    /// A device rule's access with letters other than r, w and m.
    #[error("devices[{index}]: access {access:?} is not a combination of r, w and m")]
    BadAccess {
        /// The rule's index in `devices`.
        index: usize,
        /// The access given.
        access: String,
    },
    /// A rule that would take access out of a wider wildcard rule (cgroup v1 cannot).
    #[error(
        "rule \"{rule}\" would punch a hole in the wildcard rule \"{wildcard}\", \
         which cgroup v1 cannot do"
    )]
    WildcardHole {
        /// The refused rule, as the kernel writes it.
        rule: String,
        /// The wildcard rule it would change.
        wildcard: String,
    },
    /// A negative memory value other than -1.
    #[error("memory.{field} is {value}; use a byte count, or -1 for unlimited")]
    MemoryValue {
        /// The field of `memory`.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// `memory.swap` without a memory limit.
    #[error("memory.swap needs memory.limit to be set")]
    SwapWithoutLimit,
    /// `memory.swap` (memory+swap) below `memory.limit`.
    #[error("memory.swap ({swap}) is memory+swap and must be >= memory.limit ({limit})")]
    SwapBelowLimit {
        /// The memory+swap limit given.
        swap: i64,
        /// The memory limit given.
        limit: i64,
    },
}

/// Whether resources are applied to a new cgroup or to an existing one (`update`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
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
    /// The runtime's default parent (`berth-<hash>`, below each hierarchy's root) when
    /// the cgroup is placed there; removed with its last container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_parent: Option<String>,
    /// Whether [`Cgroup::create`] made the container's directory (`false`: it joined an
    /// empty one that existed). Only then are all its processes the container's.
    #[serde(default = "made_by_default")]
    created: bool,
    /// Whether `default_parent` was recorded: records from before it was placed their
    /// default cgroups under [`LEGACY_DEFAULT_PARENT`], which goes with its last one too.
    #[serde(default)]
    parent_recorded: bool,
}

/// The default parent of every runtime root before it was made per root.
const LEGACY_DEFAULT_PARENT: &str = "berth";

/// Records from before `created` existed: their cgroups were treated as the container's.
fn made_by_default() -> bool {
    true
}

/// The name of the runtime's default parent for the runtime root `root`: `berth-` and a
/// hash of the root's absolute path, so that two runtime roots (two berthd, two
/// `berth-runc --root`) never share a container's cgroup, even for the same id.
pub fn default_parent(root: &Path) -> String {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let root: PathBuf = root.components().collect(); // without `.` and a trailing `/`
                                                     // Symlinks resolved, also for a root not made yet (its first container).
    let root = std::fs::canonicalize(&root)
        .or_else(|err| match (root.parent(), root.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent).map(|p| p.join(name)),
            _ => Err(err),
        })
        .unwrap_or(root);
    // FNV-1a: stable across builds and Rust versions (unlike std's DefaultHasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in root.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{DEFAULT_PARENT_PREFIX}{:012x}", hash >> 16)
}

impl Cgroup {
    /// Resolve where the container's cgroup lives. `cgroups_path` is the spec's
    /// `linux.cgroupsPath` (`None` => `/<default_parent(root)>/<id>`, `root` being the
    /// runtime's state root). Absolute paths are relative to each hierarchy's root;
    /// relative paths are relative to the calling process's own cgroup (as runc's fs
    /// driver does). Nothing is created.
    pub fn new(cgroups_path: Option<&Path>, id: &str, root: &Path) -> Result<Self, CgroupError> {
        let is_default = cgroups_path.is_none_or(|p| p.as_os_str().is_empty());
        // Only then: it resolves the root's path (a few syscalls).
        let parent = is_default.then(|| default_parent(root));
        let placement = Placement::parse(cgroups_path, id, parent.as_deref().unwrap_or_default())?;
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
        Ok(Self {
            paths,
            default_parent: parent,
            created: true,
            parent_recorded: true,
        })
    }

    /// Create the directories (in every hierarchy we use) and apply `resources`. A cgroup
    /// that exists already is joined only if it holds no process
    /// ([`CgroupError::NotEmpty`] otherwise, before anything is touched). On failure
    /// everything created is removed again before the error is returned.
    pub fn create(&mut self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        self.claim()?;
        self.build(resources)
    }

    /// The first half of [`Cgroup::create`]: refuse a cgroup that holds processes and
    /// learn whether we will make it ([`Cgroup::created`]). Nothing is touched, so the
    /// caller can record the cgroup before [`Cgroup::build`] makes it.
    pub fn claim(&mut self) -> Result<(), CgroupError> {
        let existing: Vec<&Path> = self.dirs().into_iter().filter(|d| d.is_dir()).collect();
        for dir in &existing {
            let mut pids = Vec::new();
            fs::collect_pids(dir, &mut pids)?;
            if !pids.is_empty() {
                return Err(CgroupError::NotEmpty {
                    path: dir.to_path_buf(),
                    count: pids.len(),
                });
            }
        }
        self.created = existing.is_empty();
        Ok(())
    }

    /// The second half of [`Cgroup::create`]: make the directories and apply
    /// `resources`; on failure everything made is removed again.
    pub fn build(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        let empty = LinuxResources::default();
        let result = self.make(resources.unwrap_or(&empty));
        if let Err(err) = result {
            if let Err(cleanup) = self.destroy() {
                tracing::warn!(error = %cleanup, "cleaning up a half-made cgroup");
            }
            return Err(err);
        }
        Ok(())
    }

    /// Make the directories and apply `resources`, holding the lock of every hierarchy
    /// whose default parent we enter (see `lock`) until our own level exists in it.
    fn make(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let _locks = self
            .default_parents()
            .into_iter()
            .map(|(mount, _)| lock::shared(mount))
            .collect::<Result<Vec<_>, _>>()?;
        let parent = self.default_parent.as_deref();
        let attempt = || match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => v1::create(controllers, unified.as_ref(), resources, parent),
            CgroupPaths::V2 { unified } => v2::create(unified, resources),
        };
        // Belt and braces for a remover that does not take the lock (an older binary, an
        // administrator): a parent gone between our mkdirs (ENOENT) means start over, as
        // every step is idempotent.
        let mut result = attempt();
        for _ in 0..PARENT_RACE_RETRIES {
            match &result {
                Err(CgroupError::Create { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    result = attempt();
                }
                _ => break,
            }
        }
        result
    }

    /// Whether the container made its cgroup; if not (it joined an empty one that
    /// existed), others may put processes in it, so not all in it are the container's.
    pub fn created(&self) -> bool {
        self.created
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
    /// about a second. A cgroup the container joined (not [`Cgroup::created`]) is only
    /// removed where empty, and never waited for. The runtime's default parent goes too
    /// once its last container has gone; other parents are left alone. Every hierarchy
    /// is attempted; the first error is returned.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + DESTROY_PATIENCE;
        let mut first_error = None;
        for dir in self.dirs() {
            let result = if self.created {
                fs::remove_tree(dir, deadline)
            } else {
                // Not ours: processes others put there since keep it (EBUSY).
                let _ = std::fs::remove_dir(dir);
                Ok(())
            };
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        }
        for (mount, parent) in self.default_parents() {
            // Not while a create is between making (or reading) the parent and making
            // its own level in it: they hold the lock shared (see `lock`).
            match lock::exclusive(mount) {
                // EBUSY: other containers are still in it; ENOENT: gone already.
                Ok(_lock) => drop(std::fs::remove_dir(&parent)),
                Err(err) => tracing::warn!(error = %err, "default cgroup parent kept"),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Each hierarchy's mount point and the runtime's default parent in it, when this
    /// cgroup is placed there.
    fn default_parents(&self) -> Vec<(&Path, PathBuf)> {
        let name = match (&self.default_parent, self.parent_recorded) {
            (Some(name), _) => name.as_str(),
            (None, false) => LEGACY_DEFAULT_PARENT,
            (None, true) => return Vec::new(),
        };
        let hierarchies: Vec<&Hierarchy> = match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => controllers.values().chain(unified).collect(),
            CgroupPaths::V2 { unified } => vec![unified],
        };
        let mut parents: Vec<(&Path, PathBuf)> = Vec::new();
        for h in hierarchies {
            let default = h.mount().join(name);
            let listed = parents.iter().any(|(_, p)| *p == default);
            if h.path().parent() == Some(default.as_path()) && !listed {
                parents.push((h.mount(), default));
            }
        }
        parents
    }

    /// Apply `resources` to the existing cgroup (the `update` command). Only what they
    /// set is written; everything else keeps its value. The device list is replaced only
    /// if `resources.devices` is given. Nothing is created: a cgroup that is gone is an
    /// error naming the file.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        match &self.paths {
            CgroupPaths::V1 { controllers, .. } => v1::update(controllers, resources),
            CgroupPaths::V2 { unified } => v2::update(unified, resources),
        }
    }

    /// Freeze every process in the cgroup (`pause`) and wait until they are all stopped:
    /// v1's `freezer.state`, or `cgroup.freeze` on v2 (and on a hybrid host without the
    /// v1 freezer). A cgroup that does not freeze in time is thawed again and the error
    /// says so.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::freezer::freeze(dir),
            Freezer::V2(dir) => v2::freezer::freeze(dir),
        }
    }

    /// Thaw the cgroup (`resume`). Thawing a cgroup that is not frozen is fine.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::freezer::thaw(dir),
            Freezer::V2(dir) => v2::freezer::thaw(dir),
        }
    }

    /// Whether the cgroup itself is frozen (a freeze still in progress, or one inherited
    /// from an ancestor, does not count).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::freezer::is_frozen(dir),
            Freezer::V2(dir) => v2::freezer::is_frozen(dir),
        }
    }

    /// Resource usage, shaped like runc's `events --stats` data. Controllers the host
    /// lacks leave their part at zero; a cgroup that is gone is an error.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        self.check_exists()?;
        match &self.paths {
            CgroupPaths::V1 { controllers, .. } => v1::stats(controllers),
            CgroupPaths::V2 { unified } => v2::stats(unified.path()),
        }
    }

    /// How many processes the kernel's OOM killer has killed in the cgroup so far (v1
    /// `memory.oom_control`, v2 `memory.events`). Poll it and compare to notice OOM kills.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        match &self.paths {
            CgroupPaths::V1 { controllers, .. } => v1::oom_kill_count(controllers),
            CgroupPaths::V2 { unified } => v2::oom_kill_count(unified.path()),
        }
    }

    /// Where freezing happens: the v1 freezer if mounted, else the unified hierarchy.
    fn freezer(&self) -> Result<Freezer<'_>, CgroupError> {
        match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => match (v1::freezer_dir(controllers), unified) {
                (Some(dir), _) => Ok(Freezer::V1(dir)),
                (None, Some(unified)) => Ok(Freezer::V2(unified.path())),
                (None, None) => Err(CgroupError::ControllerUnavailable {
                    controller: "freezer",
                    path: PathBuf::from(MOUNTINFO),
                }),
            },
            CgroupPaths::V2 { unified } => Ok(Freezer::V2(unified.path())),
        }
    }

    /// An error naming the cgroup if none of its directories exists.
    fn check_exists(&self) -> Result<(), CgroupError> {
        let dirs = self.dirs();
        match dirs.first() {
            Some(first) if !dirs.iter().any(|dir| dir.is_dir()) => Err(CgroupError::Read {
                path: first.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            }),
            _ => Ok(()),
        }
    }

    /// Where the cgroup lives, per hierarchy.
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// The cgroup's directories, as plain paths.
    pub fn cgroup_dirs(&self) -> CgroupDirs {
        match &self.paths {
            CgroupPaths::V1 {
                controllers,
                unified,
            } => CgroupDirs {
                v1: controllers
                    .iter()
                    .map(|(name, h)| (name.clone(), h.path().to_path_buf()))
                    .collect(),
                v2: unified.as_ref().map(|h| h.path().to_path_buf()),
            },
            CgroupPaths::V2 { unified } => CgroupDirs {
                v1: Default::default(),
                v2: Some(unified.path().to_path_buf()),
            },
        }
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

/// The directory whose freezer [`Cgroup::freeze`] uses, by interface.
enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
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
    /// `default_parent` names the directory used when `cgroups_path` names none.
    fn parse(
        cgroups_path: Option<&Path>,
        id: &str,
        default_parent: &str,
    ) -> Result<Self, CgroupError> {
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
                default = Path::new("/").join(default_parent).join(id);
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

    /// A cgroup at `paths` placed by a spec's cgroupsPath, made by its container.
    fn plain(paths: CgroupPaths) -> Cgroup {
        Cgroup {
            paths,
            default_parent: None,
            created: true,
            parent_recorded: true,
        }
    }

    #[test]
    fn default_parent_is_per_runtime_root() {
        let a = default_parent(Path::new("/run/berth-runc"));
        assert_eq!(a, default_parent(Path::new("/run/./berth-runc/")));
        assert_ne!(a, default_parent(Path::new("/run/berthd/runtime")));
        assert!(a.starts_with(DEFAULT_PARENT_PREFIX) && a.len() == 18, "{a}");
        let placement = Placement::parse(None, "c1", &a).unwrap();
        assert_eq!(placement, Placement::Absolute(Path::new(&a).join("c1")));
    }

    #[test]
    fn a_record_without_the_new_fields_reads_as_made_by_its_container() {
        let json = r#"{"paths": {"version": "v2", "unified":
            {"mount": "/sys/fs/cgroup", "path": "/sys/fs/cgroup/berth/c1"}}}"#;
        let cgroup: Cgroup = serde_json::from_str(json).unwrap();
        assert!(cgroup.created());
        // Its default parent was the one every root shared: it goes with its last one.
        assert_eq!(
            cgroup.default_parents(),
            [(
                Path::new("/sys/fs/cgroup"),
                PathBuf::from("/sys/fs/cgroup/berth")
            )]
        );
        // One of an explicit path elsewhere has none.
        let json = json.replace("/berth/c1", "/mine/c1");
        let cgroup: Cgroup = serde_json::from_str(&json).unwrap();
        assert!(cgroup.default_parents().is_empty());
    }

    fn dir_of<'a>(paths: &'a CgroupPaths, controller: &str) -> Option<&'a Path> {
        match paths {
            CgroupPaths::V1 { controllers, .. } => controllers.get(controller).map(|h| h.path()),
            CgroupPaths::V2 { unified } => Some(unified.path()),
        }
    }

    #[test]
    fn placement_defaults_to_berth_id() {
        let placement = Placement::parse(None, "web1", "berth-t").unwrap();
        assert_eq!(
            placement,
            Placement::Absolute(PathBuf::from("berth-t/web1"))
        );
        let empty = Placement::parse(Some(Path::new("")), "web1", "berth-t").unwrap();
        assert_eq!(empty, placement);
    }

    #[test]
    fn placement_absolute_and_relative() {
        let abs = Placement::parse(Some(Path::new("/a/./b/")), "x", "berth-t").unwrap();
        assert_eq!(abs, Placement::Absolute(PathBuf::from("a/b")));
        let rel = Placement::parse(Some(Path::new("pod/c1")), "x", "berth-t").unwrap();
        assert_eq!(rel, Placement::Relative(PathBuf::from("pod/c1")));
    }

    #[test]
    fn placement_refuses_escapes_and_roots() {
        for bad in ["/a/../b", "../x", "/", ".", "/./"] {
            let err = Placement::parse(Some(Path::new(bad)), "x", "berth-t").unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidPath { .. }),
                "{bad}: {err}"
            );
        }
        for bad_id in ["", "a/b", "..", "."] {
            assert!(
                Placement::parse(None, bad_id, "berth-t").is_err(),
                "{bad_id:?}"
            );
        }
    }

    #[test]
    fn resolves_hybrid_layout() {
        let mounts = mountinfo::parse_mountinfo(HYBRID);
        let placement = Placement::parse(None, "c1", "berth-t").unwrap();
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
            Some(Path::new("/sys/fs/cgroup/cpu/berth-t/c1"))
        );
        assert_eq!(
            controllers["pids"].mount(),
            Path::new("/sys/fs/cgroup/pids")
        );
        let unified = unified.as_ref().unwrap();
        assert_eq!(
            unified.path(),
            Path::new("/sys/fs/cgroup/unified/berth-t/c1")
        );
    }

    #[test]
    fn comounted_controllers_share_a_directory() {
        let mounts = mountinfo::parse_mountinfo(COMOUNTED);
        let placement = Placement::parse(Some(Path::new("/x")), "c1", "berth-t").unwrap();
        let cgroup = plain(resolve_v1(&mounts, None, &placement).unwrap());
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
        let placement = Placement::parse(Some(Path::new("pod/c1")), "c1", "berth-t").unwrap();
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
        let placement = Placement::parse(Some(Path::new("c1")), "c1", "berth-t").unwrap();
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
        let placement = Placement::parse(Some(Path::new("c1")), "c1", "berth-t").unwrap();
        let cgroup = plain(resolve_v2(&mounts, Some(&own), &placement).unwrap());
        assert!(cgroup.is_v2());
        assert_eq!(
            cgroup.dirs(),
            [Path::new("/sys/fs/cgroup/user.slice/session-1.scope/c1")]
        );
    }

    #[test]
    fn no_v1_controllers_is_an_error() {
        let mounts = mountinfo::parse_mountinfo(V2_HOST);
        let placement = Placement::parse(None, "c1", "berth-t").unwrap();
        assert!(matches!(
            resolve_v1(&mounts, None, &placement),
            Err(CgroupError::Detect { .. })
        ));
    }

    #[test]
    fn serde_round_trip() {
        let mounts = mountinfo::parse_mountinfo(HYBRID);
        let placement = Placement::parse(None, "c1", "berth-t").unwrap();
        let cgroup = plain(resolve_v1(&mounts, None, &placement).unwrap());
        let json = serde_json::to_string(&cgroup).unwrap();
        assert!(json.contains(r#""version":"v1""#), "{json}");
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cgroup);
    }

    #[test]
    fn pids_of_a_missing_cgroup_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let cgroup = plain(CgroupPaths::V2 {
            unified: Hierarchy {
                mount: tmp.path().to_path_buf(),
                path: tmp.path().join("gone"),
            },
        });
        assert_eq!(cgroup.pids().unwrap(), Vec::<i32>::new());
        cgroup.destroy().unwrap();
    }

    #[test]
    fn the_default_parent_goes_with_its_last_container() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("berth-t");
        let cgroup = |name: &str| Cgroup {
            paths: CgroupPaths::V2 {
                unified: Hierarchy {
                    mount: tmp.path().to_path_buf(),
                    path: parent.join(name),
                },
            },
            default_parent: Some("berth-t".to_owned()),
            created: true,
            parent_recorded: true,
        };
        std::fs::create_dir_all(parent.join("a")).unwrap();
        std::fs::create_dir_all(parent.join("b")).unwrap();
        cgroup("a").destroy().unwrap();
        assert!(parent.is_dir(), "b still lives under the parent");
        cgroup("b").destroy().unwrap();
        assert!(!parent.exists(), "the last one took the parent along");
        // A parent that is not the runtime's default is left alone.
        let other = tmp.path().join("mine");
        std::fs::create_dir_all(other.join("c")).unwrap();
        let placed = plain(CgroupPaths::V2 {
            unified: Hierarchy {
                mount: tmp.path().to_path_buf(),
                path: other.join("c"),
            },
        });
        placed.destroy().unwrap();
        assert!(other.is_dir());
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
        let mut cgroup =
            Cgroup::new(Some(Path::new(&name)), "unused", Path::new("/run/unused")).unwrap();
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
        let mut cgroup = plain(CgroupPaths::V2 { unified: hierarchy });
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
        let mut cgroup =
            Cgroup::new(Some(Path::new(&name)), "unused", Path::new("/run/unused")).unwrap();
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

    /// Whether real v1 tests can run here; prints why not.
    fn on_root_v1_host(test: &str) -> bool {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping {test}: not root");
            return false;
        }
        match detect_v2(Path::new(CGROUP_ROOT)) {
            Ok(false) => true,
            Ok(true) => {
                eprintln!("skipping {test}: host is cgroup v2");
                false
            }
            Err(err) => {
                eprintln!("skipping {test}: {err}");
                false
            }
        }
    }

    /// A whole disk (not loop/zram/ram) as `(major, minor)`, for throttle tests.
    fn a_disk() -> Option<(u64, u64)> {
        let mut names: Vec<_> = std::fs::read_dir("/sys/block")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                !["loop", "zram", "ram", "nbd", "dm-"]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect();
        names.sort();
        let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    }

    /// Field 14 of /proc/<pid>/stat: user time in ticks.
    fn utime(pid: i32) -> u64 {
        berth_procfs::Stat::read(pid).unwrap().field(14).unwrap()
    }

    fn proc_state(pid: i32) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn v1_dir<'a>(cgroup: &'a Cgroup, controller: &str) -> &'a Path {
        dir_of(cgroup.paths(), controller).unwrap()
    }

    /// Kills the child and removes the cgroup even when an assertion fails.
    struct Cleanup<'a> {
        cgroup: &'a Cgroup,
        child: Option<std::process::Child>,
        extra_dirs: Vec<PathBuf>,
    }

    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            if let Some(child) = self.child.as_mut() {
                let _ = self.cgroup.thaw();
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = self.cgroup.destroy();
            for dir in &self.extra_dirs {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    /// Every v1 resource this host has, for real: written, read back, updated; stats of
    /// a busy process; freeze and thaw.
    #[test]
    fn real_v1_resources_stats_freezer_update() {
        if !on_root_v1_host("real_v1_resources_stats_freezer_update") {
            return;
        }
        let name = format!("/berth-test-{}-res", std::process::id());
        let mut cgroup =
            Cgroup::new(Some(Path::new(&name)), "unused", Path::new("/run/unused")).unwrap();
        let mut resources = serde_json::json!({
            "memory": {"limit": 268435456, "swappiness": 10, "disableOOMKiller": true,
                       "kernelTCP": 16777216},
            "cpu": {"shares": 512, "quota": 200000, "period": 100000, "burst": 10000,
                    "idle": 0, "realtimeRuntime": 10000, "realtimePeriod": 1000000},
            "pids": {"limit": 20},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
            "blockIO": {}
        });
        // A weight only where an I/O scheduler offers one (CFQ or BFQ); its absence is
        // refused, see real_v1_unavailable_resources_are_refused.
        let weights = host_blkio_weights(&cgroup);
        if weights {
            resources["blockIO"]["weight"] = serde_json::json!(300);
        }
        let disk = a_disk();
        if let Some((major, minor)) = disk {
            resources["blockIO"]["throttleReadBpsDevice"] =
                serde_json::json!([{"major": major, "minor": minor, "rate": 1048576}]);
            resources["blockIO"]["throttleWriteIOPSDevice"] =
                serde_json::json!([{"major": major, "minor": minor, "rate": 100}]);
        }
        let resources: LinuxResources = serde_json::from_value(resources).unwrap();
        cgroup.create(Some(&resources)).unwrap();
        let mut cleanup = Cleanup {
            cgroup: &cgroup,
            child: None,
            extra_dirs: Vec::new(),
        };

        let read =
            |controller: &str, file: &str| fs::read(v1_dir(&cgroup, controller), file).unwrap();
        assert_eq!(read("memory", "memory.swappiness"), "10");
        assert!(read("memory", "memory.oom_control").contains("oom_kill_disable 1"));
        assert_eq!(read("memory", "memory.kmem.tcp.limit_in_bytes"), "16777216");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "200000");
        assert_eq!(read("cpu", "cpu.cfs_burst_us"), "10000");
        assert_eq!(read("cpu", "cpu.rt_runtime_us"), "10000");
        assert_eq!(read("cpu", "cpu.idle"), "0");
        let blkio = v1_dir(&cgroup, "blkio");
        if weights {
            let file = ["blkio.weight", "blkio.bfq.weight"]
                .into_iter()
                .find(|file| fs::exists(blkio, file))
                .unwrap();
            assert_eq!(read("blkio", file), "300");
        }
        if let Some((major, minor)) = disk {
            assert_eq!(
                read("blkio", "blkio.throttle.read_bps_device"),
                format!("{major}:{minor} 1048576")
            );
            assert_eq!(
                read("blkio", "blkio.throttle.write_iops_device"),
                format!("{major}:{minor} 100")
            );
        }
        // devices.list holds exactly the emulated list: the defaults plus 10:229.
        let rules = resources.devices().as_deref().unwrap();
        let expected = devices::Emulator::for_spec(rules).unwrap().v1_list();
        let mut listed: Vec<String> = read("devices", "devices.list")
            .lines()
            .map(str::to_owned)
            .collect();
        let mut want = expected.clone();
        listed.sort();
        want.sort();
        assert_eq!(listed, want);
        assert!(listed.contains(&"c 10:229 rw".to_owned()), "{listed:?}");
        assert!(listed.contains(&"c 136:* rwm".to_owned()), "{listed:?}");

        // A busy process: CPU time shows in the stats, and stops while frozen. It execs
        // once inside, so that it has memory charged here (v1 does not move charges).
        let child = std::process::Command::new("sh")
            .args(["-c", "sleep 0.1; exec sh -c 'while :; do :; done'"])
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        cleanup.child = Some(child);
        cgroup.add_process(pid).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let stats = cgroup.stats().unwrap();
        assert!(
            stats.cpu.usage.total > 50_000_000,
            "a busy loop for 300ms: {:?}",
            stats.cpu
        );
        assert!(stats.cpu.usage.user > 0, "{:?}", stats.cpu);
        assert_eq!(
            stats.cpu.usage.percpu.len(),
            stats.cpu.usage.percpu_user.len()
        );
        assert!(!stats.cpu.usage.percpu.is_empty());
        assert!(
            stats.cpu.throttling.periods > 0,
            "quota set: {:?}",
            stats.cpu
        );
        assert_eq!(stats.pids.current, 1);
        assert_eq!(stats.pids.limit, 20);
        assert!(stats.memory.usage.usage > 0, "{:?}", stats.memory);
        assert_eq!(stats.memory.usage.limit, 268_435_456);
        assert!(
            stats.memory.raw.contains_key("rss"),
            "{:?}",
            stats.memory.raw
        );
        let json = serde_json::to_value(&stats).unwrap();
        assert!(
            json["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
            "{json}"
        );
        assert_eq!(cgroup.oom_kill_count().unwrap(), 0);

        assert!(!cgroup.is_frozen().unwrap());
        cgroup.freeze().unwrap();
        assert_eq!(read("freezer", "freezer.state"), "FROZEN");
        assert!(cgroup.is_frozen().unwrap());
        assert!(
            proc_state(pid).starts_with('D'),
            "frozen: {}",
            proc_state(pid)
        );
        let before = utime(pid);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(utime(pid), before, "no CPU time while frozen");
        cgroup.thaw().unwrap();
        assert_eq!(read("freezer", "freezer.state"), "THAWED");
        assert!(!cgroup.is_frozen().unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(utime(pid) > before, "running again after thaw");

        // update: only what is given changes.
        let update: LinuxResources = serde_json::from_str(
            r#"{"pids": {"limit": 7}, "memory": {"swappiness": 30},
                "devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}"#,
        )
        .unwrap();
        cgroup.update(&update).unwrap();
        assert_eq!(read("pids", "pids.max"), "7");
        assert_eq!(read("memory", "memory.swappiness"), "30");
        assert_eq!(read("memory", "memory.limit_in_bytes"), "268435456");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        let listed = read("devices", "devices.list");
        assert!(listed.lines().any(|l| l == "c 1:11 r"), "{listed}");
        assert!(!listed.lines().any(|l| l == "c 10:229 rw"), "{listed}");
        let stats = cgroup.stats().unwrap();
        assert_eq!(stats.pids.limit, 7);

        drop(cleanup);
        for dir in cgroup.dirs() {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert!(cgroup.stats().is_err(), "stats of a removed cgroup");
    }

    /// Whether the host's blkio hierarchy offers a proportional weight (CFQ's or BFQ's
    /// file in its root cgroup).
    fn host_blkio_weights(cgroup: &Cgroup) -> bool {
        let CgroupPaths::V1 { controllers, .. } = cgroup.paths() else {
            return false;
        };
        controllers.get("blkio").is_some_and(|h| {
            fs::exists(h.mount(), "blkio.weight") || fs::exists(h.mount(), "blkio.bfq.weight")
        })
    }

    /// What this host lacks is a clear error, and nothing is left behind.
    #[test]
    fn real_v1_unavailable_resources_are_refused() {
        if !on_root_v1_host("real_v1_unavailable_resources_are_refused") {
            return;
        }
        let name = format!("/berth-test-{}-missing", std::process::id());
        let mut cgroup =
            Cgroup::new(Some(Path::new(&name)), "unused", Path::new("/run/unused")).unwrap();
        let CgroupPaths::V1 { controllers, .. } = cgroup.paths().clone() else {
            panic!("expected v1");
        };
        for (json, controller) in [
            (
                r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}"#,
                "hugetlb",
            ),
            (r#"{"network": {"classID": 1048577}}"#, "net_cls"),
            (
                r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
                "net_prio",
            ),
        ] {
            if controllers.contains_key(controller) {
                eprintln!("{controller} is mounted here; not checking its absence");
                continue;
            }
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            let err = cgroup.create(Some(&resources)).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("cgroup controller {controller} is not available")),
                "{err}"
            );
            for dir in cgroup.dirs() {
                assert!(!dir.exists(), "{} left behind", dir.display());
            }
        }
        let unified: LinuxResources =
            serde_json::from_str(r#"{"unified": {"memory.high": "1"}}"#).unwrap();
        let err = cgroup.create(Some(&unified)).unwrap_err();
        assert!(err.to_string().contains("cgroup v1 host"), "{err}");
        if controllers.contains_key("blkio") && !host_blkio_weights(&cgroup) {
            let weight: LinuxResources =
                serde_json::from_str(r#"{"blockIO": {"weight": 300}}"#).unwrap();
            let err = cgroup.create(Some(&weight)).unwrap_err();
            assert!(
                err.to_string()
                    .contains("blockIO weights need blkio.weight or blkio.bfq.weight"),
                "{err}"
            );
            for dir in cgroup.dirs() {
                assert!(!dir.exists(), "{} left behind", dir.display());
            }
        } else {
            eprintln!("this host offers blkio weights; not checking their absence");
        }
    }

    /// Realtime runtime beyond what the parent has: the error says where to look.
    #[test]
    fn real_v1_realtime_needs_parent_runtime() {
        if !on_root_v1_host("real_v1_realtime_needs_parent_runtime") {
            return;
        }
        let top = format!("berth-test-{}-rt", std::process::id());
        let mut cgroup = Cgroup::new(
            Some(Path::new(&format!("/{top}/c1"))),
            "unused",
            Path::new("/run/unused"),
        )
        .unwrap();
        if !fs::exists(
            v1_dir(&cgroup, "cpu").parent().unwrap().parent().unwrap(),
            "cpu.rt_runtime_us",
        ) {
            eprintln!("skipping real_v1_realtime_needs_parent_runtime: no RT group scheduling");
            return;
        }
        let resources: LinuxResources =
            serde_json::from_str(r#"{"cpu": {"realtimeRuntime": 10000}}"#).unwrap();
        let err = cgroup.create(Some(&resources));
        let tops: Vec<PathBuf> = cgroup
            .dirs()
            .iter()
            .map(|d| d.parent().unwrap().to_path_buf())
            .collect();
        for dir in &tops {
            let _ = std::fs::remove_dir(dir);
        }
        let err = err.unwrap_err();
        assert!(
            err.to_string()
                .contains("of realtime runtime for all its children"),
            "{err}"
        );
        for dir in tops {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }

    /// The v2 paths for real in the hybrid host's unified hierarchy: the eBPF device
    /// program denies what the list does not allow, is replaced (not stacked) by an
    /// update; cgroup.freeze freezes; cpu.stat gives usage.
    #[test]
    fn real_unified_device_program_and_freezer() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping real_unified_device_program_and_freezer: not root");
            return;
        }
        let Ok(text) = std::fs::read_to_string(MOUNTINFO) else {
            eprintln!("skipping real_unified_device_program_and_freezer: no mountinfo");
            return;
        };
        let mounts = mountinfo::parse_mountinfo(&text);
        let Some(mount) = mounts
            .iter()
            .find(|m| m.kind == MountKind::V2 && m.root == Path::new("/"))
        else {
            eprintln!("skipping real_unified_device_program_and_freezer: no cgroup2 mount");
            return;
        };
        let placement = Placement::Absolute(PathBuf::from(format!(
            "berth-test-{}-bpf",
            std::process::id()
        )));
        let hierarchy = hierarchy_for(mount, None, "the unified hierarchy", &placement).unwrap();
        let dir = hierarchy.path().to_path_buf();
        let mut cgroup = plain(CgroupPaths::V2 { unified: hierarchy });
        let resources: LinuxResources =
            serde_json::from_str(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#).unwrap();
        cgroup.create(Some(&resources)).unwrap();
        let _cleanup = Cleanup {
            cgroup: &cgroup,
            child: None,
            extra_dirs: Vec::new(),
        };
        assert_eq!(v2::attached_device_programs(&dir).unwrap(), 1);

        // A shell that moves itself into the cgroup, then opens devices.
        let probe = || {
            let script = format!(
                "echo $$ > {}/cgroup.procs && exec sh -c \
                 ': < /dev/null && echo null-ok; \
                  (: < /dev/kmsg) 2>/dev/null && echo kmsg-open || echo kmsg-denied'",
                dir.display()
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(probe(), "null-ok\nkmsg-denied");

        let allow_kmsg: LinuxResources = serde_json::from_str(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}"#,
        )
        .unwrap();
        cgroup.update(&allow_kmsg).unwrap();
        assert_eq!(probe(), "null-ok\nkmsg-open");
        assert_eq!(
            v2::attached_device_programs(&dir).unwrap(),
            1,
            "the update replaced the program"
        );

        // Freezing through cgroup.freeze, and core cpu.stat usage.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let result = (|| -> Result<(), String> {
            cgroup.add_process(pid).map_err(|e| e.to_string())?;
            cgroup.freeze().map_err(|e| e.to_string())?;
            let events = fs::read(&dir, "cgroup.events").map_err(|e| e.to_string())?;
            if !cgroup.is_frozen().map_err(|e| e.to_string())? || !events.contains("frozen 1") {
                return Err(format!("not frozen: {events}"));
            }
            let state = proc_state(pid);
            if !state.starts_with('S') {
                return Err(format!("frozen task state {state}"));
            }
            cgroup.thaw().map_err(|e| e.to_string())?;
            if cgroup.is_frozen().map_err(|e| e.to_string())? {
                return Err("still frozen after thaw".to_owned());
            }
            let stats = cgroup.stats().map_err(|e| e.to_string())?;
            if stats.pids != PidsStats::default() {
                return Err(format!("no pids controller here, got {:?}", stats.pids));
            }
            Ok(())
        })();
        let _ = cgroup.thaw();
        let _ = child.kill();
        let _ = child.wait();
        result.unwrap();
        let stats = cgroup.stats().unwrap();
        assert!(
            stats.cpu.usage.total > 0,
            "the probes ran here: {:?}",
            stats.cpu
        );
        let err = cgroup.oom_kill_count().unwrap_err();
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
}
