//! Berth's scheduler core: a lock-free start queue feeding a bounded pool of start
//! workers, container records with an explicit state machine, lifecycle events,
//! persistence and recovery, metrics. It knows nothing of HTTP; it drives containers
//! through a [`Launcher`] (the daemon's is the shim adapter's, wired by
//! [`Engine::with_shims`]), in its own terms: no shim wire type reaches it, and none
//! is reachable through it — what the API builds on cannot speak the shim's protocol:
//!
//! ```compile_fail
//! use berth_engine::shim::protocol::Request;
//! ```
//!
//! Depends on the shim adapter, the images and network crates and the floor-0 crates (runtime types,
//! atomic file); never on the runtime library or anything of the API.

pub mod control;
pub mod engine;
pub mod events;
pub mod exec;
pub mod launcher;
pub mod metrics;
pub mod persist;
pub mod pool;
pub mod queue;
pub mod record;
pub mod remove;
pub mod shims;
pub mod state_machine;
pub mod statefs;

pub use control::ControlError;
pub use engine::{ChangeError, Config, Engine, Stats, SubmitError};
pub use events::{Event, EventKind, ImageEvent, Item, Subscription};
pub use exec::{ExecArgs, ExecError};
pub use launcher::{Exit, Follow, LaunchError, Launched, Launcher, NoopLauncher, Op, Reply};
pub use queue::{Job, JobQueue, QueueFull};
pub use record::{
    Change, ContainerSpec, ImageRun, PullPolicy, Record, SpecSource, Timestamp, Timestamps,
};
pub use remove::RemoveError;
pub use state_machine::{IllegalTransition, State};

pub use shims::{Services, StartError};

/// The images service the engine makes containers from images with.
pub use berth_images::registry::Credentials;
pub use berth_images::{Images, ImagesConfig, ImagesError};
/// The networks service the engine attaches containers with.
pub use berth_network::{NetworkMode, NetworkRequest, Networks, NetworksConfig};
/// Plain data of the runtime: a container's cgroup directories and statistics.
pub use berth_runtime_types::{CgroupDirs, Stats as ContainerStats, Status};
/// Where shims, bundles of inline specs and runtime state live, and how shims run.
pub use berth_shim_adapter::ShimConfig;
/// What a shim was seen to do, and where it says its container stands.
pub use berth_shim_adapter::{Observation, ShimView};
