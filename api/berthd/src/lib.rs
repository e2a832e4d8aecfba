//! Berth's HTTP/JSON front end: the routes of the API (one module per concept) and the
//! server that hosts an [`engine::Engine`] behind them on a unix socket (hyper 1.x).
//!
//! Depends on the engine (and the floor-0 procfs and runtime types for its scrape and
//! signal names); never on the shim adapter, the protocol or the runtime library.

/// The engine this front end hosts.
pub use berth_engine as engine;

pub mod auth;
pub mod config;
pub mod loopback;
pub mod routes;
pub mod scrape;
pub mod server;
/// Signals as clients name them, read by the one parser of Berth.
pub use berth_runtime_types::signal;
