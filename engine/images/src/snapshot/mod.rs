//! Snapshots: one read-only directory per layer, named by its ChainID and shared by every
//! image that has it, and per container an overlayfs mount of its layers with its own
//! upper and work directories, which goes away with the container.
//!
//! Under the root: `layers/<chainid-hex>/` (committed layers; a layer is written in
//! `layers/.pending-<hex>-<n>/` and renamed into place whole), `locks/<hex>` (one writer
//! per chain id, across threads and processes, by `flock`) and
//! `containers/<id>/{upper,work,rootfs,layers}`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::FlockOperation;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// The longest container id accepted (a path component).
const MAX_ID: usize = 128;

/// The ChainIDs of a stack of layers given by their DiffIDs, bottom first (OCI image
/// spec: chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n))).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(prev) => Digest::from_hasher(Sha256::new_with_prefix(format!("{prev} {diff}"))),
        };
        out.push(next);
    }
    out
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem operation under the root failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// A container id that cannot name a directory.
    #[error("invalid container id {0:?}: want 1-{MAX_ID} bytes, no '/', not '.' or '..'")]
    InvalidId(String),
    /// A layer of the chain is not (or not yet) unpacked.
    #[error("layer {0} is not in the snapshot store")]
    MissingLayer(Digest),
    /// An overlay needs at least one layer.
    #[error("container {0}: no layers to mount")]
    NoLayers(String),
    /// The container has a snapshot already.
    #[error("container {0} already has a mounted rootfs")]
    AlreadyMounted(String),
    /// The overlay mount (or unmount) failed.
    #[error("container {container}: {syscall}: {source}")]
    Mount {
        /// The container.
        container: String,
        /// The call that failed.
        syscall: &'static str,
        /// Its error.
        source: io::Error,
    },
    /// A layer still used by a container's mount.
    #[error("layer {chain_id} is in use by container {container}")]
    LayerInUse {
        /// The layer.
        chain_id: Digest,
        /// A container using it.
        container: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshot store under one root.
#[derive(Debug)]
pub struct Snapshots {
    layers: PathBuf,
    locks: PathBuf,
    containers: PathBuf,
}

/// What [`Snapshots::begin_layer`] found.
#[derive(Debug)]
pub enum LayerSlot {
    /// The layer is committed already.
    Present,
    /// The caller is the layer's one writer.
    Writer(PendingLayer),
}

/// A layer being written: [`PendingLayer::path`] is where it goes, [`PendingLayer::commit`]
/// makes it visible whole; dropped uncommitted, it is removed (and another caller may
/// take over).
#[derive(Debug)]
pub struct PendingLayer {
    chain_id: Digest,
    path: PathBuf,
    target: PathBuf,
    committed: bool,
    /// The chain id's lock, held until commit or drop.
    _lock: File,
}

impl PendingLayer {
    /// The directory to apply the layer into (it exists, empty).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The layer's chain id.
    pub fn chain_id(&self) -> &Digest {
        &self.chain_id
    }

    /// Renames the layer into place: from now on it is present.
    pub fn commit(mut self) -> Result<(), SnapshotError> {
        fs::rename(&self.path, &self.target).map_err(io_err("commit layer", &self.target))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A unique suffix for pending and removed directories.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

impl Snapshots {
    /// Opens (creating) the store under `root`, and removes what crashed writers and
    /// removals left behind.
    pub fn open(root: &Path) -> Result<Snapshots, SnapshotError> {
        Snapshots::open_split(root, &root.join("containers"))
    }

    /// As [`Snapshots::open`], with the containers' upper, work and rootfs dirs under
    /// `containers` instead (e.g. on tmpfs, where creating and removing them is cheap).
    pub fn open_split(root: &Path, containers: &Path) -> Result<Snapshots, SnapshotError> {
        let s = Snapshots {
            layers: root.join("layers"),
            locks: root.join("locks"),
            containers: containers.to_path_buf(),
        };
        for dir in [&s.layers, &s.locks, &s.containers] {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        s.sweep()?;
        Ok(s)
    }

    /// Removes pending layers nobody writes any more and half-removed layers.
    fn sweep(&self) -> Result<(), SnapshotError> {
        for entry in fs::read_dir(&self.layers).map_err(io_err("read", &self.layers))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = if let Some(rest) = name.strip_prefix(".pending-") {
                let hex = rest.split('-').next().unwrap_or_default();
                self.try_lock(hex).is_some()
            } else {
                name.starts_with(".removing-")
            };
            if stale {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// The directory of the layer snapshot `chain_id`.
    pub(crate) fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layers.join(chain_id.hex())
    }

    /// The chain id's lock file, locked `op` (blocking unless `op` says otherwise).
    fn lock(&self, hex: &str, op: FlockOperation) -> Result<File, SnapshotError> {
        let path = self.locks.join(hex);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open lock", &path))?;
        rustix::fs::flock(&file, op).map_err(|e| io_err("flock", &path)(e.into()))?;
        Ok(file)
    }

    fn try_lock(&self, hex: &str) -> Option<File> {
        if hex.len() != 64 {
            return None;
        }
        self.lock(hex, FlockOperation::NonBlockingLockExclusive)
            .ok()
    }

    /// Whether the layer `chain_id` is committed.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_dir(chain_id).is_dir()
    }

    /// Becomes the one writer of `chain_id`, or learns it is present. A second caller
    /// waits for the first: it then sees Present, or becomes the writer if the first gave up.
    pub fn begin_layer(&self, chain_id: &Digest) -> Result<LayerSlot, SnapshotError> {
        let lock = self.lock(chain_id.hex(), FlockOperation::LockExclusive)?;
        let target = self.layer_dir(chain_id);
        if target.is_dir() {
            return Ok(LayerSlot::Present);
        }
        let path = self
            .layers
            .join(format!(".pending-{}-{}", chain_id.hex(), unique()));
        fs::create_dir(&path).map_err(io_err("create", &path))?;
        Ok(LayerSlot::Writer(PendingLayer {
            chain_id: chain_id.clone(),
            path,
            target,
            committed: false,
            _lock: lock,
        }))
    }

    /// The committed layers.
    pub fn layers(&self) -> Vec<Digest> {
        let Ok(dir) = fs::read_dir(&self.layers) else {
            return Vec::new();
        };
        let mut out: Vec<Digest> = dir
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                format!("sha256:{}", name.to_str()?).parse().ok()
            })
            .collect();
        out.sort();
        out
    }

    /// Removes the layer `chain_id` (nothing if absent), unless a container's mount uses it.
    pub fn remove_layer(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let _lock = self.lock(chain_id.hex(), FlockOperation::LockExclusive)?;
        let dir = self.layer_dir(chain_id);
        if !dir.is_dir() {
            return Ok(());
        }
        if let Some(container) = self.user_of(chain_id) {
            return Err(SnapshotError::LayerInUse {
                chain_id: chain_id.clone(),
                container,
            });
        }
        // Renamed first, so a half-removed layer never looks present.
        let doomed = self
            .layers
            .join(format!(".removing-{}-{}", chain_id.hex(), unique()));
        fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
    }

    /// A container whose mount lists `chain_id`.
    fn user_of(&self, chain_id: &Digest) -> Option<String> {
        for id in self.mounted() {
            let list =
                fs::read_to_string(self.containers.join(&id).join("layers")).unwrap_or_default();
            if list.lines().any(|l| l == chain_id.hex()) {
                return Some(id);
            }
        }
        None
    }

    /// The containers that have a snapshot.
    pub fn mounted(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(&self.containers) else {
            return Vec::new();
        };
        let mut out: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.sort();
        out
    }
}

/// Refuses ids that are not one plain path component.
fn check_id(id: &str) -> Result<(), SnapshotError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id != "."
        && id != ".."
        && !id.starts_with('.')
        && !id.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidId(id.to_string()))
    }
}

mod containers;

pub use containers::ContainerPlan;
