//! The lock that makes creating a cgroup below the runtime's shared default parent and
//! removing that parent safe against each other, across processes.
//!
//! Why a lock and not only "retry when the parent vanishes": the parent can vanish
//! between any two steps of a create (mkdir, reading its `cpuset.cpus`, setting
//! `cgroup.clone_children`, enabling v2 controllers), each failing with its own errno
//! (`ENOENT`, `ENODEV`), and under load a retry can lose again. The lock is a `flock` on
//! the hierarchy's root directory: the one object every process that uses the hierarchy
//! sees, whatever its `--root` or mount namespace (a cgroupfs mount of the same
//! hierarchy is the same kernfs inode), and the kernel drops it when its holder dies, so
//! nothing stale is ever left. Creates take it shared, so parallel starts never wait for
//! each other; only the removal of a default parent (in a delete, once the container's
//! own level is gone) takes it exclusive, waiting for the creates under way. (Not
//! waiting would be wrong: the holder may be another delete, whose `rmdir` of the
//! parent still saw our level, and the parent would be left behind.) Cost per create and
//! per delete: an open, a flock and a close per hierarchy.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::CgroupError;

/// A held lock on one hierarchy's root directory; released on drop.
pub(crate) type HierarchyLock = Flock<File>;

/// Longest wait for the lock. Holders keep it for a few mkdirs and writes; one that
/// keeps it longer is stopped or wedged (SIGSTOP, a debugger), and must not hang every
/// create and delete on the host behind it.
const PATIENCE: Duration = Duration::from_secs(10);

/// Take the lock of the hierarchy mounted at `mount` shared (a create), waiting (at most
/// [`PATIENCE`]) for a removal that holds it.
pub(crate) fn shared(mount: &Path) -> Result<HierarchyLock, CgroupError> {
    take(mount, FlockArg::LockSharedNonblock, PATIENCE)
}

/// Take the lock of the hierarchy mounted at `mount` exclusive (removing a default
/// parent), waiting (at most [`PATIENCE`]) for the creates and removals that hold it.
pub(crate) fn exclusive(mount: &Path) -> Result<HierarchyLock, CgroupError> {
    take(mount, FlockArg::LockExclusiveNonblock, PATIENCE)
}

/// Try `how` until it succeeds or `patience` runs out, backing off from 1 to 20 ms.
fn take(mount: &Path, how: FlockArg, patience: Duration) -> Result<HierarchyLock, CgroupError> {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(1);
    let mut file = open(mount)?;
    loop {
        match Flock::lock(file, how) {
            Ok(lock) => return Ok(lock),
            Err((back, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = back;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(CgroupError::Lock {
                    path: mount.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("held by another process for over {patience:?}"),
                    ),
                })
            }
            Err((_, errno)) => return Err(failed(mount, errno)),
        }
    }
}

fn open(mount: &Path) -> Result<File, CgroupError> {
    File::open(mount).map_err(|source| CgroupError::Lock {
        path: mount.to_path_buf(),
        source,
    })
}

fn failed(mount: &Path, errno: Errno) -> CgroupError {
    CgroupError::Lock {
        path: mount.to_path_buf(),
        source: errno.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`exclusive`] if nobody holds the lock, `None` otherwise.
    fn try_exclusive(mount: &Path) -> Result<Option<HierarchyLock>, CgroupError> {
        let file = open(mount)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(failed(mount, errno)),
        }
    }

    #[test]
    fn creates_share_and_exclude_the_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let first = shared(tmp.path()).unwrap();
        let second = shared(tmp.path()).unwrap();
        assert!(try_exclusive(tmp.path()).unwrap().is_none());
        drop(first);
        assert!(try_exclusive(tmp.path()).unwrap().is_none());
        drop(second);
        let removal = exclusive(tmp.path()).unwrap();
        assert!(try_exclusive(tmp.path()).unwrap().is_none());
        drop(removal);
        assert!(try_exclusive(tmp.path()).unwrap().is_some());
    }

    #[test]
    fn a_holder_that_never_lets_go_is_an_error_not_a_hang() {
        let tmp = tempfile::tempdir().unwrap();
        let _stuck = exclusive(tmp.path()).unwrap();
        let patience = Duration::from_millis(50);
        for how in [
            FlockArg::LockSharedNonblock,
            FlockArg::LockExclusiveNonblock,
        ] {
            let err = take(tmp.path(), how, patience).unwrap_err();
            assert!(err.to_string().contains("held by another process"), "{err}");
        }
    }

    #[test]
    fn a_missing_mount_is_an_error_naming_it() {
        let err = shared(Path::new("/nonexistent-berth-mount")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-berth-mount"),
            "{err}"
        );
    }
}
