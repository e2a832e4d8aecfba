//! Plain data of the runtime that other layers carry without its code: a container's
//! OCI status and its cgroup statistics. Depends on nothing of Berth.

pub mod stats;
mod status;

pub use stats::Stats;
pub use status::Status;
