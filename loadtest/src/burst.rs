//! The burst itself: C clients fire N creates while the event stream says which
//! containers run; ends when every one is running or failed, or on a deadline, a
//! signal, or the daemon's death.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::api::{self, Created};
use crate::bundle::CreateTemplate;
use crate::client::Conn;
use crate::error::Error;
use crate::events::{Follower, Line, Notice};
use crate::progress::{Mode, Progress, Snapshot};

/// How often the progress and the daemon's liveness are looked at.
const TICK: Duration = Duration::from_millis(100);
/// Without any news for this long, the records are read to catch up.
const STALL: Duration = Duration::from_secs(3);

/// What to fire.
pub struct Plan {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// Every container id of the run starts with this.
    pub prefix: String,
    /// Parent of every container's cgroup path.
    pub cgroup_parent: String,
    /// How many containers.
    pub containers: usize,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Creates per batch request, or single creates.
    pub batch: Option<usize>,
    /// The create body.
    pub template: CreateTemplate,
}

impl Plan {
    /// The run id (the middle of the prefix `lt-<run>-`).
    pub fn run(&self) -> &str {
        self.prefix.trim_start_matches("lt-").trim_end_matches('-')
    }

    /// The id of container `i`.
    pub fn id(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        id.strip_prefix(&self.prefix)?
            .parse()
            .ok()
            .filter(|&i| i < self.containers)
    }

    fn body(&self, i: usize) -> String {
        let id = self.id(i);
        // The host port with --publish (the CLI keeps the index within u16).
        let port = u16::try_from(i)
            .ok()
            .and_then(|i| i.checked_add(crate::cli::PUBLISH_BASE))
            .unwrap_or(0);
        self.template
            .body(&id, &format!("{}/{id}", self.cgroup_parent), port)
    }
}

/// What the harness knows of one container.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// When its create request was sent.
    pub sent: Option<SystemTime>,
    /// Last state seen.
    pub state: String,
    /// When it was running (the event's `at`, or the record's `started`).
    pub running: Option<SystemTime>,
    /// Host pid of its init.
    pub pid: Option<i32>,
    /// Why it did not start.
    pub failed: Option<String>,
}

impl Track {
    fn settled(&self) -> bool {
        self.running.is_some() || self.failed.is_some()
    }
}

/// The burst's result, also when it was cut short.
pub struct Outcome {
    /// Just before the first request.
    pub t0: SystemTime,
    /// One per container, by index.
    pub tracks: Vec<Track>,
    /// When the last create was answered.
    pub last_answer: Option<SystemTime>,
    /// Why the burst stopped early (the tracks say how far it got).
    pub stopped_by: Option<Error>,
}

/// One create's answer, from a client task.
struct Fired {
    index: usize,
    sent: SystemTime,
    result: Result<(), String>,
}

/// Fire the burst and follow it. `daemon_gone` says how the daemon ended if it did.
pub async fn run(
    plan: Arc<Plan>,
    mut follower: Follower,
    deadline: Instant,
    mut cancel: watch::Receiver<Option<&'static str>>,
    daemon_gone: &mut dyn FnMut() -> Option<String>,
    progress: Mode,
) -> Outcome {
    let n = plan.containers;
    let mut tracks = vec![Track::default(); n];
    let mut settled = 0usize;
    let (tx, mut fired) = mpsc::unbounded_channel::<Fired>();
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = SystemTime::now();
    let clients: Vec<_> = (0..plan.concurrency.min(n))
        .map(|_| tokio::spawn(client(Arc::clone(&plan), Arc::clone(&next), tx.clone())))
        .collect();
    drop(tx);
    let _abort = AbortOnDrop(clients);

    let mut shown = Progress::new(progress, n);
    let mut answered = 0usize;
    let mut last_answer = None;
    let mut conn = Conn::new(&plan.socket);
    let mut last_news = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    let mut stopped_by = None;
    let mut events_open = true;

    while settled < n {
        tokio::select! {
            f = fired.recv(), if answered < n => {
                let Some(f) = f else { answered = n; continue };
                answered += 1;
                last_answer = Some(SystemTime::now());
                let t = &mut tracks[f.index];
                t.sent = Some(f.sent);
                if let Err(reason) = f.result {
                    if !t.settled() {
                        t.failed = Some(reason);
                        settled += 1;
                    }
                }
                last_news = Instant::now();
            }
            notice = follower.rx.recv(), if events_open => match notice {
                Some(Notice::Line(Line::Event(e))) => {
                    if let Some(i) = plan.index_of(&e.id) {
                        let t = &mut tracks[i];
                        let was = t.settled();
                        t.state.clone_from(&e.state);
                        match e.state.as_str() {
                            "running" if t.running.is_none() && t.failed.is_none() => {
                                t.running = Some(e.when().unwrap_or_else(SystemTime::now));
                                t.pid = e.pid;
                            }
                            "failed" if !was => {
                                t.failed = Some(e.error.clone().unwrap_or_else(|| "failed".into()));
                            }
                            "stopped" if !was => {
                                t.failed = Some(format!(
                                    "exited (status {}) before it was seen running",
                                    e.exit_code.map_or("?".into(), |c| c.to_string())
                                ));
                            }
                            _ => {}
                        }
                        if !was && t.settled() {
                            settled += 1;
                        }
                        last_news = Instant::now();
                    }
                }
                Some(Notice::Line(Line::Lagged {})) => {
                    settled = reconcile(&plan, &mut conn, &mut tracks).await.unwrap_or(settled);
                }
                Some(Notice::Ended(why)) => {
                    stopped_by = Some(Error::Daemon(match daemon_gone() {
                        Some(how) => format!("died mid-run ({how}); {why}"),
                        None => format!("{why} mid-run"),
                    }));
                    break;
                }
                None => events_open = false,
            },
            _ = tick.tick() => {
                if let Some(how) = daemon_gone() {
                    stopped_by = Some(Error::Daemon(format!("died mid-run ({how})")));
                    break;
                }
                shown.show(&Snapshot {
                    settled,
                    total: n,
                    answered,
                    running: tracks.iter().filter(|t| t.running.is_some()).count(),
                    seconds: t0.elapsed().unwrap_or_default().as_secs_f64(),
                });
                if last_news.elapsed() > STALL {
                    last_news = Instant::now();
                    if let Ok(s) = reconcile(&plan, &mut conn, &mut tracks).await {
                        settled = s;
                    }
                }
            }
            changed = cancel.changed() => {
                if changed.is_ok() {
                    if let Some(sig) = *cancel.borrow() {
                        stopped_by = Some(Error::Interrupted(sig));
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let secs = t0.elapsed().unwrap_or_default().as_secs();
                for t in tracks.iter_mut().filter(|t| !t.settled()) {
                    let state = if t.state.is_empty() { "unanswered" } else { t.state.as_str() };
                    t.failed = Some(format!("timeout: still {state} after {secs} s"));
                }
                stopped_by = Some(Error::Timeout(secs));
                break;
            }
        }
    }
    shown.finish();
    Outcome {
        t0,
        tracks,
        last_answer,
        stopped_by,
    }
}

/// Catch up from the records (after lost events, or when nothing happens); returns
/// how many containers are settled.
async fn reconcile(plan: &Plan, conn: &mut Conn, tracks: &mut [Track]) -> Result<usize, Error> {
    for r in api::records(conn, &plan.prefix).await? {
        let Some(i) = plan.index_of(&r.id) else {
            continue;
        };
        let t = &mut tracks[i];
        if t.settled() {
            continue;
        }
        t.state.clone_from(&r.state);
        match r.state.as_str() {
            "running" | "paused" => {
                t.running = api::instant(&r.timestamps.started).or(Some(SystemTime::now()));
                t.pid = r.pid;
            }
            "failed" => t.failed = Some(r.error.unwrap_or_else(|| "failed".into())),
            "stopped" => {
                t.failed = Some(format!(
                    "exited (status {}) before it was seen running",
                    r.exit_code.map_or("?".into(), |c| c.to_string())
                ))
            }
            _ => {}
        }
    }
    Ok(tracks.iter().filter(|t| t.settled()).count())
}

/// One concurrent client: takes the next container (or batch) until none is left.
async fn client(plan: Arc<Plan>, next: Arc<AtomicUsize>, tx: mpsc::UnboundedSender<Fired>) {
    let mut conn = Conn::new(&plan.socket);
    let step = plan.batch.unwrap_or(1);
    loop {
        let first = next.fetch_add(step, Ordering::Relaxed);
        if first >= plan.containers {
            return;
        }
        let mut pending: Vec<usize> = (first..(first + step).min(plan.containers)).collect();
        while !pending.is_empty() {
            let sent = SystemTime::now();
            let results: Vec<Result<Created, String>> = if plan.batch.is_some() {
                let ids: Vec<String> = pending.iter().map(|&i| plan.id(i)).collect();
                let bodies: Vec<String> = pending.iter().map(|&i| plan.body(i)).collect();
                match api::create_batch(&mut conn, &ids, &bodies).await {
                    Ok(r) => r.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e.to_string()); pending.len()],
                }
            } else {
                vec![api::create(&mut conn, plan.body(pending[0]))
                    .await
                    .map_err(|e| e.to_string())]
            };
            let mut busy = Vec::new();
            let mut wait = 0;
            for (&index, r) in pending.iter().zip(results) {
                let result = match r {
                    Ok(Created::Accepted) => Ok(()),
                    Ok(Created::Busy(secs)) => {
                        busy.push(index);
                        wait = wait.max(secs);
                        continue;
                    }
                    Ok(Created::Refused(why)) => Err(why),
                    Err(e) => Err(e),
                };
                if tx
                    .send(Fired {
                        index,
                        sent,
                        result,
                    })
                    .is_err()
                {
                    return;
                }
            }
            pending = busy;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
            }
        }
    }
}

/// Aborts the client tasks when the burst ends early.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
