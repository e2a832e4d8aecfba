//! `POST /v1/containers/{id}/exec`: run one more process in a running container, as
//! `runc exec` does: the container's own process settings (user, capabilities, env,
//! limits, LSM profile) with the command, extra env, working directory and user given.
//! By default it waits for the process and answers with its exit code and output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::runtime::shim::protocol::{Message, Request as ShimRequest};
use berth_engine::{EventKind, Item, SpecSource, State};
use hyper::StatusCode;
use oci_spec::runtime::{Process, Spec, UserBuilder};
use serde::Deserialize;

use super::containers::{generate_id, record};
use super::{blocking, json, ApiError, App, Reply};

/// How long a waited exec may run by default, and at most.
const WAIT_DEFAULT: Duration = Duration::from_secs(60);
const WAIT_MAX: Duration = Duration::from_secs(600);
/// How long the shim may take to start the process.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most output (stdout and stderr together) a waited exec answers with.
const OUTPUT_MAX: u64 = 1 << 20;

/// Body of `POST /v1/containers/{id}/exec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries added to (or replacing in) the container's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory (absolute, inside the container); default: the container's.
    pub cwd: Option<String>,
    /// User to run as; default: the container's.
    pub user: Option<ExecUser>,
    /// Wait for the process and answer with its exit code and output (default true);
    /// otherwise answer at once, the output going to the container's log.
    pub wait: Option<bool>,
    /// How long to wait, in seconds (default 60, at most 600).
    pub timeout: Option<u64>,
}

/// A numeric user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// `POST /v1/containers/{id}/exec`.
pub async fn exec(app: &Arc<App>, id: &str, body: ExecRequest) -> Reply {
    if body.args.is_empty() || body.args[0].is_empty() {
        return Err(ApiError::invalid(
            "invalid_exec",
            "args must name the command to run",
        ));
    }
    if let Some(bad) = body
        .env
        .iter()
        .find(|e| !e.contains('=') || e.starts_with('='))
    {
        return Err(ApiError::invalid(
            "invalid_exec",
            format!("env entry {bad:?}: expected KEY=VALUE"),
        ));
    }
    if let Some(cwd) = body.cwd.as_deref().filter(|c| !c.starts_with('/')) {
        return Err(ApiError::invalid(
            "invalid_exec",
            format!("cwd {cwd:?}: expected an absolute path"),
        ));
    }
    let wait = body.wait.unwrap_or(true);
    let timeout = body
        .timeout
        .map_or(WAIT_DEFAULT, |s| Duration::from_secs(s).min(WAIT_MAX));
    let current = record(app, id)?;
    if current.state != State::Running {
        return Err(ApiError::conflict(format!(
            "container {id} is {}; only a running container can exec",
            current.state.as_str()
        )));
    }
    let output = match (&app.shim, wait) {
        (Some(shim), true) => Some(
            shim.shim_dir(id)
                .join(format!("exec-{}.out", generate_id())),
        ),
        _ => None,
    };
    let engine = Arc::clone(&app.engine);
    let id = id.to_owned();
    let owned = id.clone();
    let output_of_request = output.clone();
    let (pid, sub) = blocking(move || {
        let id = owned;
        let process = process_for(&current.spec.source, &id, body)?;
        // Subscribed first, so the exit cannot be missed.
        let sub = output_of_request.is_some().then(|| engine.subscribe());
        let request = ShimRequest::Exec {
            process: Box::new(process),
            output: output_of_request,
        };
        match engine.control(&id, request, CONTROL_TIMEOUT)? {
            Message::Exec { pid } => Ok((pid, sub)),
            Message::Error { message } => Err(ApiError::invalid(
                "exec_failed",
                format!("container {id}: {message}"),
            )),
            other => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "shim_error",
                format!("container {id}: the shim answered {other:?} to exec"),
            )),
        }
    })
    .await?;
    let (Some(mut sub), Some(output)) = (sub, output) else {
        return json(StatusCode::ACCEPTED, &serde_json::json!({ "pid": pid }));
    };
    // Waiting costs this request a task, not a thread.
    let deadline = tokio::time::Instant::now() + timeout;
    let code = loop {
        let item = match tokio::time::timeout_at(deadline, sub.recv_async()).await {
            Ok(Some(item)) => item,
            Ok(None) | Err(_) => {
                remove_output(&output);
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "exec_timeout",
                    format!(
                        "container {id}: the exec'd process (pid {pid}) still runs after {} s",
                        timeout.as_secs()
                    ),
                ));
            }
        };
        match item {
            Item::Event(e) if e.id == id && e.kind == EventKind::Exec && e.pid == Some(pid) => {
                break e.exit_code;
            }
            Item::Event(e)
                if e.id == id
                    && matches!(e.state, State::Stopped | State::Failed | State::Deleted) =>
            {
                // The container went away; the process went with it.
                break None;
            }
            _ => {}
        }
    };
    let (text, truncated) = blocking(move || {
        let read = read_output(&output);
        remove_output(&output);
        Ok(read)
    })
    .await?;
    json(
        StatusCode::OK,
        &serde_json::json!({
            "pid": pid,
            "exit_code": code,
            "output": text,
            "truncated": truncated,
        }),
    )
}

/// The container's process settings with the request's command, env, cwd and user.
fn process_for(source: &SpecSource, id: &str, body: ExecRequest) -> Result<Process, ApiError> {
    let spec = match source {
        SpecSource::Inline { spec, .. } => (**spec).clone(),
        SpecSource::Bundle(bundle) => {
            let path: PathBuf = bundle.join("config.json");
            Spec::load(&path).map_err(|e| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "bundle_changed",
                    format!("container {id}: reading {}: {e}", path.display()),
                )
            })?
        }
    };
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env = process.env().clone().unwrap_or_default();
    for entry in body.env {
        let key = entry.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    process.set_env(Some(env));
    process.set_args(Some(body.args));
    process.set_terminal(Some(false));
    process.set_console_size(None);
    if let Some(cwd) = body.cwd {
        process.set_cwd(cwd.into());
    }
    if let Some(user) = body.user {
        let user = UserBuilder::default()
            .uid(user.uid)
            .gid(user.gid)
            .build()
            .map_err(|e| ApiError::invalid("invalid_exec", format!("user: {e}")))?;
        process.set_user(user);
    }
    Ok(process)
}

/// The process's output (lossy UTF-8): the newest [`OUTPUT_MAX`] bytes at most, and
/// whether older output was cut (the shim caps the file and rotates once into `.1`).
fn read_output(path: &Path) -> (String, bool) {
    use std::io::Read;
    let mut buf = Vec::new();
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(OUTPUT_MAX).read_to_end(&mut buf);
    }
    let rotated = rotated(path).exists();
    (
        String::from_utf8_lossy(&buf).into_owned(),
        rotated || len > OUTPUT_MAX,
    )
}

/// Remove the output file and its rotated part.
fn remove_output(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(rotated(path));
}

/// Where the shim moves older output.
fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}
