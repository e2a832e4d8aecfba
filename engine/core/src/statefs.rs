//! The state directory on a tmpfs of the daemon's own, when the disk under it is slow.
//!
//! The state must survive a crash of the daemon or a shim, not a reboot (DESIGN.md):
//! exactly what a tmpfs mounted in the host's mount namespace gives. It outlives the
//! daemon process (a restarted daemon finds it, and every record, again) and is gone
//! after a reboot, with the containers. On a disk every start creates a dozen files
//! (records, the shim's socket, pid file and logs, the runtime's state and exec FIFO);
//! on ext4 each file creation under churn costs milliseconds of inode-bitmap search
//! (`recently_deleted` in a profile), which is most of a start's time in a burst.

use std::io;
use std::path::{Path, PathBuf};

/// `statfs.f_type` of a tmpfs.
const TMPFS_MAGIC: libc::c_long = 0x0102_1994;

/// A failure preparing the state directory, with the path.
#[derive(Debug, thiserror::Error)]
pub enum StateFsError {
    /// A filesystem call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `statfs`, `mount tmpfs on`, `unmount`).
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The file that tells a tmpfs berthd mounted (and may unmount) from one it was given.
pub const MARKER: &str = ".berthd-tmpfs";

/// What [`ensure_tmpfs`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFs {
    /// The directory was on a tmpfs already (ours from a previous daemon, or /run's).
    AlreadyTmpfs,
    /// A tmpfs of the daemon's own: mounted now, or by an earlier daemon (it holds
    /// [`MARKER`]); [`release`] unmounts it once no container is left.
    Mounted,
    /// Not a tmpfs and not empty: left on its filesystem, so that state written there
    /// before is not hidden under a new mount.
    KeptNonEmpty,
}

/// Make `dir` (created if missing) live on a tmpfs: mount one on it unless it is on a
/// tmpfs already or holds files (see [`StateFs::KeptNonEmpty`]). The mount is made in
/// the caller's (the host's) mount namespace, so it outlives the daemon; mode 0700,
/// nosuid, nodev (the runtime's exec FIFOs are not devices).
pub fn ensure_tmpfs(dir: &Path) -> Result<StateFs, StateFsError> {
    let err = |op: &'static str| {
        move |source: io::Error| StateFsError::Io {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(err("create"))?;
    if is_tmpfs(dir).map_err(err("statfs"))? {
        if dir.join(MARKER).exists() {
            return Ok(StateFs::Mounted);
        }
        return Ok(StateFs::AlreadyTmpfs);
    }
    if std::fs::read_dir(dir)
        .map_err(err("read"))?
        .next()
        .is_some()
    {
        return Ok(StateFs::KeptNonEmpty);
    }
    mount_tmpfs(dir).map_err(err("mount tmpfs on"))?;
    std::fs::write(dir.join(MARKER), b"").map_err(err("mark"))?;
    Ok(StateFs::Mounted)
}

/// Unmount the tmpfs [`ensure_tmpfs`] mounted on `dir`, but only if nothing of any
/// container is left in it (`containers_left` is false): with containers still running
/// under their shims, their state must stay for the next daemon.
pub fn release(dir: &Path, mounted: StateFs, containers_left: bool) -> Result<(), StateFsError> {
    if mounted != StateFs::Mounted || containers_left {
        return Ok(());
    }
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| {
        StateFsError::Io {
            op: "unmount",
            path: dir.to_path_buf(),
            source: io::ErrorKind::InvalidInput.into(),
        }
    })?;
    // SAFETY: umount2 with a valid NUL-terminated path.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(StateFsError::Io {
            op: "unmount",
            path: dir.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether `dir` is on a tmpfs.
pub fn is_tmpfs(dir: &Path) -> io::Result<bool> {
    let path = c_path(dir)?;
    // SAFETY: an all-zero statfs is a valid value for the kernel to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs with a valid path and a pointer to a statfs we own.
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as libc::c_long == TMPFS_MAGIC)
}

fn mount_tmpfs(dir: &Path) -> io::Result<()> {
    let target = c_path(dir)?;
    let options = c"mode=0700";
    // SAFETY: mount with valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"berth-state".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmounts on drop, so a failing assertion leaves no mount behind.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = release(&self.0, StateFs::Mounted, false);
        }
    }

    #[test]
    fn mounts_once_reuses_and_releases() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: mounting needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let first = ensure_tmpfs(&dir).unwrap();
        let _guard = (first == StateFs::Mounted).then(|| Unmount(dir.clone()));
        assert!(is_tmpfs(&dir).unwrap());
        std::fs::write(dir.join("f"), b"x").unwrap();
        // A second daemon finds the same tmpfs, its files, and that it is berthd's own.
        assert_eq!(ensure_tmpfs(&dir).unwrap(), first);
        assert!(dir.join("f").exists());
        // Containers left: the mount stays.
        release(&dir, first, true).unwrap();
        assert!(dir.join("f").exists());
        release(&dir, first, false).unwrap();
        if first == StateFs::Mounted {
            assert!(!dir.join("f").exists());
        }
    }

    #[test]
    fn a_non_empty_disk_directory_is_not_hidden() {
        let tmp = tempfile::tempdir().unwrap();
        if is_tmpfs(tmp.path()).unwrap() {
            eprintln!("skipping: the temp dir is on tmpfs");
            return;
        }
        std::fs::write(tmp.path().join("record"), b"x").unwrap();
        assert_eq!(ensure_tmpfs(tmp.path()).unwrap(), StateFs::KeptNonEmpty);
        assert!(tmp.path().join("record").exists());
    }
}
