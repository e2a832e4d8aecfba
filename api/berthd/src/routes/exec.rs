//! `POST /v1/containers/{id}/exec`: run one more process in a running container
//! ([`berth_engine::exec`]: the container's own process settings with the command, extra
//! env, working directory and user given). By default it waits for the process and
//! answers with its exit code and output. Every exec is named (`exec_id`): its result
//! is kept by the shim, so `GET /v1/containers/{id}/exec?exec_id=…` answers it once
//! when the answer was not waited for or was lost (a timeout, a daemon restart), for
//! [`RESULT_KEEP`] after the process exited.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::exec::{
    exec_end, read_output, read_result, remove_output, sweep_results, RESULT_KEEP,
};
use berth_engine::ExecArgs;
use hyper::StatusCode;
use serde::Deserialize;

use super::containers::{generate_id, record};
use super::integer::JsonInt;
use super::{blocking, json, ApiError, App, Query, Reply};

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
    /// otherwise answer at once, the result to be fetched by `exec_id`.
    pub wait: Option<bool>,
    /// The exec's name, to fetch its result by (default: one is made up).
    pub exec_id: Option<String>,
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
    let exec_id = match body.exec_id {
        Some(name) => {
            berth_engine::engine::validate_id(&name)
                .map_err(|e| ApiError::invalid("invalid_exec", format!("exec_id: {e}")))?;
            name
        }
        None => generate_id(),
    };
    // A container that exists, before any of its files is touched: the id then names
    // a real shim directory, never a path of the caller's making.
    record(app, id)?;
    // Held until the shim made the output file: a second POST of the name meanwhile is
    // refused (409) here, as it is by the file afterwards.
    let mut claim = None;
    let output = match app.shim.clone() {
        Some(shim) => {
            let (id, exec_id) = (id.to_owned(), exec_id.clone());
            let (output, held) = blocking(move || output_file(&shim, &id, &exec_id)).await?;
            claim = Some(held);
            Some(output)
        }
        None => None,
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
    drop(claim);
    let started = serde_json::json!({ "pid": pid, "exec_id": exec_id });
    let (Some(mut sub), Some(output), true) = (sub, output, wait) else {
        return json(StatusCode::ACCEPTED, &started);
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
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "exec_timeout",
                    format!(
                        "container {id}: the exec'd process (pid {pid}) still runs after {} s; \
                         its result: GET /v1/containers/{id}/exec?exec_id={exec_id}",
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
            "exec_id": exec_id,
            "exit_code": code,
            "output": text,
            "truncated": truncated,
        }),
    )
}

/// The output file of exec `exec_id` in container `id`, once results kept too long in
/// that container are gone; a name still in use is refused.
fn output_file(
    shim: &berth_engine::ShimConfig,
    id: &str,
    exec_id: &str,
) -> Result<(PathBuf, OutputClaim), ApiError> {
    sweep_results(&shim.shim_dir(id), RESULT_KEEP, true);
    let output = shim.exec_output(id, exec_id);
    let conflict = || {
        ApiError::conflict(format!(
            "container {id} has an exec {exec_id} already; fetch its result first"
        ))
    };
    let claim = OutputClaim::take(&output).ok_or_else(conflict)?;
    if output.exists() {
        return Err(conflict());
    }
    Ok((output, claim))
}

/// Output files whose exec is being started (the shim has not made them yet).
static STARTING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The claim on an exec's output file name while its exec starts.
struct OutputClaim(PathBuf);

impl OutputClaim {
    /// Claim `path`; `None` if another request holds it.
    fn take(path: &std::path::Path) -> Option<OutputClaim> {
        let mut starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        if starting.iter().any(|p| p == path) {
            return None;
        }
        starting.push(path.to_path_buf());
        Some(OutputClaim(path.to_path_buf()))
    }
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        let mut starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        starting.retain(|p| *p != self.0);
    }
}

/// `GET /v1/containers/{id}/exec?exec_id=…`: the result of an exec — whether it runs,
/// its exit code and output. A finished one is answered once, then removed.
pub async fn result(app: &Arc<App>, id: &str, query: &Query) -> Reply {
    let exec_id = query
        .get("exec_id")
        .ok_or_else(|| ApiError::bad_request("bad_query", "exec_id=… is required"))?
        .to_owned();
    let live = record(app, id)?.state.can_kill();
    let gone = || {
        ApiError::not_found(
            "not_found",
            format!(
                "container {id} has no exec {exec_id} (never started, fetched already, or \
                 kept past {} min)",
                RESULT_KEEP.as_secs() / 60
            ),
        )
    };
    berth_engine::engine::validate_id(&exec_id).map_err(|_| gone())?;
    let Some(shim) = app.shim.clone() else {
        return Err(gone());
    };
    let output = shim.exec_output(id, &exec_id);
    let found = blocking(move || {
        let found = read_result(&output, OUTPUT_MAX);
        // Done: it ran to its end, or went with its container.
        let done = found
            .as_ref()
            .is_some_and(|r| r.exit_code.is_some() || !live);
        if done {
            remove_output(&output);
        }
        Ok(found.map(|r| (r, done)))
    })
    .await?;
    let (r, done) = found.ok_or_else(gone)?;
    json(
        StatusCode::OK,
        &serde_json::json!({
            "exec_id": exec_id,
            "running": !done,
            "exit_code": r.exit_code,
            "output": r.output,
            "truncated": r.truncated,
        }),
    )
}
