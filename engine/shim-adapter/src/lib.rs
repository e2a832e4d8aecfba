//! How the engine runs its containers through shims, in the engine's terms: [`Shims`]
//! launches one `berth-shim` per container (through the [`Spawner`]), follows them all
//! on one event loop, asks them for what the engine wants ([`Op`]) and reports what
//! they do ([`Observation`]); underneath, a typed client of one shim's control socket
//! ([`ShimClient`]).
//!
//! Depends on the shim protocol only; never on the runtime library (the shim links
//! that) or on the engine above it. The protocol's types stay in here: the engine sees
//! only [`vocab`]'s.

mod client;
pub mod exec_files;
mod monitor;
mod shims;
mod spawner;
pub mod vocab;

pub use berth_shim_protocol as protocol;
pub use client::{shim_command, spawn_shim, ClientError, ShimClient};
pub use shims::{ShimConfig, Shims, Sink};
pub use spawner::{SpawnError, SpawnedShim, Spawner};
pub use vocab::{
    Exit, Follow, LaunchError, LaunchSpec, Launched, Observation, Op, Recovered, Reply, ShimView,
};
