//! `GET /v1/events`: a live stream of lifecycle events, one JSON object per line
//! (`{"item":"event",…}`, or `{"item":"lagged","missed":N}` when this client fell
//! behind) or as server-sent events, filterable by container (`?id=`) and type
//! (`?type=state|oom|exec|image`; image events' id is the image's name), from now or from
//! a sequence number (`?since=SEQ`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_engine::{EventKind, Item};
use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::{ApiError, App, Query};

/// Lines buffered per client before the reader waits for it.
const CLIENT_BUFFER: usize = 256;

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

/// How the stream is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`application/x-ndjson`), the default.
    Ndjson,
    /// Server-sent events (`text/event-stream`): `id:` the sequence number (events
    /// only), `event:` the item's kind, `data:` the JSON object — what a browser's
    /// `EventSource` reads, resuming with `Last-Event-ID`.
    Sse,
}

impl Format {
    /// SSE when asked with `?format=sse` or `Accept: text/event-stream`.
    pub fn of(query: &Query, accept: Option<&str>) -> Result<Self, ApiError> {
        match query.get("format") {
            Some("sse") => Ok(Format::Sse),
            Some("ndjson") => Ok(Format::Ndjson),
            Some(other) => Err(ApiError::bad_request(
                "bad_query",
                format!("format={other:?}: expected ndjson or sse"),
            )),
            None if accept.is_some_and(|a| a.contains("text/event-stream")) => Ok(Format::Sse),
            None => Ok(Format::Ndjson),
        }
    }

    /// One item as written on the stream.
    fn frame(self, item: &Item) -> Option<Vec<u8>> {
        let json = serde_json::to_string(item).ok()?;
        Some(match (self, item) {
            (Format::Ndjson, _) => format!("{json}\n").into_bytes(),
            (Format::Sse, Item::Event(e)) => {
                let kind = serde_json::to_value(e.kind).ok()?;
                let kind = kind.as_str().unwrap_or("event");
                format!("id: {}\nevent: {kind}\ndata: {json}\n\n", e.seq).into_bytes()
            }
            (Format::Sse, Item::Image(e)) => {
                format!("id: {}\nevent: image\ndata: {json}\n\n", e.seq).into_bytes()
            }
            (Format::Sse, Item::Lagged { .. }) => {
                format!("event: lagged\ndata: {json}\n\n").into_bytes()
            }
        })
    }
}

/// `GET /v1/events[?id=ID][&type=state|oom|exec|image][&since=SEQ][&format=ndjson|sse]`; an
/// SSE client's `Last-Event-ID` resumes after that event.
pub fn stream(
    app: &Arc<App>,
    query: &Query,
    format: Format,
    last_event_id: Option<&str>,
) -> Result<Response<LineStream>, ApiError> {
    let id = query.get("id").map(str::to_owned);
    // `Some(None)`: image events only.
    let kind = match query.get("type") {
        None => None,
        Some("state") => Some(Some(EventKind::State)),
        Some("oom") => Some(Some(EventKind::Oom)),
        Some("exec") => Some(Some(EventKind::Exec)),
        Some("image") => Some(None),
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("type={other:?}: expected state, oom, exec or image"),
            ))
        }
    };
    let resume = last_event_id
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_add(1))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_header",
                        format!("Last-Event-ID {s:?}: expected a number"),
                    )
                })
        })
        .transpose()?;
    let mut sub = match query.get("since") {
        None if resume.is_some() => app.engine.subscribe_from(resume.unwrap_or_default()),
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
    // One task per client, waiting without a thread; it ends when the client leaves.
    // A client that stops reading holds only this task: its subscription's buffer
    // fills and it is told how many events it missed once it reads again.
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                item = sub.recv_async() => match item {
                    Some(item) => item,
                    None => return,
                },
                () = tx.closed() => return,
            };
            let (about, of_kind) = match &item {
                Item::Event(e) => (Some(&e.id), Some(e.kind)),
                Item::Image(e) => (Some(&e.name), None),
                Item::Lagged { .. } => (None, None),
            };
            if let Some(about) = about {
                if id.as_deref().is_some_and(|id| id != about) || kind.is_some_and(|k| k != of_kind)
                {
                    continue;
                }
            }
            let Some(line) = format.frame(&item) else {
                continue;
            };
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(LineStream(rx));
    *resp.status_mut() = StatusCode::OK;
    let content_type = match format {
        Format::Ndjson => "application/x-ndjson",
        Format::Sse => "text/event-stream",
    };
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}
