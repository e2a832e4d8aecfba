//! The words the engine and its shims share, in the engine's terms: what a launch gives
//! back, what can be asked of a container's shim and what it answers, what a shim was
//! seen to do. No wire type crosses here: the adapter translates the protocol into these.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_shim_protocol::{CgroupDirs, ExitRecord, Stats, Status};

use crate::client::ShimClient;

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit status (128 + signal).
    pub code: i32,
    /// When, as the shim recorded it (`None`: not readable).
    pub at: Option<SystemTime>,
}

impl From<&ExitRecord> for Exit {
    fn from(e: &ExitRecord) -> Self {
        Exit {
            code: e.code,
            at: humantime::parse_rfc3339_weak(&e.at).ok(),
        }
    }
}

/// A launched container's shim, to be followed once the engine recorded the launch (so
/// none of its later events overtakes it). Opaque: only [`crate::Shims::watch`] uses it.
#[derive(Debug)]
pub struct Follow {
    pub(crate) client: ShimClient,
    pub(crate) dir: PathBuf,
}

/// What a successful launch reports.
#[derive(Debug)]
pub struct Launched {
    /// Host pid of the container's init.
    pub pid: i32,
    /// Pid of the shim that owns the container (0 where there is none, as in tests).
    pub shim_pid: i32,
    /// Where the container's cgroup is, if its shim found it.
    pub cgroups: Option<CgroupDirs>,
    /// The user process runs (`false`: the container is only created, as asked by a
    /// spec with `start: false`).
    pub started: bool,
    /// The process already exited (it ran briefly); applied after the start.
    pub exited: Option<Exit>,
    /// The shim to follow from now on (`None`: nothing to follow, as in tests).
    pub follow: Option<Follow>,
}

/// Why a launch (or a request to a shim) failed. `kind` is a short, bounded label (it
/// becomes the `reason` label of the failures metric); `message` is the one line a user
/// reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LaunchError {
    /// Bounded label: `spawn`, `create`, `start`, `shim_gone`, `timeout`, `refused`,
    /// `panic` …
    pub kind: &'static str,
    /// One line saying why.
    pub message: String,
}

impl LaunchError {
    /// A failure of the given kind.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        LaunchError {
            kind,
            message: message.into(),
        }
    }
}

/// What to launch: one container, its bundle written already.
#[derive(Debug, Clone)]
pub struct LaunchSpec<'a> {
    /// Container id.
    pub id: &'a str,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// An external OCI runtime for this container (`None`: the configured default).
    pub runtime: Option<&'a Path>,
    /// Start the user process (`false`: create only).
    pub start: bool,
}

/// What can be asked of a live container's shim.
#[derive(Debug, Clone)]
pub enum Op {
    /// Run the user process of a container created without starting it.
    Start,
    /// Send `signal` to the init, or with `all` to every process of the container.
    Kill {
        /// Signal number.
        signal: i32,
        /// Every process, not only the init.
        all: bool,
    },
    /// Freeze the container.
    Pause,
    /// Thaw the container.
    Resume,
    /// Its cgroup statistics.
    Stats,
    /// Run one more process in the container.
    Exec {
        /// The process (runtime-spec `process` object).
        process: Box<oci_spec::runtime::Process>,
        /// A file to take its stdout and stderr (its exit recorded beside it);
        /// `None`: the container's log.
        output: Option<PathBuf>,
    },
    /// Remove the container (killing it first with `force`); its shim exits afterwards.
    Delete {
        /// Kill a live container first.
        force: bool,
    },
}

/// A shim's answer to an [`Op`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Done.
    Done,
    /// The answer to [`Op::Stats`].
    Stats(Box<Stats>),
    /// The answer to [`Op::Exec`]: the new process's host pid.
    Exec {
        /// Host pid.
        pid: i32,
    },
}

/// What was seen of a container's shim after its launch.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The container exists (init set up, user code not yet run).
    Created {
        /// Host pid of the init.
        pid: i32,
        /// Where its cgroup is (`None`: not found).
        cgroups: Option<CgroupDirs>,
    },
    /// The user process runs.
    Started,
    /// The init exited.
    Exited(Exit),
    /// The kernel's OOM killer killed a process of the container.
    Oom,
    /// A process started with [`Op::Exec`] exited.
    ExecExited {
        /// Its host pid.
        pid: i32,
        /// Exit status (128 + signal).
        code: i32,
    },
    /// Creating or starting failed.
    Failed {
        /// One line saying why.
        reason: String,
    },
    /// The shim is gone without the container's exit being heard: with the exit it
    /// recorded, if any; otherwise a live container is failed with `reason`. What a
    /// shim that died left (processes, cgroups, runtime state) was removed first.
    Lost {
        /// The exit the shim recorded before it went.
        exit: Option<Exit>,
        /// Why, with what became of the container.
        reason: String,
    },
}

/// Where a shim says its container stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimView {
    /// Lifecycle status.
    pub status: Status,
    /// Host pid of the init (0 before create and after exit).
    pub pid: i32,
    /// How it ended, once stopped.
    pub exit: Option<Exit>,
    /// Where its cgroup is, once created.
    pub cgroups: Option<CgroupDirs>,
}

/// What became of a recovered container's shim after a restart.
#[derive(Debug)]
pub enum Recovered {
    /// It answers: where the container stands, and the shim to follow once the record
    /// says so.
    Found(ShimView, Follow),
    /// It is gone: see [`Observation::Lost`] (a shim that exited by itself with its
    /// container has `reason` "its shim is gone …" and no cleanup was needed).
    Gone(Observation),
    /// Nothing to do (a stopped or failed container whose shim is not lost).
    Nothing,
}
