//! Plain data of the runtime that other layers carry without its code: a container's
//! OCI status, where its cgroup is and its cgroup statistics. Depends on nothing of Berth.

mod cgroup_dirs;
pub mod default_spec;
pub mod id;
pub mod signal;
pub mod stats;
mod status;

/// The version of the OCI runtime specification Berth implements.
pub const OCI_VERSION: &str = "1.2.0";

pub use cgroup_dirs::CgroupDirs;
pub use stats::Stats;
pub use status::Status;
