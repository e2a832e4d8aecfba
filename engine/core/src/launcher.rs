//! How a worker turns a job into a running container. The engine only sees this trait:
//! tests plug in a no-op or instrumented launcher; the daemon plugs in the one that
//! spawns `berth-shim` and waits for its `created`/`started` messages.

use berth_shim_adapter::protocol::{CgroupDirs, Message, Request};

use crate::queue::Job;
use crate::record::Timestamp;

/// The exit of a container's process, heard during its launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchExit {
    /// Exit status (128 + signal).
    pub code: i32,
    /// When, as the shim recorded it.
    pub at: Option<Timestamp>,
}

/// What a successful launch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub exited: Option<LaunchExit>,
}

/// Why a launch failed. `kind` is a short, bounded label (it becomes the `reason` label
/// of the failures metric); `message` is the one line a user reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LaunchError {
    /// Bounded label: `spawn`, `create`, `start`, `shim_gone`, `timeout`, `panic` …
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

/// Creates (and by default starts) the container a job describes. Called from a start
/// worker thread; may block for as long as the start takes.
pub trait Launcher: Send + Sync + 'static {
    /// Launch `job`; return once the container is created (and started if asked).
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError>;

    /// Start following container `id`'s later events (exit, OOM): called by the worker
    /// once the record reflects a successful launch, so no event overtakes it.
    /// Nothing by default.
    fn watch(&self, id: &str) {
        let _ = id;
    }

    /// Remove what was kept for container `id` once it is deleted (its shim's
    /// directory and logs, a bundle written for an inline spec). Nothing by default.
    fn forget(&self, id: &str) {
        let _ = id;
    }

    /// Remove what a lost shim of container `id` left (a shim that died without exiting
    /// cleanly: its container's processes, runtime state, cgroups), so the id can be used
    /// again. Nothing to do is success; nothing by default.
    fn clean_up(&self, id: &str) -> Result<(), LaunchError> {
        let _ = id;
        Ok(())
    }

    /// Send `request` to the shim of container `id` and return its reply. Launchers
    /// without shims (tests, benches) refuse.
    fn control(&self, id: &str, request: &Request) -> Result<Message, LaunchError> {
        let _ = (id, request);
        Err(LaunchError::new(
            "unsupported",
            "this launcher has no shims to control",
        ))
    }
}

impl<F> Launcher for F
where
    F: Fn(&Job) -> Result<Launched, LaunchError> + Send + Sync + 'static,
{
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        self(job)
    }
}

/// A launcher that does nothing and succeeds at once (benches, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopLauncher;

impl Launcher for NoopLauncher {
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        Ok(Launched {
            pid: 0,
            shim_pid: 0,
            cgroups: None,
            started: job.spec.start,
            exited: None,
        })
    }
}
