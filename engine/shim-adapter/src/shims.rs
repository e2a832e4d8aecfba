//! The engine's shims: one `berth-shim` per container. A start worker has the shim
//! forked by the [`Spawner`] (started at the first launch, again if it died) and waits
//! for it to report the container created (and started); the engine then hands the
//! shim back ([`Shims::watch`]) to the monitor that follows it from then on, whose news
//! reaches the engine as [`Observation`]s. Also what the engine asks of a live shim
//! ([`Shims::control`]), the removal of what a lost shim left, and finding the shims
//! again after a restart ([`Shims::recover`]).

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_shim_protocol::{
    read_exit_file, CgroupDirs, Message, Request, SpawnOptions, Status, CLEANUP_ARG,
    CLEANUP_STILL_SERVES, PID_FILE,
};
use parking_lot::{Condvar, Mutex};

use crate::client::{ClientError, ShimClient};
use crate::exec_files::{sweep_results, RESULT_KEEP};
use crate::monitor::{Monitor, ShimEvent};
use crate::spawner::{SpawnError, SpawnedShim, Spawner};
use crate::vocab::{
    Exit, Follow, LaunchError, LaunchSpec, Launched, Observation, Op, Recovered, Reply, ShimView,
};

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

    /// Where the bundle written for container `id`'s inline spec goes.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.state_dir.join("bundles").join(id)
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
        match self.run_cleanup(id)? {
            Cleanup::Done => Ok(()),
            Cleanup::StillServes => Err("a shim still serves it; it is not lost".into()),
        }
    }

    /// [`ShimConfig::clean_up`], telling a shim that still serves apart. One cleanup of
    /// an id at a time: one that waited for another finds nothing left to do.
    fn run_cleanup(&self, id: &str) -> Result<Cleanup, String> {
        let dir = self.shim_dir(id);
        let (_turn, waited) = CleanupTurn::take(&dir);
        if waited && !self.shim_lost(id) {
            return Ok(Cleanup::Done);
        }
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
            // Its own process group: an external runtime it runs goes with it on a timeout.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.shim_binary.display()))?;
        match wait_timeout(&mut child, CLEANUP_TIMEOUT) {
            Ok(Some(status)) if status.success() => Ok(Cleanup::Done),
            Ok(Some(status)) if status.code() == Some(i32::from(CLEANUP_STILL_SERVES)) => {
                Ok(Cleanup::StillServes)
            }
            // It said why in the shim log.
            Ok(Some(status)) => Err(shim_failure(&dir).unwrap_or_else(|| status.to_string())),
            Ok(None) => {
                // Ours to stop: it hangs, and so may the runtime it started. The group
                // id cannot be reused while its leader (not yet reaped) exists.
                // SAFETY: kill(2) on the process group of our own unreaped child.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
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

/// How often [`Shims::recover`] asks a shim that accepts the connection for its state.
const RECOVER_TRIES: u32 = 3;
/// How long each of those asks waits for the answer.
const RECOVER_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The state of the shim in `dir` and a client to follow it; a shim that accepts the
/// connection but does not answer (busy, or it dropped us) is asked again a few times.
fn ask_state(dir: &Path) -> Option<(ShimClient, berth_shim_protocol::ShimState)> {
    for attempt in 0..RECOVER_TRIES {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        // Refused or no socket: no shim listens, asking again will not change that.
        let mut client = ShimClient::connect(dir).ok()?;
        if client.set_read_timeout(Some(RECOVER_ANSWER_WAIT)).is_err() {
            continue;
        }
        if let Ok(Message::State(state)) = client.request(&Request::State) {
            if client.set_read_timeout(None).is_ok() {
                return Some((client, state));
            }
        }
    }
    None
}

/// What a cleanup after a shim taken for lost found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleanup {
    /// What the shim left is gone.
    Done,
    /// The shim still serves its container: nothing was touched.
    StillServes,
}

/// The shim directories whose cleanup runs now (see [`CleanupTurn`]).
static CLEANING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Signalled when a cleanup ends.
static CLEANED: Condvar = Condvar::new();

/// The right to clean up after one shim (by its directory): the janitor and a DELETE
/// must not both run `--cleanup`, or the runtime's delete (and poststop hooks) run twice.
struct CleanupTurn(PathBuf);

impl CleanupTurn {
    /// Wait for any other cleanup of `dir` to end, then claim it; whether it waited.
    fn take(dir: &Path) -> (CleanupTurn, bool) {
        let mut cleaning = CLEANING.lock();
        let mut waited = false;
        while cleaning.iter().any(|d| d == dir) {
            waited = true;
            CLEANED.wait(&mut cleaning);
        }
        cleaning.push(dir.to_path_buf());
        (CleanupTurn(dir.to_path_buf()), waited)
    }
}

impl Drop for CleanupTurn {
    fn drop(&mut self) {
        CLEANING.lock().retain(|d| *d != self.0);
        CLEANED.notify_all();
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
    if crate::spawner::pidfd_exited(pidfd.as_fd(), timeout)? {
        child.wait().map(Some)
    } else {
        Ok(None)
    }
}

/// Spawns a shim per container, follows them, and asks them what the engine wants.
pub struct Shims {
    config: ShimConfig,
    monitor: Arc<Monitor>,
    /// The fork server of shims; `None` until the first launch.
    spawner: Mutex<Option<Spawner>>,
}

impl std::fmt::Debug for Shims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shims")
            .field("config", &self.config)
            .finish()
    }
}

/// Where observations go: the engine's, given the container id.
pub type Sink = Arc<dyn Fn(&str, Observation) + Send + Sync>;

impl Shims {
    /// Start following shims (the monitor thread); nothing is spawned before the first
    /// launch.
    pub fn start(config: ShimConfig) -> io::Result<Self> {
        Ok(Shims {
            config,
            monitor: Monitor::start()?,
            spawner: Mutex::new(None),
        })
    }

    /// Where shims, bundles and runtime state live.
    pub fn config(&self) -> &ShimConfig {
        &self.config
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

    /// Remove what a lost shim of container `id` left (a shim that died without exiting
    /// cleanly: its container's processes, runtime state, cgroups), so the id can be
    /// used again. Nothing to do is success.
    pub fn clean_up(&self, id: &str) -> Result<(), LaunchError> {
        if !self.config.shim_lost(id) {
            return Ok(());
        }
        self.config
            .clean_up(id)
            .map_err(|e| LaunchError::new("cleanup", e))
    }

    /// Remove what was kept for container `id` once it is deleted: its shim's
    /// directory and logs, a bundle written for an inline spec.
    pub fn forget(&self, id: &str) {
        for dir in [self.config.shim_dir(id), self.config.bundle_dir(id)] {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(%id, "removing {}: {e}", dir.display());
                }
                _ => {}
            }
        }
    }

    /// Follow container `id`'s shim from now on: call once the record reflects its
    /// launch (or recovery), so no event overtakes it.
    pub fn watch(&self, id: &str, follow: Follow) {
        self.monitor.watch(id.to_owned(), follow.client, follow.dir);
    }

    /// Ask the shim of container `id` for `op`, waiting for its answer.
    pub fn control(&self, id: &str, op: Op) -> Result<Reply, LaunchError> {
        let request = match op {
            Op::Start => Request::Start,
            Op::Kill { signal, all } => Request::Kill { signal, all },
            Op::Pause => Request::Pause,
            Op::Resume => Request::Resume,
            Op::Stats => Request::Stats,
            Op::Exec { process, output } => Request::Exec { process, output },
            Op::Delete { force } => Request::Delete { force },
        };
        match self.request(id, &request)? {
            Message::Ok => Ok(Reply::Done),
            Message::Stats(stats) => Ok(Reply::Stats(stats)),
            Message::Exec { pid } => Ok(Reply::Exec { pid }),
            other => Err(LaunchError::new(
                "unexpected",
                format!("the shim answered {other:?} to {request:?}"),
            )),
        }
    }

    /// Send `request` to the shim of `id`; its reply, a refusal being an error.
    fn request(&self, id: &str, request: &Request) -> Result<Message, LaunchError> {
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

    /// Launch the container `job` describes; return once it is created (and started if
    /// asked), with the shim to [`Shims::watch`] once the engine recorded it.
    pub fn launch(&self, job: LaunchSpec<'_>) -> Result<Launched, LaunchError> {
        let dir = self.config.shim_dir(job.id);
        let opts = SpawnOptions {
            binary: self.config.shim_binary.clone(),
            id: job.id.to_owned(),
            bundle: job.bundle,
            state_dir: dir.clone(),
            runtime_root: self.config.runtime_root(),
            runtime: job
                .runtime
                .map(Path::to_owned)
                .or_else(|| self.config.runtime.clone()),
            log: Some(self.config.container_log(job.id)),
            log_max: Some(self.config.log_max),
            no_start: !job.start,
        };
        // Connected from the start: no waiting for the shim's socket file to appear.
        let mut shim = match self.spawn(&opts) {
            Ok(shim) => shim,
            Err(e) => {
                if matches!(e, SpawnError::Lost(_)) {
                    self.stop_unclaimed_shim(job.id, &dir);
                }
                return Err(LaunchError::new("spawn", e.to_string()));
            }
        };
        let deadline = Instant::now() + self.config.start_timeout;
        match wait_until_launched(&mut shim.client, job.start, deadline) {
            Ok((pid, cgroups, exited)) => Ok(Launched {
                pid,
                shim_pid: shim.pid,
                cgroups,
                started: job.start,
                exited,
                follow: Some(Follow {
                    client: shim.client,
                    dir,
                }),
            }),
            Err(mut e) => {
                if let Some(reason) = shim_failure(&dir) {
                    e.message = reason;
                }
                // A shim that failed exits by itself; one that hangs is stopped here
                // (the spawner reaps it either way), and what it made is removed.
                if let Err(kill) = shim.kill() {
                    tracing::warn!(id = %job.id, "stopping shim {}: {kill}", shim.pid);
                }
                if shim.wait_exit(STOPPED_SHIM_WAIT) && self.config.shim_lost(job.id) {
                    if let Err(left) = self.config.clean_up(job.id) {
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
) -> Result<(i32, Option<CgroupDirs>, Option<Exit>), LaunchError> {
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
                exited = Some(Exit::from(exit));
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

/// A shim that said nothing until its read timed out did not start the container in
/// time; any other error means it is gone.
fn silent_or_lost(e: &ClientError) -> LaunchError {
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

/// Why a container whose shim was lost is failed, with what became of the container.
fn lost_reason(why: &str, cleaned: &Result<(), String>) -> String {
    match cleaned {
        Ok(()) => format!("{why}; its processes were killed and its runtime state removed"),
        Err(e) => format!("{why}; removing what it left failed: {e}"),
    }
}

/// A shim that died without exiting by itself: remove what it left, then say how its
/// container ended — the exit it recorded, or `why`. Reported only once the cleanup is
/// over, so the id cannot be taken again while it runs.
/// `None` (nothing touched) if the cleanup found the shim still serving.
fn settle_lost(
    config: &ShimConfig,
    id: &str,
    exit: Option<Exit>,
    why: &str,
) -> Option<Observation> {
    let cleaned = match config.run_cleanup(id) {
        Ok(Cleanup::StillServes) => return None,
        Ok(Cleanup::Done) => Ok(()),
        Err(e) => Err(e),
    };
    match &cleaned {
        Ok(()) => tracing::warn!(%id, "its shim was lost; removed what it left"),
        Err(e) => tracing::error!(%id, "its shim was lost; removing what it left: {e}"),
    }
    Some(Observation::Lost {
        exit,
        reason: lost_reason(why, &cleaned),
    })
}

/// A shim whose connection ended may still live (it drops a client whose socket is
/// full; a message may not decode): if it answers, tell `sink` an exit it recorded
/// meanwhile and follow it again (`true`), rather than take it for lost.
fn refollow(
    config: &ShimConfig,
    monitor: &Monitor,
    id: &str,
    sink: &(dyn Fn(&str, Observation) + Send + Sync),
) -> bool {
    let dir = config.shim_dir(id);
    let Some((client, state)) = ask_state(&dir) else {
        return false;
    };
    tracing::warn!(%id, "lost the connection to its shim, which still answers: following it again");
    let view = view_of(state);
    if let (Status::Stopped, Some(exit)) = (view.status, view.exit) {
        sink(id, Observation::Exited(exit));
    }
    monitor.watch(id.to_owned(), client, dir);
    true
}

/// A shim's state, in the engine's terms.
fn view_of(s: berth_shim_protocol::ShimState) -> ShimView {
    ShimView {
        status: s.status,
        pid: s.pid,
        exit: s.exit_code.map(|code| Exit {
            code,
            at: s
                .exited_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok()),
        }),
        cgroups: s.cgroups,
    }
}

/// What a shim's event says, in the engine's terms; `None` for replies to requests.
fn observed(msg: Message) -> Option<Observation> {
    Some(match msg {
        Message::Created { pid, cgroups } => Observation::Created { pid, cgroups },
        Message::Started => Observation::Started,
        Message::Exited(exit) => Observation::Exited(Exit::from(&exit)),
        Message::Oom => Observation::Oom,
        Message::ExecExited { pid, code } => Observation::ExecExited { pid, code },
        Message::Failed { message } => Observation::Failed { reason: message },
        Message::Ok
        | Message::State(_)
        | Message::Exec { .. }
        | Message::Stats(_)
        | Message::Error { .. } => return None,
    })
}

impl Shims {
    /// Deliver what is seen of every followed shim to `sink` from now on; call once,
    /// before the first launch. A shim lost meanwhile is handed to a janitor thread
    /// that removes what it left (see [`ShimConfig::clean_up`]) and then reports it
    /// [`Observation::Lost`], off the monitor's loop.
    pub fn observe(&self, sink: Sink) -> io::Result<()> {
        let (lost, janitor) = crossbeam::channel::unbounded::<(String, Option<Exit>)>();
        let (config, to) = (self.config.clone(), Arc::clone(&sink));
        let monitor = Arc::clone(&self.monitor);
        std::thread::Builder::new()
            .name("shim-janitor".into())
            .spawn(move || {
                for (id, exit) in janitor {
                    if refollow(&config, &monitor, &id, &*to) {
                        continue;
                    }
                    let why = "its shim died without recording an exit (killed?)";
                    let lost = settle_lost(&config, &id, exit, why);
                    // The cleanup found it serving after all: follow it if it answers.
                    if lost.is_none() && refollow(&config, &monitor, &id, &*to) {
                        continue;
                    }
                    to(
                        &id,
                        lost.unwrap_or_else(|| Observation::Lost {
                            exit: None,
                            reason: format!("{why}; it still serves but does not answer"),
                        }),
                    );
                }
            })?;
        let config = self.config.clone();
        self.monitor.set_sink(move |id, event| {
            let observation = match event {
                ShimEvent::Message(msg) => match observed(msg) {
                    Some(o) => o,
                    None => return,
                },
                ShimEvent::Gone(exit) if config.shim_lost(id) => {
                    let _ = lost.send((id.to_owned(), exit.as_ref().map(Exit::from)));
                    return;
                }
                ShimEvent::Gone(Some(exit)) => Observation::Exited(Exit::from(&exit)),
                ShimEvent::Gone(None) => Observation::Lost {
                    exit: None,
                    reason: "its shim exited without recording an exit".into(),
                },
            };
            sink(id, observation);
        });
        Ok(())
    }

    /// After a restart: find container `id`'s shim again (`live`: its record says the
    /// container exists and has not stopped). One that answers is [`Recovered::Found`],
    /// to be watched once its record is brought in line. One that is gone left its exit
    /// record if its container exited; one that died without exiting by itself also
    /// left its container, which is removed before this returns (see
    /// [`ShimConfig::clean_up`]) — also for a container that had stopped already.
    pub fn recover(&self, id: &str, live: bool) -> Recovered {
        let dir = self.config.shim_dir(id);
        if !live {
            if self.config.shim_lost(id) && ShimClient::connect(&dir).is_err() {
                if let Some(lost) = settle_lost(&self.config, id, None, "") {
                    return Recovered::Gone(lost);
                }
            }
            return Recovered::Nothing;
        }
        let mut answer = ask_state(&dir);
        let exit = read_exit_file(&dir).ok().flatten().as_ref().map(Exit::from);
        let why = "its shim is gone (not reachable after the daemon restarted)";
        if answer.is_none() && self.config.shim_lost(id) {
            match self.config.run_cleanup(id) {
                // It still serves (busy, or it dropped us): follow it after all.
                Ok(Cleanup::StillServes) => answer = ask_state(&dir),
                cleaned => {
                    let cleaned = cleaned.map(|_| ());
                    return Recovered::Gone(Observation::Lost {
                        reason: lost_reason(why, &cleaned),
                        exit,
                    });
                }
            }
        }
        if let Some((client, s)) = answer {
            return Recovered::Found(view_of(s), Follow { client, dir });
        }
        Recovered::Gone(Observation::Lost {
            exit,
            reason: why.into(),
        })
    }

    /// Remove the exec results of container `id` kept longer than
    /// [`RESULT_KEEP`] (`live`: a process of it may still run).
    pub fn sweep_exec_results(&self, id: &str, live: bool) -> usize {
        sweep_results(&self.config.shim_dir(id), RESULT_KEEP, live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shims_events_are_observations_and_its_replies_are_not() {
        use berth_shim_protocol::ExitRecord;

        let exit = ExitRecord {
            code: 7,
            at: "2026-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            observed(Message::Exited(exit)),
            Some(Observation::Exited(Exit {
                code: 7,
                at: humantime::parse_rfc3339("2026-01-01T00:00:00Z").ok(),
            }))
        );
        assert_eq!(
            observed(Message::Failed {
                message: "no such file".into()
            }),
            Some(Observation::Failed {
                reason: "no such file".into()
            })
        );
        assert_eq!(observed(Message::Oom), Some(Observation::Oom));
        for reply in [
            Message::Ok,
            Message::Exec { pid: 1 },
            Message::Error {
                message: "x".into(),
            },
        ] {
            assert_eq!(observed(reply), None);
        }
    }

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
