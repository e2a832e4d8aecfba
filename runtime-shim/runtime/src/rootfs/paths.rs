//! maskedPaths and readonlyPaths, applied inside the container after pivot_root.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::mounts::remount;
use crate::error::{Result, SysContext};

/// Hide `path`: an empty read-only tmpfs over a directory, /dev/null over a file.
/// Paths that do not exist are skipped.
pub fn mask(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let result = if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    match result {
        Err(Errno::ENOENT) => Ok(()),
        other => other.sys("mount (mask)", path.display()),
    }
}

/// Make `path` read-only with a recursive bind mount onto itself. Paths that do not
/// exist are skipped.
pub fn make_readonly(path: &Path) -> Result<()> {
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.sys("mount (readonly)", path.display())?,
    }
    let keep = existing_flags(path);
    remount(path, keep | MsFlags::MS_RDONLY | MsFlags::MS_REC)
}

/// The flags of the mount at `path` that a bind remount must keep (the kernel refuses
/// to drop nosuid/nodev/noexec of a mount it locked).
pub fn existing_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}
