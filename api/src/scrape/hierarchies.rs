//! Where a process's cgroup lives, from `/proc/<pid>/cgroup` and this host's cgroup
//! mounts (`/proc/self/mountinfo`): for containers of a runtime whose state record we
//! cannot read (runc's own format), found through their init's pid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cgroup hierarchies mounted on this host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mounts {
    /// v1 controller name to (the hierarchy's mount root, its mount point).
    v1: BTreeMap<String, (PathBuf, PathBuf)>,
    /// The cgroup2 hierarchy: (mount root, mount point).
    v2: Option<(PathBuf, PathBuf)>,
}

/// One process's cgroup directories.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// v1 controller name to the process's directory in that hierarchy.
    pub v1: BTreeMap<String, PathBuf>,
    /// The process's directory in the cgroup2 hierarchy.
    pub v2: Option<PathBuf>,
}

impl Mounts {
    /// This host's cgroup mounts as this process sees them; empty if unreadable.
    pub fn read() -> Self {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Parse the text of a `mountinfo` file.
    pub fn parse(text: &str) -> Self {
        let mut mounts = Mounts::default();
        for line in text.lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = before.split(' ').collect();
            let tail: Vec<&str> = after.split(' ').collect();
            let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
                continue;
            };
            let mount = (PathBuf::from(root), PathBuf::from(point));
            match tail.first() {
                Some(&"cgroup2") => mounts.v2 = Some(mount),
                Some(&"cgroup") => {
                    for option in tail.get(2).unwrap_or(&"").split(',') {
                        if matches!(option, "cpuacct" | "memory" | "pids") {
                            mounts.v1.insert(option.to_owned(), mount.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        mounts
    }

    /// The cgroup directories of process `pid`; `None` if it is gone.
    pub fn dirs_of(&self, pid: i32) -> Option<Dirs> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Some(self.dirs_in(&text))
    }

    /// The directories named by the text of a `/proc/<pid>/cgroup` file.
    pub fn dirs_in(&self, text: &str) -> Dirs {
        let mut dirs = Dirs::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                if let Some((root, point)) = &self.v2 {
                    dirs.v2 = Some(below(root, point, path));
                }
                continue;
            }
            for controller in controllers.split(',') {
                if let Some((root, point)) = self.v1.get(controller) {
                    dirs.v1
                        .insert(controller.to_owned(), below(root, point, path));
                }
            }
        }
        dirs
    }
}

/// The directory of cgroup `path` in a hierarchy whose `root` is mounted at `point`.
fn below(root: &Path, point: &Path, path: &str) -> PathBuf {
    let rel = Path::new(path)
        .strip_prefix(root)
        .unwrap_or(Path::new(path));
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    point.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
36 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
37 25 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
38 25 0:33 /nested /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
";

    #[test]
    fn hybrid_host() {
        let mounts = Mounts::parse(MOUNTINFO);
        let dirs =
            mounts.dirs_in("4:memory:/a/rc1\n3:pids:/nested/rc1\n2:cpu,cpuacct:/rc1\n0::/rc1\n");
        assert_eq!(dirs.v1["memory"], Path::new("/sys/fs/cgroup/memory/a/rc1"));
        assert_eq!(dirs.v1["pids"], Path::new("/sys/fs/cgroup/pids/rc1"));
        assert_eq!(
            dirs.v1["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/rc1")
        );
        assert!(!dirs.v1.contains_key("cpu"));
        assert_eq!(
            dirs.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/rc1"))
        );
    }

    #[test]
    fn pure_v2_host() {
        let mounts = Mounts::parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let dirs = mounts.dirs_in("0::/berth/c1\n");
        assert!(dirs.v1.is_empty());
        assert_eq!(
            dirs.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/berth/c1"))
        );
    }

    #[test]
    fn this_process() {
        let dirs = Mounts::read().dirs_of(std::process::id() as i32).unwrap();
        assert!(!dirs.v1.is_empty() || dirs.v2.is_some(), "{dirs:?}");
    }
}
