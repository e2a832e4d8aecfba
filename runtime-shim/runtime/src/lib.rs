//! Berth's OCI runtime: turns an OCI bundle (config.json + root filesystem) into a real,
//! isolated container. The `berth-runc` CLI and the `berth-shim` are thin layers over
//! [`container`].
//!
//! May depend on the floor-0 crates (runtime types, atomic file, procfs) only: it knows
//! no shim protocol, daemon, HTTP or command line.

pub mod bundle;
pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod checkpoint;
pub mod close_fds;
pub mod console;
pub mod container;
pub use berth_runtime_types::default_spec;
pub mod error;
pub mod exec;
pub mod features;
pub mod fork;
pub mod hooks;
pub mod id;
pub mod init;
pub mod lsm;
/// The one mountinfo parser, which lives in berth-procfs (floor 0) so that crates that
/// may not link the runtime read mounts the same way.
pub use berth_procfs::mountinfo;
pub mod namespaces;
pub mod network;
pub mod process;
pub mod process_info;
pub mod program;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod state;
pub mod sysctl;
pub mod user;
pub mod userns;
pub mod warnings;

pub use container::{create, Container, CreateOptions};
pub use error::{Error, Result};
pub use state::{OciState, Status};
