//! The container's root filesystem: propagation, the spec's mounts, devices, pivot_root,
//! masked and read-only paths. Runs in the init, inside its new mount namespace.

mod cgroup_mount;
pub mod devices;
mod mount_attr;
pub mod mount_options;
mod mounts;
mod paths;
mod pivot;
pub mod secure_join;

use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use mount_options::propagation_of;

/// The propagation asked for by `linux.rootfsPropagation` (default rslave, as runc).
fn root_propagation(spec: &Spec) -> Result<MsFlags> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        Some(p) => propagation_of(p).ok_or_else(|| {
            Error::sys(
                "mount",
                format!("unknown rootfsPropagation {p:?}"),
                nix::errno::Errno::EINVAL,
            )
        }),
    }
}

/// What the mounts of one container need to know besides the mount itself.
pub struct MountContext<'a> {
    /// The bundle directory (relative bind sources are relative to it).
    pub bundle: &'a Path,
    /// The root filesystem, before pivot_root.
    pub rootfs: &'a Path,
    /// The container's cgroup, for `cgroup` mounts.
    pub cgroup: &'a Cgroup,
    /// Whether the container has its own cgroup namespace.
    pub cgroupns: bool,
    /// Whether the container has its own user namespace (no mknod, no cgroup v1 mounts).
    pub userns: bool,
    /// The SELinux context of filesystems mounted afresh.
    pub mount_label: Option<&'a str>,
    /// The container has no mount namespace of its own: it shares the runtime's, whose
    /// propagation is not ours to change (see [`shared_namespace_conflicts`]).
    pub shared_ns: bool,
    /// The overlay to mount on `rootfs` (in place of its bind on itself).
    pub overlay: Option<&'a berth_overlay::OverlayPlan>,
}

/// Everything up to (not including) the switch of root: propagation, the rootfs bind,
/// the spec's mounts in order, and /dev.
pub fn prepare(spec: &Spec, ctx: &MountContext) -> Result<()> {
    let rootfs = ctx.rootfs;
    if !ctx.shared_ns {
        isolate_root(spec, rootfs, ctx.overlay)?;
    }
    spec_mounts_and_dev(spec, ctx)
}

/// Make the new mount namespace's tree private (or the spec's propagation) and the root
/// filesystem a mount point, as pivot_root needs: a bind on itself, or the overlay the
/// spec's annotation asks for (mounted here, so the host's mount table never sees it).
fn isolate_root(
    spec: &Spec,
    rootfs: &Path,
    overlay: Option<&berth_overlay::OverlayPlan>,
) -> Result<()> {
    // pivot_root refuses a new root whose parent mount is shared, and an unbindable tree
    // cannot be bind-mounted on itself, so those are applied only after the pivot; until
    // then the tree is private.
    let mut propagation = root_propagation(spec)?;
    if applied_after_pivot(propagation) {
        propagation = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
    }
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .sys("mount", "/ (propagation)")?;
    if let Some(plan) = overlay {
        return berth_overlay::mount(&plan.lower, &plan.upper, &plan.work, rootfs)
            .map_err(|f| Error::io(f.syscall, rootfs, f.source));
    }
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys("mount", format!("bind {} on itself", rootfs.display()))
}

/// The spec's mounts in order, then /dev: the standard nodes on a fresh one, the spec's
/// devices, the standard links.
fn spec_mounts_and_dev(spec: &Spec, ctx: &MountContext) -> Result<()> {
    let rootfs = ctx.rootfs;
    let mut dev_is_tmpfs = false;
    for m in spec.mounts().iter().flatten() {
        mounts::mount_one(m, ctx)?;
        if m.destination() == Path::new("/dev") {
            dev_is_tmpfs =
                !mount_options::MountOptions::parse(m.options().as_deref().unwrap_or_default())
                    .is_bind();
        }
    }

    // A bind-mounted /dev is the host's (or the caller's) business; a fresh one gets the
    // standard nodes.
    let fresh_dev = if dev_is_tmpfs {
        let dev = devices::FreshDev::open(rootfs)?;
        dev.create_default_nodes(rootfs, ctx.userns)?;
        Some(dev)
    } else {
        None
    };
    for d in spec
        .linux()
        .iter()
        .flat_map(|l| l.devices().iter().flatten())
    {
        devices::create(rootfs, &devices::from_spec(d)?, ctx.userns)?;
    }
    // The symlinks last, as runc: a spec device at /dev/ptmx (privileged containers list
    // the host's) gives way to the link into the container's own devpts.
    if let Some(dev) = fresh_dev {
        dev.create_links()?;
    }
    Ok(())
}

/// Make `rootfs` the root: pivot_root, or with `no_pivot` a move and chroot; in the
/// runtime's mount namespace (`shared_ns`) a chroot only.
pub fn enter(rootfs: &Path, no_pivot: bool, shared_ns: bool) -> Result<()> {
    if shared_ns {
        pivot::chroot_into(rootfs)
    } else if no_pivot {
        pivot::move_root(rootfs)
    } else {
        pivot::pivot(rootfs)
    }
}

/// What is done inside the new root: masked and read-only paths, the read-only root and
/// the final root propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    if let Some(linux) = spec.linux() {
        for p in linux.readonly_paths().iter().flatten() {
            paths::make_readonly(Path::new(p))?;
        }
        for p in linux.masked_paths().iter().flatten() {
            paths::mask(Path::new(p))?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let keep = paths::existing_flags(Path::new("/"));
        mounts::remount(Path::new("/"), keep | MsFlags::MS_RDONLY)?;
    }
    let propagation = root_propagation(spec)?;
    if applied_after_pivot(propagation) {
        mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
            .sys("mount", "/ (rootfsPropagation)")?;
    }
    Ok(())
}

/// Propagations that the steps before the switch of root do not allow (see [`prepare`]).
fn applied_after_pivot(propagation: MsFlags) -> bool {
    propagation.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE)
}

/// What a spec asks of a container without a mount namespace that would change the
/// runtime's own mount tree beyond the container's root: masked and read-only paths
/// (runc refuses those too), a read-only root, a root propagation. Empty: none.
pub fn shared_namespace_conflicts(spec: &Spec) -> Vec<&'static str> {
    let linux = spec.linux().as_ref();
    let listed = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    let mut found = Vec::new();
    if listed(linux.and_then(|l| l.masked_paths().as_ref())) {
        found.push("linux.maskedPaths");
    }
    if listed(linux.and_then(|l| l.readonly_paths().as_ref())) {
        found.push("linux.readonlyPaths");
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        found.push("root.readonly");
    }
    if linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(|p| !p.is_empty())
    {
        found.push("linux.rootfsPropagation");
    }
    found
}

/// Mount points strictly below `rootfs` in the calling process's mount namespace.
/// A mountinfo that cannot be read is an error: an empty list would make every mount
/// below the root look like the container's own.
pub fn mounts_below(rootfs: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mounts =
        crate::mountinfo::read_self().map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    Ok(mounts
        .into_iter()
        .map(|m| m.mountpoint)
        .filter(|m| m != rootfs && m.starts_with(rootfs))
        .collect())
}

/// Detach what a container sharing the runtime's mount namespace mounted below its root:
/// every mount point below `rootfs` except those in `keep` (there before it), deepest
/// first.
pub fn unmount_below(rootfs: &Path, keep: &[std::path::PathBuf]) -> Result<()> {
    let mut made: Vec<_> = mounts_below(rootfs)?
        .into_iter()
        .filter(|m| !keep.contains(m))
        .collect();
    // A path listed twice has two mounts stacked on it: one unmount each.
    made.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in made {
        // NOFOLLOW: a symlink planted in the container's tree must not redirect us.
        let flags = nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW;
        match nix::mount::umount2(&m, flags) {
            // Gone with its parent already.
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("umount2", m.display(), e)),
        }
    }
    Ok(())
}
