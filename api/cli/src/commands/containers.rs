//! Container commands: `run`, `create`, `start|pause|resume`, `inspect`, `kill`, `rm`.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{container_path, settle, Ctx};
use crate::args::{CreateArgs, KillArgs, LogsArgs, RmArgs, RunArgs};
use crate::client::with_query;
use crate::error::CliError;
use crate::view::RecordView;

/// A path as the daemon wants it: absolute (relative to where `berth` runs).
fn absolute(path: &std::path::Path, flag: &str) -> Result<std::path::PathBuf, CliError> {
    std::path::absolute(path)
        .map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))
}

/// The body of `POST /v1/containers` for `args`.
fn create_body(args: &CreateArgs, start: bool) -> Result<Value, CliError> {
    let mut body = Map::new();
    if let Some(id) = &args.id {
        body.insert("id".into(), json!(id));
    }
    if let Some(bundle) = &args.bundle {
        body.insert("bundle".into(), json!(absolute(bundle, "--bundle")?));
    }
    if let Some(image) = args.image() {
        image_fields(&mut body, image, args)?;
    }
    if let Some(rootfs) = &args.rootfs {
        body.insert("rootfs".into(), json!(absolute(rootfs, "--rootfs")?));
        body.insert("spec".into(), super::spec::inline_spec(args));
    }
    if let Some(runtime) = &args.runtime {
        body.insert("runtime".into(), json!(absolute(runtime, "--runtime")?));
    }
    if let Some(network) = &args.network {
        body.insert("network".into(), json!(network));
    }
    if !args.publish.is_empty() {
        body.insert("ports".into(), json!(args.publish));
    }
    body.insert("start".into(), json!(start));
    Ok(Value::Object(body))
}

/// The fields of an image's container: the image and what replaces its config's.
fn image_fields(
    body: &mut Map<String, Value>,
    image: &str,
    args: &CreateArgs,
) -> Result<(), CliError> {
    if args.hostname.is_some() {
        return Err(CliError::Usage(
            "--hostname: only with --rootfs (the API takes no hostname for an image's container)"
                .into(),
        ));
    }
    body.insert("image".into(), json!(image));
    if let Some(entrypoint) = &args.entrypoint {
        // docker's `--entrypoint ""` runs no entrypoint: the command alone.
        let words: Vec<&str> = Some(entrypoint.as_str())
            .filter(|e| !e.is_empty())
            .into_iter()
            .collect();
        body.insert("entrypoint".into(), json!(words));
    }
    let cmd = args.command();
    if !cmd.is_empty() {
        body.insert("args".into(), json!(cmd));
    }
    if !args.env.is_empty() {
        body.insert("env".into(), json!(args.env));
    }
    if let Some(dir) = &args.cwd {
        body.insert("workdir".into(), json!(dir));
    }
    if let Some(user) = &args.user {
        body.insert("user".into(), json!(user));
    }
    if let Some(pull) = &args.pull {
        body.insert("pull".into(), json!(pull));
    }
    Ok(())
}

/// `create`: create (not start), wait until created, print the id.
pub async fn create(ctx: &Ctx, args: CreateArgs) -> Result<u8, CliError> {
    submit(ctx, &args, false, true).await?;
    Ok(0)
}

/// `run`: an image's container in the foreground (its output until it stops, then its
/// exit status) unless `-d`; otherwise, and for bundles and root filesystems, start it,
/// wait until it runs and print its id.
pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<u8, CliError> {
    let foreground = !args.detach && args.create.image().is_some();
    let record = submit(ctx, &args.create, true, !foreground).await?;
    if !foreground {
        return Ok(0);
    }
    attach(ctx, &record.id).await?;
    let stopped = until_stopped(ctx, &record.id).await?;
    match stopped.state.as_str() {
        "failed" => Err(failed(stopped)),
        _ => Ok(super::exec::exit_status(stopped.exit_code)),
    }
}

/// Print container `id`'s output until it stops. A Ctrl-C is passed on to it as SIGINT
/// (as `docker run` does); a second one leaves it running and ends `berth`.
async fn attach(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let logs = LogsArgs {
        follow: true,
        tail: None,
        id: id.to_owned(),
    };
    let mut follow = std::pin::pin!(super::logs::logs(ctx, logs));
    let mut interrupted = false;
    loop {
        tokio::select! {
            done = &mut follow => return done.map(|_| ()),
            signal = tokio::signal::ctrl_c() => {
                if signal.is_err() {
                    // No handler: Ctrl-C ends berth as usual.
                    return follow.await.map(|_| ());
                }
                if interrupted {
                    return Err(CliError::Container {
                        id: id.to_owned(),
                        what: "is left running: interrupted twice".into(),
                    });
                }
                interrupted = true;
                let body = json!({ "signal": "INT" });
                let path = container_path(id, "/kill");
                // A container that has just stopped refuses the signal: its output
                // ends anyway.
                if let Err(e @ CliError::Unreachable(_)) =
                    ctx.client.ok(Method::POST, &path, Some(&body)).await
                {
                    return Err(e);
                }
            }
        }
    }
}

/// How long `run` waits for the record to say stopped once the output has ended (the
/// daemon ends the log stream when the container has stopped, so at once in practice).
const SETTLE: Duration = Duration::from_secs(10);

/// Container `id`'s record once it has stopped (or failed).
async fn until_stopped(ctx: &Ctx, id: &str) -> Result<RecordView, CliError> {
    let path = container_path(id, "");
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let (_, value) = ctx.client.json(Method::GET, &path, None).await?;
        let record: RecordView = serde_json::from_value(value).map_err(|e| CliError::Protocol {
            request: format!("GET {path}"),
            detail: format!("not a record: {e}"),
        })?;
        if !record.is_live() {
            return Ok(record);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Container {
                id: record.id,
                what: format!("is still {} after its output ended", record.state),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The error of a container that failed.
fn failed(record: RecordView) -> CliError {
    CliError::Container {
        id: record.id,
        what: format!(
            "failed: {}",
            record.error.as_deref().unwrap_or("no reason given")
        ),
    }
}

/// Create (`start`: and start) the container `args` describe and wait until it runs
/// (or is created); its record. `print`: print its id (`--json`: its record).
async fn submit(
    ctx: &Ctx,
    args: &CreateArgs,
    start: bool,
    print: bool,
) -> Result<RecordView, CliError> {
    let body = create_body(args, start)?;
    let path = with_query(
        "/v1/containers",
        &[
            ("wait", Some("running".into())),
            ("timeout", args.timeout.map(|t| t.to_string())),
        ],
    );
    let answer = ctx.client.call(Method::POST, &path, Some(&body)).await?;
    if !answer.status.is_success() {
        return Err(CliError::from_answer(answer.status, &answer.body));
    }
    let record: RecordView =
        serde_json::from_slice(&answer.body).map_err(|e| CliError::Protocol {
            request: format!("POST {path}"),
            detail: format!("not a record: {e}"),
        })?;
    match (print, ctx.json) {
        (false, _) => {}
        (true, true) => ctx.raw_json(&answer.body)?,
        (true, false) => ctx.line(&record.id)?,
    }
    if record.state == "failed" {
        return Err(failed(record));
    }
    if answer.status == StatusCode::ACCEPTED {
        // The wait timed out: the id is printed (to clean up), but it is not there yet.
        return Err(CliError::Container {
            id: record.id,
            what: format!("is still {} after the wait", record.state),
        });
    }
    Ok(record)
}

/// `start`, `pause`, `resume`: prints each id (or its record with `--json`).
pub async fn action(ctx: &Ctx, ids: &[String], action: &str) -> Result<u8, CliError> {
    let mut status = 0;
    for id in ids {
        let path = container_path(id, &format!("/{action}"));
        let result = match ctx.client.ok(Method::POST, &path, None).await {
            Ok(raw) if ctx.json => ctx.raw_json(&raw),
            Ok(_) => ctx.line(id),
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    Ok(status)
}

/// `inspect`: one record as pretty JSON, several as a JSON array (`--json`: each as it
/// came, one per line).
pub async fn inspect(ctx: &Ctx, ids: &[String]) -> Result<u8, CliError> {
    let mut status = 0;
    let mut records = Vec::new();
    for id in ids {
        let result = match ctx
            .client
            .json(Method::GET, &container_path(id, ""), None)
            .await
        {
            Ok((raw, _)) if ctx.json => ctx.raw_json(&raw),
            Ok((_, value)) => {
                records.push(value);
                Ok(())
            }
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    if !ctx.json && !records.is_empty() {
        let shown = if ids.len() == 1 {
            records.remove(0)
        } else {
            Value::Array(records)
        };
        let text = serde_json::to_string_pretty(&shown).map_err(|e| CliError::Protocol {
            request: "GET /v1/containers/{id}".into(),
            detail: e.to_string(),
        })?;
        ctx.line(&text)?;
    }
    Ok(status)
}

/// `kill`: prints each id signalled (or its record with `--json`).
pub async fn kill(ctx: &Ctx, args: KillArgs) -> Result<u8, CliError> {
    let signal = match args.signal.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(args.signal),
    };
    let body = json!({"signal": signal, "all": args.all});
    let mut status = 0;
    for id in &args.ids {
        let path = container_path(id, "/kill");
        let result = match ctx.client.ok(Method::POST, &path, Some(&body)).await {
            Ok(raw) if ctx.json => ctx.raw_json(&raw),
            Ok(_) => ctx.line(id),
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    Ok(status)
}

/// `rm`: prints each id removed (nothing with `--json`: the daemon answers no body).
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<u8, CliError> {
    let force = args.force.then(|| "true".to_owned());
    let mut status = 0;
    for id in &args.ids {
        let path = with_query(&container_path(id, ""), &[("force", force.clone())]);
        let result = match ctx.client.ok(Method::DELETE, &path, None).await {
            Ok(_) if ctx.json => Ok(()),
            Ok(_) => ctx.line(id),
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    Ok(status)
}
