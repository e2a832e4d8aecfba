//! A thread that samples, while a burst runs, the total resident memory of this run's
//! shims (they come and go, so only sampling sees their peak).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::procfs;

/// How often the shims are counted and measured.
const EVERY: Duration = Duration::from_millis(250);

/// The highest figures seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peaks {
    /// Largest sum of the shims' resident sets, in bytes.
    pub shims_rss: u64,
    /// Largest sum of the shims' private (anonymous) resident memory, in bytes.
    pub shims_private: u64,
    /// Most shims alive at once.
    pub shims: usize,
}

/// The running sampler; [`Sampler::finish`] stops it and returns what it saw.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Peaks>>,
}

impl Sampler {
    /// Sample the shims of containers whose ids start with `prefix`, looked for among
    /// the children of `daemon` if given (cheap), else among all processes.
    pub fn start(prefix: &str, daemon: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let prefix = prefix.to_owned();
        let thread = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let mut peaks = Peaks::default();
                let mut known = HashSet::new();
                loop {
                    peaks = peaks.max(sample(&prefix, daemon, &mut known));
                    if flag.load(Ordering::Relaxed) {
                        return peaks;
                    }
                    std::thread::sleep(EVERY);
                }
            })
            .ok();
        Sampler { stop, thread }
    }

    /// Stop sampling (after one last sample) and return the peaks.
    pub fn finish(mut self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One sample. `known` remembers the children found to be this run's shims, so each
/// command line is read once. A miss is not remembered: a child caught between fork
/// and exec still carries the daemon's name.
fn sample(prefix: &str, daemon: Option<u32>, known: &mut HashSet<u32>) -> Peaks {
    let pids = match daemon.and_then(procfs::children) {
        Some(children) => children
            .into_iter()
            .filter(|&p| {
                if known.contains(&p) {
                    return true;
                }
                let shim = procfs::is_shim(p, prefix);
                if shim {
                    known.insert(p);
                }
                shim
            })
            .collect(),
        None => procfs::shims_of(prefix),
    };
    let mem: Vec<(u64, u64)> = pids.iter().filter_map(|&p| procfs::rss(p)).collect();
    Peaks {
        shims_rss: mem.iter().map(|m| m.0).sum(),
        shims_private: mem.iter().map(|m| m.1).sum(),
        shims: pids.len(),
    }
}

impl Peaks {
    fn max(self, other: Peaks) -> Peaks {
        Peaks {
            shims_rss: self.shims_rss.max(other.shims_rss),
            shims_private: self.shims_private.max(other.shims_private),
            shims: self.shims.max(other.shims),
        }
    }
}
