//! The spec's `mounts`, performed in order under the root filesystem before pivot_root.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::mount_options::MountOptions;
use super::secure_join::secure_join;
use crate::error::{Error, IoContext, Result, SysContext};

/// Perform one spec mount under `rootfs`. Bind sources that are relative are taken
/// relative to the bundle, as runc does.
pub fn mount_one(m: &Mount, ctx: &super::MountContext) -> Result<()> {
    let (rootfs, bundle) = (ctx.rootfs, ctx.bundle);
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.is_bind() { "bind" } else { "none" });
    let dest = secure_join(rootfs, m.destination())?;

    if typ == "cgroup" || typ == "cgroup2" {
        // cgroup v1 cannot be mounted from a user namespace: bind the host's directories.
        let fresh = ctx.cgroupns && (ctx.cgroup.is_v2() || !ctx.userns);
        return super::cgroup_mount::mount_cgroups(&dest, &opts, ctx.cgroup, fresh);
    }

    let bind = opts.is_bind() || typ == "bind";
    if bind {
        let source = match m.source() {
            Some(s) if s.is_absolute() => s.clone(),
            Some(s) => bundle.join(s),
            None => {
                return Err(Error::sys(
                    "mount",
                    format!("bind mount to {}: no source", m.destination().display()),
                    nix::errno::Errno::EINVAL,
                ))
            }
        };
        bind_mount(&source, &dest, &opts, ctx.userns)?;
    } else {
        fs::create_dir_all(&dest).io("create mount point", &dest)?;
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        let data = crate::lsm::with_mount_label(&opts.data, ctx.mount_label);
        let data = (!data.is_empty()).then_some(data.as_str());
        mount(Some(&source), &dest, Some(typ), opts.flags, data)
            .sys("mount", format!("{typ} on {}", dest.display()))?;
    }
    for p in &opts.propagation {
        mount(None::<&str>, &dest, None::<&str>, *p, None::<&str>)
            .sys("mount propagation", dest.display())?;
    }
    Ok(())
}

/// Bind `source` onto `dest` (creating a directory or an empty file to mount over), then
/// remount to apply flags such as `ro` that a bind mount ignores on the first call. In a
/// user namespace the source's nosuid/nodev/noexec are locked and must be kept.
pub fn bind_mount(
    source: &Path,
    dest: &Path,
    opts: &MountOptions,
    keep_locked: bool,
) -> Result<()> {
    let meta = fs::metadata(source).io("bind mount source", source)?;
    if meta.is_dir() {
        fs::create_dir_all(dest).io("create mount point", dest)?;
    } else {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).io("create mount point", parent)?;
        }
        if !dest.exists() {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(dest)
                .io("create mount point", dest)?;
        }
    }
    let bind = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(Some(source), dest, None::<&str>, bind, None::<&str>).sys(
        "mount",
        format!("bind {} on {}", source.display(), dest.display()),
    )?;
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        let locked = if keep_locked {
            super::paths::existing_flags(dest)
        } else {
            MsFlags::empty()
        };
        remount(dest, extra | locked | (opts.flags & MsFlags::MS_REC))?;
    }
    Ok(())
}

/// Change the flags of the bind mount at `dest`.
pub fn remount(dest: &Path, flags: MsFlags) -> Result<()> {
    mount(
        None::<&str>,
        dest,
        None::<&str>,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .sys("remount", dest.display())
}
