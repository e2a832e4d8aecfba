//! Finding the cgroup hierarchies: cgroup mounts in `/proc/self/mountinfo`, a process's
//! cgroups in `/proc/<pid>/cgroup`, and from both the directories a process is in
//! ([`CgroupMounts`], for containers made by someone else, found by their pid).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::mountinfo::{self, MountInfo};

/// The v1 controllers Berth places containers in, as runc's fs driver does. Named
/// hierarchies such as `name=systemd` are skipped.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// What a cgroup mount holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A v1 hierarchy with these controllers (several when co-mounted, e.g. `cpu,cpuacct`).
    V1 { controllers: Vec<String> },
    /// A cgroup2 (unified) hierarchy.
    V2,
}

/// One cgroup file-system mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// The cgroup shown at the mount point (usually `/`).
    pub(crate) root: PathBuf,
    /// Where it is mounted.
    pub(crate) mount_point: PathBuf,
    /// v1 (with its controllers) or v2.
    pub(crate) kind: MountKind,
}

/// The calling process's own cgroup in each hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnCgroups {
    /// v1 controller name to cgroup path.
    pub(crate) controllers: BTreeMap<String, String>,
    /// The cgroup path in the unified hierarchy (the `0::` line).
    pub(crate) unified: Option<String>,
}

/// The cgroup mounts in mountinfo `text`, in file order. Lines that are not cgroup
/// mounts, or do not parse, are skipped; v1 mounts without a controller Berth uses
/// (e.g. `name=systemd`) are left out.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    mountinfo::parse(text)
        .into_iter()
        .filter_map(cgroup_mount)
        .collect()
}

/// The cgroup mount `mount` is, if it is one.
fn cgroup_mount(mount: MountInfo) -> Option<CgroupMount> {
    let kind = match mount.fstype.as_str() {
        "cgroup2" => MountKind::V2,
        "cgroup" => {
            let controllers: Vec<String> = mount
                .super_options
                .split(',')
                .filter(|option| V1_CONTROLLERS.contains(option))
                .map(str::to_owned)
                .collect();
            if controllers.is_empty() {
                return None;
            }
            MountKind::V1 { controllers }
        }
        _ => return None,
    };
    Some(CgroupMount {
        root: mount.root,
        mount_point: mount.mountpoint,
        kind,
    })
}

/// This host's cgroup mounts, to find the cgroup directories of processes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CgroupMounts {
    mounts: Vec<CgroupMount>,
}

pub use berth_runtime_types::CgroupDirs;

impl CgroupMounts {
    /// The cgroup mounts as this process sees them.
    pub fn read() -> io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }

    /// The cgroup mounts in the text of a `mountinfo` file.
    pub fn parse(text: &str) -> Self {
        CgroupMounts {
            mounts: parse_mountinfo(text),
        }
    }

    /// The cgroup directories of process `pid`.
    pub fn of_process(&self, pid: i32) -> io::Result<CgroupDirs> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        Ok(self.dirs_in(&text))
    }

    /// The directories named by the text of a `/proc/<pid>/cgroup` file.
    pub fn dirs_in(&self, proc_cgroup: &str) -> CgroupDirs {
        let own = parse_own_cgroups(proc_cgroup);
        let mut dirs = CgroupDirs::default();
        for mount in &self.mounts {
            match &mount.kind {
                MountKind::V2 => {
                    if let Some(path) = &own.unified {
                        dirs.v2 = Some(below(mount, path));
                    }
                }
                MountKind::V1 { controllers } => {
                    for c in controllers {
                        if let Some(path) = own.controllers.get(c) {
                            dirs.v1.insert(c.clone(), below(mount, path));
                        }
                    }
                }
            }
        }
        dirs
    }
}

/// The directory of cgroup `path` in the hierarchy of `mount` (whose root may be a
/// cgroup below the hierarchy's top, as in a container).
fn below(mount: &CgroupMount, path: &str) -> PathBuf {
    let rel = Path::new(path)
        .strip_prefix(&mount.root)
        .unwrap_or(Path::new(path));
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    mount.mount_point.join(rel)
}

/// Parse `/proc/<pid>/cgroup` (`hierarchy-id:controllers:path` per line).
pub(crate) fn parse_own_cgroups(text: &str) -> OwnCgroups {
    let mut own = OwnCgroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            own.unified = Some(path.to_owned());
            continue;
        }
        for controller in controllers.split(',') {
            own.controllers
                .insert(controller.to_owned(), path.to_owned());
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_memory_wins_on_hybrid() {
        let dirs = CgroupMounts::parse(HYBRID)
            .dirs_in("5:memory:/berth/c1\n4:cpu,cpuacct:/berth/c1\n0::/berth/c1\n");
        assert_eq!(
            dirs.memory(),
            Some((PathBuf::from("/sys/fs/cgroup/memory/berth/c1"), false))
        );
        // v1 without a memory controller: no OOM watch, not the empty cgroup2.
        let dirs = CgroupMounts::parse(HYBRID).dirs_in("4:cpu,cpuacct:/c\n0::/c\n");
        assert_eq!(dirs.memory(), None);
    }

    #[test]
    fn v2_when_no_v1_memory() {
        let mounts = CgroupMounts::parse("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            mounts.dirs_in("0::/a/b\n").memory(),
            Some((PathBuf::from("/sys/fs/cgroup/a/b"), true))
        );
        assert_eq!(CgroupMounts::parse("").dirs_in("0::/a/b\n").memory(), None);
    }

    #[test]
    fn parses_v1_v2_and_skips_others() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
31 25 0:28 / /sys/fs/cgroup/unified rw shared:5 - cgroup2 cgroup2 rw,nsdelegate
garbage line
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3, "{mounts:?}");
        assert_eq!(
            mounts[0].kind,
            MountKind::V1 {
                controllers: vec!["cpu".into(), "cpuacct".into()]
            }
        );
        assert_eq!(
            mounts[0].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(mounts[1].root, PathBuf::from("/docker/abc"));
        assert_eq!(mounts[2].kind, MountKind::V2);
    }

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
36 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
37 25 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
38 25 0:33 /nested /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
";

    #[test]
    fn a_process_cgroups_on_a_hybrid_host() {
        let dirs = CgroupMounts::parse(HYBRID)
            .dirs_in("4:memory:/a/rc1\n3:pids:/nested/rc1\n2:cpu,cpuacct:/rc1\n0::/rc1\n");
        assert_eq!(dirs.v1["memory"], Path::new("/sys/fs/cgroup/memory/a/rc1"));
        // The mount's root is stripped from the path.
        assert_eq!(dirs.v1["pids"], Path::new("/sys/fs/cgroup/pids/rc1"));
        for c in ["cpu", "cpuacct"] {
            assert_eq!(dirs.v1[c], Path::new("/sys/fs/cgroup/cpu,cpuacct/rc1"));
        }
        assert_eq!(
            dirs.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/rc1"))
        );
    }

    #[test]
    fn a_process_cgroups_on_a_pure_v2_host() {
        let mounts = CgroupMounts::parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let dirs = mounts.dirs_in("0::/berth/c1\n");
        assert!(dirs.v1.is_empty());
        assert_eq!(
            dirs.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/berth/c1"))
        );
        assert_eq!(
            CgroupMounts::parse("").dirs_in("0::/a\n"),
            CgroupDirs::default()
        );
    }

    #[test]
    fn this_process_cgroups() {
        let dirs = CgroupMounts::read()
            .unwrap()
            .of_process(std::process::id() as i32)
            .unwrap();
        assert!(!dirs.v1.is_empty() || dirs.v2.is_some(), "{dirs:?}");
    }

    #[test]
    fn parses_own_cgroups() {
        let own =
            parse_own_cgroups("12:cpu,cpuacct:/a\n1:name=systemd:/s\n0::/u:with:colons\nbad\n");
        assert_eq!(own.controllers.get("cpu").map(String::as_str), Some("/a"));
        assert_eq!(
            own.controllers.get("cpuacct").map(String::as_str),
            Some("/a")
        );
        assert_eq!(own.unified.as_deref(), Some("/u:with:colons"));
    }
}
