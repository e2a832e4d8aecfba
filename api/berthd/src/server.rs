//! The listeners: a unix socket and, when configured, a TCP address, served by hyper
//! (HTTP/1.1), one task per connection, until a shutdown future completes.
//!
//! The unix socket is guarded by its file mode (0660); a TCP listener may carry a bearer
//! token, checked here — before routing — for every request on it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tracing::Instrument;

use crate::auth::Token;
use crate::routes::{boxed, error_response, handle, AnswerBody, ApiError, App};

/// How long a client may take to send its request headers, by default.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Bind a unix socket at `path` with `mode` (e.g. 0o660), making its directory and
/// replacing a stale socket (one nobody listens on). A live one is an error.
pub fn bind(path: &Path, mode: u32) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another daemon is listening there", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Bind a TCP listener at `addr`.
pub async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// One listener and what its requests must show.
pub enum Listener {
    /// A unix socket; its file mode is the access control.
    Unix(UnixListener),
    /// A TCP listener; with a token, every request must carry it.
    Tcp(TcpListener, Option<Arc<Token>>),
}

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// Serve `app` on every listener until `shutdown` completes; then stop accepting on all
/// of them (open connections are not waited for).
pub async fn serve_all(
    listeners: Vec<Listener>,
    app: Arc<App>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = Arc::clone(&app);
        let stopped = stopped.clone();
        loops.spawn(accept_loop(listener, app, options, stopped));
    }
    shutdown.await;
    let _ = stop.send(true);
    while loops.join_next().await.is_some() {}
}

/// Accept connections on `listener` until `stopped` turns true.
async fn accept_loop(
    listener: Listener,
    app: Arc<App>,
    options: Options,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Unix(stream)) => {
                tokio::spawn(connection(stream, Arc::clone(&app), options, Guard::None));
            }
            Ok(Accepted::Tcp(stream)) => {
                // Small answers are written at once, not held back by Nagle.
                let _ = stream.set_nodelay(true);
                let guard = match &listener {
                    Listener::Tcp(_, Some(token)) => Guard::Token(Arc::clone(token)),
                    _ => Guard::OpenLoopback,
                };
                tokio::spawn(connection(stream, Arc::clone(&app), options, guard));
            }
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A connection just accepted.
enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l, _) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
    }
}

/// What every request of a connection must pass before it reaches a route.
#[derive(Clone)]
enum Guard {
    /// The unix socket: its file mode is the access control.
    None,
    /// A TCP listener with a token.
    Token(Arc<Token>),
    /// A loopback TCP listener without one (`--tcp-insecure`): no browser requests.
    OpenLoopback,
}

/// Serve one connection, each request past `guard`.
async fn connection<S>(stream: S, app: Arc<App>, options: Options, guard: Guard)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let app = Arc::clone(&app);
        let guard = guard.clone();
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path()
        );
        async move {
            match guard {
                Guard::Token(token) if !token.accepts(req.headers().get(AUTHORIZATION)) => {
                    return Ok::<_, Infallible>(unauthorized(&req));
                }
                Guard::OpenLoopback => {
                    if let Some(why) = crate::loopback::refusal(req.headers()) {
                        let error = ApiError::new(StatusCode::FORBIDDEN, "forbidden", why);
                        return Ok(refused(&req, &error));
                    }
                }
                _ => {}
            }
            Ok(handle(app, req).await)
        }
        .instrument(span)
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = result {
        tracing::debug!("connection: {e}");
    }
}

/// 401 for a request without the right token.
fn unauthorized<B>(req: &Request<B>) -> Response<AnswerBody> {
    let error = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this listener needs the header `Authorization: Bearer <token>` with the configured token",
    );
    let mut response = refused(req, &error);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The answer to a request its listener refuses, counted like any other answer.
fn refused<B>(req: &Request<B>, error: &ApiError) -> Response<AnswerBody> {
    let began = Instant::now();
    let response = error_response(error);
    let path = req.uri().path();
    crate::routes::metrics::record(
        crate::routes::route_label(req.method(), path),
        response.status(),
        began.elapsed(),
    );
    tracing::info!(method = %req.method(), path, status = %response.status(), "refused by the listener: {}", error.message);
    response.map(boxed)
}
