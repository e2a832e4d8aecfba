//! The harness's own berthd: a private socket and state directory, started before a run
//! and stopped (SIGTERM, then SIGKILL) after it, also when the run fails.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::Binaries;
use crate::error::{Error, Result};

/// How long berthd may take to listen, and to stop on SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Start workers.
    pub workers: usize,
    /// `builtin` or a runtime binary.
    pub runtime: String,
    /// Most queued starts (at least the burst).
    pub max_queued: usize,
    /// Largest request body (a batch of inline specs is large).
    pub body_limit: usize,
    /// Its images root (`--images-root`), for a burst from an image.
    pub images_root: Option<PathBuf>,
    /// Its network definitions (`--network-root`): the run's own, never the host's.
    pub network_root: PathBuf,
    /// Its CNI network configurations (`--cni-conf-dir`).
    pub cni_conf_dir: PathBuf,
    /// The network namespace it runs in (`--network`); none: the harness's own, and
    /// containers get no network (`--default-network none`).
    pub netns: Option<PathBuf>,
}

/// A berthd child process.
pub struct Daemon {
    child: Option<Child>,
    /// Its socket.
    pub socket: PathBuf,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Its state directory.
    pub state_dir: PathBuf,
}

impl Daemon {
    /// Start berthd with its socket, state and log under `dir`, and wait until it
    /// listens.
    pub fn start(bins: &Binaries, dir: &Path, cfg: &DaemonConfig) -> Result<Self> {
        let socket = dir.join("berth.sock");
        let state_dir = dir.join("state");
        let log = dir.join("berthd.log");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let log_file = File::create(&log).map_err(|e| Error::io("creating", &log, e))?;
        let mut cmd = Command::new(&bins.berthd);
        if let Some(root) = &cfg.images_root {
            // Only asked for with --image: a berthd without images has no such flag.
            cmd.arg("--images-root").arg(root);
        }
        cmd.arg("--network-root")
            .arg(&cfg.network_root)
            .arg("--cni-conf-dir")
            .arg(&cfg.cni_conf_dir);
        match &cfg.netns {
            Some(path) => crate::netns::enter(&mut cmd, path)?,
            // Outside a namespace of the run's own, nothing may touch the host's network.
            None => {
                cmd.args(["--default-network", "none"]);
            }
        }
        let child = cmd
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--shim")
            .arg(&bins.shim)
            .arg("--workers")
            .arg(cfg.workers.to_string())
            .arg("--runtime")
            .arg(&cfg.runtime)
            .arg("--max-queued")
            .arg(cfg.max_queued.to_string())
            .arg("--body-limit")
            .arg(cfg.body_limit.to_string())
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            // Its own process group: a Ctrl-C at the terminal reaches the harness only,
            // which deletes its containers before it stops the daemon.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Daemon(format!("starting {}: {e}", bins.berthd.display())))?;
        let mut daemon = Daemon {
            child: Some(child),
            socket,
            log,
            state_dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while std::os::unix::net::UnixStream::connect(&daemon.socket).is_err() {
            if let Some(gone) = daemon.exited() {
                return Err(Error::Daemon(format!(
                    "exited at start ({gone}): {}",
                    daemon.log_tail()
                )));
            }
            if Instant::now() > deadline {
                daemon.stop();
                return Err(Error::Daemon(format!(
                    "not listening on {} after {} s",
                    daemon.socket.display(),
                    START_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How it ended, if it did.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    /// The last lines of its log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// SIGTERM, wait, SIGKILL if it does not stop in time. Returns how it ended.
    pub fn stop(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.to_string());
        }
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status.to_string()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    return child.wait().ok().map(|s| format!("{s} (after SIGKILL)"));
                }
            }
        }
    }

    /// Leave it running (for `--keep`): it is no longer stopped on drop.
    pub fn detach(&mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
