//! The memory of this run's shims, measured once, after the burst: by then every shim
//! that will run is up (none exits before the clean-up unless its container failed), so
//! one look sees the most there ever were, without a sampler reading /proc while the
//! burst it measures competes with it for the CPU.

use crate::procfs;

/// What the run's shims hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShimMemory {
    /// Sum of the shims' resident sets, in bytes.
    pub rss: u64,
    /// Sum of the shims' private memory (pages no other process maps), in bytes.
    pub private: u64,
    /// Shims alive.
    pub shims: usize,
}

/// Measure the shims of containers whose ids start with `prefix`.
pub fn measure(prefix: &str) -> ShimMemory {
    let pids = procfs::shims_of(prefix);
    let mem: Vec<(u64, u64)> = pids.iter().filter_map(|&p| procfs::rss(p)).collect();
    ShimMemory {
        rss: mem.iter().map(|m| m.0).sum(),
        private: mem.iter().map(|m| m.1).sum(),
        shims: mem.len(),
    }
}
