//! Where a container's cgroup is: each cgroup v1 controller's directory, and its cgroup2
//! directory. Found by the runtime or the shim, kept in the engine's record, read by
//! whoever scrapes usage.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One process's (or container's) cgroup directories, absolute paths in cgroupfs.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDirs {
    /// v1 controller name to its directory in that hierarchy (co-mounted controllers
    /// each name the same directory).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
    /// The directory in the cgroup2 hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<PathBuf>,
}

impl CgroupDirs {
    /// The memory cgroup's directory and whether it is cgroup2: the v1 `memory`
    /// hierarchy, else (a host without v1 hierarchies) the cgroup2 directory.
    pub fn memory(&self) -> Option<(PathBuf, bool)> {
        if self.v1.is_empty() {
            return self.v2.clone().map(|d| (d, true));
        }
        self.v1.get("memory").cloned().map(|d| (d, false))
    }
}
