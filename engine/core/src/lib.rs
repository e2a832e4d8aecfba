//! Berth's scheduler core: a lock-free start queue feeding a bounded pool of start
//! workers, container records with an explicit state machine, lifecycle events,
//! persistence and recovery, metrics. It knows nothing of HTTP; it drives containers
//! through a [`Launcher`] (the daemon's spawns `berth-shim`).

pub mod control;
pub mod engine;
pub mod events;
pub mod exec;
pub mod launcher;
pub mod metrics;
pub mod monitor;
pub mod persist;
pub mod pool;
pub mod queue;
pub mod record;
pub mod remove;
pub mod shim_launcher;
pub mod state_machine;
pub mod statefs;

pub use control::ControlError;
pub use engine::{ChangeError, Config, Engine, Stats, SubmitError};
pub use events::{Event, EventKind, Item, Subscription};
pub use exec::{ExecArgs, ExecError};
pub use launcher::{LaunchError, LaunchExit, Launched, Launcher, NoopLauncher};
pub use queue::{Job, JobQueue, QueueFull};
pub use record::{Change, ContainerSpec, Record, SpecSource, Timestamp, Timestamps};
pub use remove::RemoveError;
pub use state_machine::{IllegalTransition, State};

/// How the engine talks to its shims.
pub use berth_shim_adapter as shim;
