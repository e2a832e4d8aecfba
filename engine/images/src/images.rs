//! The images service: one value that owns the registry client, the content store and
//! the snapshots, and answers what the scheduler and the front ends ask — pull, import,
//! save, list, inspect, remove, and a root filesystem plus runtime spec for a container.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_overlay::{self as overlay, OverlayPlan};
use oci_spec::runtime::Spec;

use crate::archive::{self, ArchiveError};
use crate::manifest::ImageConfig;
use crate::pull::Source;
use crate::reference::{Reference, ReferenceError};
use crate::registry::{Client, Platform, RegistryConfig, RegistryError};
use crate::runspec::{self, Overrides, RunspecError};
use crate::snapshot::{SnapshotError, Snapshots};
use crate::store::{ImageRecord, Store, StoreError};
use crate::unpack::UnpackError;
use crate::{Digest, DigestError};

/// Default root of the content store and snapshots (persistent: images survive reboots).
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// How the images service is set up.
#[derive(Debug, Clone)]
pub struct ImagesConfig {
    /// Where blobs, image records and snapshots live.
    pub root: PathBuf,
    /// Registries: insecure ones, credentials, timeouts.
    pub registry: RegistryConfig,
    /// The platform pulled from an index.
    pub platform: Platform,
    /// Layers fetched and unpacked at once per pull.
    pub parallel_layers: usize,
    /// Where containers' writable layers and /etc files live (`None`: beside the
    /// snapshots). They are made and removed with every container: a tmpfs spares the
    /// disk that churn.
    pub containers: Option<PathBuf>,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            root: PathBuf::from(DEFAULT_ROOT),
            registry: RegistryConfig::default(),
            platform: Platform::host(),
            parallel_layers: 3,
            containers: None,
        }
    }
}

/// Why an images operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// The name does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Snapshots failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A layer did not unpack.
    #[error("layer {layer}: {source}")]
    Unpack {
        /// The layer blob.
        layer: Digest,
        /// Why.
        #[source]
        source: UnpackError,
    },
    /// The image config does not make a runtime spec.
    #[error(transparent)]
    Runspec(#[from] RunspecError),
    /// An archive did not import or save.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Content did not match its digest.
    #[error(transparent)]
    Digest(DigestError),
    /// No image by that name or id.
    #[error("no image {0}")]
    NotFound(String),
    /// Containers use the image.
    #[error(
        "image {image} is used by container {container}; remove the container first, or force"
    )]
    InUse {
        /// The image.
        image: String,
        /// One container using it.
        container: String,
    },
    /// A blob the image needs is neither stored nor fetchable.
    #[error("blob {0} is not in the store and the image has no registry to fetch it from")]
    MissingBlob(Digest),
    /// Reading or writing a stream failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl ImagesError {
    pub(crate) fn io(what: impl std::fmt::Display, source: io::Error) -> Self {
        ImagesError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// Who mounts a container's overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsMode {
    /// Berth, in the host's mount namespace: for runtimes that know no annotation
    /// (runc, crun). The host's mount table grows by one per container.
    Host,
    /// The runtime's init, inside the container's mount namespace, as the spec's
    /// [`berth_overlay::ANNOTATION`] asks (berth's own runtime only).
    InNamespace,
}

/// What a container made from an image runs with.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The runtime spec (its root is `rootfs`).
    pub spec: oci_spec::runtime::Spec,
    /// The container's rootfs dir (its overlay mounted there on the host, or, with
    /// [`RootfsMode::InNamespace`], an empty dir the runtime mounts on).
    pub rootfs: PathBuf,
    /// The image's full name.
    pub image: String,
    /// The image id (config digest).
    pub image_id: Digest,
}

/// Told of every image pulled, imported or removed: what happened (`pulled`,
/// `imported`, `deleted`) and the image's record.
pub type Observer = Arc<dyn Fn(&'static str, &ImageRecord) + Send + Sync>;

/// The images service.
pub struct Images {
    pub(crate) config: ImagesConfig,
    pub(crate) client: Client,
    pub(crate) store: Store,
    pub(crate) snapshots: Snapshots,
    /// Parsed configs by image id: a burst of containers from one image reads it once.
    configs: Mutex<HashMap<Digest, Arc<ImageConfig>>>,
    observer: Mutex<Option<Observer>>,
    /// Read-only views of images' layers by their layer directories (see
    /// [`Images::image_view`]), kept for the next container of the same image.
    views: Mutex<HashMap<Vec<PathBuf>, Arc<std::os::fd::OwnedFd>>>,
    /// Pulls and imports hold it shared from their first blob to their record, the
    /// garbage collector exclusively: it never takes what is about to be recorded.
    pub(crate) writing: std::sync::RwLock<()>,
}

impl Images {
    /// Open (or make) the store and snapshots under `config.root`.
    pub fn open(config: ImagesConfig) -> Result<Images, ImagesError> {
        let store = Store::open(&config.root)?;
        let layers = config.root.join("snapshots");
        let snapshots = match &config.containers {
            Some(dir) => Snapshots::open_split(&layers, dir)?,
            None => Snapshots::open(&layers)?,
        };
        Ok(Images {
            client: Client::new(config.registry.clone()),
            config,
            store,
            snapshots,
            configs: Mutex::new(HashMap::new()),
            observer: Mutex::new(None),
            views: Mutex::new(HashMap::new()),
            writing: std::sync::RwLock::new(()),
        })
    }

    /// Tell `observer` of every image pulled, imported or removed from now on (whoever
    /// asked for it: an API call or a container's first start).
    pub fn observe(&self, observer: Observer) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    /// Tell the observer that `image` was `action`.
    pub(crate) fn announce(&self, action: &'static str, image: &ImageRecord) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observer) = observer {
            observer(action, image);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ImagesConfig {
        &self.config
    }

    /// The image called `name` (docker's short forms, a full reference, an image id or
    /// a unique prefix of one).
    pub fn get(&self, name: &str) -> Result<ImageRecord, ImagesError> {
        if let Some(found) = name
            .parse::<Reference>()
            .ok()
            .and_then(|r| self.store.get_image(&r.to_string()))
        {
            return Ok(found);
        }
        self.store.resolve_image(name).map_err(|e| match e {
            StoreError::ImageNotFound(_) => ImagesError::NotFound(name.to_owned()),
            other => other.into(),
        })
    }

    /// Every image, by name.
    pub fn list(&self) -> Vec<ImageRecord> {
        let mut all = self.store.list_images();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The parsed config of `image`.
    pub fn image_config(&self, image: &ImageRecord) -> Result<Arc<ImageConfig>, ImagesError> {
        let mut cache = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&image.config) {
            return Ok(Arc::clone(c));
        }
        let config = Arc::new(self.store.config(&image.config)?);
        cache.insert(image.config.clone(), Arc::clone(&config));
        Ok(config)
    }

    /// Remove the name `name`. `used_by` names a container using the image, if any: then
    /// the removal is refused unless `force`. Blobs and snapshots nothing else uses go
    /// at the next [`Images::gc`].
    pub fn remove(
        &self,
        name: &str,
        used_by: impl Fn(&ImageRecord) -> Option<String>,
        force: bool,
    ) -> Result<ImageRecord, ImagesError> {
        let image = self.get(name)?;
        if !force {
            if let Some(container) = used_by(&image) {
                return Err(ImagesError::InUse {
                    image: image.name,
                    container,
                });
            }
        }
        let removed = self.store.remove_image(&image.name)?;
        self.announce("deleted", &removed);
        Ok(removed)
    }

    /// Remove blobs no image reaches and layer snapshots neither an image nor a mounted
    /// container uses. Returns the bytes of blobs removed.
    pub fn gc(&self) -> Result<u64, ImagesError> {
        let _quiet = self.writing.write().unwrap_or_else(|p| p.into_inner());
        // The views pin their layers: let go of them (the next container makes its own).
        self.views.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let stats = self.store.gc_blobs()?;
        let keep: std::collections::HashSet<Digest> = self
            .store
            .list_images()
            .into_iter()
            .flat_map(|i| i.layers.into_iter().map(|l| l.chain_id))
            .collect();
        for layer in self.snapshots.layers() {
            if keep.contains(&layer) {
                continue;
            }
            match self.snapshots.remove_layer(&layer) {
                // A container made from a removed image still runs on it.
                Ok(()) | Err(SnapshotError::LayerInUse { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stats.bytes)
    }

    /// Bytes held in the content store.
    pub fn store_size(&self) -> Result<u64, ImagesError> {
        Ok(self.store.size()?)
    }

    /// Import a `docker save` or OCI-layout archive: its images are recorded and
    /// unpacked.
    pub fn import(&self, archive: impl Read) -> Result<Vec<ImageRecord>, ImagesError> {
        let _writing = self.writing.read().unwrap_or_else(|p| p.into_inner());
        let images = archive::import(&self.store, archive)?;
        for image in &images {
            self.ensure_unpacked(image)?;
            self.announce("imported", image);
        }
        Ok(images)
    }

    /// Write the images `names` as one archive (OCI layout plus docker's manifest.json).
    pub fn save(&self, names: &[String], out: impl Write) -> Result<(), ImagesError> {
        let full: Vec<String> = names
            .iter()
            .map(|n| self.get(n).map(|i| i.name))
            .collect::<Result<_, _>>()?;
        Ok(archive::save(&self.store, &full, out)?)
    }

    /// Make sure every layer of `image` is unpacked (from its stored blobs, or fetched
    /// again from its registry).
    pub fn ensure_unpacked(&self, image: &ImageRecord) -> Result<(), ImagesError> {
        if image
            .layers
            .iter()
            .all(|l| self.snapshots.has_layer(&l.chain_id))
        {
            return Ok(());
        }
        let reference: Option<Reference> = image.name.parse().ok();
        let creds = reference
            .as_ref()
            .and_then(|r| self.config.registry.credentials.get(&r.registry));
        let source = reference
            .as_ref()
            .map(|reference| Source { reference, creds });
        self.fetch_layers(&image.layers, source.as_ref(), &|_| {})
    }

    /// A root filesystem (an overlay of `image`'s layers, writable, the container's own)
    /// and the runtime spec for container `id`, as docker would run the image with
    /// `overrides`; `mode` says who mounts the overlay. Undone by [`Images::release`].
    pub fn prepare(
        &self,
        id: &str,
        image: &str,
        overrides: &Overrides,
        mode: RootfsMode,
    ) -> Result<Prepared, ImagesError> {
        let record = self.get(image)?;
        let config = self.image_config(&record)?;
        self.ensure_unpacked(&record)?;
        let chain: Vec<Digest> = record.layers.iter().map(|l| l.chain_id.clone()).collect();
        let built = match mode {
            RootfsMode::Host => self.prepare_host(id, &chain, &config, overrides),
            RootfsMode::InNamespace => self.prepare_in_namespace(id, &chain, &config, overrides),
        };
        match built {
            Ok((spec, rootfs)) => Ok(Prepared {
                spec,
                rootfs,
                image: record.name,
                image_id: record.config,
            }),
            Err(e) => {
                if let Err(u) = self.snapshots.unmount(id) {
                    tracing::warn!(%id, "unmounting after a failed prepare: {u}");
                }
                Err(e)
            }
        }
    }

    /// The overlay mounted on the host, the spec built on it.
    fn prepare_host(
        &self,
        id: &str,
        chain: &[Digest],
        config: &ImageConfig,
        overrides: &Overrides,
    ) -> Result<(Spec, PathBuf), ImagesError> {
        let rootfs = self.snapshots.mount(id, chain)?;
        let spec = self.spec_on(id, config, &rootfs, overrides)?;
        Ok((spec, rootfs))
    }

    /// The dirs made, the spec built on a detached overlay (no mount table sees it),
    /// and the overlay left to the runtime by the annotation. On kernels without the
    /// new mount API, a host mount.
    fn prepare_in_namespace(
        &self,
        id: &str,
        chain: &[Digest],
        config: &ImageConfig,
        overrides: &Overrides,
    ) -> Result<(Spec, PathBuf), ImagesError> {
        let plan = self.snapshots.plan(id, chain)?;
        // Usually the image's own files answer all the spec needs of its root (the user;
        // a working directory that exists): read through one view of its layers kept for
        // every container of the image, with no mount of the container's own.
        if let Some(view) = self.image_view(&plan.lowers)? {
            let cwd = runspec::command::cwd(&config.config, overrides)?;
            if runspec::inroot::dir_exists(&view.path, &cwd) {
                let spec = self.spec_on(id, config, &view.path, overrides)?;
                return self.hand_to_runtime(id, spec, plan);
            }
        }
        let Some(mounted) = overlay::mount_detached(&plan.lowers, &plan.upper, &plan.work) else {
            self.snapshots.unmount(id)?;
            return self.prepare_host(id, chain, config, overrides);
        };
        let root = mounted.map_err(|f| SnapshotError::Mount {
            container: id.to_string(),
            syscall: f.syscall,
            source: f.source,
        })?;
        // The spec reads /etc/passwd and makes the working dir through the overlay.
        let view = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
        let spec = self.spec_on(id, config, &view, overrides)?;
        drop(root);
        // The volatile overlay left its mark in work: the runtime's mount needs it fresh.
        fs::remove_dir_all(&plan.work).map_err(|e| ImagesError::io(plan.work.display(), e))?;
        fs::create_dir(&plan.work).map_err(|e| ImagesError::io(plan.work.display(), e))?;
        self.hand_to_runtime(id, spec, plan)
    }

    /// `spec` with its root at the container's (empty) rootfs dir and the annotation by
    /// which the runtime mounts the overlay of `plan` there.
    fn hand_to_runtime(
        &self,
        id: &str,
        mut spec: Spec,
        plan: crate::snapshot::ContainerPlan,
    ) -> Result<(Spec, PathBuf), ImagesError> {
        let annotation = OverlayPlan {
            lower: plan.lowers.clone(),
            upper: plan.upper.clone(),
            work: plan.work.clone(),
        }
        .to_annotation()
        .map_err(|e| ImagesError::io(format!("container {id}: overlay annotation"), e.into()))?;
        if let Some(root) = spec.root_mut() {
            root.set_path(plan.rootfs.clone());
        }
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(overlay::ANNOTATION.to_string(), annotation);
        spec.set_annotations(Some(annotations));
        Ok((spec, plan.rootfs))
    }

    /// A read-only view of the layers `lowers` (top first): a one-layer image's layer
    /// directory itself (nothing writes through it: the spec only reads, and only an
    /// existing working directory takes this path), a detached overlay for deeper ones,
    /// made once per image. `None` where the kernel cannot make a detached overlay.
    fn image_view(&self, lowers: &[PathBuf]) -> Result<Option<View>, ImagesError> {
        if let [layer] = lowers {
            return Ok(Some(View {
                path: layer.clone(),
                _fd: None,
            }));
        }
        let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fd) = views.get(lowers) {
            return Ok(Some(View::of(Arc::clone(fd))));
        }
        let Some(made) = overlay::mount_view(lowers) else {
            return Ok(None);
        };
        let fd = Arc::new(made.map_err(|f| SnapshotError::Mount {
            container: format!("a view of {} layers", lowers.len()),
            syscall: f.syscall,
            source: f.source,
        })?);
        views.insert(lowers.to_vec(), Arc::clone(&fd));
        Ok(Some(View::of(fd)))
    }

    /// The spec for container `id` with its rootfs reachable at `rootfs`, and its
    /// /etc files.
    fn spec_on(
        &self,
        id: &str,
        config: &ImageConfig,
        rootfs: &Path,
        overrides: &Overrides,
    ) -> Result<Spec, ImagesError> {
        let mut spec = runspec::build(id, config, rootfs, overrides)?;
        let hostname = spec.hostname().clone().unwrap_or_default();
        let etc = self.snapshots.container_dir(id).join("etc");
        runspec::write_etc_files(&mut spec, &etc, &hostname, &[], &[])?;
        Ok(spec)
    }

    /// Name the container's own address in its /etc/hosts (`names`: its hostname …),
    /// once its network is attached.
    pub fn add_host_entry(
        &self,
        id: &str,
        address: std::net::IpAddr,
        names: &[&str],
    ) -> Result<(), ImagesError> {
        let etc = self.snapshots.container_dir(id).join("etc");
        Ok(runspec::etc::append_host(&etc, address, names)?)
    }

    /// Undo [`Images::prepare`] for container `id` (nothing if it had no image).
    pub fn release(&self, id: &str) -> Result<(), ImagesError> {
        Ok(self.snapshots.unmount(id)?)
    }

    /// The containers with a root filesystem mounted (after a restart: to release the
    /// ones the engine no longer knows).
    pub fn mounted(&self) -> Vec<String> {
        self.snapshots.mounted()
    }
}

/// Where an image's files can be read: a path, and the detached mount it goes through
/// (kept open while the path is used).
struct View {
    path: PathBuf,
    _fd: Option<Arc<std::os::fd::OwnedFd>>,
}

impl View {
    fn of(fd: Arc<std::os::fd::OwnedFd>) -> View {
        View {
            path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            _fd: Some(fd),
        }
    }
}
