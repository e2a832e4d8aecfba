//! `/v1/containers`: create, list, inspect, kill and delete containers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{
    ContainerSpec, ControlError, Engine, ImageRun, PullPolicy, Record, SpecSource, State,
};
use hyper::StatusCode;
use serde::Deserialize;

use super::integer::JsonInt;
use super::{blocking, json, ApiError, App, Query, Reply};

/// How long `?wait=running` waits by default, and at most.
const WAIT_DEFAULT: Duration = Duration::from_secs(60);
const WAIT_MAX: Duration = Duration::from_secs(300);
/// How long a control request (kill, delete) may wait for the shim.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a delete waits for the shim to remove the container.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Body of `POST /v1/containers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Container id; generated if absent.
    pub id: Option<String>,
    /// Absolute path of an OCI bundle (or give `spec` and `rootfs`, or `image`).
    pub bundle: Option<PathBuf>,
    /// An image to run, as docker would (pulled first unless `pull` says otherwise).
    pub image: Option<String>,
    /// With `image`: replaces its entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// With `image`: replaces its command.
    pub args: Option<Vec<String>>,
    /// With `image`: `KEY=value` added to its environment.
    pub env: Option<Vec<String>>,
    /// With `image`: the working directory.
    pub workdir: Option<String>,
    /// With `image`: the user (`name`, `uid`, `name:group`, `uid:gid`).
    pub user: Option<String>,
    /// With `image`: `missing` (default), `never` or `always`.
    pub pull: Option<PullPolicy>,
    /// An inline OCI runtime spec (its `root.path` is replaced by `rootfs`).
    pub spec: Option<Box<oci_spec::runtime::Spec>>,
    /// Absolute path of the root filesystem of an inline `spec`.
    pub rootfs: Option<PathBuf>,
    /// An external OCI runtime binary (absolute path); default: the daemon's.
    pub runtime: Option<PathBuf>,
    /// Start once created (default true).
    pub start: Option<bool>,
    /// `none`, `host`, `container:<id>` or a network's name (`bridge`: the default
    /// network); default: the daemon's default network for an image, what the spec says
    /// otherwise.
    pub network: Option<berth_network::NetworkMode>,
    /// Ports to publish (on a network).
    pub ports: Option<Vec<PortRequest>>,
}

/// One port to publish, its integers taken as any JSON integer (out of range: 422).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRequest {
    /// The host address; none: all of them.
    pub host_ip: Option<std::net::IpAddr>,
    /// The host port; 0 or none: one the kernel picks.
    pub host_port: Option<JsonInt>,
    /// The container's port.
    pub container_port: JsonInt,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<berth_network::Protocol>,
}

impl PortRequest {
    fn into_mapping(self) -> Result<berth_network::PortMapping, ApiError> {
        let host_port = match self.host_port {
            Some(p) => p.within(0u16, u16::MAX, "host_port", "invalid_port")?,
            None => 0,
        };
        Ok(berth_network::PortMapping {
            host_ip: self.host_ip,
            host_port,
            container_port: self.container_port.within(
                1u16,
                u16::MAX,
                "container_port",
                "invalid_port",
            )?,
            protocol: self.protocol.unwrap_or(berth_network::Protocol::Tcp),
        })
    }
}

impl CreateRequest {
    /// The engine's form of this request (a generated id if none was given), or why
    /// it is unusable.
    pub fn into_spec(self) -> Result<ContainerSpec, ApiError> {
        let image_only = self.entrypoint.is_some()
            || self.args.is_some()
            || self.env.is_some()
            || self.workdir.is_some()
            || self.user.is_some()
            || self.pull.is_some();
        let source = match (self.bundle, self.spec, self.rootfs, self.image) {
            (None, None, None, Some(image)) => SpecSource::Image(ImageRun {
                image,
                entrypoint: self.entrypoint,
                args: self.args,
                env: self.env.unwrap_or_default(),
                workdir: self.workdir,
                user: self.user,
                pull: self.pull.unwrap_or_default(),
            }),
            _ if image_only => {
                return Err(ApiError::invalid(
                    "invalid_spec",
                    "entrypoint, args, env, workdir, user and pull go with image",
                ))
            }
            (_, _, _, Some(_)) => {
                return Err(ApiError::invalid(
                    "invalid_spec",
                    "give image, or bundle, or spec and rootfs: one of them",
                ))
            }
            (Some(bundle), None, None, None) => SpecSource::Bundle(bundle),
            (None, Some(spec), Some(rootfs), None) => SpecSource::Inline { spec, rootfs },
            (None, Some(_), None, None) => {
                return Err(ApiError::invalid(
                    "invalid_spec",
                    "an inline spec needs rootfs (absolute path of its root filesystem)",
                ))
            }
            (None, None, _, None) => {
                return Err(ApiError::invalid(
                    "invalid_spec",
                    "give image, bundle (absolute path of an OCI bundle), or spec and rootfs",
                ))
            }
            _ => {
                return Err(ApiError::invalid(
                    "invalid_spec",
                    "give either bundle, or spec and rootfs, not both",
                ))
            }
        };
        let ports = self
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(PortRequest::into_mapping)
            .collect::<Result<Vec<_>, _>>()?;
        let network = match (self.network, ports.is_empty()) {
            (None, true) => None,
            (mode, _) => Some(berth_network::NetworkRequest {
                mode: mode.unwrap_or(berth_network::NetworkMode::Network(
                    berth_network::config::DEFAULT_NETWORK.into(),
                )),
                ports,
            }),
        };
        Ok(ContainerSpec {
            id: self.id.unwrap_or_else(generate_id),
            source,
            runtime: self.runtime,
            start: self.start.unwrap_or(true),
            network,
        })
    }
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
#[derive(Debug)]
pub enum SignalArg {
    /// A number (any JSON integer; its range is checked after parsing: 422).
    Number(JsonInt),
    /// A name (or a number as a string).
    Name(String),
}

impl<'de> Deserialize<'de> for SignalArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(name) => Ok(SignalArg::Name(name)),
            serde_json::Value::Number(n) => JsonInt::of(&n)
                .map(SignalArg::Number)
                .ok_or_else(|| D::Error::custom(format!("signal: {n} is not an integer"))),
            other => Err(D::Error::custom(format!(
                "signal: expected a name or an integer, not {other}"
            ))),
        }
    }
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
    let spec = body.into_spec()?;
    if let SpecSource::Image(run) = &spec.source {
        image_available(app, run).await?;
    }
    let (id, start) = (spec.id.clone(), spec.start);
    let engine = Arc::clone(&app.engine);
    let (record, sub) = blocking(move || {
        // Subscribed first, so the start cannot be missed.
        let sub = wait.then(|| engine.subscribe());
        Ok((engine.submit(spec)?, sub))
    })
    .await?;
    let Some(mut sub) = sub else {
        return json(StatusCode::ACCEPTED, &record);
    };
    // Waiting costs this request a task, not a thread.
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(r) = app.engine.get(&id) {
            if settled(r.state, start) {
                return json(StatusCode::OK, &r);
            }
        }
        match tokio::time::timeout_at(deadline, sub.recv_async()).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    json(StatusCode::ACCEPTED, &app.engine.get(&id).unwrap_or(record))
}

/// Refuse at once what a worker would fail on later: a daemon without images, or an
/// image that is not here when the request says never to pull it.
async fn image_available(app: &App, run: &ImageRun) -> Result<(), ApiError> {
    let images = app.images.clone().ok_or_else(|| {
        ApiError::invalid("images_disabled", "this daemon was started without images")
    })?;
    if run.pull == PullPolicy::Never {
        let name = run.image.clone();
        blocking(move || images.get(&name).map(drop).map_err(ApiError::from)).await?;
    }
    Ok(())
}

/// Most records one page of `GET /v1/containers` holds, by default and at most.
const PAGE_DEFAULT: usize = 1000;
const PAGE_MAX: usize = 10_000;

/// `GET /v1/containers[?state=STATE][&limit=N][&after=CURSOR]`: records in the order
/// they were queued, a page at a time; `next` is the cursor of the following page
/// (`null` on the last). A cursor stays valid when containers come and go.
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
    let limit = match query.get("limit") {
        None => PAGE_DEFAULT,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=PAGE_MAX) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    format!("limit={l:?}: expected 1 to {PAGE_MAX}"),
                ))
            }
        },
    };
    let after = query.get("after").map(Cursor::parse).transpose()?;
    let mut records: Vec<(Cursor, Record)> = app
        .engine
        .list()
        .into_iter()
        .filter(|r| filter.is_none_or(|f| r.state == f))
        .map(|r| (Cursor::of(&r), r))
        .filter(|(c, _)| after.as_ref().is_none_or(|a| c > a))
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let next = (records.len() > limit).then(|| records[limit - 1].0.to_string());
    records.truncate(limit);
    let page: Vec<Record> = records.into_iter().map(|(_, r)| r).collect();
    json(
        StatusCode::OK,
        &serde_json::json!({ "containers": page, "next": next }),
    )
}

/// A position in the list: when the container was queued (ns since the epoch), then
/// its id; written `NANOS-ID`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor(u128, String);

impl Cursor {
    fn of(r: &Record) -> Self {
        let nanos = r
            .timestamps
            .queued
            .and_then(|t| t.0.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Cursor(nanos, r.id.clone())
    }

    fn parse(s: &str) -> Result<Self, ApiError> {
        s.split_once('-')
            .and_then(|(n, id)| Some(Cursor(n.parse().ok()?, id.to_owned())))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_query",
                    format!("after={s:?}: not a cursor (use `next` from the previous page)"),
                )
            })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// The record of `id`, or 404.
pub(crate) fn record(app: &App, id: &str) -> Result<Record, ApiError> {
    app.engine
        .get(id)
        .ok_or_else(|| ApiError::not_found("not_found", format!("no container {id}")))
}

/// `GET /v1/containers/{id}`.
pub fn get(app: &App, id: &str) -> Reply {
    let record = record(app, id)?;
    let attachment = app.networks.as_ref().and_then(|n| n.attachment(id));
    let Some(attachment) = attachment else {
        return json(StatusCode::OK, &record);
    };
    // Where the container is on its network (address, published ports), beside its record.
    let mut value = serde_json::to_value(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    value["network_attachment"] =
        serde_json::to_value(&attachment).map_err(|e| ApiError::internal(e.to_string()))?;
    json(StatusCode::OK, &value)
}

/// `POST /v1/containers/{id}/kill`: signal the container; its exit follows as a state
/// change.
pub async fn kill(app: &Arc<App>, id: &str, body: KillRequest) -> Reply {
    let signal = match body.signal {
        None => Ok(15),
        // Past i64 it is out of range all the same.
        Some(SignalArg::Number(n)) => {
            crate::signal::number(n.0.clamp(i64::MIN.into(), i64::MAX.into()) as i64)
        }
        Some(SignalArg::Name(name)) => crate::signal::parse(&name),
    }
    .map_err(|e| ApiError::invalid("invalid_signal", e.to_string()))?;
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
            .kill(&owned, signal, body.all, CONTROL_TIMEOUT)
            .map_err(ApiError::from)
    })
    .await?;
    json(StatusCode::ACCEPTED, &record(app, id)?)
}

/// `DELETE /v1/containers/{id}[?force=true]`: remove the container (its shim removes
/// its runtime state and cgroup) and forget it. A live container needs `force`.
pub async fn delete(app: &Arc<App>, id: &str, query: &Query) -> Reply {
    let force = query.flag("force")?;
    let engine = Arc::clone(&app.engine);
    let id = id.to_owned();
    blocking(move || Ok(engine.remove(&id, force, REMOVE_TIMEOUT)?)).await?;
    let mut resp = json(StatusCode::NO_CONTENT, &())?;
    *resp.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
    resp.headers_mut().remove(hyper::header::CONTENT_TYPE);
    Ok(resp)
}

/// `POST /v1/containers/{id}/start|pause|resume`.
pub async fn action(app: &Arc<App>, id: &str, action: &str) -> Reply {
    let current = record(app, id)?;
    type Op = fn(&Engine, &str, Duration) -> Result<(), ControlError>;
    let (op, from): (Op, State) = match action {
        "start" => (Engine::start, State::Created),
        "pause" => (Engine::pause, State::Running),
        _ => (Engine::resume, State::Paused),
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
    blocking(move || op(&engine, &owned, CONTROL_TIMEOUT).map_err(ApiError::from)).await?;
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
    let stats = blocking(move || {
        engine
            .container_stats(&owned, CONTROL_TIMEOUT)
            .map_err(ApiError::from)
    })
    .await?;
    json(StatusCode::OK, &stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order() {
        let c = Cursor(17, "a-b.c".into());
        assert_eq!(Cursor::parse(&c.to_string()).unwrap(), c);
        assert!(Cursor(17, "b".into()) > c);
        assert!(Cursor(18, "a".into()) > Cursor(17, "z".into()));
        assert!(Cursor::parse("x-y").is_err());
        assert!(Cursor::parse("12").is_err());
    }

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let (a, b) = (generate_id(), generate_id());
        assert_ne!(a, b);
        berth_engine::engine::validate_id(&a).unwrap();
    }
}
