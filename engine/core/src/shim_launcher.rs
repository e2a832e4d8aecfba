//! The real launcher: one `berth-shim` per container. A start worker has the shim
//! forked by the [`Spawner`] (started at the first launch, again if it died), waits for
//! it to report the container created (and started), and hands the shim's socket to the
//! [`Monitor`] that follows it from then on.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_shim_adapter::protocol::{
    CgroupDirs, ExitRecord, Message, Request, SpawnOptions, Status, CLEANUP_ARG, PID_FILE,
};
use berth_shim_adapter::{ShimClient, SpawnError, SpawnedShim, Spawner};

use parking_lot::Mutex;

use crate::launcher::{LaunchError, LaunchExit, Launched, Launcher};
use crate::monitor::Monitor;
use crate::queue::Job;
use crate::record::{SpecSource, Timestamp};

/// How long a shim whose spawn was lost has to show its socket.
const UNCLAIMED_SHIM_WAIT: Duration = Duration::from_secs(2);
/// How long a shim SIGKILLed after a failed launch may take to be gone.
const STOPPED_SHIM_WAIT: Duration = Duration::from_secs(5);
/// Longest a cleanup after a lost shim may take (the runtime gives a SIGKILLed
/// container 10 s to go).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Whether the shim of `id` ended without exiting by itself (killed, or crashed): a
    /// shim that exits removes its pid file first.
    pub fn shim_lost(&self, id: &str) -> bool {
        self.shim_dir(id).join(PID_FILE).exists()
    }

    /// Remove what the lost shim of `id` owned — its container's processes (only the
    /// init and what is in its cgroup), cgroups and runtime state — by running the shim
    /// binary in its cleanup mode, with the runtime that shim used. A process the
    /// engine starts, so the engine itself neither links the runtime nor kills anything.
    pub fn clean_up(&self, id: &str) -> Result<(), String> {
        let dir = self.shim_dir(id);
        let mut child = Command::new(&self.shim_binary)
            .arg(CLEANUP_ARG)
            .arg("--id")
            .arg(id)
            .arg("--state-dir")
            .arg(&dir)
            .arg("--runtime-root")
            .arg(self.runtime_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.shim_binary.display()))?;
        match wait_timeout(&mut child, CLEANUP_TIMEOUT) {
            Ok(Some(status)) if status.success() => Ok(()),
            // It said why in the shim log.
            Ok(Some(status)) => Err(shim_failure(&dir).unwrap_or_else(|| status.to_string())),
            Ok(None) => {
                // Ours to stop: it hangs.
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the cleanup did not finish in {} s",
                    CLEANUP_TIMEOUT.as_secs()
                ))
            }
            Err(e) => Err(format!("waiting for the cleanup: {e}")),
        }
    }
}

/// Wait for `child` at most `timeout`; `None` if it still runs.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    // SAFETY: pidfd_open of our own child, not yet reaped, no flags; the result is checked.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if raw < 0 {
        // No pidfds (before Linux 5.3): wait without a bound.
        return child.wait().map(Some);
    }
    // SAFETY: a descriptor just returned by pidfd_open that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            0 => return Ok(None),
            n if n > 0 => return child.wait().map(Some),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
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
    fn clean_up(&self, id: &str) -> Result<(), LaunchError> {
        if !self.config.shim_lost(id) {
            return Ok(());
        }
        self.config
            .clean_up(id)
            .map_err(|e| LaunchError::new("cleanup", e))
    }

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
            Ok((pid, cgroups, exited)) => {
                let shim_pid = shim.pid;
                self.launched
                    .lock()
                    .insert(job.id.clone(), (shim.client, dir));
                Ok(Launched {
                    pid,
                    shim_pid,
                    cgroups,
                    started: job.spec.start,
                    exited,
                })
            }
            Err(mut e) => {
                if let Some(reason) = shim_failure(&dir) {
                    e.message = reason;
                }
                // A shim that failed exits by itself; one that hangs is stopped here
                // (the spawner reaps it either way), and what it made is removed.
                if let Err(kill) = shim.kill() {
                    tracing::warn!(id = %job.id, "stopping shim {}: {kill}", shim.pid);
                }
                if shim.wait_exit(STOPPED_SHIM_WAIT) && self.config.shim_lost(&job.id) {
                    if let Err(left) = self.config.clean_up(&job.id) {
                        e.message = format!("{}; removing what it made failed: {left}", e.message);
                    }
                }
                Err(e)
            }
        }
    }
}

/// The reason a shim gave for failing: the message of the last `failed:` line of its
/// log (its cleanup logs more after it: the init it killed, say), else of the last line
/// unless that line is the shim's own news of progress (`created, init pid …` of a shim
/// that hung afterwards is no reason).
fn shim_failure(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("shim.log")).ok()?;
    let mut lines = text.lines().rev().filter(|l| !l.trim().is_empty());
    let last = lines.clone().next()?;
    if let Some(failed) = lines.find(|l| l.contains(": failed: ")) {
        return Some(log_message(failed).to_owned());
    }
    let message = log_message(last);
    let progress = message.len() < last.len() && !last.contains("failed");
    (!progress).then(|| message.to_owned())
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
) -> Result<(i32, Option<CgroupDirs>, Option<LaunchExit>), LaunchError> {
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
    let mut cgroups = None;
    let mut observe = |msg: &Message, pid: &mut i32, done: &mut bool| -> Result<(), LaunchError> {
        match msg {
            Message::State(s) => {
                if s.pid > 0 {
                    *pid = s.pid;
                }
                if s.cgroups.is_some() {
                    cgroups.clone_from(&s.cgroups);
                }
                *done = match s.status {
                    Status::Creating => false,
                    Status::Created => !start,
                    Status::Running | Status::Paused | Status::Stopped => true,
                };
            }
            Message::Created { pid: p, cgroups: c } => {
                *pid = *p;
                cgroups.clone_from(c);
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
            return Err(silent_or_lost(&e));
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
        let msg = client.recv_event().map_err(|e| silent_or_lost(&e))?;
        observe(&msg, &mut pid, &mut done)?;
    }
    client.set_read_timeout(None).map_err(|e| lost(&e))?;
    Ok((pid, cgroups, exited))
}

/// Why a container whose shim was lost is failed, with what became of the container.
fn lost_reason(why: &str, cleaned: &Result<(), String>) -> String {
    match cleaned {
        Ok(()) => format!("{why}; its processes were killed and its runtime state removed"),
        Err(e) => format!("{why}; removing what it left failed: {e}"),
    }
}

/// A shim that died without exiting by itself: remove what it left, then record how its
/// container ended — the exit it recorded, or failed with `why` (its live states only;
/// a stopped or failed record keeps what it says). The record changes only once the
/// cleanup is over, so the id cannot be taken again while it runs.
fn settle_lost(
    engine: &crate::Engine,
    config: &ShimConfig,
    id: &str,
    exit: Option<ExitRecord>,
    why: &str,
) -> Result<(), crate::ChangeError> {
    use crate::record::Change;

    let cleaned = config.clean_up(id);
    match &cleaned {
        Ok(()) => tracing::warn!(%id, "its shim was lost; removed what it left"),
        Err(e) => tracing::error!(%id, "its shim was lost; removing what it left: {e}"),
    }
    let Some(record) = engine.get(id) else {
        return Ok(());
    };
    if let Some(exit) = exit {
        let state = berth_shim_adapter::protocol::ShimState {
            id: id.to_owned(),
            status: Status::Stopped,
            pid: record.pid.unwrap_or(0),
            exit_code: Some(exit.code),
            exited_at: Some(exit.at),
            cgroups: None,
        };
        return engine.reconcile(id, Some(&state)).map(drop);
    }
    match record {
        r if r.state.has_shim() && r.state != crate::State::Stopped => engine
            .apply(
                id,
                Change::Failed {
                    reason: lost_reason(why, &cleaned),
                },
            )
            .map(drop),
        _ => Ok(()),
    }
}

/// A shim that said nothing until its read timed out did not start the container in
/// time; any other error means it is gone.
fn silent_or_lost(e: &berth_shim_adapter::ClientError) -> LaunchError {
    use berth_shim_adapter::ClientError;
    match e {
        ClientError::Io { source, .. }
            if matches!(
                source.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            LaunchError::new(
                "timeout",
                "the shim did not report the container started in time",
            )
        }
        _ => LaunchError::new("shim_gone", e.to_string()),
    }
}

/// Turn what the monitor sees of each shim into state changes of `engine`'s records. A
/// shim lost meanwhile is handed to a janitor thread that removes what it left (see
/// [`ShimConfig::clean_up`]) and then records the outcome, off the monitor's loop.
pub fn follow(
    engine: &Arc<crate::Engine>,
    monitor: &Monitor,
    config: &ShimConfig,
) -> io::Result<()> {
    use crate::monitor::ShimEvent;

    let (lost, janitor) = crossbeam::channel::unbounded::<(String, Option<ExitRecord>)>();
    let (weak, cfg) = (Arc::downgrade(engine), config.clone());
    std::thread::Builder::new()
        .name("shim-janitor".into())
        .spawn(move || {
            for (id, exit) in janitor {
                let Some(engine) = weak.upgrade() else { return };
                let why = "its shim died without recording an exit (killed?)";
                if let Err(e) = settle_lost(&engine, &cfg, &id, exit, why) {
                    tracing::debug!(%id, "lost shim not settled: {e}");
                }
            }
        })?;
    let engine = Arc::downgrade(engine);
    let config = config.clone();
    monitor.set_sink(move |id, event| {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let result = match event {
            ShimEvent::Message(msg) => engine.apply_shim_message(id, &msg).map(drop),
            ShimEvent::Gone(exit) if config.shim_lost(id) => {
                let _ = lost.send((id.to_owned(), exit));
                Ok(())
            }
            ShimEvent::Gone(Some(exit)) => engine
                .apply_shim_message(id, &Message::Exited(exit))
                .map(drop),
            ShimEvent::Gone(None) => match engine.get(id) {
                Some(r) if r.state.has_shim() && r.state != crate::State::Stopped => engine
                    .apply(
                        id,
                        crate::record::Change::Failed {
                            reason: "its shim exited without recording an exit".into(),
                        },
                    )
                    .map(drop),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::debug!(%id, "shim event not applied: {e}");
        }
    });
    Ok(())
}

/// After a restart: find every recovered container's shim again. A shim that answers is
/// followed as before and its state adopted. One that is gone left its exit record if
/// its container exited; one that died without exiting by itself also left its
/// container, which is removed (see [`ShimConfig::clean_up`]) before the record changes;
/// without an exit record the container is marked failed with the reason. Exec results
/// older than [`crate::exec::RESULT_KEEP`] go. Returns how many shims were found.
pub fn reattach(engine: &crate::Engine, monitor: &Monitor, config: &ShimConfig) -> usize {
    let mut found = 0;
    for record in engine.list() {
        let id = record.id.clone();
        let live = record.state.has_shim() && record.state != crate::State::Stopped;
        let result = if live {
            reattach_one(engine, monitor, config, &record, &mut found)
        } else if config.shim_lost(&id) && ShimClient::connect(&config.shim_dir(&id)).is_err() {
            // Stopped or failed, its shim killed since: its container may still be there.
            settle_lost(engine, config, &id, None, "")
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::warn!(%id, "recovering: {e}");
        }
        // Exec results nobody fetched before the restart are kept for a while only.
        let live = engine.get(&id).is_some_and(|r| r.state.can_kill());
        crate::exec::sweep_results(&config.shim_dir(&id), crate::exec::RESULT_KEEP, live);
    }
    found
}

/// [`reattach`] for one record in a live state.
fn reattach_one(
    engine: &crate::Engine,
    monitor: &Monitor,
    config: &ShimConfig,
    record: &crate::Record,
    found: &mut usize,
) -> Result<(), crate::ChangeError> {
    use berth_shim_adapter::protocol::{read_exit_file, ShimState};

    let id = record.id.clone();
    let dir = config.shim_dir(&id);
    let answer = ShimClient::connect(&dir).ok().and_then(|mut client| {
        match client.request(&Request::State) {
            Ok(Message::State(state)) => Some((client, state)),
            _ => None,
        }
    });
    if let Some((client, state)) = answer {
        *found += 1;
        let r = engine.reconcile(&id, Some(&state));
        monitor.watch(id, client, dir);
        return r.map(drop);
    }
    let exit = read_exit_file(&dir).ok().flatten();
    if config.shim_lost(&id) {
        let why = "its shim is gone (not reachable after the daemon restarted)";
        return settle_lost(engine, config, &id, exit, why);
    }
    match exit {
        Some(exit) => {
            let state = ShimState {
                id: id.clone(),
                status: Status::Stopped,
                pid: record.pid.unwrap_or(0),
                exit_code: Some(exit.code),
                exited_at: Some(exit.at),
                cgroups: None,
            };
            engine.reconcile(&id, Some(&state))
        }
        None => engine.reconcile(&id, None),
    }
    .map(drop)
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

    #[test]
    fn a_shims_news_of_progress_is_no_failure_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("shim.log");
        std::fs::write(
            &log,
            "2026-12-06T00:00:00Z berth-shim c: created, init pid 7\n",
        )
        .unwrap();
        assert_eq!(shim_failure(dir.path()), None);
        std::fs::write(
            &log,
            "2026-12-06T00:00:00Z berth-shim c: failed: no such file\n",
        )
        .unwrap();
        assert_eq!(shim_failure(dir.path()).as_deref(), Some("no such file"));
        std::fs::write(&log, "a runtime's own line\n").unwrap();
        assert_eq!(
            shim_failure(dir.path()).as_deref(),
            Some("a runtime's own line")
        );
    }
}
