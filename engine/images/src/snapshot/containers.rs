//! A container's snapshot: its directory with upper, work and rootfs, the overlay
//! mounted on rootfs, and all of it gone again on unmount (or when the mount fails).

use std::fs;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use berth_overlay as overlay;

use super::{check_id, io_err, SnapshotError, Snapshots};
use crate::digest::Digest;

impl Snapshots {
    /// The directory of container `id`'s snapshot (upper, work, rootfs; callers may keep
    /// more of the container's files there: they go with [`Snapshots::unmount`]).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers.join(id)
    }

    /// Mounts an overlay of the layers `chain` (chain ids, bottom first) for the
    /// container `id`, with its own upper and work dirs, and returns its rootfs. On
    /// failure nothing of it is left.
    pub fn mount(&self, id: &str, chain: &[Digest]) -> Result<PathBuf, SnapshotError> {
        let plan = self.plan(id, chain)?;
        let mounted = overlay::mount(&plan.lowers, &plan.upper, &plan.work, &plan.rootfs);
        if let Err(f) = mounted {
            let _ = fs::remove_dir_all(self.container_dir(id));
            return Err(SnapshotError::Mount {
                container: id.to_string(),
                syscall: f.syscall,
                source: f.source,
            });
        }
        Ok(plan.rootfs)
    }

    /// Makes the container `id`'s dirs (upper, work, an empty rootfs, the in-use list
    /// of its layers) without mounting anything: the runtime mounts the overlay inside
    /// the container's own mount namespace. [`Snapshots::unmount`] removes them. On
    /// failure nothing of it is left.
    pub fn plan(&self, id: &str, chain: &[Digest]) -> Result<ContainerPlan, SnapshotError> {
        check_id(id)?;
        if chain.is_empty() {
            return Err(SnapshotError::NoLayers(id.to_string()));
        }
        // Shared locks on the layers: no remove_layer runs between the check and the
        // in-use list's write (which keeps them afterwards).
        let mut locks = Vec::with_capacity(chain.len());
        for c in chain {
            locks.push(self.lock(c.hex(), FlockOperation::LockShared)?);
            if !self.has_layer(c) {
                return Err(SnapshotError::MissingLayer(c.clone()));
            }
        }
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::AlreadyMounted(id.to_string()))
            }
            r => r.map_err(io_err("create", &dir))?,
        }
        let guard = RemoveOnFail(&dir);
        let plan = self.make_dirs(&dir, chain)?;
        std::mem::forget(guard);
        Ok(plan)
    }

    fn make_dirs(&self, dir: &Path, chain: &[Digest]) -> Result<ContainerPlan, SnapshotError> {
        let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
        for d in [&upper, &work, &rootfs] {
            fs::create_dir(d).map_err(io_err("create", d))?;
        }
        let list: String = chain.iter().map(|c| format!("{}\n", c.hex())).collect();
        let list_path = dir.join("layers");
        fs::write(&list_path, list).map_err(io_err("write", &list_path))?;
        let lowers = chain.iter().rev().map(|c| self.layer_dir(c)).collect();
        Ok(ContainerPlan {
            lowers,
            upper,
            work,
            rootfs,
        })
    }

    /// Unmounts the container's rootfs and removes its upper and work dirs. Idempotent:
    /// a container without a snapshot is fine.
    pub fn unmount(&self, id: &str) -> Result<(), SnapshotError> {
        check_id(id)?;
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Ok(());
        }
        overlay::unmount(&dir.join("rootfs")).map_err(|f| SnapshotError::Mount {
            container: id.to_string(),
            syscall: f.syscall,
            source: f.source,
        })?;
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }
}

/// A container's overlay, not mounted: what [`Snapshots::plan`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    /// The layer dirs, top first.
    pub lowers: Vec<PathBuf>,
    /// The container's upper dir.
    pub upper: PathBuf,
    /// overlayfs's work dir.
    pub work: PathBuf,
    /// The (empty) dir the overlay goes on.
    pub rootfs: PathBuf,
}

/// Removes a container dir unless forgotten (the mount succeeded).
struct RemoveOnFail<'a>(&'a Path);

impl Drop for RemoveOnFail<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(self.0);
    }
}
