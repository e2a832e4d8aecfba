//! An overlayfs root: the mount itself ([`mount`], [`unmount`]) and the spec annotation
//! ([`ANNOTATION`], [`OverlayPlan`]) by which the images crate asks the runtime's init
//! to mount it inside the container's own mount namespace (so the host's mount table
//! does not grow by one per container).

mod mount;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use mount::{mount, mount_detached, mount_view, unmount, MountFailure};

/// The spec annotation whose value (JSON, an [`OverlayPlan`]) asks the runtime to mount
/// the container's root as an overlay inside its mount namespace, on `root.path`.
pub const ANNOTATION: &str = "dev.berth.rootfs.overlay";

/// An overlay to mount: lowers top first, upper and work dirs; all absolute paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayPlan {
    /// The lower dirs, top first.
    pub lower: Vec<PathBuf>,
    /// The upper dir (the container's writes).
    pub upper: PathBuf,
    /// overlayfs's work dir (same filesystem as `upper`).
    pub work: PathBuf,
}

impl OverlayPlan {
    /// The annotation's value for this plan (fails only on a path that is not UTF-8).
    pub fn to_annotation(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Parses an annotation's value.
    pub fn from_annotation(value: &str) -> Result<OverlayPlan, serde_json::Error> {
        serde_json::from_str(value)
    }
}
