//! A cheap HTTP/1.1 client for berthd's unix socket: hyper's connection-level client
//! over a tokio `UnixStream`, one keep-alive connection per concurrent caller, so the
//! harness spends its CPU on nothing but requests.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// An answer: status and the whole body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Protocol {
            what: what.to_owned(),
            message: format!("{e} in {}", String::from_utf8_lossy(&self.body)),
        })
    }

    /// The `{"error":{"code","message"}}` of a refusal, as `code: message`.
    pub fn error_text(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => format!(
                "HTTP {}: {}",
                self.status.as_u16(),
                String::from_utf8_lossy(&self.body)
            ),
        }
    }
}

/// One keep-alive connection to the daemon, reopened when it breaks.
pub struct Conn {
    socket: PathBuf,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// Open a connection and drive it in the background; returns the request side.
async fn connect(socket: &Path) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let stream = UnixStream::connect(socket).await?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // Ends when the peer closes or the sender is dropped; errors show up as failed
        // requests on the sender's side.
        let _ = conn.await;
    });
    Ok(sender)
}

/// A request for `path` with an optional JSON body.
fn request(method: Method, path: &str, body: Option<Bytes>) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "berth");
    if body.is_some() {
        b = b.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    b.body(Full::new(body.unwrap_or_default()))
        .expect("a request from constant parts and a path the harness made")
}

impl Conn {
    /// A connection to `socket`, opened on first use.
    pub fn new(socket: &Path) -> Self {
        Conn {
            socket: socket.to_path_buf(),
            sender: None,
        }
    }

    /// Send one request and read the whole answer. A broken connection is dropped
    /// (and reopened by the next call); the error says why.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer> {
        let fail = |message: String| Error::Http {
            method: method.to_string(),
            path: path.to_owned(),
            message,
        };
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(
                connect(&self.socket)
                    .await
                    .map_err(|e| fail(format!("connecting to {}: {e}", self.socket.display())))?,
            );
        }
        let sender = self.sender.as_mut().expect("just connected");
        let sent = async {
            sender.ready().await?;
            let resp = sender
                .send_request(request(method.clone(), path, body))
                .await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Answer {
                status,
                retry_after,
                body,
            })
        }
        .await;
        match sent {
            Ok(a) => Ok(a),
            Err(e) => {
                self.sender = None;
                Err(fail(e.to_string()))
            }
        }
    }

    /// Open a streaming GET (for `/v1/events`): the answer's head, and its body to read
    /// frame by frame. The connection is given to the stream.
    pub async fn stream(
        socket: &Path,
        path: &str,
    ) -> Result<(StatusCode, hyper::body::Incoming, Option<u32>)> {
        let fail = |message: String| Error::Http {
            method: "GET".into(),
            path: path.to_owned(),
            message,
        };
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| fail(format!("connecting to {}: {e}", socket.display())))?;
        let peer = stream.peer_cred().ok().and_then(|c| c.pid());
        let peer = peer.and_then(|p| u32::try_from(p).ok());
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let resp = sender
            .send_request(request(Method::GET, path, None))
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok((resp.status(), resp.into_body(), peer))
    }
}
