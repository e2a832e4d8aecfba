//! Requests for live containers (kill, pause, resume, exec, stats, delete): jobs on a
//! lock-free queue of their own, served by a few control workers, so they never wait
//! behind a burst of starts and never block the caller's thread on a shim socket longer
//! than it asks to wait.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{bounded, Sender};

use crate::launcher::{LaunchError, Launcher, Op, Reply};
use crate::pool::{Handler, Pool, PoolError};
use crate::queue::Queue;

/// Control workers: control requests are short (one round trip to a shim).
pub const CONTROL_WORKERS: usize = 4;

/// One request for one container's shim, with where its reply goes.
pub struct ControlJob {
    /// The container.
    pub id: String,
    /// What to ask its shim.
    pub op: Op,
    reply: Sender<Result<Reply, LaunchError>>,
}

/// Why a control request did not get a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such container.
    #[error("no container {0}")]
    NotFound(String),
    /// The control queue is full.
    #[error("too many control requests queued ({0})")]
    QueueFull(usize),
    /// No reply in time.
    #[error("container {0}: its shim did not answer in time")]
    Timeout(String),
    /// The shim refused or could not be reached.
    #[error("container {id}: {error}")]
    Shim {
        /// The container.
        id: String,
        /// What went wrong.
        error: LaunchError,
    },
}

/// The control queue and its workers.
pub struct Control {
    queue: Arc<Queue<ControlJob>>,
    pool: Pool<ControlJob>,
}

impl Control {
    /// Start `workers` control workers over a queue of `capacity`, asking `launcher`.
    pub fn new(
        launcher: Arc<dyn Launcher>,
        workers: usize,
        capacity: usize,
    ) -> Result<Self, PoolError> {
        let queue = Arc::new(Queue::new(capacity));
        let handler: Handler<ControlJob> = Arc::new(move |job: ControlJob| {
            let reply = launcher.control(&job.id, job.op);
            // The asker may have stopped waiting; its loss.
            let _ = job.reply.send(reply);
        });
        let pool = Pool::with_gauge(Arc::clone(&queue), workers, handler, None)?;
        Ok(Control { queue, pool })
    }

    /// Queue `op` for `id`'s shim and wait up to `timeout` for the reply.
    pub fn request(&self, id: &str, op: Op, timeout: Duration) -> Result<Reply, ControlError> {
        let (tx, rx) = bounded(1);
        let job = ControlJob {
            id: id.to_owned(),
            op,
            reply: tx,
        };
        self.queue
            .push(job)
            .map_err(|full| ControlError::QueueFull(full.capacity))?;
        self.pool.notify();
        match rx.recv_timeout(timeout) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(ControlError::Shim {
                id: id.to_owned(),
                error,
            }),
            Err(_) => Err(ControlError::Timeout(id.to_owned())),
        }
    }

    /// Stop the control workers.
    pub fn shutdown(&self) {
        self.pool.shutdown();
    }
}
