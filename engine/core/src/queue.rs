//! The job queue: a bounded lock-free MPMC queue (crossbeam's `ArrayQueue`). Pushing
//! is a few atomic operations — never a lock, never a syscall — and a full queue is a
//! typed error the API turns into `429 Too Many Requests`.

use std::sync::Arc;
use std::time::Instant;

use crossbeam::queue::ArrayQueue;

use crate::record::ContainerSpec;

/// Default bound on queued jobs.
pub const DEFAULT_MAX_QUEUED: usize = 65_536;

/// One unit of work for a start worker: create (and by default start) a container.
#[derive(Debug, Clone)]
pub struct Job {
    /// Container id.
    pub id: String,
    /// What to run.
    pub spec: Arc<ContainerSpec>,
    /// When it was queued (monotonic, for the queue-wait histogram).
    pub queued_at: Instant,
}

impl Job {
    /// A job for `spec`, queued now.
    pub fn new(spec: Arc<ContainerSpec>) -> Self {
        Job {
            id: spec.id.clone(),
            spec,
            queued_at: Instant::now(),
        }
    }
}

/// The queue was full; the item is handed back.
#[derive(Debug, thiserror::Error)]
#[error("the start queue is full ({capacity} jobs waiting); retry later")]
pub struct QueueFull<T> {
    /// What could not be queued.
    pub item: T,
    /// The queue's bound.
    pub capacity: usize,
}

/// A bounded lock-free multi-producer multi-consumer FIFO.
#[derive(Debug)]
pub struct Queue<T> {
    inner: ArrayQueue<T>,
}

/// The engine's start queue.
pub type JobQueue = Queue<Job>;

impl<T> Queue<T> {
    /// A queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Queue {
            inner: ArrayQueue::new(capacity.max(1)),
        }
    }

    /// Append `item`, or hand it back if the queue is full. Never blocks.
    pub fn push(&self, item: T) -> Result<(), QueueFull<T>> {
        self.inner.push(item).map_err(|item| QueueFull {
            item,
            capacity: self.inner.capacity(),
        })
    }

    /// Take the oldest item, if any. Never blocks.
    pub fn pop(&self) -> Option<T> {
        self.inner.pop()
    }

    /// Items waiting now (a snapshot).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Nothing waits now (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_full_is_an_error_with_the_item_back() {
        let q = Queue::new(2);
        q.push(1).unwrap();
        q.push(2).unwrap();
        let full = q.push(3).unwrap_err();
        assert_eq!((full.item, full.capacity), (3, 2));
        assert!(full.to_string().contains("full"));
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(1), Some(2), None));
        assert!(q.is_empty());
    }

    #[test]
    fn many_producers_and_consumers_lose_nothing() {
        let q = Arc::new(Queue::new(1024));
        let total = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for p in 0..4u64 {
                let q = &q;
                s.spawn(move || {
                    for i in 0..10_000u64 {
                        let mut v = p * 1_000_000 + i;
                        while let Err(f) = q.push(v) {
                            v = f.item;
                            std::thread::yield_now();
                        }
                    }
                });
            }
            for _ in 0..4 {
                let (q, total) = (&q, &total);
                s.spawn(move || {
                    let mut got = 0;
                    while got < 10_000 {
                        match q.pop() {
                            Some(v) => {
                                total.fetch_add(v, std::sync::atomic::Ordering::Relaxed);
                                got += 1;
                            }
                            None => std::thread::yield_now(),
                        }
                    }
                });
            }
        });
        let want: u64 = (0..4u64)
            .map(|p| (0..10_000u64).map(|i| p * 1_000_000 + i).sum::<u64>())
            .sum();
        assert_eq!(total.into_inner(), want);
    }
}
