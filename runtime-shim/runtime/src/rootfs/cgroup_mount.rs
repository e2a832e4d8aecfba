//! The `cgroup` mount type: the container's view of its cgroups under /sys/fs/cgroup.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::mount_attr;
use super::mount_options::MountOptions;
use crate::cgroups::{Cgroup, CgroupPaths};
use crate::error::{Error, IoContext, Result, SysContext};

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
                bind(unified.path(), dest)?;
                remount(dest, flags | MsFlags::MS_BIND, None)
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
            let mut binds = Vec::with_capacity(hierarchies.len());
            for (mount_point, (own, names)) in hierarchies {
                let Some(dir_name) = mount_point.file_name() else {
                    continue;
                };
                let target = dest.join(dir_name);
                bind(own, &target)?;
                binds.push(target);
                for name in names.iter().filter(|n| std::ffi::OsStr::new(n) != dir_name) {
                    let link = dest.join(name);
                    symlink(dir_name, &link).io("symlink", &link)?;
                }
            }
            // The flags (read-only, nosuid …) for the tmpfs and every bind below it at
            // once; one remount each where the kernel cannot (before 5.12) or a seccomp
            // filter around us refuses the newer call.
            match mount_attr::set_recursive(dest, flags) {
                Ok(()) => Ok(()),
                Err(Errno::ENOSYS | Errno::EPERM) => {
                    for target in &binds {
                        remount(target, flags | MsFlags::MS_BIND, None)?;
                    }
                    remount(dest, flags, Some("mode=755"))
                }
                Err(e) => Err(Error::sys("mount_setattr", dest.display(), e)),
            }
        }
    }
}

/// Bind `source` onto `target`, recursively.
fn bind(source: &Path, target: &Path) -> Result<()> {
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
    )
}

/// Remount `target` with `flags`.
fn remount(target: &Path, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        flags | MsFlags::MS_REMOUNT,
        data,
    )
    .sys("remount", target.display())
}
