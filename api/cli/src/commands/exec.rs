//! `exec ID -- CMD…`: run a process in a running container, print its output, exit with
//! its status.

use hyper::Method;
use serde_json::{json, Map, Value};

use super::{container_path, Ctx};
use crate::args::ExecArgs;
use crate::error::CliError;
use crate::view::ExecView;

/// The body of `POST /v1/containers/{id}/exec` for `args`.
fn body(args: &ExecArgs) -> Value {
    let mut body = Map::new();
    body.insert("args".into(), json!(args.cmd));
    if !args.env.is_empty() {
        body.insert("env".into(), json!(args.env));
    }
    if let Some(cwd) = &args.cwd {
        body.insert("cwd".into(), json!(cwd));
    }
    if let Some((uid, gid)) = args.user {
        body.insert("user".into(), json!({"uid": uid, "gid": gid}));
    }
    body.insert("wait".into(), json!(!args.detach));
    if let Some(t) = args.timeout {
        body.insert("timeout".into(), json!(t));
    }
    Value::Object(body)
}

/// The exit status of a process that exited with `code` (statuses outside 0–255, as
/// a status that is not one, become 255).
pub fn exit_status(code: Option<i64>) -> u8 {
    code.and_then(|c| u8::try_from(c).ok()).unwrap_or(255)
}

/// `exec`: with `-d` prints the pid; otherwise the output, and exits with the
/// process's status.
pub async fn exec(ctx: &Ctx, args: ExecArgs) -> Result<u8, CliError> {
    let path = container_path(&args.id, "/exec");
    let (raw, value) = ctx
        .client
        .json(Method::POST, &path, Some(&body(&args)))
        .await?;
    let done: ExecView = serde_json::from_value(value).map_err(|e| CliError::Protocol {
        request: format!("POST {path}"),
        detail: format!("not an exec result: {e}"),
    })?;
    if ctx.json {
        ctx.raw_json(&raw)?;
    } else if args.detach {
        ctx.line(&done.pid.map_or_else(|| "-".into(), |p| p.to_string()))?;
    } else {
        ctx.out(done.output.as_bytes())?;
        if done.truncated {
            eprintln!("berth: the daemon kept only the start of the output");
        }
    }
    if args.detach {
        return Ok(0);
    }
    Ok(exit_status(done.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_fit_a_byte() {
        assert_eq!(exit_status(Some(0)), 0);
        assert_eq!(exit_status(Some(137)), 137);
        assert_eq!(exit_status(Some(-1)), 255);
        assert_eq!(exit_status(Some(300)), 255);
        assert_eq!(exit_status(None), 255);
    }
}
