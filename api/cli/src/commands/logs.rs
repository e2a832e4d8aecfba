//! `logs [-f] [--tail N]`: a container's output, printed as the daemon sends it.

use hyper::Method;

use super::{container_path, Ctx};
use crate::args::LogsArgs;
use crate::client::with_query;
use crate::error::CliError;

/// The logs path for `args`, following or not.
fn path(args: &LogsArgs, follow: bool) -> String {
    with_query(
        &container_path(&args.id, "/logs"),
        &[
            ("tail", args.tail.map(|n| n.to_string())),
            ("follow", follow.then(|| "true".to_owned())),
        ],
    )
}

/// `logs`: with `-f`, the stream until the container stops (a daemon without
/// `?follow` gets asked once more without it).
pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<u8, CliError> {
    let mut follow = args.follow;
    loop {
        let path = path(&args, follow);
        let resp = ctx.client.send(Method::GET, &path, None).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let request = format!("GET {path}");
        if !status.is_success() {
            let mut text = Vec::new();
            while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
                text.extend_from_slice(&chunk);
            }
            let e = CliError::from_answer(status, &text);
            if follow && e.is_code("bad_query") {
                follow = false;
                continue;
            }
            return Err(e);
        }
        while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
            ctx.out(&chunk)?;
        }
        return Ok(0);
    }
}
