//! Shared helpers for the engine's tests: an instrumented launcher, a bundle, waiting.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::{ContainerSpec, Engine, Job, LaunchError, Launched, Launcher, State};

/// Records how many launches run at once, and fails the ids it is told to.
#[derive(Default)]
pub struct CountingLauncher {
    pub current: AtomicUsize,
    pub max: AtomicUsize,
    pub done: AtomicUsize,
    pub delay: Duration,
    pub fail: HashSet<String>,
    pub panic: HashSet<String>,
}

impl CountingLauncher {
    pub fn new(delay: Duration) -> Arc<Self> {
        Arc::new(CountingLauncher {
            delay,
            ..Default::default()
        })
    }

    /// Forget the maximum seen so far (start a new measuring phase).
    pub fn reset_max(&self) {
        self.max.store(self.current.load(SeqCst), SeqCst);
    }
}

impl Launcher for CountingLauncher {
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        let now = self.current.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        std::thread::sleep(self.delay);
        self.current.fetch_sub(1, SeqCst);
        self.done.fetch_add(1, SeqCst);
        if self.panic.contains(&job.id) {
            panic!("test launcher told to panic for {}", job.id);
        }
        if self.fail.contains(&job.id) {
            return Err(LaunchError::new("create", format!("{}: bad spec", job.id)));
        }
        Ok(Launched {
            pid: 1000,
            shim_pid: 999,
            cgroups: None,
            started: job.spec.start,
            exited: None,
            follow: None,
        })
    }
}

/// A directory that passes the engine's bundle check (it has a config.json).
pub struct Bundle {
    pub dir: tempfile::TempDir,
}

impl Bundle {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        Bundle { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn spec(&self, id: impl Into<String>) -> ContainerSpec {
        ContainerSpec::bundle(id, self.path())
    }
}

/// Poll `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// How many of the engine's containers are in `state`.
pub fn count(engine: &Engine, state: State) -> usize {
    engine.list().iter().filter(|r| r.state == state).count()
}
