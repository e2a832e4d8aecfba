//! Berth's HTTP/JSON front end. Routes and the daemon land with the API issue.

/// The engine this front end hosts.
pub use berth_engine as engine;
