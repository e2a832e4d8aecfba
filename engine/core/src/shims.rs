//! The engine with its shims: the shim adapter's [`Shims`] (and, for containers made from
//! images, the images service; for containers on networks, the networks service) as the
//! engine's launcher, and the one constructor that wires engine, launcher and monitor
//! ([`Engine::with_shims`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use berth_images::{Images, ImagesError, RootfsMode};
use berth_network::{NetworkMode, NetworkRequest, Networks};
use berth_shim_adapter::{LaunchSpec, Observation, Recovered, ShimConfig, Shims};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::engine::Engine;
use crate::launcher::{Follow, LaunchError, Launched, Launcher, Op, Reply};
use crate::pool::PoolError;
use crate::queue::Job;
use crate::record::{ContainerSpec, ImageRun, PullPolicy, SpecSource};
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

/// The services a daemon's engine makes containers with, beside its shims.
#[derive(Clone)]
pub struct Services {
    /// Images: containers from images (`None`: requests naming one fail).
    pub images: Option<Arc<Images>>,
    /// Networks: containers attached to networks (`None`: requests naming one are refused).
    pub networks: Option<Arc<Networks>>,
    /// The network of a container from an image whose request names none.
    pub default_network: NetworkMode,
}

impl Default for Services {
    /// No images, no networks, `none` by default.
    fn default() -> Self {
        Services {
            images: None,
            networks: None,
            default_network: NetworkMode::None,
        }
    }
}

impl Engine {
    /// An engine whose containers run under shims configured by `shims` (made from
    /// images and attached to networks by `services`): recovers the records under
    /// `config.state_dir`, starts following shims (their news becomes state changes),
    /// finds the recovered containers' shims again and releases root filesystems and
    /// network attachments no live container owns any more. Returns the engine and how
    /// many live shims were found.
    pub fn with_shims(
        config: crate::Config,
        shims: ShimConfig,
        services: Services,
    ) -> Result<(Arc<Engine>, usize), StartError> {
        let shims = Arc::new(Shims::start(shims)?);
        let images = services.images.clone();
        let launcher = Arc::new(ShimLauncher {
            shims: Arc::clone(&shims),
            services,
            engine: OnceLock::new(),
        });
        let engine = Arc::new(Engine::new(
            config,
            Arc::clone(&launcher) as Arc<dyn Launcher>,
        )?);
        let _ = launcher.engine.set(Arc::downgrade(&engine));
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
        if let Some(networks) = &launcher.services.networks {
            let live = |id: &str| {
                engine
                    .get(id)
                    .filter(|r| !r.state.is_final())
                    .map(|r| r.pid.filter(|p| *p > 0 && r.state.can_kill()).unwrap_or(0))
            };
            networks.recover(&live);
        }
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
/// filesystems and specs for containers from images; the networks service attaches
/// containers between create and start.
struct ShimLauncher {
    shims: Arc<Shims>,
    services: Services,
    /// For `container:<id>` networks: the other container's init.
    engine: OnceLock<Weak<Engine>>,
}

impl Launcher for ShimLauncher {
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        let launched = self.launch_on_network(job);
        if launched.is_err() {
            // A failed start holds no host port or address until its record is deleted.
            if let Some(networks) = &self.services.networks {
                if let Err(e) = networks.detach(&job.id) {
                    tracing::warn!(id = %job.id, "releasing the network of a failed start: {e}");
                }
            }
        }
        launched
    }

    fn admit(&self, spec: &ContainerSpec) -> Result<(), LaunchError> {
        let Some(request) = self.network_of(spec) else {
            return Ok(());
        };
        match (&self.services.networks, request.mode.network()) {
            (Some(networks), _) => networks
                .admit(&spec.id, &request)
                .map_err(|e| LaunchError::new(e.code(), e.to_string())),
            (None, Some(name)) => Err(LaunchError::new(
                "network_not_found",
                format!("network {name:?}: this daemon has no networks"),
            )),
            (None, None) => Ok(()),
        }
    }

    fn watch(&self, id: &str, follow: Follow) {
        self.shims.watch(id, follow);
    }

    fn forget(&self, id: &str) {
        self.shims.forget(id);
        if let Some(networks) = &self.services.networks {
            if let Err(e) = networks.detach(id) {
                tracing::warn!(%id, "detaching from the network: {e}");
            }
        }
        if let Some(images) = &self.services.images {
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
    /// Create the container; on a network, attach it between create and start.
    fn launch_on_network(&self, job: &Job) -> Result<Launched, LaunchError> {
        let network = self.network_of(&job.spec);
        let attach = network.as_ref().filter(|n| n.mode.network().is_some());
        let (bundle, hostname) = self.bundle_of(job, network.as_ref())?;
        let mut launched = self.shims.launch(LaunchSpec {
            id: &job.id,
            bundle,
            runtime: job.spec.runtime.as_deref(),
            // Attached between create and start: the program never runs unconnected.
            start: job.spec.start && attach.is_none(),
        })?;
        if let Some(request) = attach {
            if let Err(e) = self.attach(&job.id, request, launched.pid, hostname.as_deref()) {
                self.undo_create(&job.id);
                return Err(e);
            }
            if job.spec.start {
                if let Err(e) = self.shims.control(&job.id, Op::Start) {
                    self.undo_create(&job.id);
                    return Err(e);
                }
                launched.started = true;
            }
        }
        Ok(launched)
    }

    /// The network a container gets: what its request says, else for a container from
    /// an image the default network; `None`: the spec decides.
    fn network_of(&self, spec: &ContainerSpec) -> Option<NetworkRequest> {
        if let Some(request) = &spec.network {
            return Some(request.clone());
        }
        matches!(spec.source, SpecSource::Image(_)).then(|| NetworkRequest {
            mode: self.services.default_network.clone(),
            ports: Vec::new(),
        })
    }

    /// Attach the created container `id` (init `pid`) and name its address in its
    /// /etc/hosts (a container from an image has one of Berth's).
    fn attach(
        &self,
        id: &str,
        request: &NetworkRequest,
        pid: i32,
        hostname: Option<&str>,
    ) -> Result<(), LaunchError> {
        let networks =
            self.services.networks.as_ref().ok_or_else(|| {
                LaunchError::new("network", "this daemon has no networks".to_owned())
            })?;
        let attachment = networks.attach(id, request, pid).map_err(|e| {
            LaunchError::new("network", format!("attaching to {}: {e}", request.mode))
        })?;
        let address = attachment.and_then(|a| a.address);
        if let (Some(images), Some(address), Some(name)) =
            (&self.services.images, address, hostname)
        {
            if let Err(e) = images.add_host_entry(id, address.addr().into(), &[name]) {
                tracing::debug!(%id, "naming its address in /etc/hosts: {e}");
            }
        }
        Ok(())
    }

    /// Remove a container created but not to be started (its network failed; the
    /// failed launch releases the network).
    fn undo_create(&self, id: &str) {
        if let Err(e) = self.shims.control(id, Op::Delete { force: true }) {
            tracing::warn!(%id, "removing a container whose network failed: {e}");
        }
    }

    /// The bundle directory of a job — its own, or one written for an inline spec, an
    /// image, or a bundle whose network the request changes — and the spec's hostname.
    fn bundle_of(
        &self,
        job: &Job,
        network: Option<&NetworkRequest>,
    ) -> Result<(PathBuf, Option<String>), LaunchError> {
        let config = self.shims.config();
        let (mut spec, rootfs) = match &job.spec.source {
            SpecSource::Bundle(path) if network.is_none() => return Ok((path.clone(), None)),
            SpecSource::Bundle(path) => read_bundle(path)?,
            SpecSource::Inline { spec, rootfs } => ((**spec).clone(), rootfs.clone()),
            SpecSource::Image(run) => self.prepare(&job.id, run, self.rootfs_mode(job))?,
        };
        if let Some(request) = network {
            self.apply_network(&mut spec, &request.mode)?;
        }
        let hostname = spec.hostname().clone();
        let dir = config.bundle_dir(&job.id);
        write_inline_bundle(&dir, spec, &rootfs)
            .map_err(|e| LaunchError::new("bundle", format!("{}: {e}", dir.display())))?;
        Ok((dir, hostname))
    }

    /// Make the spec's network namespace what `mode` says: a new one (`none`, a
    /// network), none at all (`host`), or another container's.
    fn apply_network(&self, spec: &mut Spec, mode: &NetworkMode) -> Result<(), LaunchError> {
        let path = match mode {
            NetworkMode::Container(other) => Some(self.netns_of(other)?),
            _ => None,
        };
        let mut linux = spec.linux().clone().unwrap_or_default();
        let mut namespaces: Vec<LinuxNamespace> = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|ns| ns.typ() != LinuxNamespaceType::Network)
            .collect();
        if *mode != NetworkMode::Host {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(LinuxNamespaceType::Network);
            ns.set_path(path);
            namespaces.push(ns);
        }
        linux.set_namespaces(Some(namespaces));
        spec.set_linux(Some(linux));
        Ok(())
    }

    /// `/proc/<pid>/ns/net` of the running container `other`.
    fn netns_of(&self, other: &str) -> Result<PathBuf, LaunchError> {
        let record = self
            .engine
            .get()
            .and_then(Weak::upgrade)
            .and_then(|engine| engine.get(other))
            .filter(|r| r.state == State::Running && r.pid.is_some_and(|p| p > 0))
            .ok_or_else(|| {
                LaunchError::new(
                    "network",
                    format!("network container:{other}: no running container {other:?}"),
                )
            })?;
        Ok(PathBuf::from(format!(
            "/proc/{}/ns/net",
            record.pid.unwrap_or_default()
        )))
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
        let images = self.services.images.as_ref().ok_or_else(|| {
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

/// The spec and root of a bundle directory, the root and relative mount sources made
/// absolute (the bundle is rewritten elsewhere when the request changes its network).
fn read_bundle(path: &Path) -> Result<(Spec, PathBuf), LaunchError> {
    let config = path.join("config.json");
    let mut spec = Spec::load(&config)
        .map_err(|e| LaunchError::new("bundle", format!("{}: {e}", config.display())))?;
    if let Some(mounts) = spec.mounts().clone() {
        let mounts = mounts
            .into_iter()
            .map(|mut m| {
                if let Some(source) = m.source().clone().filter(|s| s.is_relative()) {
                    // Bind sources name files; others ("proc", "tmpfs") name nothing.
                    if path.join(&source).exists() {
                        m.set_source(Some(path.join(source)));
                    }
                }
                m
            })
            .collect();
        spec.set_mounts(Some(mounts));
    }
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    Ok((spec, path.join(root)))
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
