//! The start workers: N threads (10 by default, changeable while running) that take
//! jobs off the lock-free [`JobQueue`] and run them, at most N at once.
//!
//! Job data travels only on the queue. Idle workers block on a crossbeam channel that
//! carries nothing but wake-up tokens, so an idle pool costs no CPU: a producer sends a
//! token only when some worker is idle (the `idle` count and the queue are checked in
//! opposite orders by both sides with SeqCst fences, so no wake-up is lost).
//! In-flight jobs are counted with an atomic that a worker must raise below the target
//! before it pops; shrinking lets surplus workers exit after their current job.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam::channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::queue::{Job, Queue};

/// Default number of start workers.
pub const DEFAULT_WORKERS: usize = 10;
/// Largest pool accepted.
pub const MAX_WORKERS: usize = 1024;

/// What a worker does with a job. It must not panic (a panic is caught and the worker
/// goes on, but the job's record is then the handler's business).
pub type Handler<T = Job> = Arc<dyn Fn(T) + Send + Sync + 'static>;

/// A pool size outside 1..=MAX_WORKERS, or a pool that is shut down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The size asked for.
    #[error("the worker count must be between 1 and {MAX_WORKERS}, not {0}")]
    BadSize(usize),
    /// Shut down already.
    #[error("the worker pool is shut down")]
    ShutDown,
}

struct Shared<T> {
    queue: Arc<Queue<T>>,
    handler: Handler<T>,
    /// Workers wanted.
    target: AtomicUsize,
    /// Worker threads alive (may exceed `target` while surplus ones finish a job).
    live: AtomicUsize,
    /// Jobs being run now; never raised at or above `target`.
    in_flight: AtomicUsize,
    /// Workers parked or about to park.
    idle: AtomicUsize,
    shutting_down: AtomicBool,
    /// The gauge counting busy workers (the start pool's only).
    busy_gauge: Option<&'static str>,
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    stop_rx: Receiver<()>,
}

/// A worker pool: the start workers (`Pool<Job>`), or any other kind of job.
pub struct Pool<T: Send + 'static = Job> {
    shared: Arc<Shared<T>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop_tx: Mutex<Option<Sender<()>>>,
    next_id: AtomicUsize,
}

impl<T: Send + 'static> std::fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .field("live", &self.live())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl<T: Send + 'static> Pool<T> {
    /// Start `workers` threads that run jobs from `queue` through `handler`; the busy
    /// ones are counted in the busy-workers gauge.
    pub fn new(
        queue: Arc<Queue<T>>,
        workers: usize,
        handler: Handler<T>,
    ) -> Result<Self, PoolError> {
        Self::with_gauge(queue, workers, handler, Some(crate::metrics::BUSY_WORKERS))
    }

    /// Like [`Pool::new`], with busy workers counted in `busy_gauge` (or nowhere).
    pub fn with_gauge(
        queue: Arc<Queue<T>>,
        workers: usize,
        handler: Handler<T>,
        busy_gauge: Option<&'static str>,
    ) -> Result<Self, PoolError> {
        check_size(workers)?;
        let (wake_tx, wake_rx) = bounded(MAX_WORKERS);
        let (stop_tx, stop_rx) = bounded(0);
        let pool = Pool {
            shared: Arc::new(Shared {
                queue,
                handler,
                target: AtomicUsize::new(0),
                live: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                shutting_down: AtomicBool::new(false),
                busy_gauge,
                wake_tx,
                wake_rx,
                stop_rx,
            }),
            threads: Mutex::new(Vec::new()),
            stop_tx: Mutex::new(Some(stop_tx)),
            next_id: AtomicUsize::new(0),
        };
        pool.set_workers(workers)?;
        Ok(pool)
    }

    /// Tell the pool a job was pushed: wakes one idle worker if any. Call after every
    /// successful push.
    pub fn notify(&self) {
        fence(SeqCst);
        if self.shared.idle.load(SeqCst) > 0 {
            // Full means wake-ups are already pending; each leads to a drain of the queue.
            let _ = self.shared.wake_tx.try_send(());
        }
    }

    /// Change the number of workers. Growing spawns threads at once; shrinking lets the
    /// surplus exit after their current job (and never lets a new job start while more
    /// than `n` run).
    pub fn set_workers(&self, n: usize) -> Result<(), PoolError> {
        check_size(n)?;
        let mut threads = self.threads.lock();
        if self.shared.shutting_down.load(SeqCst) {
            return Err(PoolError::ShutDown);
        }
        threads.retain(|t| !t.is_finished());
        let s = &self.shared;
        s.target.store(n, SeqCst);
        let live = s.live.load(SeqCst);
        if n > live {
            for _ in live..n {
                s.live.fetch_add(1, SeqCst);
                let shared = Arc::clone(s);
                let id = self.next_id.fetch_add(1, SeqCst);
                let spawned = std::thread::Builder::new()
                    .name(format!("berth-start-{id}"))
                    .spawn(move || worker(shared));
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        s.live.fetch_sub(1, SeqCst);
                        tracing::error!(error = %e, "cannot spawn a start worker");
                        break;
                    }
                }
            }
            // New workers may be needed for jobs already waiting.
            for _ in 0..s.queue.len().min(n - live) {
                let _ = s.wake_tx.try_send(());
            }
        } else {
            // Wake idle surplus workers so they notice and exit.
            for _ in n..live {
                let _ = s.wake_tx.try_send(());
            }
        }
        metrics::gauge!(crate::metrics::WORKERS).set(n as f64);
        Ok(())
    }

    /// Workers wanted.
    pub fn workers(&self) -> usize {
        self.shared.target.load(SeqCst)
    }

    /// Worker threads alive now.
    pub fn live(&self) -> usize {
        self.shared.live.load(SeqCst)
    }

    /// Jobs running now (busy workers).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(SeqCst)
    }

    /// Workers parked now.
    pub fn idle(&self) -> usize {
        self.shared.idle.load(SeqCst)
    }

    /// Stop: idle workers exit at once, busy ones after their current job; jobs still
    /// queued stay in the queue. Blocks until every worker has exited.
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, SeqCst);
        drop(self.stop_tx.lock().take());
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

impl<T: Send + 'static> Drop for Pool<T> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn check_size(n: usize) -> Result<(), PoolError> {
    if (1..=MAX_WORKERS).contains(&n) {
        Ok(())
    } else {
        Err(PoolError::BadSize(n))
    }
}

fn worker<T: Send + 'static>(s: Arc<Shared<T>>) {
    loop {
        if s.shutting_down.load(SeqCst) || retire(&s) {
            break;
        }
        if !acquire_slot(&s) {
            park(&s);
            continue;
        }
        let Some(job) = s.queue.pop() else {
            release_slot(&s);
            park(&s);
            continue;
        };
        metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(s.queue.len() as f64);
        let handler = &s.handler;
        if catch_unwind(AssertUnwindSafe(|| handler(job))).is_err() {
            tracing::error!("a start job panicked; the worker goes on");
        }
        release_slot(&s);
    }
    if !s.shutting_down.load(SeqCst) {
        // Retired: `retire` already lowered `live`.
        return;
    }
    s.live.fetch_sub(1, SeqCst);
}

/// Leave if there are more workers than wanted (lowers `live` on the way out).
fn retire<T>(s: &Shared<T>) -> bool {
    let mut live = s.live.load(SeqCst);
    while live > s.target.load(SeqCst) {
        match s.live.compare_exchange(live, live - 1, SeqCst, SeqCst) {
            Ok(_) => return true,
            Err(now) => live = now,
        }
    }
    false
}

/// Take an in-flight slot if fewer than `target` jobs run.
fn acquire_slot<T>(s: &Shared<T>) -> bool {
    let mut cur = s.in_flight.load(SeqCst);
    loop {
        if cur >= s.target.load(SeqCst) {
            return false;
        }
        match s.in_flight.compare_exchange(cur, cur + 1, SeqCst, SeqCst) {
            Ok(_) => {
                // Increments, not sets: a value computed by one thread and set after
                // another's would leave the gauge stale.
                if let Some(name) = s.busy_gauge {
                    metrics::gauge!(name).increment(1.0);
                }
                return true;
            }
            Err(now) => cur = now,
        }
    }
}

fn release_slot<T>(s: &Shared<T>) {
    // The gauge first: whoever sees the slot free sees the gauge down too.
    if let Some(name) = s.busy_gauge {
        metrics::gauge!(name).decrement(1.0);
    }
    s.in_flight.fetch_sub(1, SeqCst);
}

/// Block until a wake-up token or shutdown, unless work (or retirement) is already due.
fn park<T>(s: &Shared<T>) {
    s.idle.fetch_add(1, SeqCst);
    fence(SeqCst);
    let due = !s.queue.is_empty() && s.in_flight.load(SeqCst) < s.target.load(SeqCst)
        || s.live.load(SeqCst) > s.target.load(SeqCst)
        || s.shutting_down.load(SeqCst);
    if !due {
        crossbeam::channel::select! {
            recv(s.wake_rx) -> _ => {}
            recv(s.stop_rx) -> _ => {}
        }
    }
    s.idle.fetch_sub(1, SeqCst);
}
