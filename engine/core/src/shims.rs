//! The engine with its shims: the shim adapter's [`Shims`] (and, for containers made from
//! images, the images service) as the engine's launcher, and the one constructor that
//! wires engine, launcher and monitor ([`Engine::with_shims`]).

use std::path::PathBuf;
use std::sync::Arc;

use berth_images::{Images, ImagesError, RootfsMode};
use berth_shim_adapter::{LaunchSpec, Observation, Recovered, ShimConfig, Shims};

use crate::engine::Engine;
use crate::launcher::{Follow, LaunchError, Launched, Launcher, Op, Reply};
use crate::pool::PoolError;
use crate::queue::Job;
use crate::record::{ImageRun, PullPolicy, SpecSource};
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
    /// An engine whose containers run under shims configured by `shims` (and are made
    /// from `images` when a request names an image): recovers the records under
    /// `config.state_dir`, starts following shims (their news becomes state changes),
    /// finds the recovered containers' shims again and releases root filesystems no
    /// record owns any more. Returns the engine and how many live shims were found.
    pub fn with_shims(
        config: crate::Config,
        shims: ShimConfig,
        images: Option<Arc<Images>>,
    ) -> Result<(Arc<Engine>, usize), StartError> {
        let shims = Arc::new(Shims::start(shims)?);
        let launcher = Arc::new(ShimLauncher {
            shims: Arc::clone(&shims),
            images: images.clone(),
        });
        let engine = Arc::new(Engine::new(config, launcher as Arc<dyn Launcher>)?);
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
        if let Some(images) = &images {
            release_orphans(&engine, images);
            let weak = Arc::downgrade(&engine);
            images.observe(Arc::new(move |action, image| {
                if let Some(engine) = weak.upgrade() {
                    engine.publish_image(action, &image.name, &image.config.to_string());
                }
            }));
        }
        Ok((engine, found))
    }
}

/// After a restart: unmount the root filesystems of containers the engine no longer
/// knows (deleted while the daemon was down, or never recorded).
fn release_orphans(engine: &Engine, images: &Images) {
    for id in images.mounted() {
        if engine.get(&id).is_none() {
            if let Err(e) = images.release(&id) {
                tracing::warn!(%id, "releasing an orphaned root filesystem: {e}");
            }
        }
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

/// The daemon's launcher: shims run the containers; the images service makes root
/// filesystems and specs for containers from images.
struct ShimLauncher {
    shims: Arc<Shims>,
    images: Option<Arc<Images>>,
}

impl Launcher for ShimLauncher {
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        self.shims.launch(LaunchSpec {
            id: &job.id,
            bundle: self.bundle_of(job)?,
            runtime: job.spec.runtime.as_deref(),
            start: job.spec.start,
        })
    }

    fn watch(&self, id: &str, follow: Follow) {
        self.shims.watch(id, follow);
    }

    fn forget(&self, id: &str) {
        self.shims.forget(id);
        if let Some(images) = &self.images {
            if let Err(e) = images.release(id) {
                tracing::warn!(%id, "releasing the root filesystem: {e}");
            }
        }
    }

    fn clean_up(&self, id: &str) -> Result<(), LaunchError> {
        self.shims.clean_up(id)
    }

    fn bundle_dir(&self, id: &str) -> Option<PathBuf> {
        Some(self.shims.config().bundle_dir(id))
    }

    fn control(&self, id: &str, op: Op) -> Result<Reply, LaunchError> {
        self.shims.control(id, op)
    }
}

impl ShimLauncher {
    /// The bundle directory of a job: its own, or one written for an inline spec or an
    /// image.
    fn bundle_of(&self, job: &Job) -> Result<PathBuf, LaunchError> {
        let config = self.shims.config();
        let (spec, rootfs) = match &job.spec.source {
            SpecSource::Bundle(path) => return Ok(path.clone()),
            SpecSource::Inline { spec, rootfs } => ((**spec).clone(), rootfs.clone()),
            SpecSource::Image(run) => self.prepare(&job.id, run, self.rootfs_mode(job))?,
        };
        let dir = config.bundle_dir(&job.id);
        write_inline_bundle(&dir, spec, &rootfs)
            .map_err(|e| LaunchError::new("bundle", format!("{}: {e}", dir.display())))?;
        Ok(dir)
    }

    /// Who mounts an image container's overlay: the runtime's init inside the
    /// container's mount namespace when the runtime is berth's own (the built-in
    /// library, or a `berth-runc` binary), which keeps the host's mount table from
    /// growing with every container (each new mount namespace copies all of it);
    /// berth on the host for any other runtime, which knows no annotation.
    fn rootfs_mode(&self, job: &Job) -> RootfsMode {
        let runtime = job
            .spec
            .runtime
            .as_deref()
            .or(self.shims.config().runtime.as_deref());
        match runtime {
            None => RootfsMode::InNamespace,
            Some(p) if p.file_name().is_some_and(|n| n == "berth-runc") => RootfsMode::InNamespace,
            Some(_) => RootfsMode::Host,
        }
    }

    /// The spec and root filesystem of container `id` from its image, pulled first if
    /// the request's policy says so.
    fn prepare(
        &self,
        id: &str,
        run: &ImageRun,
        mode: RootfsMode,
    ) -> Result<(oci_spec::runtime::Spec, PathBuf), LaunchError> {
        let images = self.images.as_ref().ok_or_else(|| {
            LaunchError::new("image", "this engine has no images service".to_owned())
        })?;
        let image_error = |e: ImagesError| LaunchError::new("image", e.to_string());
        let pull = match run.pull {
            PullPolicy::Always => true,
            PullPolicy::Missing => matches!(images.get(&run.image), Err(ImagesError::NotFound(_))),
            PullPolicy::Never => false,
        };
        if pull {
            images
                .pull(&run.image, None, &|_| {})
                .map_err(image_error)?;
        }
        let overrides = berth_images::runspec::Overrides {
            entrypoint: run.entrypoint.clone(),
            args: run.args.clone(),
            env: run.env.clone(),
            workdir: run.workdir.clone(),
            user: run.user.clone(),
            ..Default::default()
        };
        let prepared = images
            .prepare(id, &run.image, &overrides, mode)
            .map_err(image_error)?;
        Ok((prepared.spec, prepared.rootfs))
    }
}

/// Write `config.json` for an inline spec, its root pointing at `rootfs`.
fn write_inline_bundle(
    dir: &std::path::Path,
    mut spec: oci_spec::runtime::Spec,
    rootfs: &std::path::Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(rootfs.to_path_buf());
    spec.set_root(Some(root));
    let text = serde_json::to_vec(&spec).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("config.json"), text)
}
