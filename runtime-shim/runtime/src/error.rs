//! The runtime's error type: one enum, each variant naming the container, path or syscall.

use std::path::PathBuf;

use crate::cgroups::CgroupError;
use crate::state::Status;

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is empty, too long or contains forbidden characters.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// The bundle's config.json is missing, unreadable or invalid.
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },

    /// The spec is well-formed JSON but asks for something the runtime refuses.
    #[error("invalid spec in {path}: {reason}")]
    InvalidSpec { path: PathBuf, reason: String },

    /// A container with this id already exists under the runtime root.
    #[error("container {0:?} already exists")]
    Exists(String),

    /// No container with this id exists under the runtime root.
    #[error("container {0:?} does not exist")]
    NotFound(String),

    /// The requested action is not allowed in the container's current state.
    #[error("cannot {action} container {id:?}: it is {status}")]
    WrongState {
        id: String,
        action: &'static str,
        status: Status,
    },

    /// A signal name or number that is not a signal.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),

    /// A system call failed.
    #[error("{syscall} {target}: {errno}")]
    Sys {
        syscall: &'static str,
        target: String,
        errno: nix::errno::Errno,
    },

    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// Setting capabilities or no_new_privileges failed.
    #[error(transparent)]
    Capabilities(#[from] crate::capabilities::CapError),

    /// The seccomp profile is invalid or could not be installed.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),

    /// A hook failed, timed out or is invalid.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),

    /// Setting up the container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),

    /// The container's init process reported a failure while setting up the container.
    #[error("container {id:?}: {message}")]
    Init { id: String, message: String },

    /// criu is missing or cannot work on this host.
    #[error("checkpoint/restore unavailable: {0}")]
    CriuUnavailable(String),

    /// criu ran and failed.
    #[error("{0}")]
    CriuFailed(String),

    /// A feature Berth does not implement.
    #[error("not supported: {0}")]
    Unsupported(&'static str),

    /// `start` of a container whose spec has no `process` (optional only at create).
    #[error("container {0:?}: config.json has no process: there is nothing to start")]
    NoProcess(String),

    /// The init process vanished or broke the setup protocol.
    #[error("container {id:?}: init process {reason}")]
    InitLost { id: String, reason: String },
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed syscall on `target` (a path, pid or other object).
    pub fn sys(
        syscall: &'static str,
        target: impl std::fmt::Display,
        errno: nix::errno::Errno,
    ) -> Self {
        Error::Sys {
            syscall,
            target: target.to_string(),
            errno,
        }
    }

    /// A failed file operation on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attach a syscall name and target to a `nix` result.
pub trait SysContext<T> {
    /// Map the errno into [`Error::Sys`] naming `syscall` and `target`.
    fn sys(self, syscall: &'static str, target: impl std::fmt::Display) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, syscall: &'static str, target: impl std::fmt::Display) -> Result<T> {
        self.map_err(|errno| Error::sys(syscall, target, errno))
    }
}

/// Attach an operation and path to a `std::io` result.
pub trait IoContext<T> {
    /// Map the error into [`Error::Io`] naming `op` and `path`.
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::io(op, path, source))
    }
}
