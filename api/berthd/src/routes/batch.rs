//! `POST /v1/containers/batch`: many creates in one request, for bursts. Each item is
//! judged alone: good ones are queued, bad ones answered with their error.

use std::sync::Arc;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::containers::CreateRequest;
use super::{blocking, json, ApiError, App, Reply};
use berth_engine::Record;

/// Most containers one batch may hold.
pub const MAX_BATCH: usize = 1000;

/// Body of `POST /v1/containers/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The creates, as for `POST /v1/containers`.
    pub containers: Vec<CreateRequest>,
}

/// The outcome of one item.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ItemResult {
    /// Queued.
    Accepted {
        /// Container id.
        id: String,
        /// The queued record.
        record: Box<Record>,
    },
    /// Refused; nothing was made for it.
    Refused {
        /// Position in the request.
        index: usize,
        /// The id it asked for or was given, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Why.
        error: serde_json::Value,
    },
}

/// Answer of `POST /v1/containers/batch`.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    /// Items queued.
    pub accepted: usize,
    /// Items refused.
    pub failed: usize,
    /// One result per item, in request order.
    pub results: Vec<ItemResult>,
}

/// `POST /v1/containers/batch`: 202 when every item was queued, 207 when some were
/// refused (each with its error), 422 for an empty or oversized batch (a limit, not
/// malformed JSON).
pub async fn create(app: &Arc<App>, body: BatchRequest) -> Reply {
    if body.containers.is_empty() {
        return Err(ApiError::invalid(
            "empty_batch",
            "containers is empty: give at least one create",
        ));
    }
    if body.containers.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "batch_too_large",
            format!(
                "{} containers in one batch; at most {MAX_BATCH}",
                body.containers.len()
            ),
        ));
    }
    let engine = Arc::clone(&app.engine);
    let results = blocking(move || {
        let results = body
            .containers
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let asked = item.id.clone();
                let refused = |e: ApiError, id: Option<String>| ItemResult::Refused {
                    index,
                    id,
                    error: e.body()["error"].clone(),
                };
                let spec = match item.into_spec() {
                    Ok(spec) => spec,
                    Err(e) => return refused(e, asked),
                };
                let id = spec.id.clone();
                match engine.submit(spec) {
                    Ok(record) => ItemResult::Accepted {
                        id,
                        record: Box::new(record),
                    },
                    Err(e) => refused(e.into(), Some(id)),
                }
            })
            .collect::<Vec<_>>();
        Ok(results)
    })
    .await?;
    let failed = results
        .iter()
        .filter(|r| matches!(r, ItemResult::Refused { .. }))
        .count();
    let status = if failed == 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    json(
        status,
        &BatchResponse {
            accepted: results.len() - failed,
            failed,
            results,
        },
    )
}
