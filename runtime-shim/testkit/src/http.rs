//! A tiny HTTP/1.1 server on loopback for tests: token endpoints, redirectors, proxies
//! that corrupt or stall. One request per connection (`Connection: close`), each
//! connection on its own thread; the handler writes the answer itself, so it can also
//! write half of one and stall.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `PUT` …
    pub method: String,
    /// The target, with its query (`/v2/x/blobs/sha256:…?a=b`).
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (by Content-Length).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of query parameter `key`, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, q) = self.path.split_once('?')?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// What a handler gets: the request and the connection to answer on.
pub type Handler = dyn Fn(&Request, &mut TcpStream) + Send + Sync;

/// A running server; stops accepting on Drop.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `handler` on 127.0.0.1 at a free port.
    pub fn start(handler: impl Fn(&Request, &mut TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stopping = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    if let Ok(req) = read_request(&mut conn) {
                        handler(&req, &mut conn);
                    }
                });
            }
        });
        Server {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &mut TcpStream) -> io::Result<Request> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    reader.take(len).read_to_end(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Writes a whole response (`Connection: close`, Content-Length from `body`).
pub fn respond(conn: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let _ = write_head(conn, status, headers, body.len() as u64);
    let _ = conn.write_all(body);
    let _ = conn.flush();
}

/// Writes the status line and headers announcing `len` body bytes.
pub fn write_head(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    len: u64,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    conn.write_all(head.as_bytes())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// A plain GET (through a proxying handler, say): status, headers (lower-case names)
/// and body. Not for the registry's auth: use the registry's own helpers for that.
pub fn forward(url: &str, headers: &[(String, String)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.get(url);
    for (n, v) in headers {
        if n != "host" && n != "connection" {
            req = req.set(n, v);
        }
    }
    let resp = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("forward {url}: {e}"),
    };
    let status = resp.status();
    let names = resp.headers_names();
    let hs = names
        .iter()
        .filter_map(|n| {
            resp.header(n)
                .map(|v| (n.to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let mut body = Vec::new();
    let _ = resp.into_reader().read_to_end(&mut body);
    (status, hs, body)
}

/// A proxy in front of `upstream` (a base URL): each request is forwarded with
/// [`forward`], and `edit` may change the answer's headers and body before it goes back
/// (corrupt a blob, drop a header, count requests).
pub fn proxy(
    upstream: String,
    edit: impl Fn(&Request, &mut Vec<(String, String)>, &mut Vec<u8>) + Send + Sync + 'static,
) -> Server {
    Server::start(move |req: &Request, conn: &mut TcpStream| {
        let (status, mut headers, mut body) =
            forward(&format!("{upstream}{}", req.path), &req.headers);
        edit(req, &mut headers, &mut body);
        let keep: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(n, _)| {
                !matches!(
                    n.as_str(),
                    "content-length" | "connection" | "transfer-encoding"
                )
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        respond(conn, status, &keep, &body);
    })
}
