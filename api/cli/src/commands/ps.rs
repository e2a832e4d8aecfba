//! `ps`: the containers as a table (or the daemon's JSON), all pages of them.

use std::time::SystemTime;

use hyper::Method;
use serde_json::json;

use super::Ctx;
use crate::args::PsArgs;
use crate::client::with_query;
use crate::error::{one_line, CliError};
use crate::table::Table;
use crate::time::age;
use crate::view::{PageView, RecordView};

/// At most this many pages are followed (a daemon that keeps answering `next` is wrong).
const MAX_PAGES: usize = 100_000;

/// Every container the daemon lists for `state`, following `next` through the pages
/// (of `limit` containers each, or the daemon's default).
async fn list_all(
    ctx: &Ctx,
    state: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<serde_json::Value>, CliError> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let path = with_query(
            "/v1/containers",
            &[
                ("state", state.map(str::to_owned)),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after.clone()),
            ],
        );
        let (_, value) = ctx.client.json(Method::GET, &path, None).await?;
        let page: PageView = serde_json::from_value(value).map_err(|e| CliError::Protocol {
            request: format!("GET {path}"),
            detail: format!("not a page of containers: {e}"),
        })?;
        all.extend(page.containers);
        match page.next {
            // The same cursor again would loop forever.
            Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
            _ => return Ok(all),
        }
    }
    Ok(all)
}

/// `ps [-a] [--state S] [-q]`: live containers by default.
pub async fn ps(ctx: &Ctx, args: PsArgs) -> Result<u8, CliError> {
    let everything = args.all || args.state.is_some();
    let values = list_all(ctx, args.state.as_deref(), args.page_size).await?;
    let shown: Vec<(serde_json::Value, RecordView)> = values
        .into_iter()
        .map(|v| {
            let r = serde_json::from_value::<RecordView>(v.clone()).unwrap_or_default();
            (v, r)
        })
        .filter(|(_, r)| everything || r.is_live())
        .collect();
    if ctx.json {
        let values: Vec<_> = shown.into_iter().map(|(v, _)| v).collect();
        ctx.line(&json!({ "containers": values, "next": null }).to_string())?;
        return Ok(0);
    }
    if args.quiet {
        for (_, r) in &shown {
            ctx.line(&r.id)?;
        }
        return Ok(0);
    }
    let now = SystemTime::now();
    let mut table = Table::new(&["ID", "STATE", "PID", "EXIT", "CREATED", "ERROR"]);
    for (_, r) in &shown {
        table.row(vec![
            r.id.clone(),
            r.state.clone(),
            r.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            r.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
            age(
                r.timestamps
                    .created
                    .as_deref()
                    .or(r.timestamps.queued.as_deref()),
                now,
            ),
            one_line(r.error.as_deref().unwrap_or("")),
        ]);
    }
    ctx.out(table.render().as_bytes())?;
    Ok(0)
}
