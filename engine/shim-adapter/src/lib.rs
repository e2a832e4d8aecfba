//! The engine's side of the shims: a typed client of one shim's control socket
//! ([`ShimClient`]) and the fork server the engine starts its shims through
//! ([`Spawner`]).
//!
//! Depends on the shim protocol only; never on the runtime library (the shim links
//! that) or on the engine above it.

mod client;
mod spawner;

pub use berth_shim_protocol as protocol;
pub use client::{shim_command, spawn_shim, ClientError, ShimClient};
pub use spawner::{SpawnError, SpawnedShim, Spawner};
