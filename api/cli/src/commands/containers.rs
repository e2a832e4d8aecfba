//! Container commands: `run`, `create`, `start|pause|resume`, `inspect`, `kill`, `rm`.

use hyper::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{container_path, settle, Ctx};
use crate::args::{CreateArgs, KillArgs, RmArgs};
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
    if let Some(rootfs) = &args.rootfs {
        body.insert("rootfs".into(), json!(absolute(rootfs, "--rootfs")?));
        body.insert("spec".into(), super::spec::inline_spec(args));
    }
    if let Some(runtime) = &args.runtime {
        body.insert("runtime".into(), json!(absolute(runtime, "--runtime")?));
    }
    body.insert("start".into(), json!(start));
    Ok(Value::Object(body))
}

/// `run` (`start`: create, start, wait until it runs) or `create` (wait until created);
/// prints the id.
pub async fn create(ctx: &Ctx, args: CreateArgs, start: bool) -> Result<u8, CliError> {
    let body = create_body(&args, start)?;
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
    if ctx.json {
        ctx.raw_json(&answer.body)?;
    } else {
        ctx.line(&record.id)?;
    }
    if record.state == "failed" {
        return Err(CliError::Container {
            id: record.id,
            what: format!(
                "failed: {}",
                record.error.as_deref().unwrap_or("no reason given")
            ),
        });
    }
    if answer.status == StatusCode::ACCEPTED {
        // The wait timed out: the id is printed (to clean up), but it is not there yet.
        return Err(CliError::Container {
            id: record.id,
            what: format!("is still {} after the wait", record.state),
        });
    }
    Ok(0)
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
