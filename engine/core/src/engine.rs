//! The engine: accepts container specs, queues start jobs for the worker pool, keeps
//! the records, and turns every state change into an event and a file on disk.
//!
//! Lock order: the record map's lock is never held while a record's own lock is taken.
//! A record's lock is held across its change, its event and its file write, so events
//! and files of one container are always in the order of its changes.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

use berth_runtime_types::{Stats as ContainerStats, Status};
use berth_shim_adapter::vocab::{Exit, Observation, ShimView};
use parking_lot::{Mutex, RwLock};

use crate::control::{Control, ControlError, CONTROL_WORKERS};
use crate::events::{Bus, EventKind, Subscription, DEFAULT_BUFFER, DEFAULT_HISTORY};
use crate::launcher::{LaunchError, Launcher, Op, Reply};
use crate::metrics as m;
use crate::persist::{Loaded, Store};
use crate::pool::{Handler, Pool, PoolError, DEFAULT_WORKERS};
use crate::queue::{Job, JobQueue, DEFAULT_MAX_QUEUED};
use crate::record::{Change, ContainerSpec, Record, SpecSource, Timestamp};
use crate::state_machine::{IllegalTransition, State};

/// Longest container id the engine accepts (the API's limit).
pub const MAX_ID_LEN: usize = 64;

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Start workers (10).
    pub workers: usize,
    /// Most start jobs waiting at once; more are refused with [`SubmitError::QueueFull`].
    pub max_queued: usize,
    /// Where records are persisted; `None` keeps them in memory only (tests, benches).
    pub state_dir: Option<PathBuf>,
    /// Per-subscriber event buffer.
    pub event_buffer: usize,
    /// Past events kept for subscribers that start from a sequence number.
    pub event_history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: DEFAULT_WORKERS,
            max_queued: DEFAULT_MAX_QUEUED,
            state_dir: None,
            event_buffer: DEFAULT_BUFFER,
            event_history: DEFAULT_HISTORY,
        }
    }
}

/// Why a submission was refused. Nothing is recorded or queued then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The id is malformed.
    #[error("invalid container id: {0}")]
    InvalidId(String),
    /// The spec is unusable (missing bundle, relative path …).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A container with this id exists.
    #[error("container {0} already exists")]
    Exists(String),
    /// The start queue is full.
    #[error("the start queue is full ({capacity} jobs waiting); retry later")]
    QueueFull {
        /// The queue's bound.
        capacity: usize,
    },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The launcher refused what the request asks (an unknown network, a port in use).
    #[error("{message}")]
    Refused {
        /// A stable machine-readable code (`network_not_found`, `port_in_use`, …).
        code: &'static str,
        /// Why.
        message: String,
    },
}

impl SubmitError {
    /// A stable machine-readable code (the API maps it to a status: 400, 409, 429, 503).
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::InvalidId(_) => "invalid_id",
            SubmitError::InvalidSpec(_) => "invalid_spec",
            SubmitError::Exists(_) => "conflict",
            SubmitError::QueueFull { .. } => "queue_full",
            SubmitError::ShuttingDown => "shutting_down",
            SubmitError::Refused { code, .. } => code,
        }
    }
}

/// Why a change to an existing container was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No such container.
    #[error("no container {0}")]
    NotFound(String),
    /// The state machine forbids it.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
}

/// A snapshot of the engine for `GET /v1/system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Workers wanted.
    pub workers: usize,
    /// Workers running a job.
    pub busy: usize,
    /// Jobs waiting.
    pub queued_jobs: usize,
    /// Queue bound.
    pub max_queued: usize,
    /// Containers per state, in [`State::ALL`] order.
    pub by_state: [(State, i64); 8],
    /// Shims believed alive.
    pub live_shims: i64,
    /// Sequence number of the next event.
    pub next_event_seq: u64,
}

struct Inner {
    queue: Arc<JobQueue>,
    records: RwLock<HashMap<String, Arc<Mutex<Record>>>>,
    bus: Bus,
    store: Option<Store>,
    launcher: Arc<dyn Launcher>,
    counts: [AtomicI64; 8],
    live_shims: AtomicI64,
}

/// The scheduler core. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    inner: Arc<Inner>,
    pool: Pool,
    control: Control,
    accepting: AtomicBool,
    max_queued: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pool", &self.pool)
            .field("queued_jobs", &self.inner.queue.len())
            .finish()
    }
}

/// Check a container id: the rule every id follows (letters, digits, `_+-.`, starting
/// with a letter or digit), at most [`MAX_ID_LEN`] bytes, no `+` and no `..`.
pub fn validate_id(id: &str) -> Result<(), SubmitError> {
    if id.len() > MAX_ID_LEN {
        return Err(SubmitError::InvalidId(format!(
            "{:?}… is longer than {MAX_ID_LEN} bytes",
            id.chars().take(16).collect::<String>()
        )));
    }
    // Stricter than the runtime (which takes runc's `+` too): the API's ids also name
    // URL segments and metrics labels.
    if id.contains("..") || id.contains('+') {
        return Err(SubmitError::InvalidId(format!(
            "{id:?}: only letters, digits, '_', '-' and '.' are allowed, and no \"..\""
        )));
    }
    berth_runtime_types::id::check(id)
        .map_err(|reason| SubmitError::InvalidId(format!("invalid container id {id:?}: {reason}")))
}

/// Check a spec before anything is recorded: the id, absolute existing paths.
pub fn validate(spec: &ContainerSpec) -> Result<(), SubmitError> {
    validate_id(&spec.id)?;
    let need_abs = |what: &str, p: &Path| {
        if p.is_absolute() {
            Ok(())
        } else {
            Err(SubmitError::InvalidSpec(format!(
                "{what} {} must be an absolute path",
                p.display()
            )))
        }
    };
    let need = |what: &str, p: &Path| {
        if p.exists() {
            Ok(())
        } else {
            Err(SubmitError::InvalidSpec(format!(
                "{what} {} does not exist",
                p.display()
            )))
        }
    };
    match &spec.source {
        SpecSource::Bundle(b) => {
            need_abs("bundle", b)?;
            need("bundle config", &b.join("config.json"))?;
        }
        SpecSource::Inline { rootfs, .. } => {
            need_abs("rootfs", rootfs)?;
            need("rootfs", rootfs)?;
        }
        SpecSource::Image(run) => validate_image_run(run)?,
    }
    if let Some(rt) = &spec.runtime {
        need_abs("runtime", rt)?;
        need("runtime", rt)?;
    }
    Ok(())
}

/// Check what can be checked of an image container before it is queued: the name parses
/// (or is an image id), the overrides are well formed.
fn validate_image_run(run: &crate::record::ImageRun) -> Result<(), SubmitError> {
    let invalid = |m: String| Err(SubmitError::InvalidSpec(m));
    if !is_image_id(&run.image) {
        if let Err(e) = berth_images::reference::Reference::from_str(&run.image) {
            return invalid(e.to_string());
        }
    }
    if let Some(bad) = run
        .env
        .iter()
        .find(|e| !e.contains('=') || e.starts_with('='))
    {
        return invalid(format!("env {bad:?}: expected KEY=value"));
    }
    if let Some(dir) = run.workdir.as_deref().filter(|d| !d.starts_with('/')) {
        return invalid(format!("workdir {dir:?}: expected an absolute path"));
    }
    if run.entrypoint.as_ref().is_some_and(|e| e.is_empty()) && run.args.is_none() {
        return invalid("an empty entrypoint needs args".into());
    }
    Ok(())
}

/// Whether `s` names an image by id: `sha256:` and hex, or 12 to 64 hex digits.
fn is_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (12..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Engine {
    /// Start an engine: recover the records under `config.state_dir` (queued ones are
    /// queued again; the others are left as they were for [`Engine::reconcile`]), then
    /// start the workers.
    pub fn new(config: Config, launcher: Arc<dyn Launcher>) -> Result<Self, PoolError> {
        let queue = Arc::new(JobQueue::new(config.max_queued));
        let inner = Arc::new(Inner {
            queue: Arc::clone(&queue),
            records: RwLock::new(HashMap::new()),
            bus: Bus::new(config.event_buffer, config.event_history),
            store: config.state_dir.as_deref().map(Store::new),
            launcher,
            counts: Default::default(),
            live_shims: AtomicI64::new(0),
        });
        let control = Control::new(
            Arc::clone(&inner.launcher),
            CONTROL_WORKERS,
            config.max_queued,
        )?;
        let requeue = inner.recover();
        let handler_inner = Arc::clone(&inner);
        let handler: Handler = Arc::new(move |job| handler_inner.run(job));
        let pool = Pool::new(queue, config.workers, handler)?;
        let engine = Engine {
            inner,
            pool,
            control,
            accepting: AtomicBool::new(true),
            max_queued: config.max_queued,
        };
        for (job, rec) in requeue {
            if engine.inner.queue.push(job).is_err() {
                engine.inner.change(
                    &rec,
                    Change::Failed {
                        reason: "the start queue was full when the engine recovered".into(),
                    },
                );
            }
        }
        engine.pool.notify();
        Ok(engine)
    }

    /// Validate `spec`, record it as queued (persisted, announced) and queue its start
    /// job. Returns at once with the queued record; a worker does the rest.
    pub fn submit(&self, spec: ContainerSpec) -> Result<Record, SubmitError> {
        if !self.accepting.load(SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        validate(&spec)?;
        let spec = Arc::new(spec);
        let id = spec.id.clone();
        let now = Timestamp::now();
        let rec = Arc::new(Mutex::new(Record::queued(Arc::clone(&spec), now)));
        // Locked before it is visible: the worker that pops the job waits until the
        // queued state is announced and written.
        let mut guard = rec.lock();
        {
            let mut map = self.inner.records.write();
            match map.entry(id.clone()) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    return Err(SubmitError::Exists(id));
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Arc::clone(&rec));
                }
            }
        }
        if let Err(e) = self.admit(&spec) {
            self.inner.records.write().remove(&id);
            return Err(e);
        }
        if let Err(full) = self.inner.queue.push(Job::new(spec)) {
            self.inner.records.write().remove(&id);
            self.launcher().forget(&id);
            metrics::counter!(m::REJECTED).increment(1);
            return Err(SubmitError::QueueFull {
                capacity: full.capacity,
            });
        }
        self.pool.notify();
        metrics::gauge!(m::QUEUE_DEPTH).set(self.inner.queue.len() as f64);
        self.inner.count(None, State::Queued);
        self.inner.announce(&mut guard, EventKind::State, None, now);
        Ok(guard.clone())
    }

    /// What the request asks beyond its spec: a container whose network it joins must
    /// run; the launcher checks the rest (the network, ports).
    fn admit(&self, spec: &ContainerSpec) -> Result<(), SubmitError> {
        if let Some(berth_network::NetworkMode::Container(other)) =
            spec.network.as_ref().map(|n| &n.mode)
        {
            if *other == spec.id {
                return Err(SubmitError::InvalidSpec(format!(
                    "network container:{other}: a container cannot join its own network"
                )));
            }
            let running = self.get(other).is_some_and(|r| r.state == State::Running);
            if !running {
                return Err(SubmitError::Refused {
                    code: "container_not_running",
                    message: format!("network container:{other}: no running container {other:?}"),
                });
            }
        }
        self.launcher()
            .admit(spec)
            .map_err(|e| SubmitError::Refused {
                code: e.kind,
                message: e.message,
            })
    }

    /// The record of `id`.
    pub fn get(&self, id: &str) -> Option<Record> {
        self.inner.lookup(id).map(|r| r.lock().clone())
    }

    /// Every record, in no particular order.
    pub fn list(&self) -> Vec<Record> {
        let all: Vec<_> = self.inner.records.read().values().cloned().collect();
        all.iter().map(|r| r.lock().clone()).collect()
    }

    /// Apply a change from outside the workers (the shim event loop, the API's kill /
    /// pause / resume / delete once the shim confirmed). `Deleted` also forgets the
    /// container and removes its state directory.
    pub fn apply(&self, id: &str, change: Change) -> Result<Record, ChangeError> {
        let rec = self
            .inner
            .lookup(id)
            .ok_or_else(|| ChangeError::NotFound(id.to_owned()))?;
        let mut g = rec.lock();
        self.inner.apply_locked(&mut g, change)?;
        Ok(g.clone())
    }

    /// Remove a container that is queued, stopped or failed (a queued one is cancelled:
    /// the worker that pops its job skips it).
    pub fn delete(&self, id: &str) -> Result<Record, ChangeError> {
        let record = self.apply(id, Change::Deleted)?;
        // What the launcher kept for the container (shim directory, inline bundle).
        self.inner.launcher.forget(id);
        Ok(record)
    }

    /// Turn what was seen of container `id`'s shim into a state change. Gives `Ok(None)`
    /// when nothing changed: an exec's exit (announced, not recorded), an event the
    /// record already reflects (the launch may have applied it first).
    pub fn observe(
        &self,
        id: &str,
        observation: Observation,
    ) -> Result<Option<Record>, ChangeError> {
        let _span = tracing::debug_span!("container", %id).entered();
        let rec = self
            .inner
            .lookup(id)
            .ok_or_else(|| ChangeError::NotFound(id.to_owned()))?;
        let mut g = rec.lock();
        let change = match observation {
            Observation::Created { pid, cgroups } => Change::Created {
                pid,
                shim_pid: None,
                cgroups,
            },
            Observation::Started => Change::Started,
            Observation::Exited(exit) => exited(exit),
            Observation::Failed { reason } => Change::Failed { reason },
            Observation::Oom => {
                metrics::counter!(m::OOM).increment(1);
                let state = g.state;
                self.inner
                    .announce(&mut g, EventKind::Oom, Some(state), Timestamp::now());
                return Ok(Some(g.clone()));
            }
            Observation::ExecExited { pid, code } => {
                // Told, not recorded: the container's own state is unchanged.
                let mut about = g.clone();
                about.pid = Some(pid);
                about.exit_code = Some(code);
                self.inner
                    .bus
                    .publish(EventKind::Exec, Some(g.state), &about, Timestamp::now());
                return Ok(None);
            }
            Observation::Lost {
                exit: Some(exit), ..
            } => {
                let stopped = ShimView {
                    status: Status::Stopped,
                    pid: g.pid.unwrap_or(0),
                    exit: Some(exit),
                    cgroups: None,
                };
                drop(g);
                return self.reconcile(id, Some(&stopped)).map(Some);
            }
            // A container that stopped or failed already keeps what its record says.
            Observation::Lost { exit: None, reason } => {
                if !g.state.has_shim() || g.state == State::Stopped {
                    return Ok(None);
                }
                Change::Failed { reason }
            }
        };
        let target = change.target();
        if g.state == target || (target == State::Created && g.state == State::Running) {
            return Ok(None);
        }
        self.inner.apply_locked(&mut g, change)?;
        Ok(Some(g.clone()))
    }

    /// Bring a recovered record in line with what its shim says (`Some`) or with the
    /// shim being unreachable (`None`: a live container is marked failed with a clear
    /// reason). Walks through the intermediate states so every step is legal and seen.
    pub fn reconcile(&self, id: &str, shim: Option<&ShimView>) -> Result<Record, ChangeError> {
        let rec = self
            .inner
            .lookup(id)
            .ok_or_else(|| ChangeError::NotFound(id.to_owned()))?;
        let mut g = rec.lock();
        let Some(s) = shim else {
            if g.state.has_shim() && g.state != State::Stopped {
                self.inner.apply_locked(
                    &mut g,
                    Change::Failed {
                        reason: "its shim is gone (not reachable after the daemon restarted)"
                            .into(),
                    },
                )?;
            }
            return Ok(g.clone());
        };
        let want = State::from_runtime(s.status);
        // A record written before records kept the cgroup (an older berthd) learns it
        // from the shim: per-container metrics need it.
        if g.cgroups.is_none() {
            g.cgroups.clone_from(&s.cgroups);
        }
        let created = Change::Created {
            pid: s.pid,
            shim_pid: None,
            cgroups: s.cgroups.clone(),
        };
        let steps: Vec<Change> = match (g.state, want) {
            (a, b) if a == b => vec![],
            (State::Queued, _) => vec![Change::Dequeued],
            (_, State::Creating) => vec![],
            (State::Creating, State::Created) => vec![created],
            (State::Creating, State::Running) => vec![created, Change::Started],
            (State::Creating, State::Paused) => vec![created, Change::Started, Change::Paused],
            (State::Created, State::Running) => vec![Change::Started],
            (State::Created, State::Paused) => vec![Change::Started, Change::Paused],
            (State::Running, State::Paused) => vec![Change::Paused],
            (State::Paused, State::Running) => vec![Change::Resumed],
            _ => vec![],
        };
        for step in steps {
            self.inner.apply_locked(&mut g, step)?;
        }
        if want == State::Stopped && g.state != State::Stopped {
            if g.state == State::Creating {
                self.inner.apply_locked(
                    &mut g,
                    Change::Created {
                        pid: s.pid,
                        shim_pid: None,
                        cgroups: s.cgroups.clone(),
                    },
                )?;
            }
            let exit = s.exit.unwrap_or(Exit { code: -1, at: None });
            self.inner.apply_locked(&mut g, exited(exit))?;
        }
        Ok(g.clone())
    }

    /// Ask container `id`'s shim for `op` through the control queue, waiting up to
    /// `timeout`; a confirmed pause or resume changes the record. Exits and deletions
    /// follow from what the shim is seen to do.
    pub(crate) fn control(
        &self,
        id: &str,
        op: Op,
        timeout: std::time::Duration,
    ) -> Result<Reply, ControlError> {
        if self.inner.lookup(id).is_none() {
            return Err(ControlError::NotFound(id.to_owned()));
        }
        let change = match op {
            Op::Pause => Some(Change::Paused),
            Op::Resume => Some(Change::Resumed),
            _ => None,
        };
        let reply = self.control.request(id, op, timeout)?;
        if let (Some(change), Reply::Done) = (change, &reply) {
            if let Err(e) = self.apply(id, change) {
                tracing::warn!(%id, "after a confirmed control request: {e}");
            }
        }
        Ok(reply)
    }

    /// Run the user process of container `id`, created without starting it; its start
    /// follows as a state change.
    pub fn start(&self, id: &str, timeout: std::time::Duration) -> Result<(), ControlError> {
        self.control(id, Op::Start, timeout).map(drop)
    }

    /// Send `signal` to container `id`'s init (with `all`: to every process of it); an
    /// exit follows as a state change.
    pub fn kill(
        &self,
        id: &str,
        signal: i32,
        all: bool,
        timeout: std::time::Duration,
    ) -> Result<(), ControlError> {
        self.control(id, Op::Kill { signal, all }, timeout)
            .map(drop)
    }

    /// Freeze container `id`; the record says paused once its shim confirmed.
    pub fn pause(&self, id: &str, timeout: std::time::Duration) -> Result<(), ControlError> {
        self.control(id, Op::Pause, timeout).map(drop)
    }

    /// Thaw container `id`; the record says running once its shim confirmed.
    pub fn resume(&self, id: &str, timeout: std::time::Duration) -> Result<(), ControlError> {
        self.control(id, Op::Resume, timeout).map(drop)
    }

    /// Container `id`'s cgroup statistics, as its shim reads them.
    pub fn container_stats(
        &self,
        id: &str,
        timeout: std::time::Duration,
    ) -> Result<ContainerStats, ControlError> {
        match self.control(id, Op::Stats, timeout)? {
            Reply::Stats(stats) => Ok(*stats),
            other => Err(ControlError::Shim {
                id: id.to_owned(),
                error: LaunchError::new(
                    "unexpected",
                    format!("the shim answered {other:?} to a stats request"),
                ),
            }),
        }
    }

    /// The launcher, for what other parts of the engine ask of shims.
    pub(crate) fn launcher(&self) -> &dyn Launcher {
        &*self.inner.launcher
    }

    /// Change the number of start workers now.
    pub fn set_workers(&self, n: usize) -> Result<(), PoolError> {
        self.pool.set_workers(n)
    }

    /// Workers wanted.
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// Jobs being run now.
    pub fn in_flight(&self) -> usize {
        self.pool.in_flight()
    }

    /// Jobs waiting now.
    pub fn queued_jobs(&self) -> usize {
        self.inner.queue.len()
    }

    /// Announce that image `name` (id `id`) was `action` (pulled, imported, deleted).
    pub fn publish_image(&self, action: &str, name: &str, id: &str) {
        self.inner.bus.publish_image(action, name, id);
    }

    /// Events from now on.
    pub fn subscribe(&self) -> Subscription {
        self.inner.bus.subscribe()
    }

    /// Events from sequence number `seq` on (as far back as the history reaches).
    pub fn subscribe_from(&self, seq: u64) -> Subscription {
        self.inner.bus.subscribe_from(seq)
    }

    /// A snapshot for the system endpoint.
    pub fn stats(&self) -> Stats {
        let by_state = State::ALL.map(|s| (s, self.inner.counts[s.index()].load(SeqCst)));
        Stats {
            workers: self.pool.workers(),
            busy: self.pool.in_flight(),
            queued_jobs: self.inner.queue.len(),
            max_queued: self.max_queued,
            by_state,
            live_shims: self.inner.live_shims.load(SeqCst),
            next_event_seq: self.inner.bus.next_seq(),
        }
    }

    /// Stop accepting, let busy workers finish their job, stop the workers. Jobs still
    /// queued stay recorded (and persisted) as queued: the next engine on the same state
    /// directory queues them again. Returns their ids.
    pub fn shutdown(&self) -> Vec<String> {
        self.accepting.store(false, SeqCst);
        self.pool.shutdown();
        self.control.shutdown();
        let mut left = Vec::new();
        while let Some(job) = self.inner.queue.pop() {
            left.push(job.id);
        }
        left
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.accepting.store(false, SeqCst);
        self.pool.shutdown();
    }
}

/// The change an exit makes.
fn exited(exit: Exit) -> Change {
    Change::Exited {
        code: exit.code,
        at: exit.at.map(Timestamp),
    }
}

/// Whether the engine counts a live shim for this record: one was launched (the record
/// got past `creating`) and it has not been deleted or failed since.
fn holds_shim(r: &Record) -> bool {
    matches!(
        r.state,
        State::Created | State::Running | State::Paused | State::Stopped
    )
}

impl Inner {
    fn lookup(&self, id: &str) -> Option<Arc<Mutex<Record>>> {
        self.records.read().get(id).cloned()
    }

    /// A worker's whole job: dequeue, launch, record the outcome. Never panics out.
    fn run(&self, job: Job) {
        // Everything logged about this start (the launcher's too) names the container.
        let _span = tracing::info_span!("container", id = %job.id).entered();
        let Some(rec) = self.lookup(&job.id) else {
            return; // deleted while queued
        };
        {
            let mut g = rec.lock();
            if g.state != State::Queued {
                return; // cancelled or already handled
            }
            if self.apply_locked(&mut g, Change::Dequeued).is_err() {
                return;
            }
        }
        metrics::histogram!(m::QUEUE_WAIT).record(job.queued_at.elapsed().as_secs_f64());
        let began = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.launcher.launch(&job)))
            .unwrap_or_else(|_| Err(LaunchError::new("panic", "the launcher panicked")));
        let mut g = rec.lock();
        match outcome {
            Ok(l) => {
                self.live_shims.fetch_add(1, SeqCst);
                metrics::gauge!(m::LIVE_SHIMS).increment(1.0);
                metrics::counter!(m::STARTS).increment(1);
                metrics::histogram!(m::START_LATENCY).record(began.elapsed().as_secs_f64());
                // Created, started (and maybe exited already): each is announced, but
                // only where the launch left the record is written, once — a daemon
                // that dies in between finds it `creating` and asks the shim.
                if g.state == State::Creating {
                    let shim_pid = (l.shim_pid > 0).then_some(l.shim_pid);
                    let _ = self.apply_unsaved(
                        &mut g,
                        Change::Created {
                            pid: l.pid,
                            shim_pid,
                            cgroups: l.cgroups.clone(),
                        },
                    );
                } else {
                    if l.shim_pid > 0 && g.shim_pid.is_none() {
                        g.shim_pid = Some(l.shim_pid);
                    }
                    if g.cgroups.is_none() {
                        g.cgroups = l.cgroups.clone();
                    }
                }
                if l.started && g.state == State::Created {
                    let _ = self.apply_unsaved(&mut g, Change::Started);
                }
                if let (Some(exit), State::Running) = (l.exited, g.state) {
                    let _ = self.apply_unsaved(&mut g, exited(exit));
                }
                self.save(&g);
                drop(g);
                // Only now: its events must find the record as the launch left it.
                if let Some(follow) = l.follow {
                    self.launcher.watch(&job.id, follow);
                }
            }
            Err(e) => {
                tracing::warn!(id = %job.id, reason = e.kind, error = %e, "start failed");
                metrics::counter!(m::FAILURES, "reason" => e.kind).increment(1);
                if !g.state.is_final() {
                    let _ = self.apply_locked(&mut g, Change::Failed { reason: e.message });
                }
            }
        }
    }

    /// Apply, announce, persist — with the record's lock held by the caller.
    fn apply_locked(&self, rec: &mut Record, change: Change) -> Result<(), IllegalTransition> {
        self.apply_unsaved(rec, change)?;
        self.save(rec);
        Ok(())
    }

    /// Apply and announce, leaving the write to the caller ([`Engine::save`]).
    fn apply_unsaved(&self, rec: &mut Record, change: Change) -> Result<(), IllegalTransition> {
        let now = Timestamp::now();
        let had_shim =
            rec.shim_pid.is_some() || rec.state.has_shim() && rec.state != State::Creating;
        let from = rec.apply(change, now)?;
        self.count(Some(from), rec.state);
        if had_shim && matches!(rec.state, State::Deleted | State::Failed) {
            self.live_shims.fetch_sub(1, SeqCst);
            metrics::gauge!(m::LIVE_SHIMS).decrement(1.0);
        }
        rec.seq = self.bus.publish(EventKind::State, Some(from), rec, now);
        if rec.state == State::Deleted {
            self.records.write().remove(&rec.id);
            self.count(Some(State::Deleted), State::Deleted);
        }
        Ok(())
    }

    /// Publish the event and write the record.
    fn announce(&self, rec: &mut Record, kind: EventKind, previous: Option<State>, at: Timestamp) {
        rec.seq = self.bus.publish(kind, previous, rec, at);
        self.save(rec);
    }

    /// Write the record (or remove it once deleted).
    fn save(&self, rec: &Record) {
        let Some(store) = &self.store else { return };
        let res = if rec.state == State::Deleted {
            store.remove(&rec.id)
        } else {
            store.save(rec)
        };
        if let Err(e) = res {
            metrics::counter!(m::PERSIST_ERRORS).increment(1);
            tracing::error!(id = %rec.id, error = %e, "cannot persist the container's state");
        }
    }

    /// Move one container between state counts (`from == to == Deleted` forgets it).
    fn count(&self, from: Option<State>, to: State) {
        if let Some(f) = from {
            let n = self.counts[f.index()].fetch_sub(1, SeqCst) - 1;
            metrics::gauge!(m::CONTAINERS, "state" => f.as_str()).set(n as f64);
        }
        if from == Some(State::Deleted) && to == State::Deleted {
            return;
        }
        let n = self.counts[to.index()].fetch_add(1, SeqCst) + 1;
        metrics::gauge!(m::CONTAINERS, "state" => to.as_str()).set(n as f64);
    }

    /// Load the state directory; returns the jobs to queue again.
    fn recover(&self) -> Vec<(Job, Arc<Mutex<Record>>)> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let Loaded { records, errors } = store.load_all();
        for e in errors {
            tracing::warn!(error = %e, "skipping an unreadable container record");
        }
        let mut requeue = Vec::new();
        let mut map = self.records.write();
        for r in records {
            self.count(None, r.state);
            if holds_shim(&r) {
                self.live_shims.fetch_add(1, SeqCst);
                metrics::gauge!(m::LIVE_SHIMS).increment(1.0);
            }
            let queued = r.state == State::Queued;
            let (id, spec) = (r.id.clone(), Arc::clone(&r.spec));
            let rec = Arc::new(Mutex::new(r));
            if queued {
                requeue.push((Job::new(spec), Arc::clone(&rec)));
            }
            map.insert(id, rec);
        }
        requeue
    }

    fn change(&self, rec: &Arc<Mutex<Record>>, change: Change) {
        let mut g = rec.lock();
        if let Err(e) = self.apply_locked(&mut g, change) {
            tracing::warn!(error = %e, "recovery change refused");
        }
    }
}
