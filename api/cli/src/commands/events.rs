//! `events`: the daemon's NDJSON event stream, one line per event, for humans
//! (`SEQ TIME ID TYPE PREV->STATE …`, images' `SEQ TIME image ACTION NAME id=ID`) or
//! as it came (`--json`).

use hyper::Method;

use super::Ctx;
use crate::args::EventsArgs;
use crate::client::with_query;
use crate::error::{one_line, CliError};
use crate::time::short;
use crate::view::EventView;

/// One event line for humans.
fn human(e: &EventView) -> String {
    if e.item == "image" {
        // `SEQ TIME image ACTION NAME id=ID`.
        return format!(
            "{} {} image {} {} id={}",
            e.seq,
            short(&e.at),
            e.action,
            e.name,
            e.id
        );
    }
    let mut line = format!(
        "{} {} {} {} {}->{}",
        e.seq,
        short(&e.at),
        e.id,
        e.kind,
        // A container's first event has no previous state.
        e.previous.as_deref().unwrap_or("none"),
        e.state
    );
    if let Some(pid) = e.pid {
        line.push_str(&format!(" pid={pid}"));
    }
    if let Some(code) = e.exit_code {
        line.push_str(&format!(" exit={code}"));
    }
    if let Some(error) = &e.error {
        line.push_str(&format!(" error={:?}", one_line(error)));
    }
    line
}

/// `events [--id ID] [--type T] [--since SEQ] [-n N]`: until the daemon ends the stream
/// (or N events were printed).
pub async fn events(ctx: &Ctx, args: EventsArgs) -> Result<u8, CliError> {
    let path = with_query(
        "/v1/events",
        &[
            ("since", args.since.map(|s| s.to_string())),
            ("id", args.id.clone()),
            ("type", args.kind.clone()),
        ],
    );
    let request = format!("GET {path}");
    let resp = ctx.client.send(Method::GET, &path, None).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    if !status.is_success() {
        while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
            pending.extend_from_slice(&chunk);
        }
        return Err(CliError::from_answer(status, &pending));
    }
    let mut printed = 0u64;
    if args.count == Some(0) {
        return Ok(0);
    }
    while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = &line[..end];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: EventView =
                serde_json::from_slice(line).map_err(|e| CliError::Protocol {
                    request: request.clone(),
                    detail: format!("not an event line: {e}"),
                })?;
            if ctx.json {
                ctx.raw_json(line)?;
            } else if event.item == "lagged" {
                eprintln!(
                    "berth: {} events were missed (this client fell behind or they are no longer kept)",
                    event.missed
                );
            } else {
                ctx.line(&human(&event))?;
            }
            if matches!(event.item.as_str(), "event" | "image") {
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    return Ok(0);
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_for_humans() {
        let e: EventView = serde_json::from_str(
            r#"{"item":"event","seq":7,"at":"2026-01-01T00:00:01.5Z","id":"c1","type":"state",
                "state":"stopped","previous":"running","pid":42,"exit_code":137,"error":null}"#,
        )
        .unwrap();
        assert_eq!(
            human(&e),
            "7 2026-01-01T00:00:01.500Z c1 state running->stopped pid=42 exit=137"
        );
        let e: EventView = serde_json::from_str(
            r#"{"item":"image","seq":8,"at":"2026-01-01T00:00:02Z","action":"pulled",
                "name":"127.0.0.1:5000/test/busybox:latest","id":"sha256:ab"}"#,
        )
        .unwrap();
        assert_eq!(
            human(&e),
            "8 2026-01-01T00:00:02.000Z image pulled 127.0.0.1:5000/test/busybox:latest id=sha256:ab"
        );
    }
}
