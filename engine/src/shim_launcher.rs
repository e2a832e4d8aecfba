//! The real launcher: one `berth-shim` per container. A start worker has the shim
//! forked by the [`Spawner`] (started at the first launch, again if it died), waits for
//! it to report the container created (and started), and hands the shim's socket to the
//! [`Monitor`] that follows it from then on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_runtime::shim::client::{ShimClient, SpawnOptions};
use berth_runtime::shim::protocol::{Message, Request};
use berth_runtime::shim::spawner::{SpawnError, SpawnedShim, Spawner};
use berth_runtime::state::Status;

use parking_lot::Mutex;

use crate::launcher::{LaunchError, LaunchExit, Launched, Launcher};
use crate::monitor::Monitor;
use crate::queue::Job;
use crate::record::{SpecSource, Timestamp};

/// How long a shim whose spawn was lost has to show its socket.
const UNCLAIMED_SHIM_WAIT: Duration = Duration::from_secs(2);

/// Where shims, bundles of inline specs and runtime state live, and how shims run.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// The `berth-shim` binary.
    pub shim_binary: PathBuf,
    /// The daemon's state directory.
    pub state_dir: PathBuf,
    /// The default external runtime (`None`: the built-in library).
    pub runtime: Option<PathBuf>,
    /// Size cap of each container's log.
    pub log_max: u64,
    /// How long a start may take before it is failed.
    pub start_timeout: Duration,
}

impl ShimConfig {
    /// The shim directory of container `id` (socket, pid, exit record, logs).
    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.state_dir.join("shims").join(id)
    }

    /// The runtime's state root, shared by every container.
    pub fn runtime_root(&self) -> PathBuf {
        self.state_dir.join("runtime")
    }

    /// The log of container `id`: its processes' stdout and stderr, capped by the shim.
    pub fn container_log(&self, id: &str) -> PathBuf {
        self.shim_dir(id).join("container.log")
    }

    /// The file for the output of one exec in container `id`, told apart by `token`.
    pub fn exec_output(&self, id: &str, token: &str) -> PathBuf {
        self.shim_dir(id).join(format!("exec-{token}.out"))
    }
}

/// Spawns a shim per job.
pub struct ShimLauncher {
    config: ShimConfig,
    monitor: Arc<Monitor>,
    /// Launched shims whose record does not say so yet: handed to the monitor by
    /// [`Launcher::watch`], so their later events never overtake the launch.
    launched: Mutex<HashMap<String, (ShimClient, PathBuf)>>,
    /// The fork server of shims; `None` until the first launch.
    spawner: Mutex<Option<Spawner>>,
}

impl ShimLauncher {
    /// A launcher that hands every launched shim to `monitor`.
    pub fn new(config: ShimConfig, monitor: Arc<Monitor>) -> Self {
        ShimLauncher {
            config,
            monitor,
            launched: Mutex::new(HashMap::new()),
            spawner: Mutex::new(None),
        }
    }

    /// After a spawner was lost mid-request: a shim it may have forked would run a
    /// container nobody follows, so if one shows up it is told to delete it.
    fn stop_unclaimed_shim(&self, id: &str, dir: &Path) {
        let Ok(mut client) = ShimClient::connect_timeout(dir, UNCLAIMED_SHIM_WAIT) else {
            return;
        };
        let stopped = client
            .set_read_timeout(Some(self.config.start_timeout))
            .and_then(|()| client.request(&Request::Delete { force: true }));
        match stopped {
            Ok(_) => tracing::warn!(%id, "deleted the container of a shim whose spawn was lost"),
            Err(e) => tracing::warn!(%id, "a shim whose spawn was lost: {e}"),
        }
    }

    /// Have a shim forked. A spawner found dead before anything was asked (killed since
    /// the last launch) is replaced once; one lost during the request is not retried, as
    /// its shim may exist.
    fn spawn(&self, opts: &SpawnOptions) -> Result<SpawnedShim, SpawnError> {
        let mut spawner = self.spawner.lock();
        let mut fresh = false;
        loop {
            let current = match spawner.as_mut() {
                Some(s) => s,
                None => {
                    fresh = true;
                    spawner.insert(Spawner::start(&self.config.shim_binary)?)
                }
            };
            match current.spawn(opts) {
                Err(SpawnError::Gone) if !fresh => {
                    tracing::warn!("the shim spawner had exited; starting a new one");
                    *spawner = None;
                }
                Err(e @ (SpawnError::Lost(_) | SpawnError::Io { .. })) => {
                    // Its answers can no longer be matched to requests: the next start
                    // gets a new spawner (this one is killed; shims it made live on).
                    *spawner = None;
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// The bundle directory of a job: its own, or one written for an inline spec.
    fn bundle_of(&self, job: &Job) -> Result<PathBuf, LaunchError> {
        match &job.spec.source {
            SpecSource::Bundle(path) => Ok(path.clone()),
            SpecSource::Inline { spec, rootfs } => {
                let dir = self.config.state_dir.join("bundles").join(&job.id);
                write_inline_bundle(&dir, spec, rootfs)
                    .map_err(|e| LaunchError::new("bundle", format!("{}: {e}", dir.display())))?;
                Ok(dir)
            }
        }
    }
}

/// Write `config.json` for an inline spec, its root pointing at `rootfs`.
fn write_inline_bundle(
    dir: &Path,
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut spec = spec.clone();
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(rootfs.to_path_buf());
    spec.set_root(Some(root));
    let text = serde_json::to_vec(&spec).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("config.json"), text)
}

impl Launcher for ShimLauncher {
    fn forget(&self, id: &str) {
        for dir in [
            self.config.shim_dir(id),
            self.config.state_dir.join("bundles").join(id),
        ] {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(%id, "removing {}: {e}", dir.display());
                }
                _ => {}
            }
        }
    }

    fn watch(&self, id: &str) {
        if let Some((client, dir)) = self.launched.lock().remove(id) {
            self.monitor.watch(id.to_owned(), client, dir);
        }
    }

    fn control(&self, id: &str, request: &Request) -> Result<Message, LaunchError> {
        let dir = self.config.shim_dir(id);
        let mut client =
            ShimClient::connect(&dir).map_err(|e| LaunchError::new("shim_gone", e.to_string()))?;
        client
            .set_read_timeout(Some(self.config.start_timeout))
            .map_err(|e| LaunchError::new("shim_gone", e.to_string()))?;
        match client.request(request) {
            Ok(Message::Error { message }) => Err(LaunchError::new("refused", message)),
            Ok(reply) => Ok(reply),
            Err(e) => Err(LaunchError::new("shim_gone", e.to_string())),
        }
    }

    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        let dir = self.config.shim_dir(&job.id);
        let opts = SpawnOptions {
            binary: self.config.shim_binary.clone(),
            id: job.id.clone(),
            bundle: self.bundle_of(job)?,
            state_dir: dir.clone(),
            runtime_root: self.config.runtime_root(),
            runtime: job
                .spec
                .runtime
                .clone()
                .or_else(|| self.config.runtime.clone()),
            log: Some(self.config.container_log(&job.id)),
            log_max: Some(self.config.log_max),
            no_start: !job.spec.start,
        };
        // Connected from the start: no waiting for the shim's socket file to appear.
        let mut shim = match self.spawn(&opts) {
            Ok(shim) => shim,
            Err(e) => {
                if matches!(e, SpawnError::Lost(_)) {
                    self.stop_unclaimed_shim(&job.id, &dir);
                }
                return Err(LaunchError::new("spawn", e.to_string()));
            }
        };
        let deadline = Instant::now() + self.config.start_timeout;
        match wait_until_launched(&mut shim.client, job.spec.start, deadline) {
            Ok((pid, exited)) => {
                let shim_pid = shim.pid;
                self.launched
                    .lock()
                    .insert(job.id.clone(), (shim.client, dir));
                Ok(Launched {
                    pid,
                    shim_pid,
                    started: job.spec.start,
                    exited,
                })
            }
            Err(mut e) => {
                if let Some(reason) = shim_failure(&dir) {
                    e.message = reason;
                }
                // A shim that failed exits by itself; one that hangs is stopped here
                // (the spawner reaps it either way).
                if let Err(kill) = shim.kill() {
                    tracing::warn!(id = %job.id, "stopping shim {}: {kill}", shim.pid);
                }
                Err(e)
            }
        }
    }
}

/// The reason a shim gave for failing: the message of the last `failed:` line of its
/// log (its cleanup logs more after it: the init it killed, say), else of the last line.
fn shim_failure(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("shim.log")).ok()?;
    let mut lines = text.lines().rev().filter(|l| !l.trim().is_empty());
    let last = lines.clone().next()?;
    let line = lines.find(|l| l.contains(": failed: ")).unwrap_or(last);
    Some(log_message(line).to_owned())
}

/// The message of a shim log line, `<time> berth-shim <id>: failed: <message>`, without
/// what every line says; a line of another form as it is.
fn log_message(line: &str) -> &str {
    let message = line
        .split_once(" berth-shim ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or(line, |(_, message)| message);
    message.strip_prefix("failed: ").unwrap_or(message)
}

/// Ask the shim where it stands and follow its events until the container is created
/// (and running, if it is to start); returns the init's pid, and its exit if that
/// came too (a container whose process ends at once).
fn wait_until_launched(
    client: &mut ShimClient,
    start: bool,
    deadline: Instant,
) -> Result<(i32, Option<LaunchExit>), LaunchError> {
    let lost = |e: &dyn std::fmt::Display| LaunchError::new("shim_gone", e.to_string());
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    client
        .set_read_timeout(Some(remaining()))
        .map_err(|e| lost(&e))?;
    // Events sent before we connected are not replayed: the state says where it is.
    let mut pid = 0;
    let mut done = false;
    let mut exited = None;
    let mut observe = |msg: &Message, pid: &mut i32, done: &mut bool| -> Result<(), LaunchError> {
        match msg {
            Message::State(s) => {
                if s.pid > 0 {
                    *pid = s.pid;
                }
                *done = match s.status {
                    Status::Creating => false,
                    Status::Created => !start,
                    Status::Running | Status::Paused | Status::Stopped => true,
                };
            }
            Message::Created { pid: p } => {
                *pid = *p;
                *done = !start;
            }
            Message::Started => *done = true,
            Message::Exited(exit) => {
                exited = Some(LaunchExit {
                    code: exit.code,
                    at: Timestamp::parse(&exit.at),
                });
                *done = true;
            }
            Message::Failed { message } => return Err(LaunchError::new("create", message.clone())),
            _ => {}
        }
        Ok(())
    };
    let reply = match client.request(&Request::State) {
        Ok(reply) => reply,
        Err(e) => {
            // A shim that failed said why before it closed: that is the error.
            for event in client.take_events() {
                observe(&event, &mut pid, &mut done)?;
            }
            return Err(lost(&e));
        }
    };
    for event in client.take_events() {
        observe(&event, &mut pid, &mut done)?;
    }
    observe(&reply, &mut pid, &mut done)?;
    while !done {
        if Instant::now() >= deadline {
            return Err(LaunchError::new(
                "timeout",
                "the shim did not report the container started in time",
            ));
        }
        client
            .set_read_timeout(Some(remaining()))
            .map_err(|e| lost(&e))?;
        let msg = client.recv_event().map_err(|e| lost(&e))?;
        observe(&msg, &mut pid, &mut done)?;
    }
    client.set_read_timeout(None).map_err(|e| lost(&e))?;
    Ok((pid, exited))
}

/// Turn what the monitor sees of each shim into state changes of `engine`'s records.
pub fn follow(engine: &Arc<crate::Engine>, monitor: &Monitor) {
    use crate::monitor::ShimEvent;
    use crate::record::Change;
    use crate::state_machine::State;

    let engine = Arc::downgrade(engine);
    monitor.set_sink(move |id, event| {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let result = match event {
            ShimEvent::Message(msg) => engine.apply_shim_message(id, &msg).map(drop),
            ShimEvent::Gone(Some(exit)) => engine
                .apply_shim_message(id, &Message::Exited(exit))
                .map(drop),
            ShimEvent::Gone(None) => match engine.get(id) {
                Some(r)
                    if matches!(
                        r.state,
                        State::Creating | State::Created | State::Running | State::Paused
                    ) =>
                {
                    engine
                        .apply(
                            id,
                            Change::Failed {
                                reason: "its shim died without recording an exit (killed?)".into(),
                            },
                        )
                        .map(drop)
                }
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::debug!(%id, "shim event not applied: {e}");
        }
    });
}

/// After a restart: find every recovered container's shim again. A shim that answers is
/// followed as before and its state adopted; one that is gone left its exit record if
/// its container exited, and without one the container is marked failed with the
/// reason. Returns how many shims were found.
pub fn reattach(engine: &crate::Engine, monitor: &Monitor, config: &ShimConfig) -> usize {
    use berth_runtime::shim::client::read_exit_file;
    use berth_runtime::shim::protocol::ShimState;

    let mut found = 0;
    for record in engine.list() {
        if !record.state.has_shim() || record.state == crate::State::Stopped {
            continue;
        }
        let id = record.id.clone();
        let dir = config.shim_dir(&id);
        let answer = ShimClient::connect(&dir).ok().and_then(|mut client| {
            match client.request(&Request::State) {
                Ok(Message::State(state)) => Some((client, state)),
                _ => None,
            }
        });
        let result = match answer {
            Some((client, state)) => {
                found += 1;
                let r = engine.reconcile(&id, Some(&state));
                monitor.watch(id.clone(), client, dir);
                r
            }
            None => match read_exit_file(&dir).ok().flatten() {
                Some(exit) => {
                    let state = ShimState {
                        id: id.clone(),
                        status: Status::Stopped,
                        pid: record.pid.unwrap_or(0),
                        exit_code: Some(exit.code),
                        exited_at: Some(exit.at),
                    };
                    engine.reconcile(&id, Some(&state))
                }
                None => engine.reconcile(&id, None),
            },
        };
        if let Err(e) = result {
            tracing::warn!(%id, "recovering: {e}");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reason_is_the_message_of_the_shim_log_line() {
        assert_eq!(
            log_message(
                "2026-11-28T17:59:29.176Z berth-shim c-1: failed: crun create failed: unknown version"
            ),
            "crun create failed: unknown version"
        );
        assert_eq!(
            log_message("2026-11-28T17:59:29Z berth-shim c-1: no OOM notifications: x: y"),
            "no OOM notifications: x: y"
        );
        assert_eq!(
            log_message("berth-shim c-1: bad spec"),
            "berth-shim c-1: bad spec"
        );
    }
}
