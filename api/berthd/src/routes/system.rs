//! `/healthz` and `/v1/system`: liveness, the engine's figures, the worker pool size.

use hyper::StatusCode;
use serde::Deserialize;

use super::integer::JsonInt;
use super::{json, ApiError, App, Reply};

/// Body of `PUT /v1/system/workers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersRequest {
    /// Start workers wanted (any integer parses; the engine judges the range: 422).
    pub workers: JsonInt,
}

/// `GET /healthz`.
pub fn healthz() -> Reply {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// `GET /v1/system`.
pub fn info(app: &App) -> Reply {
    let stats = app.engine.stats();
    let counts: serde_json::Map<String, serde_json::Value> = stats
        .by_state
        .iter()
        .filter(|(s, _)| *s != berth_engine::State::Deleted)
        .map(|(s, n)| (s.as_str().to_owned(), (*n).into()))
        .collect();
    let runtime = app
        .runtime
        .as_ref()
        .map_or_else(|| "builtin".to_owned(), |p| p.display().to_string());
    json(
        StatusCode::OK,
        &serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "runtime": runtime,
            "workers": stats.workers,
            "busy_workers": stats.busy,
            "queued_jobs": stats.queued_jobs,
            "max_queued": stats.max_queued,
            "containers": counts,
            "live_shims": stats.live_shims,
            "next_event_seq": stats.next_event_seq,
        }),
    )
}

/// `PUT /v1/system/workers`: change the start pool's size now.
pub fn set_workers(app: &App, body: WorkersRequest) -> Reply {
    let workers = body
        .workers
        .within(0, u64::MAX, "workers", "invalid_workers")?;
    let workers = usize::try_from(workers).map_err(|_| {
        ApiError::invalid("invalid_workers", format!("workers {workers} is too many"))
    })?;
    app.engine
        .set_workers(workers)
        .map_err(|e| ApiError::invalid("invalid_workers", e.to_string()))?;
    info(app)
}
