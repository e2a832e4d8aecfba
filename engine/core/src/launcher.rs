//! How a worker turns a job into a running container. The engine only sees this trait:
//! tests plug in a no-op or instrumented launcher; the daemon plugs in the shim
//! adapter's [`berth_shim_adapter::Shims`] (see [`crate::shims`]). What crosses it is in
//! the engine's terms ([`berth_shim_adapter::vocab`]), never the shim's wire protocol.

pub use berth_shim_adapter::vocab::{Exit, Follow, LaunchError, Launched, Op, Reply};

use crate::queue::Job;

/// Creates (and by default starts) the container a job describes. Called from a start
/// worker thread; may block for as long as the start takes.
pub trait Launcher: Send + Sync + 'static {
    /// Launch `job`; return once the container is created (and started if asked).
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError>;

    /// Check what a submission asks of the launcher before it is queued, holding what
    /// must not be taken meanwhile (a published host port); [`Launcher::forget`] lets it
    /// go. Nothing by default.
    fn admit(&self, spec: &crate::record::ContainerSpec) -> Result<(), LaunchError> {
        let _ = spec;
        Ok(())
    }

    /// Start following container `id`'s later events (exit, OOM) through `follow`, what
    /// its launch returned: called by the worker once the record reflects the launch,
    /// so no event overtakes it. Nothing by default.
    fn watch(&self, id: &str, follow: Follow) {
        let _ = (id, follow);
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

    /// Where the bundle of container `id` was written, for a container whose spec the
    /// launcher made (an image's). `None` by default.
    fn bundle_dir(&self, id: &str) -> Option<std::path::PathBuf> {
        let _ = id;
        None
    }

    /// Ask the shim of container `id` for `op` and return its reply. Launchers without
    /// shims (tests, benches) refuse.
    fn control(&self, id: &str, op: Op) -> Result<Reply, LaunchError> {
        let _ = (id, op);
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
            follow: None,
        })
    }
}
