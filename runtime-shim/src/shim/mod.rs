//! The per-container shim: the protocol the engine speaks with it ([`protocol`]), how one
//! message travels on the socket ([`wire`]), the engine's typed end ([`client`]), and the
//! fork server the engine starts its shims through ([`spawner`]).
//! The `berth-shim` binary (src/bin/berth-shim) is the other end.

pub mod client;
pub mod protocol;
pub mod spawner;
pub mod wire;
