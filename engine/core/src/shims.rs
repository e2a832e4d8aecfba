//! The engine with its shims: the shim adapter's [`Shims`] as the engine's launcher, and
//! the one constructor that wires engine, launcher and monitor ([`Engine::with_shims`]).

use std::path::PathBuf;
use std::sync::Arc;

use berth_shim_adapter::{LaunchSpec, Observation, Recovered, ShimConfig, Shims};

use crate::engine::Engine;
use crate::launcher::{Follow, LaunchError, Launched, Launcher, Op, Reply};
use crate::pool::PoolError;
use crate::queue::Job;
use crate::record::SpecSource;
use crate::state_machine::State;

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its workers could not be started.
    #[error("starting the engine: {0}")]
    Pool(#[from] PoolError),
    /// A thread following the shims could not be started.
    #[error("starting the shim monitor: {0}")]
    Monitor(#[from] std::io::Error),
}

impl Engine {
    /// An engine whose containers run under shims configured by `shims`: recovers the
    /// records under `config.state_dir`, starts following shims (their news becomes
    /// state changes), and finds the recovered containers' shims again. Returns the
    /// engine and how many live shims were found.
    pub fn with_shims(
        config: crate::Config,
        shims: ShimConfig,
    ) -> Result<(Arc<Engine>, usize), StartError> {
        let shims = Arc::new(Shims::start(shims)?);
        let engine = Arc::new(Engine::new(
            config,
            Arc::clone(&shims) as Arc<dyn Launcher>,
        )?);
        let weak = Arc::downgrade(&engine);
        shims.observe(Arc::new(move |id: &str, observation: Observation| {
            let Some(engine) = weak.upgrade() else {
                return;
            };
            if let Err(e) = engine.observe(id, observation) {
                tracing::debug!(%id, "shim observation not applied: {e}");
            }
        }))?;
        let found = reattach(&engine, &shims);
        Ok((engine, found))
    }
}

/// After a restart: bring every recovered record in line with its shim (see
/// [`Shims::recover`]) and follow the shims that answer. Exec results kept longer than
/// [`crate::exec::RESULT_KEEP`] go. Returns how many shims were found.
fn reattach(engine: &Engine, shims: &Shims) -> usize {
    let mut found = 0;
    for record in engine.list() {
        let id = record.id.as_str();
        let live = record.state.has_shim() && record.state != State::Stopped;
        let result = match shims.recover(id, live) {
            Recovered::Found(view, follow) => {
                found += 1;
                let r = engine.reconcile(id, Some(&view));
                // Followed once the record says where the container stands.
                shims.watch(id, follow);
                r.map(drop)
            }
            Recovered::Gone(observation) => engine.observe(id, observation).map(drop),
            Recovered::Nothing => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(%id, "recovering: {e}");
        }
        // Exec results nobody fetched before the restart are kept for a while only.
        let live = engine.get(id).is_some_and(|r| r.state.can_kill());
        shims.sweep_exec_results(id, live);
    }
    found
}

impl Launcher for Shims {
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        Shims::launch(
            self,
            LaunchSpec {
                id: &job.id,
                bundle: bundle_of(self.config(), job)?,
                runtime: job.spec.runtime.as_deref(),
                start: job.spec.start,
            },
        )
    }

    fn watch(&self, id: &str, follow: Follow) {
        Shims::watch(self, id, follow);
    }

    fn forget(&self, id: &str) {
        Shims::forget(self, id);
    }

    fn clean_up(&self, id: &str) -> Result<(), LaunchError> {
        Shims::clean_up(self, id)
    }

    fn control(&self, id: &str, op: Op) -> Result<Reply, LaunchError> {
        Shims::control(self, id, op)
    }
}

/// The bundle directory of a job: its own, or one written for an inline spec.
fn bundle_of(config: &ShimConfig, job: &Job) -> Result<PathBuf, LaunchError> {
    match &job.spec.source {
        SpecSource::Bundle(path) => Ok(path.clone()),
        SpecSource::Inline { spec, rootfs } => {
            let dir = config.bundle_dir(&job.id);
            write_inline_bundle(&dir, spec, rootfs)
                .map_err(|e| LaunchError::new("bundle", format!("{}: {e}", dir.display())))?;
            Ok(dir)
        }
    }
}

/// Write `config.json` for an inline spec, its root pointing at `rootfs`.
fn write_inline_bundle(
    dir: &std::path::Path,
    spec: &oci_spec::runtime::Spec,
    rootfs: &std::path::Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut spec = spec.clone();
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(rootfs.to_path_buf());
    spec.set_root(Some(root));
    let text = serde_json::to_vec(&spec).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("config.json"), text)
}
