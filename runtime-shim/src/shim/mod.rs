//! The per-container shim: the protocol the engine speaks with it ([`protocol`]), how one
//! message travels on the socket ([`wire`]), and the engine's typed end ([`client`]).
//! The `berth-shim` binary (src/bin/berth-shim) is the other end.

pub mod client;
pub mod protocol;
pub mod wire;
