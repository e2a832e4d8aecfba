//! A small HTTP/1.1 client for berthd over a unix socket or TCP: one connection per
//! request (hyper's `client::conn::http1` on tokio), JSON in, JSON or a stream out.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{CliError, ClientError};
use super::host::Endpoint;

/// How long connecting (and the HTTP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

/// The daemon at one endpoint, with an optional bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    token: Option<String>,
}

impl Client {
    /// A client for `endpoint`, sending `token` as `Authorization: Bearer`.
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Self {
        Client { endpoint, token }
    }

    /// Send one request; the answer's body is left to be read (for streams).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response<Incoming>, CliError> {
        let request = format!("{method} {path}");
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.endpoint.host_header());
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| CliError::Usage("--token: not a valid header value".into()))?;
            builder = builder.header(AUTHORIZATION, value);
        }
        let bytes = match body {
            Some(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = builder
            .body(Full::new(bytes))
            .map_err(|e| CliError::Protocol {
                request: request.clone(),
                detail: format!("cannot build the request: {e}"),
            })?;
        let mut sender = self.connect(&request).await?;
        sender
            .send_request(req)
            .await
            .map_err(|source| self.lost(&request, source))
    }

    /// Send one request and read the whole answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, CliError> {
        let request = format!("{method} {path}");
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|source| self.lost(&request, source))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Send one request; a success's body as it came (the daemon's JSON, unparsed), an
    /// error status as [`CliError::Server`].
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, CliError> {
        let answer = self.call(method, path, body).await?;
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            Err(CliError::from_answer(answer.status, &answer.body))
        }
    }

    /// Like [`Client::ok`], the body parsed as JSON.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(Bytes, serde_json::Value), CliError> {
        let request = format!("{method} {path}");
        let raw = self.ok(method, path, body).await?;
        let value = serde_json::from_slice(&raw).map_err(|e| CliError::Protocol {
            request,
            detail: format!("not JSON: {e}"),
        })?;
        Ok((raw, value))
    }

    /// Read the next chunk of a streamed answer (`None` at its end).
    pub async fn next_chunk(
        &self,
        request: &str,
        body: &mut Incoming,
    ) -> Result<Option<Bytes>, CliError> {
        loop {
            match body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => return Err(self.lost(request, source)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    fn lost(&self, request: &str, source: hyper::Error) -> CliError {
        ClientError::Http {
            endpoint: self.endpoint.to_string(),
            request: request.to_owned(),
            source,
        }
        .into()
    }

    async fn connect(&self, request: &str) -> Result<http1::SendRequest<Full<Bytes>>, CliError> {
        let endpoint = self.endpoint.to_string();
        let connecting = async {
            match &self.endpoint {
                Endpoint::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path).await;
                    let stream = stream.map_err(|source| ClientError::Connect {
                        endpoint: endpoint.clone(),
                        source,
                    })?;
                    self.handshake(stream, request).await
                }
                Endpoint::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr.as_str()).await;
                    let stream = stream.map_err(|source| ClientError::Connect {
                        endpoint: endpoint.clone(),
                        source,
                    })?;
                    // Requests are small and answered at once: do not wait to batch.
                    let _ = stream.set_nodelay(true);
                    self.handshake(stream, request).await
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::ConnectTimeout {
                endpoint,
                secs: CONNECT_TIMEOUT.as_secs(),
            }
            .into()),
        }
    }

    async fn handshake<S>(
        &self,
        stream: S,
        request: &str,
    ) -> Result<http1::SendRequest<Full<Bytes>>, CliError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| self.lost(request, source))?;
        // The connection is driven by its own task; errors surface through the sender.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// Percent-encode `s` for a path segment or a query value (everything but unreserved
/// characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` with the query `pairs` (values encoded; `None` values left out).
pub fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(encode("a-b_c.d~1"), "a-b_c.d~1");
        assert_eq!(encode("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(
            with_query(
                "/v1/events",
                &[
                    ("id", Some("x y".into())),
                    ("type", None),
                    ("since", Some("3".into()))
                ]
            ),
            "/v1/events?id=x%20y&since=3"
        );
        assert_eq!(with_query("/p", &[("a", None)]), "/p");
    }
}
