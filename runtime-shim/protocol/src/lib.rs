//! The protocol between the engine's shim adapter and one `berth-shim`: the messages
//! ([`Request`] one way, [`Message`] the other), how one travels on the socket
//! ([`wire`]), and how a shim is started ([`SpawnOptions`], the spawner's answer).
//!
//! Small and shared by both ends; it depends only on the runtime's plain types
//! (`berth-runtime-types`), never on the runtime library or the engine.

mod messages;
mod spawn;
pub mod wire;

pub use berth_runtime_types::{stats, CgroupDirs, Stats, Status};
pub use messages::*;
pub use spawn::{SpawnOptions, SpawnReply, SPAWNER_ARG};
