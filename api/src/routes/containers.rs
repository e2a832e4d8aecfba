//! `/v1/containers`: create, list, inspect, kill and delete containers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::runtime::shim::protocol::Request as ShimRequest;
use berth_engine::{ContainerSpec, ControlError, Item, Record, SpecSource, State};
use hyper::StatusCode;
use serde::Deserialize;

use super::{json, ApiError, App, Query, Reply};

/// How long `?wait=running` waits by default, and at most.
const WAIT_DEFAULT: Duration = Duration::from_secs(60);
const WAIT_MAX: Duration = Duration::from_secs(300);
/// How long a control request (kill, delete) may wait for the shim.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a forced delete waits for the container to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Body of `POST /v1/containers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Container id; generated if absent.
    pub id: Option<String>,
    /// Absolute path of an OCI bundle (or give `spec` and `rootfs`).
    pub bundle: Option<PathBuf>,
    /// An inline OCI runtime spec (its `root.path` is replaced by `rootfs`).
    pub spec: Option<Box<oci_spec::runtime::Spec>>,
    /// Absolute path of the root filesystem of an inline `spec`.
    pub rootfs: Option<PathBuf>,
    /// An external OCI runtime binary (absolute path); default: the daemon's.
    pub runtime: Option<PathBuf>,
    /// Start once created (default true).
    pub start: Option<bool>,
}

/// Body of `POST /v1/containers/{id}/kill`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// Signal name (`"KILL"`, `"SIGTERM"`) or number; default TERM.
    pub signal: Option<SignalArg>,
    /// Signal every process of the container, not only its init.
    #[serde(default)]
    pub all: bool,
}

/// A signal by name or number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SignalArg {
    /// A number.
    Number(i64),
    /// A name (or a number as a string).
    Name(String),
}

/// A fresh container id: 16 random hex digits.
pub fn generate_id() -> String {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        buf = (nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32)).to_be_bytes();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a create that waits is done waiting.
fn settled(state: State, start: bool) -> bool {
    match state {
        State::Queued | State::Creating => false,
        State::Created => !start,
        State::Running | State::Paused | State::Stopped | State::Deleted | State::Failed => true,
    }
}

/// Run blocking engine work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a worker task failed: {e}")))?
}

/// `POST /v1/containers[?wait=running[&timeout=SECS]]`.
pub async fn create(app: &Arc<App>, body: CreateRequest, query: &Query) -> Reply {
    let wait = match query.get("wait") {
        None => false,
        Some("running") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("wait={other:?}: the only value is \"running\""),
            ))
        }
    };
    let timeout = match query.get("timeout") {
        None => WAIT_DEFAULT,
        Some(t) => t
            .parse::<u64>()
            .map(|s| Duration::from_secs(s).min(WAIT_MAX))
            .map_err(|_| {
                ApiError::bad_request("bad_query", format!("timeout={t:?}: expected seconds"))
            })?,
    };
    let source = match (body.bundle, body.spec, body.rootfs) {
        (Some(bundle), None, None) => SpecSource::Bundle(bundle),
        (None, Some(spec), Some(rootfs)) => SpecSource::Inline { spec, rootfs },
        (None, Some(_), None) => {
            return Err(ApiError::invalid(
                "invalid_spec",
                "an inline spec needs rootfs (absolute path of its root filesystem)",
            ))
        }
        (None, None, _) => {
            return Err(ApiError::invalid(
                "invalid_spec",
                "give bundle (absolute path of an OCI bundle), or spec and rootfs",
            ))
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_spec",
                "give either bundle, or spec and rootfs, not both",
            ))
        }
    };
    let id = body.id.unwrap_or_else(generate_id);
    let start = body.start.unwrap_or(true);
    let spec = ContainerSpec {
        id: id.clone(),
        source,
        runtime: body.runtime,
        start,
    };
    let engine = Arc::clone(&app.engine);
    let (record, code) = blocking(move || {
        let mut sub = wait.then(|| engine.subscribe());
        let record = engine.submit(spec)?;
        let Some(sub) = sub.as_mut() else {
            return Ok((record, StatusCode::ACCEPTED));
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = engine.get(&id) {
                if settled(r.state, start) {
                    return Ok((r, StatusCode::OK));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match sub.recv_timeout(left) {
                Some(Item::Event(e)) if e.id == id && settled(e.state, start) => {
                    let r = engine.get(&id);
                    return Ok((r.unwrap_or(record), StatusCode::OK));
                }
                Some(_) => {}
                None => {}
            }
        }
        Ok((engine.get(&id).unwrap_or(record), StatusCode::ACCEPTED))
    })
    .await?;
    json(code, &record)
}

/// `GET /v1/containers[?state=STATE]`.
pub fn list(app: &App, query: &Query) -> Reply {
    let filter = match query.get("state") {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<State>(serde_json::Value::String(s.to_owned())).map_err(
                |_| {
                    let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::bad_request(
                        "bad_query",
                        format!("state={s:?}: expected one of {}", names.join(", ")),
                    )
                },
            )?,
        ),
    };
    let mut records: Vec<Record> = app
        .engine
        .list()
        .into_iter()
        .filter(|r| filter.is_none_or(|f| r.state == f))
        .collect();
    records.sort_by(|a, b| (a.timestamps.queued, &a.id).cmp(&(b.timestamps.queued, &b.id)));
    json(
        StatusCode::OK,
        &serde_json::json!({ "containers": records }),
    )
}

/// The record of `id`, or 404.
fn record(app: &App, id: &str) -> Result<Record, ApiError> {
    app.engine
        .get(id)
        .ok_or_else(|| ApiError::not_found("not_found", format!("no container {id}")))
}

/// `GET /v1/containers/{id}`.
pub fn get(app: &App, id: &str) -> Reply {
    json(StatusCode::OK, &record(app, id)?)
}

/// `POST /v1/containers/{id}/kill`: signal the container; its exit follows as a state
/// change.
pub async fn kill(app: &Arc<App>, id: &str, body: KillRequest) -> Reply {
    let signal = match body.signal {
        None => Ok(15),
        Some(SignalArg::Number(n)) => crate::signal::number(n),
        Some(SignalArg::Name(name)) => crate::signal::parse(&name),
    }
    .map_err(|m| ApiError::invalid("invalid_signal", m))?;
    let current = record(app, id)?;
    if !matches!(
        current.state,
        State::Created | State::Running | State::Paused
    ) {
        return Err(ApiError::conflict(format!(
            "container {id} is {}; only a created, running or paused container can be signalled",
            current.state.as_str()
        )));
    }
    let engine = Arc::clone(&app.engine);
    let owned = id.to_owned();
    blocking(move || {
        engine
            .control(
                &owned,
                ShimRequest::Kill {
                    signal,
                    all: body.all,
                },
                CONTROL_TIMEOUT,
            )
            .map_err(ApiError::from)
    })
    .await?;
    json(StatusCode::ACCEPTED, &record(app, id)?)
}

/// `DELETE /v1/containers/{id}[?force=true]`: remove the container (its shim removes
/// its runtime state and cgroup) and forget it. A live container needs `force`.
pub async fn delete(app: &Arc<App>, id: &str, query: &Query) -> Reply {
    let force = query.flag("force")?;
    let current = record(app, id)?;
    let engine = Arc::clone(&app.engine);
    let id = id.to_owned();
    match current.state {
        State::Queued | State::Deleted => {}
        State::Creating => {
            return Err(ApiError::conflict(format!(
                "container {id} is being created; retry once it is running or failed"
            )))
        }
        State::Created | State::Running | State::Paused if !force => {
            return Err(ApiError::conflict(format!(
                "container {id} is {}; stop it first or use ?force=true",
                current.state.as_str()
            )))
        }
        live @ (State::Created
        | State::Running
        | State::Paused
        | State::Stopped
        | State::Failed) => {
            let engine = Arc::clone(&engine);
            let id = id.clone();
            blocking(move || {
                let request = ShimRequest::Delete {
                    force: live != State::Stopped,
                };
                match engine.control(&id, request, CONTROL_TIMEOUT) {
                    Ok(_) => {}
                    // A failed container's shim is usually gone already.
                    Err(ControlError::Shim { ref error, .. })
                        if live == State::Failed || error.kind == "shim_gone" => {}
                    Err(e) => return Err(e.into()),
                }
                // The exit arrives from the shim as an event: wait for it.
                let deadline = Instant::now() + STOP_TIMEOUT;
                loop {
                    match engine.get(&id).map(|r| r.state) {
                        None | Some(State::Stopped | State::Failed | State::Deleted) => {
                            return Ok(())
                        }
                        Some(_) if Instant::now() >= deadline => {
                            return Err(ApiError::new(
                                StatusCode::GATEWAY_TIMEOUT,
                                "stop_timeout",
                                format!("container {id} did not stop in time"),
                            ))
                        }
                        Some(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .await?;
        }
    }
    match engine.delete(&id) {
        Ok(_) | Err(berth_engine::ChangeError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut resp = json(StatusCode::NO_CONTENT, &())?;
    *resp.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
    resp.headers_mut().remove(hyper::header::CONTENT_TYPE);
    Ok(resp)
}

/// `POST /v1/containers/{id}/start|pause|resume`.
pub async fn action(app: &Arc<App>, id: &str, action: &str) -> Reply {
    let current = record(app, id)?;
    let (request, from) = match action {
        "start" => (ShimRequest::Start, State::Created),
        "pause" => (ShimRequest::Pause, State::Running),
        _ => (ShimRequest::Resume, State::Paused),
    };
    if current.state != from {
        return Err(ApiError::conflict(format!(
            "container {id} is {}; only a {} container can be {action}{}",
            current.state.as_str(),
            from.as_str(),
            if action == "start" { "ed" } else { "d" },
        )));
    }
    let engine = Arc::clone(&app.engine);
    let owned = id.to_owned();
    blocking(move || {
        engine
            .control(&owned, request, CONTROL_TIMEOUT)
            .map_err(ApiError::from)
    })
    .await?;
    // Pause and resume are applied once the shim confirms; a start follows from the
    // shim's `started` event.
    let status = if action == "start" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    json(status, &record(app, id)?)
}

/// `GET /v1/containers/{id}/stats`: the container's cgroup usage (CPU, memory, pids,
/// block I/O), shaped like runc's `events --stats` data.
pub async fn stats(app: &Arc<App>, id: &str) -> Reply {
    let current = record(app, id)?;
    if !matches!(
        current.state,
        State::Created | State::Running | State::Paused
    ) {
        return Err(ApiError::conflict(format!(
            "container {id} is {}; stats exist for a created, running or paused container",
            current.state.as_str()
        )));
    }
    let engine = Arc::clone(&app.engine);
    let owned = id.to_owned();
    let reply = blocking(move || {
        engine
            .control(&owned, ShimRequest::Stats, CONTROL_TIMEOUT)
            .map_err(ApiError::from)
    })
    .await?;
    match reply {
        berth_engine::runtime::shim::protocol::Message::Stats(stats) => {
            json(StatusCode::OK, &stats)
        }
        other => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "shim_error",
            format!("container {id}: the shim answered {other:?} to a stats request"),
        )),
    }
}

/// `GET /v1/containers/{id}/logs[?tail=N]`: the container's stdout and stderr as the
/// shim kept them (the rotated `.1` part first), the last `N` lines with `tail`.
pub async fn logs(app: &Arc<App>, id: &str, query: &Query) -> Reply {
    let tail = match query.get("tail") {
        None => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| {
            ApiError::bad_request("bad_query", format!("tail={t:?}: expected a line count"))
        })?),
    };
    record(app, id)?;
    let shim = app
        .shim
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no_logs", "this daemon keeps no logs"))?;
    let log = shim.shim_dir(id).join("container.log");
    let text = blocking(move || {
        let mut text = std::fs::read(log.with_extension("log.1")).unwrap_or_default();
        match std::fs::read(&log) {
            Ok(t) => text.extend_from_slice(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ApiError::internal(format!("reading the log: {e}"))),
        }
        Ok(text)
    })
    .await?;
    let text = match tail {
        None => text,
        Some(n) => last_lines(&text, n).to_vec(),
    };
    let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

/// The last `n` lines of `text` (a final line without a newline counts).
fn last_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 1), b"c");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let (a, b) = (generate_id(), generate_id());
        assert_ne!(a, b);
        berth_engine::engine::validate_id(&a).unwrap();
    }
}
