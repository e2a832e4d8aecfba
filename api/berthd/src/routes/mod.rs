//! The API's routes, one module per concept, and what they share: the application
//! state, reading a bounded JSON body, the query string, JSON answers.

pub mod batch;
pub mod containers;
pub mod errors;
pub mod events;
pub mod exec;
pub mod images;
pub mod integer;
pub mod logs;
pub mod metrics;
pub mod networks;
pub mod openapi;
pub mod system;

use std::sync::Arc;

use berth_engine::Engine;
use bytes::Bytes;
use std::convert::Infallible;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;

pub use errors::ApiError;

/// How long a client may take to send its request body, by default.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What every handler can reach.
pub struct App {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The default runtime, for `GET /v1/system` (`None`: built in).
    pub runtime: Option<std::path::PathBuf>,
    /// Where shims keep their containers' logs (`None`: no logs route).
    pub shim: Option<berth_engine::ShimConfig>,
    /// How long a client may take to send its request body.
    pub body_timeout: std::time::Duration,
    /// The Prometheus exporter and the scrape-time collectors (`None`: `/metrics`
    /// answers 404).
    pub metrics: Option<metrics::Exporter>,
    /// The images service (`None`: the image routes answer 404).
    pub images: Option<Arc<berth_engine::Images>>,
    /// The networks service (`None`: the network routes answer 404).
    pub networks: Option<Arc<berth_engine::Networks>>,
}

/// One route: method, path pattern (`{id}`: one segment; `{name}`, last: one or more
/// segments, an image name with its slashes) and the handler answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: &'static str,
    /// The path pattern, also the route's metrics label.
    pub pattern: &'static str,
    /// Which handler answers.
    pub handler: Handler,
}

/// The handlers, one per route: [`dispatch`] calls each (a `match`, so none is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    /// `system::healthz`.
    Healthz,
    /// `metrics::render`.
    Metrics,
    /// `openapi::document`.
    OpenApi,
    /// `system::info`.
    SystemInfo,
    /// `system::set_workers`.
    SetWorkers,
    /// `events::stream`.
    Events,
    /// `containers::list`.
    List,
    /// `containers::create`.
    Create,
    /// `batch::create`.
    Batch,
    /// `containers::get`.
    Get,
    /// `containers::delete`.
    Delete,
    /// `containers::action` start.
    Start,
    /// `containers::kill`.
    Kill,
    /// `containers::action` pause.
    Pause,
    /// `containers::action` resume.
    Resume,
    /// `exec::exec`.
    Exec,
    /// `exec::result`.
    ExecResult,
    /// `logs::read` or `logs::follow`.
    Logs,
    /// `containers::stats`.
    Stats,
    /// `images::list`.
    ImageList,
    /// `images::pull`.
    ImagePull,
    /// `images::import`.
    ImageImport,
    /// `images::save`.
    ImageSave,
    /// `images::prune`.
    ImagePrune,
    /// `images::get`.
    ImageGet,
    /// `images::delete`.
    ImageDelete,
    /// `networks::list`.
    NetworkList,
    /// `networks::create`.
    NetworkCreate,
    /// `networks::get`.
    NetworkGet,
    /// `networks::delete`.
    NetworkDelete,
}

/// Shorthand for the table.
const fn route(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        handler,
    }
}

/// Every route the server answers, each written once. The OpenAPI document lists exactly
/// these (a test checks both ways); a path that matches no pattern is a 404, a method a
/// pattern lacks a 405.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Handler::Healthz),
    route("GET", "/metrics", Handler::Metrics),
    route("GET", "/v1/openapi.json", Handler::OpenApi),
    route("GET", "/v1/system", Handler::SystemInfo),
    route("PUT", "/v1/system/workers", Handler::SetWorkers),
    route("GET", "/v1/events", Handler::Events),
    route("GET", "/v1/containers", Handler::List),
    route("POST", "/v1/containers", Handler::Create),
    route("POST", "/v1/containers/batch", Handler::Batch),
    route("GET", "/v1/containers/{id}", Handler::Get),
    route("DELETE", "/v1/containers/{id}", Handler::Delete),
    route("POST", "/v1/containers/{id}/start", Handler::Start),
    route("POST", "/v1/containers/{id}/kill", Handler::Kill),
    route("POST", "/v1/containers/{id}/pause", Handler::Pause),
    route("POST", "/v1/containers/{id}/resume", Handler::Resume),
    route("POST", "/v1/containers/{id}/exec", Handler::Exec),
    route("GET", "/v1/containers/{id}/exec", Handler::ExecResult),
    route("GET", "/v1/containers/{id}/logs", Handler::Logs),
    route("GET", "/v1/containers/{id}/stats", Handler::Stats),
    route("GET", "/v1/images", Handler::ImageList),
    route("POST", "/v1/images/pull", Handler::ImagePull),
    route("POST", "/v1/images/import", Handler::ImageImport),
    route("POST", "/v1/images/save", Handler::ImageSave),
    route("POST", "/v1/images/prune", Handler::ImagePrune),
    route("GET", "/v1/images/{name}", Handler::ImageGet),
    route("DELETE", "/v1/images/{name}", Handler::ImageDelete),
    route("GET", "/v1/networks", Handler::NetworkList),
    route("POST", "/v1/networks", Handler::NetworkCreate),
    route("GET", "/v1/networks/{id}", Handler::NetworkGet),
    route("DELETE", "/v1/networks/{id}", Handler::NetworkDelete),
];

/// The pattern segment that takes the rest of the path.
const REST: &str = "{name}";

/// Whether `segments` fit `pattern`.
fn fits(pattern: &str, segments: &[&str]) -> bool {
    let parts = pattern.trim_start_matches('/').split('/');
    let count = parts.clone().count();
    let rest = pattern.ends_with(REST);
    let length_fits = if rest {
        segments.len() >= count
    } else {
        segments.len() == count
    };
    length_fits
        && parts
            .zip(segments)
            .all(|(p, s)| p == "{id}" || p == REST || p == *s)
}

/// How much of a route's path is a parameter: literal segments win over `{id}`, which
/// wins over `{name}`.
fn looseness(r: &&Route) -> usize {
    r.pattern.matches("{id}").count() + 2 * usize::from(r.pattern.ends_with(REST))
}

/// How a path and method meet the route table.
enum Routed {
    /// A route.
    Route(&'static Route),
    /// The path exists, the method not: the pattern and the methods it has.
    WrongMethod(&'static str, Vec<&'static str>),
    /// No such path.
    Unmatched,
}

/// Look up `method` on `segments`, preferring a literal segment to `{id}`
/// (`POST /v1/containers/batch`; `GET /v1/containers/batch` still reads a container
/// called "batch").
fn route_of(method: &Method, segments: &[&str]) -> Routed {
    let fitting = || ROUTES.iter().filter(|r| fits(r.pattern, segments));
    if let Some(r) = fitting()
        .filter(|r| r.method == method.as_str())
        .min_by_key(looseness)
    {
        return Routed::Route(r);
    }
    match fitting().min_by_key(looseness) {
        Some(r) => {
            let mut allowed: Vec<&str> = fitting().map(|r| r.method).collect();
            allowed.sort_unstable();
            allowed.dedup();
            Routed::WrongMethod(r.pattern, allowed)
        }
        None => Routed::Unmatched,
    }
}

/// The answer type of every route.
pub type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// The body of every answer. Its error cuts a streamed answer short (the connection
/// closes without the last chunk), so a client cannot take half an archive for all of it.
pub type AnswerBody = BoxBody<Bytes, std::io::Error>;

/// `body` boxed as an answer's (a body that cannot fail).
pub fn boxed<B>(body: B) -> AnswerBody
where
    B: Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static,
{
    body.map_err(|never| match never {}).boxed()
}

/// Route `req` and answer it; never fails, never panics on input.
pub async fn handle<B>(app: Arc<App>, req: Request<B>) -> Response<AnswerBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let began = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query());
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (route, result) = match route_of(&method, &segments) {
        Routed::Route(route) => {
            // `{id}` is always the third segment; `{name}` starts there.
            let id = if route.pattern.ends_with(REST) {
                segments[2..]
                    .iter()
                    .map(|s| decode(s))
                    .collect::<Vec<_>>()
                    .join("/")
            } else {
                segments.get(2).copied().unwrap_or_default().to_owned()
            };
            (
                route.pattern,
                dispatch(&app, req, route.handler, &id, &query).await,
            )
        }
        Routed::WrongMethod(route, allowed) => (
            route,
            Err(ApiError::method_not_allowed(
                method.as_str(),
                &path,
                &allowed,
            )),
        ),
        Routed::Unmatched => (
            "unmatched",
            Err(ApiError::not_found(
                "no_route",
                format!("no route {method} {path}"),
            )),
        ),
    };
    let response = result.unwrap_or_else(|e| error_response(&e).map(boxed));
    metrics::record(route, response.status(), began.elapsed());
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// The route pattern `method` on `path` is counted under in the metrics (a bounded
/// label; `unmatched` for paths no route has).
pub fn route_label(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match route_of(method, &segments) {
        Routed::Route(r) => r.pattern,
        Routed::WrongMethod(pattern, _) => pattern,
        Routed::Unmatched => "unmatched",
    }
}

/// A streamed or whole answer.
type Answer = Result<Response<AnswerBody>, ApiError>;

/// Answer with `handler` (of the route [`route_of`] found).
async fn dispatch<B>(
    app: &Arc<App>,
    req: Request<B>,
    handler: Handler,
    id: &str,
    query: &Query,
) -> Answer
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let whole = |r: Reply| r.map(|resp| resp.map(boxed));
    let streamed =
        |r: Result<Response<events::LineStream>, ApiError>| r.map(|resp| resp.map(boxed));
    match handler {
        Handler::Healthz => whole(system::healthz()),
        Handler::Metrics => whole(metrics::render(app).await),
        Handler::OpenApi => whole(openapi::document()),
        Handler::SystemInfo => whole(system::info(app)),
        Handler::SetWorkers => whole(system::set_workers(app, read_json(app, req).await?)),
        Handler::Events => {
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            let format = events::Format::of(query, header("accept"))?;
            streamed(events::stream(app, query, format, header("last-event-id")))
        }
        Handler::List => whole(containers::list(app, query)),
        Handler::Create => {
            let body = read_json(app, req).await?;
            whole(containers::create(app, body, query).await)
        }
        Handler::Batch => {
            let body = read_json(app, req).await?;
            whole(batch::create(app, body).await)
        }
        Handler::Get => whole(containers::get(app, id)),
        Handler::Delete => whole(containers::delete(app, id, query).await),
        Handler::Kill => {
            let body = read_json(app, req).await?;
            whole(containers::kill(app, id, body).await)
        }
        Handler::Exec => {
            let body = read_json(app, req).await?;
            whole(exec::exec(app, id, body).await)
        }
        Handler::ExecResult => whole(exec::result(app, id, query).await),
        Handler::Start => whole(containers::action(app, id, "start").await),
        Handler::Pause => whole(containers::action(app, id, "pause").await),
        Handler::Resume => whole(containers::action(app, id, "resume").await),
        Handler::Logs => {
            if query.flag("follow")? {
                streamed(logs::follow(app, id, query))
            } else {
                whole(logs::read(app, id, query).await)
            }
        }
        Handler::Stats => whole(containers::stats(app, id).await),
        Handler::ImageList => whole(images::list(app)),
        Handler::ImagePull => {
            let body = read_json(app, req).await?;
            streamed(images::pull(app, body).await)
        }
        Handler::ImageImport => whole(images::import(app, req).await),
        Handler::ImageSave => {
            let body = read_json(app, req).await?;
            images::save(app, body)
                .await
                .map(|resp| resp.map(BodyExt::boxed))
        }
        Handler::ImagePrune => whole(images::prune(app).await),
        Handler::ImageGet => whole(images::get(app, id).await),
        Handler::ImageDelete => whole(images::delete(app, id, query).await),
        Handler::NetworkList => whole(networks::list(app).await),
        Handler::NetworkCreate => {
            let body = read_json(app, req).await?;
            whole(networks::create(app, body).await)
        }
        Handler::NetworkGet => whole(networks::get(app, id).await),
        Handler::NetworkDelete => whole(networks::delete(app, id).await),
    }
}

/// Run blocking engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a worker task failed: {e}")))?
}

/// A JSON answer with `status`.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    let mut body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    // A final newline, so a terminal's prompt does not follow the JSON on its line.
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The answer for an error.
pub fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec(&e.body()).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = e.status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = e.retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = e
        .allow
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        h.insert(ALLOW, allow);
    }
    resp
}

/// Read the body (at most the configured limit) and decode it as `T`. An empty body
/// decodes as `{}`.
pub async fn read_json<T, B>(app: &App, req: Request<B>) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {} bytes", app.body_limit),
        )
    };
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let len = len
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("bad_header", "invalid Content-Length"))?;
        if len > app.body_limit as u64 {
            return Err(too_large());
        }
    }
    let collect = Limited::new(req.into_body(), app.body_limit).collect();
    let body = tokio::time::timeout(app.body_timeout, collect)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    app.body_timeout.as_secs_f64()
                ),
            )
        })?
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::bad_request("bad_body", format!("reading the body: {e}"))
            }
        })?
        .to_bytes();
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    serde_json::from_slice(text).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_json"
        } else {
            "invalid_body"
        };
        ApiError::bad_request(code, format!("request body: {e}"))
    })
}

/// A parsed query string (`a=b&c=d`, percent-decoded).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse `raw`.
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query(pairs)
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: absent is `false`; `true`/`1`/empty are true, `false`/`0` false.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                "bad_query",
                format!("{key}={other:?}: expected true or false"),
            )),
        }
    }
}

/// Percent-decoding (`+` is a space); bad escapes are kept as they are.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path of `pattern` with `{id}` filled in.
    fn path(pattern: &str, id: &str) -> Vec<String> {
        pattern
            .trim_start_matches('/')
            .split('/')
            .map(|s| if s == "{id}" { id } else { s }.to_owned())
            .collect()
    }

    #[test]
    fn every_route_is_found_by_its_own_method_and_path() {
        for r in ROUTES {
            let method = Method::from_bytes(r.method.as_bytes()).unwrap();
            let owned = path(r.pattern, "c1");
            let segments: Vec<&str> = owned.iter().map(String::as_str).collect();
            match route_of(&method, &segments) {
                Routed::Route(found) => assert_eq!(found, r),
                _ => panic!("{} {} is not routed", r.method, r.pattern),
            }
        }
        let handlers: std::collections::HashSet<_> = ROUTES.iter().map(|r| r.handler).collect();
        assert_eq!(handlers.len(), ROUTES.len(), "one handler per route");
    }

    #[test]
    fn literal_segments_win_and_wrong_methods_list_the_right_ones() {
        let post = route_of(&Method::POST, &["v1", "containers", "batch"]);
        assert!(matches!(post, Routed::Route(r) if r.handler == Handler::Batch));
        let get = route_of(&Method::GET, &["v1", "containers", "batch"]);
        assert!(matches!(get, Routed::Route(r) if r.handler == Handler::Get));
        match route_of(&Method::PUT, &["v1", "containers", "c1"]) {
            Routed::WrongMethod(p, allowed) => {
                assert_eq!(p, "/v1/containers/{id}");
                assert_eq!(allowed, ["DELETE", "GET"]);
            }
            _ => panic!("PUT on a container is a wrong method"),
        }
        assert!(matches!(
            route_of(&Method::GET, &["nope"]),
            Routed::Unmatched
        ));
    }

    #[test]
    fn query_strings() {
        let q = Query::parse(Some("state=running&force&x=a%20b&bad=%zz&end=%4"));
        assert_eq!(q.get("state"), Some("running"));
        assert_eq!(q.flag("force"), Ok(true));
        assert_eq!(q.flag("missing"), Ok(false));
        assert_eq!(q.get("x"), Some("a b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
        assert!(Query::parse(Some("force=maybe")).flag("force").is_err());
    }
}
