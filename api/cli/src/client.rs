//! A small HTTP/1.1 client for berthd over a unix socket or TCP: one connection per
//! request (hyper's `client::conn::http1` on tokio), JSON in, JSON or a stream out.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::{CliError, ClientError};
use super::host::Endpoint;

/// How long connecting (and the HTTP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body: a JSON document, or a stream (an archive being uploaded).
pub type Payload = UnsyncBoxBody<Bytes, std::io::Error>;

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
        let (content_type, bytes) = match body {
            Some(v) => (Some("application/json"), Bytes::from(v.to_string())),
            None => (None, Bytes::new()),
        };
        let payload = Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync();
        self.send_body(method, path, content_type, None, payload)
            .await
    }

    /// Send one request whose body is `payload` of `content_type` (streamed as hyper
    /// asks for it; `length`, when known, as its `Content-Length`).
    pub async fn send_body(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        length: Option<u64>,
        payload: Payload,
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
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        if let Some(length) = length {
            builder = builder.header(CONTENT_LENGTH, length);
        }
        let req = builder.body(payload).map_err(|e| CliError::Protocol {
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

    async fn connect(&self, request: &str) -> Result<http1::SendRequest<Payload>, CliError> {
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
    ) -> Result<http1::SendRequest<Payload>, CliError>
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

/// A request body read from `reader` a chunk at a time, as hyper asks for it: an
/// archive of any size is sent without being held in memory.
pub struct ReaderBody<R> {
    reader: R,
    buf: Box<[u8]>,
    done: bool,
}

/// The size of the chunks a [`ReaderBody`] reads.
const CHUNK: usize = 256 << 10;

impl<R: AsyncRead + Unpin + Send + 'static> ReaderBody<R> {
    /// A body streaming `reader` to its end.
    pub fn payload(reader: R) -> Payload {
        ReaderBody {
            reader,
            buf: vec![0; CHUNK].into_boxed_slice(),
            done: false,
        }
        .boxed_unsync()
    }
}

impl<R: AsyncRead + Unpin> hyper::body::Body for ReaderBody<R> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut buf = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.reader).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(buf.filled())))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Lines of a streamed NDJSON answer, cut out of its chunks as they come.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Add a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete, non-blank line (without its newline).
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some(line);
            }
        }
        None
    }

    /// What is left once the stream has ended: a last line without a newline.
    pub fn rest(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
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

/// The path of image `name` (`/v1/images/{name}`): a reference's own characters
/// (slashes, `:` and `@` included) stay as they are, as the daemon wants them;
/// anything else is percent-encoded.
pub fn image_path(name: &str) -> String {
    let mut out = String::from("/v1/images/");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/' | ':' | '@') {
            out.push(c);
        } else {
            out.push_str(&encode(c.encode_utf8(&mut [0; 4])));
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
        assert_eq!(
            image_path("127.0.0.1:5000/test/busybox:latest"),
            "/v1/images/127.0.0.1:5000/test/busybox:latest"
        );
        assert_eq!(image_path("a@sha256:ab"), "/v1/images/a@sha256:ab");
        assert_eq!(image_path("a b?"), "/v1/images/a%20b%3F");
    }

    #[test]
    fn lines_are_cut_across_chunks() {
        let mut l = Lines::default();
        l.push(b"{\"a\":1}\n\n{\"b\"");
        assert_eq!(l.next_line().as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(l.next_line(), None);
        l.push(b":2}\n{\"c\":3}");
        assert_eq!(l.next_line().as_deref(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(l.next_line(), None);
        assert_eq!(l.rest().as_deref(), Some(&b"{\"c\":3}"[..]));
        assert_eq!(l.rest(), None);
    }
}
