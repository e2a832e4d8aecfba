//! Switching the init's root to the container's root filesystem.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::error::{Result, SysContext};

/// pivot_root into `rootfs` and detach the old root, so nothing of the host's mount tree
/// stays reachable. Uses the `pivot_root(".", ".")` form: the old root ends up stacked
/// under the new one and is unmounted from there, with no directory to create in the
/// container's root filesystem.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).sys("open", "/")?;
    let new = open(rootfs, flags, Mode::empty()).sys("open", rootfs.display())?;
    fchdir(&new).sys("fchdir", rootfs.display())?;
    pivot_root(".", ".").sys("pivot_root", rootfs.display())?;
    fchdir(&old).sys("fchdir", "old root")?;
    // The old root may be shared with the host: make it a slave first so the unmount
    // does not propagate back out.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys("mount", "old root (rslave)")?;
    umount2(".", MntFlags::MNT_DETACH).sys("umount2", "old root")?;
    chdir("/").sys("chdir", "/")
}

/// The `--no-pivot` path: move the root filesystem over `/` and chroot into it. Weaker
/// than pivot_root (the old root stays reachable from outside the chroot), for the
/// filesystems where pivot_root does not work, such as an initramfs.
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).sys("chdir", rootfs.display())?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .sys("mount", format!("move {} to /", rootfs.display()))?;
    chroot(".").sys("chroot", rootfs.display())?;
    chdir("/").sys("chdir", "/")
}

/// Without a mount namespace of its own the container shares the runtime's, where
/// neither pivot_root nor a move over `/` may happen: chroot only, as runc does.
pub fn chroot_into(rootfs: &Path) -> Result<()> {
    chdir(rootfs).sys("chdir", rootfs.display())?;
    chroot(".").sys("chroot", rootfs.display())?;
    chdir("/").sys("chdir", "/")
}
