//! The engine's own cost per start job, with a launcher that does nothing: validate,
//! record, queue, wake a worker, dequeue, three state changes with their events (and,
//! in the `persisted_*` cases, their atomic writes under a state directory).
//! Each measured iteration is one job; the bench submits `iters` jobs back to back and
//! waits until the last one is running. Records are deleted afterwards, untimed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::{Change, Config, ContainerSpec, Engine, Job, LaunchError, Launched, Launcher};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Succeeds at once and counts.
#[derive(Default)]
struct Counting(AtomicU64);

impl Launcher for Counting {
    fn launch(&self, job: &Job) -> Result<Launched, LaunchError> {
        self.0.fetch_add(1, Ordering::Release);
        Ok(Launched {
            pid: 1,
            shim_pid: 0,
            cgroups: None,
            started: job.spec.start,
            exited: None,
            follow: None,
        })
    }
}

fn per_job(c: &mut Criterion) {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::write(bundle.path().join("config.json"), b"{}").unwrap();
    let mut g = c.benchmark_group("engine_per_job");
    g.throughput(Throughput::Elements(1));
    // The state directory on the root disk (ext4 here, where every replace-by-rename
    // costs ~1 ms) and on tmpfs (as /run usually is).
    let mut cases = vec![("memory", None), ("persisted_disk", Some("/tmp"))];
    if std::path::Path::new("/dev/shm").is_dir() {
        cases.push(("persisted_tmpfs", Some("/dev/shm")));
    }
    for (name, under) in cases {
        let state = tempfile::tempdir_in(under.unwrap_or("/tmp")).unwrap();
        let launcher = Arc::new(Counting::default());
        let engine = Engine::new(
            Config {
                workers: 10,
                max_queued: 1 << 20,
                state_dir: under.map(|_| state.path().to_owned()),
                ..Config::default()
            },
            Arc::clone(&launcher) as Arc<dyn Launcher>,
        )
        .unwrap();
        let mut next = 0u64;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let target = launcher.0.load(Ordering::Acquire) + iters;
                let first = next;
                let began = Instant::now();
                for _ in 0..iters {
                    let spec = ContainerSpec::bundle(format!("j{next}"), bundle.path());
                    next += 1;
                    engine.submit(spec).unwrap();
                }
                while launcher.0.load(Ordering::Acquire) < target
                    || engine.in_flight() > 0
                    || engine.queued_jobs() > 0
                {
                    std::thread::yield_now();
                }
                let took = began.elapsed();
                for i in first..next {
                    let id = format!("j{i}");
                    let _ = engine.apply(&id, Change::Exited { code: 0, at: None });
                    let _ = engine.delete(&id);
                }
                took
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = per_job
}
criterion_main!(benches);
