//! The `cgroup` mount type: the container's view of its cgroups under /sys/fs/cgroup.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::mount_options::MountOptions;
use crate::cgroups::{Cgroup, CgroupPaths};
use crate::error::{IoContext, Result, SysContext};

/// Mount the container's cgroups at `dest`, so the host's tree stays out of sight. On
/// cgroup v2 inside a cgroup namespace the filesystem is mounted afresh (the namespace
/// makes the container's cgroup its root); otherwise the container's own directories are
/// bind-mounted. On v1 that holds with a cgroup namespace too, as runc does: the view is
/// the same, and a fresh v1 mount is costly — each takes the global cgroup mutex and
/// walks every cgroup of the default hierarchy (`cgroup_lock_and_drain_offline`), a cost
/// that grows with every container started, where a bind mount only copies a mount.
pub fn mount_cgroups(
    dest: &Path,
    opts: &MountOptions,
    cgroup: &Cgroup,
    cgroupns: bool,
) -> Result<()> {
    fs::create_dir_all(dest).io("create mount point", dest)?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    match cgroup.paths() {
        CgroupPaths::V2 { unified } => {
            if cgroupns {
                mount(Some("cgroup2"), dest, Some("cgroup2"), flags, None::<&str>)
                    .sys("mount", format!("cgroup2 on {}", dest.display()))
            } else {
                bind(unified.path(), dest, flags)
            }
        }
        CgroupPaths::V1 { controllers, .. } => {
            let writable = flags - MsFlags::MS_RDONLY;
            mount(
                Some("tmpfs"),
                dest,
                Some("tmpfs"),
                writable,
                Some("mode=755"),
            )
            .sys("mount", format!("tmpfs on {}", dest.display()))?;
            // Controllers mounted together (cpu,cpuacct) share one hierarchy.
            let mut hierarchies: BTreeMap<&Path, (&Path, Vec<&str>)> = BTreeMap::new();
            for (name, h) in controllers {
                hierarchies
                    .entry(h.mount())
                    .or_insert((h.path(), Vec::new()))
                    .1
                    .push(name);
            }
            for (mount_point, (own, names)) in hierarchies {
                let Some(dir_name) = mount_point.file_name() else {
                    continue;
                };
                let target = dest.join(dir_name);
                bind(own, &target, flags)?;
                for name in names.iter().filter(|n| std::ffi::OsStr::new(n) != dir_name) {
                    let link = dest.join(name);
                    symlink(dir_name, &link).io("symlink", &link)?;
                }
            }
            if flags.contains(MsFlags::MS_RDONLY) {
                mount(
                    None::<&str>,
                    dest,
                    None::<&str>,
                    flags | MsFlags::MS_REMOUNT,
                    Some("mode=755"),
                )
                .sys("remount", dest.display())?;
            }
            Ok(())
        }
    }
}

/// Bind `source` onto `target` with `flags`.
fn bind(source: &Path, target: &Path, flags: MsFlags) -> Result<()> {
    fs::create_dir_all(target).io("create mount point", target)?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("bind {} on {}", source.display(), target.display()),
    )?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .sys("remount", target.display())
}
