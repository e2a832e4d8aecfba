//! The per-container shim: the protocol the engine speaks with it.

pub mod protocol;
