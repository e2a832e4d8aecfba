//! Berth's scheduler core. The queues, worker pool and container records land with the
//! engine issue; for now the crate exposes the runtime it will drive.

/// The OCI runtime library the engine's shims are built on.
pub use berth_runtime as runtime;
