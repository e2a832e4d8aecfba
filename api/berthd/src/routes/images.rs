//! `/v1/images`: pull (progress as one JSON object per line), import and save archives,
//! list, inspect, remove and prune. The work runs on blocking threads; bodies stream both
//! ways, so an archive of any size costs a few buffers.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use berth_engine::{Images, SpecSource};
use berth_images::archive::ArchiveError;
use berth_images::pull::Progress;
use berth_images::registry::{Credentials, RegistryError};
use berth_images::store::{ImageRecord, StoreError};
use berth_images::ImagesError;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::events::LineStream;
use super::{blocking, json, ApiError, App, Query, Reply};

/// Chunks buffered between a blocking reader or writer and its HTTP body.
const CHUNKS: usize = 16;

/// Body of `POST /v1/images/pull`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The image (docker's short forms allowed).
    pub reference: String,
    /// Registry user name, for this pull only (else the daemon's configured ones).
    pub username: Option<String>,
    /// Its password or token.
    pub password: Option<String>,
}

/// Body of `POST /v1/images/save`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    /// The images to put in the archive.
    pub names: Vec<String>,
}

/// One line of `GET /v1/images`.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    /// Full name.
    pub name: &'a str,
    /// Image id (config digest).
    pub id: String,
    /// What the name points at (index or manifest digest).
    pub digest: String,
    /// Bytes of its blobs.
    pub size: u64,
    /// When it was pulled or imported.
    pub created: &'a str,
    /// Its layer count.
    pub layers: usize,
}

impl<'a> From<&'a ImageRecord> for Summary<'a> {
    fn from(r: &'a ImageRecord) -> Self {
        Summary {
            name: &r.name,
            id: r.config.to_string(),
            digest: r.target.to_string(),
            size: r.size,
            created: &r.created,
            layers: r.layers.len(),
        }
    }
}

/// The images service, or 404 when the daemon runs without one.
fn service(app: &App) -> Result<Arc<Images>, ApiError> {
    app.images.clone().ok_or_else(|| {
        ApiError::not_found("images_disabled", "this daemon was started without images")
    })
}

/// `GET /v1/images`.
pub fn list(app: &App) -> Reply {
    let images = service(app)?;
    let all = images.list();
    let summaries: Vec<Summary<'_>> = all.iter().map(Summary::from).collect();
    json(StatusCode::OK, &summaries)
}

/// `GET /v1/images/{ref}`: the record and the image config.
pub async fn get(app: &Arc<App>, name: &str) -> Reply {
    let images = service(app)?;
    let name = name.to_owned();
    let (record, config) = blocking(move || {
        let record = images.get(&name)?;
        let config = images.image_config(&record)?;
        Ok((record, config))
    })
    .await?;
    let mut value = serde_json::to_value(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    value["id"] = serde_json::Value::String(record.config.to_string());
    value["image_config"] =
        serde_json::to_value(&*config).map_err(|e| ApiError::internal(e.to_string()))?;
    json(StatusCode::OK, &value)
}

/// `DELETE /v1/images/{ref}[?force=true]`: 409 while a container uses the image.
pub async fn delete(app: &Arc<App>, name: &str, query: &Query) -> Reply {
    let force = query.flag("force")?;
    let images = service(app)?;
    let engine = Arc::clone(&app.engine);
    let name = name.to_owned();
    let removed = blocking(move || {
        let used_by = |image: &ImageRecord| {
            engine
                .list()
                .into_iter()
                .find_map(|r| match &r.spec.source {
                    SpecSource::Image(run) => images
                        .get(&run.image)
                        .is_ok_and(|i| i.config == image.config)
                        .then(|| r.id.clone()),
                    _ => None,
                })
        };
        let removed = images.remove(&name, used_by, force)?;
        Ok(removed)
    })
    .await?;
    json(StatusCode::OK, &Summary::from(&removed))
}

/// `POST /v1/images/prune`: blobs and layer snapshots no image uses are removed.
pub async fn prune(app: &Arc<App>) -> Reply {
    let images = service(app)?;
    let freed = blocking(move || Ok(images.gc()?)).await?;
    json(StatusCode::OK, &serde_json::json!({ "bytes_freed": freed }))
}

/// `POST /v1/images/pull`: 200 and a stream of progress lines once the reference
/// resolved (errors before that are ordinary error answers: 400, 401, 404, 502 …); a
/// failure after that is the last line, `{"status":"error","error":{…}}`.
pub async fn pull(app: &Arc<App>, body: PullRequest) -> Result<Response<LineStream>, ApiError> {
    let images = service(app)?;
    let creds = match (body.username, body.password) {
        (Some(username), Some(password)) => Some(Credentials { username, password }),
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give both username and password, or neither",
            ))
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (first_tx, first_rx) = oneshot::channel::<Result<(), ApiError>>();
    let reference = body.reference;
    tokio::task::spawn_blocking(move || {
        let first = Mutex::new(Some(first_tx));
        let answered = || {
            if let Some(f) = first.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = f.send(Ok(()));
            }
        };
        // A client that went away does not stop the pull: the image is still wanted.
        let send = |b: Bytes| {
            let _ = tx.blocking_send(b);
        };
        let progress = |p: Progress| {
            answered();
            send(line(&p));
        };
        match images.pull(&reference, creds.as_ref(), &progress) {
            Ok(_) => answered(),
            Err(e) => {
                let e = ApiError::from(e);
                let early = first.lock().unwrap_or_else(|p| p.into_inner()).take();
                match early {
                    Some(f) => {
                        let _ = f.send(Err(e));
                    }
                    None => {
                        let mut body = e.body();
                        body["status"] = "error".into();
                        send(line(&body));
                    }
                }
            }
        }
    });
    first_rx
        .await
        .map_err(|_| ApiError::internal("the pull task ended without an answer"))??;
    Ok(ndjson(rx))
}

/// `POST /v1/images/import`: the body is a `docker save` or OCI-layout tar; the images
/// in it are recorded and unpacked.
pub async fn import<B>(app: &Arc<App>, req: Request<B>) -> Reply
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let images = service(app)?;
    let idle = app.body_timeout;
    let reader = BodyReader::spawn(req.into_body(), idle);
    let stalled = Arc::clone(&reader.stalled);
    let imported = blocking(move || {
        let imported = images.import(reader)?;
        Ok(imported)
    })
    .await
    .map_err(|e| {
        // A client that stopped sending is late, not wrong: 408, as for a JSON body.
        if stalled.load(Ordering::SeqCst) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the archive stalled for {} s", idle.as_secs_f64()),
            )
        } else {
            e
        }
    })?;
    let summaries: Vec<Summary<'_>> = imported.iter().map(Summary::from).collect();
    json(StatusCode::OK, &serde_json::json!({ "images": summaries }))
}

/// `POST /v1/images/save`: a tar of the named images (OCI layout plus docker's
/// manifest.json), streamed as it is written.
pub async fn save(app: &Arc<App>, body: SaveRequest) -> Result<Response<ArchiveStream>, ApiError> {
    let images = service(app)?;
    if body.names.is_empty() {
        return Err(ApiError::invalid(
            "no_names",
            "names is empty: give at least one image",
        ));
    }
    // Unknown names are a 404 before anything is sent.
    let names = body.names;
    let checked = Arc::clone(&images);
    let names = blocking(move || {
        for n in &names {
            checked.get(n)?;
        }
        Ok(names)
    })
    .await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS);
    let (first_tx, first_rx) = oneshot::channel::<Result<(), ApiError>>();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter(tx, Some(first_tx));
        let saved = images.save(&names, io::BufWriter::with_capacity(1 << 20, &mut writer));
        match (saved, writer.1.take()) {
            // Nothing sent yet (the store lacks a blob, say): an ordinary error answer
            // rather than an empty archive that looks complete.
            (Err(e), Some(first)) => {
                let _ = first.send(Err(save_error(e)));
            }
            // Bytes went out: the answer is cut short, not ended as if complete.
            (Err(e), None) => {
                tracing::warn!("saving {names:?}: {e}");
                let cut = io::Error::other(format!("saving {names:?}: {e}"));
                let _ = writer.0.blocking_send(Err(cut));
            }
            (Ok(()), first) => {
                if let Some(first) = first {
                    let _ = first.send(Ok(()));
                }
            }
        }
    });
    first_rx
        .await
        .map_err(|_| ApiError::internal("the save task ended without an answer"))??;
    let mut resp = Response::new(ArchiveStream(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

/// A streamed NDJSON answer.
fn ndjson(rx: mpsc::Receiver<Bytes>) -> Response<LineStream> {
    let mut resp = Response::new(LineStream::new(rx));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

/// `value` as one JSON line.
fn line(value: &impl Serialize) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// A request body read by blocking code: a task forwards its chunks.
struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
    /// Set when the body sent nothing for the idle time.
    stalled: Arc<AtomicBool>,
}

impl BodyReader {
    /// Start forwarding `body`; a body that sends nothing for `idle` fails the read.
    fn spawn<B>(body: B, idle: std::time::Duration) -> BodyReader
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (tx, rx) = mpsc::channel(CHUNKS);
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stalled);
        tokio::spawn(async move {
            let mut body = std::pin::pin!(body);
            loop {
                let frame = match tokio::time::timeout(idle, body.frame()).await {
                    Err(_) => {
                        flag.store(true, Ordering::SeqCst);
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the request body stalled for {} s", idle.as_secs()),
                        ))
                    }
                    Ok(None) => return,
                    Ok(Some(Err(e))) => Err(io::Error::other(e.into())),
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => Ok(data),
                        Err(_) => continue, // trailers
                    },
                };
                let failed = frame.is_err();
                if tx.send(frame).await.is_err() || failed {
                    return;
                }
            }
        });
        BodyReader {
            rx,
            chunk: Bytes::new(),
            stalled,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The answer for a save that failed before its first byte: an archive problem there is
/// the daemon's store, not the request (unlike an import's).
fn save_error(e: ImagesError) -> ApiError {
    match e {
        ImagesError::Archive(a @ ArchiveError::ImageNotFound(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, "image_not_found", a.to_string())
        }
        ImagesError::Archive(a) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "image_error",
            format!("saving the archive: {a}"),
        ),
        other => ApiError::from(other),
    }
}

/// A streamed archive; an error ends it without its last chunk (the client sees the
/// body cut short).
pub struct ArchiveStream(mpsc::Receiver<io::Result<Bytes>>);

impl Body for ArchiveStream {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(hyper::body::Frame::data)))
    }
}

/// Blocking writes that become chunks of a streamed response; the first one (if any)
/// is announced on the oneshot, so the answer begins only once bytes exist.
struct ChannelWriter(
    mpsc::Sender<io::Result<Bytes>>,
    Option<oneshot::Sender<Result<(), ApiError>>>,
);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(first) = self.1.take() {
            let _ = first.send(Ok(()));
        }
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<ImagesError> for ApiError {
    fn from(e: ImagesError) -> Self {
        let (status, code) = match &e {
            ImagesError::Reference(_) => (StatusCode::BAD_REQUEST, "invalid_reference"),
            ImagesError::NotFound(_) => (StatusCode::NOT_FOUND, "image_not_found"),
            ImagesError::InUse { .. } => (StatusCode::CONFLICT, "image_in_use"),
            ImagesError::Archive(_) => (StatusCode::BAD_REQUEST, "invalid_archive"),
            ImagesError::Registry(r) => registry_status(r),
            ImagesError::Digest(_) => (StatusCode::BAD_GATEWAY, "bad_image"),
            ImagesError::Unpack { .. } => (StatusCode::BAD_GATEWAY, "bad_layer"),
            ImagesError::Store(StoreError::ImageNotFound(_)) => {
                (StatusCode::NOT_FOUND, "image_not_found")
            }
            ImagesError::Store(StoreError::Ambiguous(_)) => {
                (StatusCode::BAD_REQUEST, "ambiguous_image")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "image_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The answer for a registry's failure: the registry's own refusals as client errors,
/// its breakdowns as a bad gateway.
fn registry_status(e: &RegistryError) -> (StatusCode, &'static str) {
    match e {
        RegistryError::NotFound { .. } => (StatusCode::NOT_FOUND, "image_not_found"),
        RegistryError::Unauthorized { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "registry_unauthorized")
        }
        RegistryError::NoPlatform { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "no_platform"),
        RegistryError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "registry_timeout"),
        RegistryError::Unreachable { .. } => (StatusCode::BAD_GATEWAY, "registry_unreachable"),
        RegistryError::Digest { .. }
        | RegistryError::BadManifest { .. }
        | RegistryError::TooLarge { .. } => (StatusCode::BAD_GATEWAY, "bad_image"),
        _ => (StatusCode::BAD_GATEWAY, "registry_error"),
    }
}
