//! The runtime's error type: one enum, each variant naming the container, path or syscall.

use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;

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

    /// The bundle's config.json is not JSON, or a field has the wrong shape.
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: ParseError },

    /// The spec is well-formed JSON but asks for something the runtime refuses.
    #[error("invalid spec in {path}: {reason}")]
    InvalidSpec {
        path: PathBuf,
        reason: Box<SpecError>,
    },

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

/// Why config.json could not be read as a spec.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    Syntax(serde_json::Error),
    /// The JSON has a field of the wrong type or value, named by its JSON path.
    #[error("invalid field {path}: {source}")]
    Field {
        path: String,
        source: serde_json::Error,
    },
}

/// Why the runtime refuses a well-formed spec: each variant names the field and value.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `root` is missing.
    #[error("root is not set")]
    NoRoot,
    /// `root.path` does not resolve.
    #[error("root filesystem {}: {source}", path.display())]
    Rootfs {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `root.path` is not a directory.
    #[error("root filesystem {} is not a directory", .0.display())]
    RootfsNotDir(PathBuf),
    /// `process.args` is missing or its first word is empty.
    #[error("process.args must name a program")]
    NoProgram,
    /// `process.cwd` is relative.
    #[error("process.cwd {} is not an absolute path", .0.display())]
    RelativeCwd(PathBuf),
    /// A namespace type appears twice in `linux.namespaces`.
    #[error("namespace {0} is listed twice")]
    NamespaceTwice(LinuxNamespaceType),
    /// A namespace type this runtime cannot make.
    #[error("namespace {0} is not supported by this version of berth-runc")]
    NamespaceUnsupported(LinuxNamespaceType),
    /// A namespace to join given by a relative path.
    #[error("namespace {ns} path {} is not absolute", path.display())]
    NamespacePathRelative {
        ns: LinuxNamespaceType,
        path: PathBuf,
    },
    /// `hostname` set without a uts namespace to hold it.
    #[error("hostname is set but there is no uts namespace")]
    HostnameWithoutUts,
    /// A mount destination that is relative.
    #[error("mount destination {} is not an absolute path", .0.display())]
    RelativeMountDestination(PathBuf),
    /// An LSM label (`field` = `value`) the host's LSM, being off, cannot apply.
    #[error("{field} {value:?} is set but {lsm} is not enabled on this host")]
    LsmDisabled {
        field: &'static str,
        value: String,
        lsm: &'static str,
    },
    /// Id mappings without a user namespace.
    #[error("uidMappings/gidMappings are set but there is no user namespace")]
    MappingsWithoutUserns,
    /// A user namespace to join by path.
    #[error("joining a user namespace by path is not supported by this version")]
    JoinUserns,
    /// A new user namespace without this mapping (`uidMappings` or `gidMappings`).
    #[error("a new user namespace needs {0}")]
    NoMapping(&'static str),
    /// A mapping with more lines than the kernel takes.
    #[error("{map} has more than {max} entries")]
    MappingTooLong { map: &'static str, max: usize },
    /// A mapping entry of size 0.
    #[error("{0}: an entry has size 0")]
    MappingEmptyEntry(&'static str),
    /// A mapping entry whose range passes `u32::MAX`.
    #[error("{map}: {what} {start} + size {size} overflows")]
    MappingOverflow {
        map: &'static str,
        what: &'static str,
        start: u32,
        size: u32,
    },
    /// Two entries of a mapping overlap.
    #[error("{0}: entries overlap")]
    MappingOverlap(&'static str),
    /// A mapping that leaves the container's root unmapped.
    #[error("{0} must map the container's root (containerID 0)")]
    MappingNoRoot(&'static str),
    /// A sysctl key that is empty or would leave /proc/sys.
    #[error("sysctl key {0:?} is invalid")]
    SysctlKey(String),
    /// A sysctl of a namespace the container does not have.
    #[error("sysctl {key:?} needs a {ns} namespace, and the container has none")]
    SysctlNeedsNamespace { key: String, ns: LinuxNamespaceType },
    /// A sysctl global to the host.
    #[error(
        "sysctl {0:?} is not in a separate kernel namespace: setting it would change the host"
    )]
    SysctlHostGlobal(String),
    /// An invalid hook.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// Mounts (listed) that, without a mount namespace, would change the runtime's.
    #[error(
        "{} need a mount namespace: without one the container shares the runtime's, \
         and they would change it",
        .0.join(", ")
    )]
    SharedMounts(Vec<&'static str>),
    /// The rootfs overlay annotation is malformed or cannot be honoured.
    #[error("annotation {}: {}", berth_overlay::ANNOTATION, .0)]
    Overlay(String),
    /// A terminal asked for with nowhere to send it.
    #[error("process.terminal is true but no --console-socket was given")]
    NoConsoleSocket,
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
