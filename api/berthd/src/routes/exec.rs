//! `POST /v1/containers/{id}/exec`: run one more process in a running container
//! ([`berth_engine::exec`]: the container's own process settings with the command, extra
//! env, working directory and user given). By default it waits for the process and
//! answers with its exit code and output.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::exec::{exec_end, read_output, remove_output};
use berth_engine::ExecArgs;
use hyper::StatusCode;
use serde::Deserialize;

use super::containers::generate_id;
use super::integer::JsonInt;
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
    /// How long to wait, in seconds (default 60, at most 600; more is capped).
    pub timeout: Option<JsonInt>,
}

/// A numeric user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecUser {
    /// User id (0 to 2^32 - 1, checked after parsing: 422).
    pub uid: JsonInt,
    /// Group id (as `uid`).
    pub gid: JsonInt,
}

/// `POST /v1/containers/{id}/exec`.
pub async fn exec(app: &Arc<App>, id: &str, body: ExecRequest) -> Reply {
    let wait = body.wait.unwrap_or(true);
    let timeout = match body.timeout {
        None => WAIT_DEFAULT,
        Some(t) => t
            .within(0, u64::MAX, "timeout", "invalid_exec")
            .map_or_else(
                |e| if t.0 > 0 { Ok(WAIT_MAX) } else { Err(e) },
                |s| Ok(Duration::from_secs(s).min(WAIT_MAX)),
            )?,
    };
    let user = match body.user {
        None => None,
        Some(u) => Some((
            u.uid.within(0, u32::MAX, "user.uid", "invalid_exec")?,
            u.gid.within(0, u32::MAX, "user.gid", "invalid_exec")?,
        )),
    };
    let output = match (&app.shim, wait) {
        (Some(shim), true) => Some(shim.exec_output(id, &generate_id())),
        _ => None,
    };
    let args = ExecArgs {
        args: body.args,
        env: body.env,
        cwd: body.cwd,
        user,
    };
    let engine = Arc::clone(&app.engine);
    let id = id.to_owned();
    let (owned, file) = (id.clone(), output.clone());
    let (pid, sub) =
        blocking(move || Ok(engine.exec(&owned, args, file, CONTROL_TIMEOUT)?)).await?;
    let (Some(mut sub), Some(output)) = (sub, output) else {
        return json(StatusCode::ACCEPTED, &serde_json::json!({ "pid": pid }));
    };
    // Waiting costs this request a task, not a thread.
    let deadline = tokio::time::Instant::now() + timeout;
    let code = loop {
        match tokio::time::timeout_at(deadline, sub.recv_async()).await {
            Ok(Some(item)) => {
                if let Some(code) = exec_end(&item, &id, pid) {
                    break code;
                }
            }
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
        }
    };
    let (text, truncated) = blocking(move || {
        let read = read_output(&output, OUTPUT_MAX);
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
