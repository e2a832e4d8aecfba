//! `GET /v1/events`: a live NDJSON stream of lifecycle events, one JSON object per line
//! (`{"item":"event",…}`, or `{"item":"lagged","missed":N}` when this client fell
//! behind), filterable by container (`?id=`) and type (`?type=state|oom|exec`), from now or
//! from a sequence number (`?since=SEQ`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use berth_engine::{EventKind, Item};
use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::{ApiError, App, Query};

/// Lines buffered per client before the reader waits for it.
const CLIENT_BUFFER: usize = 256;
/// How often the reader checks that its client is still there.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// A response body fed from a channel of chunks (lines, log output).
pub struct LineStream(mpsc::Receiver<Bytes>);

impl LineStream {
    /// A body that ends when every sender of `rx` is gone.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        LineStream(rx)
    }
}

impl Body for LineStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|b| Ok(Frame::data(b))))
    }
}

/// `GET /v1/events[?id=ID][&type=state|oom|exec][&since=SEQ]`.
pub fn stream(app: &Arc<App>, query: &Query) -> Result<Response<LineStream>, ApiError> {
    let id = query.get("id").map(str::to_owned);
    let kind = match query.get("type") {
        None => None,
        Some("state") => Some(EventKind::State),
        Some("oom") => Some(EventKind::Oom),
        Some("exec") => Some(EventKind::Exec),
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("type={other:?}: expected state, oom or exec"),
            ))
        }
    };
    let mut sub = match query.get("since") {
        None => app.engine.subscribe(),
        Some(s) => {
            let seq = s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "bad_query",
                    format!("since={s:?}: expected a sequence number"),
                )
            })?;
            app.engine.subscribe_from(seq)
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
    // The subscription blocks; one blocking task per client, ending when it leaves.
    tokio::task::spawn_blocking(move || {
        while !tx.is_closed() {
            let Some(item) = sub.recv_timeout(CHECK_EVERY) else {
                continue;
            };
            if let Item::Event(e) = &item {
                if id.as_deref().is_some_and(|id| id != e.id) || kind.is_some_and(|k| k != e.kind) {
                    continue;
                }
            }
            let Ok(mut line) = serde_json::to_vec(&item) else {
                continue;
            };
            line.push(b'\n');
            if tx.blocking_send(Bytes::from(line)).is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(LineStream(rx));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}
