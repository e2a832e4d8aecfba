//! Network namespaces: opening one (by process or path) and running code inside one.
//!
//! `setns(2)` with `CLONE_NEWNET` changes only the calling thread, so [`run_in`] enters
//! the namespace on a scoped thread of its own: the caller's thread stays where it was,
//! and sockets the closure makes (netlink, TCP) belong to the namespace entered.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

/// What failed opening or entering a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened.
    #[error("opening network namespace {path}: {source}")]
    Open {
        /// `/proc/<pid>/ns/net` or a bind mount of one.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `setns(2)` refused the descriptor (not a network namespace, or no permission).
    #[error("entering network namespace (fd {fd}): setns: {source}")]
    Enter {
        /// The descriptor given.
        fd: RawFd,
        /// Why.
        source: nix::Error,
    },
    /// No thread could be started to enter the namespace on.
    #[error("starting a thread to enter a network namespace: {0}")]
    Spawn(#[source] io::Error),
}

/// The network namespace of process `pid` (`/proc/<pid>/ns/net`).
pub fn open(pid: i32) -> Result<OwnedFd, NetnsError> {
    open_path(Path::new(&format!("/proc/{pid}/ns/net")))
}

/// The network namespace at `path` (a `/proc/<pid>/ns/net` or a bind mount of one).
pub fn open_path(path: &Path) -> Result<OwnedFd, NetnsError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| NetnsError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Run `f` on a thread that has entered the network namespace `ns`; its result.
/// A panic in `f` is resumed in the caller.
pub fn run_in<T: Send>(ns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn_scoped(scope, move || {
                setns(ns, CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
                    fd: ns.as_raw_fd(),
                    source,
                })?;
                Ok(f())
            })
            .map_err(NetnsError::Spawn)?;
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
