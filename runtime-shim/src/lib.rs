//! Berth's OCI runtime: turns an OCI bundle into a real, isolated container.

pub mod cgroups;
