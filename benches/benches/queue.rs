//! The start queue under contention: crossbeam's lock-free `ArrayQueue` (as the engine
//! wraps it) and `SegQueue`, against a `Mutex<VecDeque>` baseline (std and
//! parking_lot), all bounded alike where the structure is bounded. P producer and C
//! consumer threads move `iters × BATCH` items; the time is from all threads released
//! to the last item popped. Throughput is per item.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use berth_engine::queue::Queue;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam::queue::SegQueue;

const CAPACITY: usize = 1024;
const BATCH: u64 = 1000;

/// A bounded MPMC queue, as the bench drives it.
trait Mpmc: Sync {
    fn try_push(&self, v: u64) -> bool;
    fn try_pop(&self) -> Option<u64>;
}

impl Mpmc for Queue<u64> {
    fn try_push(&self, v: u64) -> bool {
        self.push(v).is_ok()
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

struct Seg(SegQueue<u64>);
impl Mpmc for Seg {
    fn try_push(&self, v: u64) -> bool {
        self.0.push(v);
        true
    }
    fn try_pop(&self) -> Option<u64> {
        self.0.pop()
    }
}

struct StdMutex(Mutex<VecDeque<u64>>);
impl Mpmc for StdMutex {
    fn try_push(&self, v: u64) -> bool {
        let mut q = self.0.lock().unwrap();
        if q.len() >= CAPACITY {
            return false;
        }
        q.push_back(v);
        true
    }
    fn try_pop(&self) -> Option<u64> {
        self.0.lock().unwrap().pop_front()
    }
}

struct PlMutex(parking_lot::Mutex<VecDeque<u64>>);
impl Mpmc for PlMutex {
    fn try_push(&self, v: u64) -> bool {
        let mut q = self.0.lock();
        if q.len() >= CAPACITY {
            return false;
        }
        q.push_back(v);
        true
    }
    fn try_pop(&self) -> Option<u64> {
        self.0.lock().pop_front()
    }
}

/// Move `iters × BATCH` items through `q` with `p` producers and `c` consumers.
fn run<Q: Mpmc>(q: &Q, p: usize, c: usize, iters: u64) -> Duration {
    let total = iters * BATCH;
    let popped = AtomicU64::new(0);
    let start = Barrier::new(p + c + 1);
    let began = std::thread::scope(|s| {
        for t in 0..p as u64 {
            let (q, start) = (q, &start);
            s.spawn(move || {
                start.wait();
                // Producer t pushes its share (the first takes the remainder).
                let share = total / p as u64 + if t == 0 { total % p as u64 } else { 0 };
                for i in 0..share {
                    while !q.try_push(black_box(i)) {
                        std::hint::spin_loop();
                        std::thread::yield_now();
                    }
                }
            });
        }
        for _ in 0..c {
            let (q, start, popped) = (q, &start, &popped);
            s.spawn(move || {
                start.wait();
                loop {
                    if popped.load(Ordering::Relaxed) >= total {
                        return;
                    }
                    match q.try_pop() {
                        Some(v) => {
                            black_box(v);
                            popped.fetch_add(1, Ordering::Relaxed);
                        }
                        None => std::thread::yield_now(),
                    }
                }
            });
        }
        start.wait();
        Instant::now()
    });
    began.elapsed()
}

fn contention(c: &mut Criterion) {
    for (p, cons) in [(1, 1), (4, 4)] {
        let mut g = c.benchmark_group(format!("queue_{p}p{cons}c"));
        g.throughput(Throughput::Elements(BATCH));
        g.bench_function(BenchmarkId::from_parameter("crossbeam_array_queue"), |b| {
            b.iter_custom(|iters| run(&Queue::<u64>::new(CAPACITY), p, cons, iters))
        });
        g.bench_function(BenchmarkId::from_parameter("crossbeam_seg_queue"), |b| {
            b.iter_custom(|iters| run(&Seg(SegQueue::new()), p, cons, iters))
        });
        g.bench_function(BenchmarkId::from_parameter("std_mutex_vecdeque"), |b| {
            b.iter_custom(|iters| {
                run(
                    &StdMutex(Mutex::new(VecDeque::with_capacity(CAPACITY))),
                    p,
                    cons,
                    iters,
                )
            })
        });
        g.bench_function(
            BenchmarkId::from_parameter("parking_lot_mutex_vecdeque"),
            |b| {
                b.iter_custom(|iters| {
                    run(
                        &PlMutex(parking_lot::Mutex::new(VecDeque::with_capacity(CAPACITY))),
                        p,
                        cons,
                        iters,
                    )
                })
            },
        );
        g.finish();
    }
}

criterion_group!(benches, contention);
criterion_main!(benches);
