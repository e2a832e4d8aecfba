//! The few berthd requests the harness makes, with the answers typed as far as it reads
//! them.

use std::time::SystemTime;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use crate::client::Conn;
use crate::error::{Error, Result};

/// A container record (the fields the harness reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Lifecycle state.
    pub state: String,
    /// Host pid of its init.
    pub pid: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Exit status, once stopped.
    pub exit_code: Option<i32>,
    /// When each step happened.
    #[serde(default)]
    pub timestamps: Timestamps,
}

/// A record's timestamps (RFC 3339).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Timestamps {
    /// Accepted and queued.
    pub queued: Option<String>,
    /// Taken by a start worker.
    pub dequeued: Option<String>,
    /// The shim said started.
    pub started: Option<String>,
}

/// Parse an RFC 3339 timestamp of the daemon.
pub fn instant(t: &Option<String>) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(t.as_deref()?).ok()
}

#[derive(Deserialize)]
struct Page {
    containers: Vec<Record>,
    #[serde(default)]
    next: Option<String>,
}

/// Every record whose id starts with `prefix`, following the list's pages.
pub async fn records(conn: &mut Conn, prefix: &str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => "/v1/containers".to_owned(),
            Some(a) => format!("/v1/containers?after={a}"),
        };
        let answer = conn.call(Method::GET, &path, None).await?;
        if answer.status != StatusCode::OK {
            return Err(Error::Protocol {
                what: format!("GET {path}"),
                message: answer.error_text(),
            });
        }
        let page: Page = answer.json(&format!("GET {path}"))?;
        let last = page.containers.last().map(|r| r.id.clone());
        out.extend(
            page.containers
                .into_iter()
                .filter(|r| r.id.starts_with(prefix)),
        );
        match page.next {
            // A page that ends where it began would loop forever: stop there.
            Some(n) if Some(&n) != after.as_ref() && last.is_some() => after = Some(n),
            _ => return Ok(out),
        }
    }
}

/// `POST /v1/images/pull` for `reference`, read to its end: the image id of its
/// `done` line, or the error it ended with.
pub async fn pull(conn: &mut Conn, reference: &str) -> Result<String> {
    let path = "/v1/images/pull";
    let what = format!("POST {path} {reference}");
    let body = serde_json::json!({ "reference": reference }).to_string();
    let a = conn
        .call(Method::POST, path, Some(Bytes::from(body)))
        .await?;
    if a.status != StatusCode::OK {
        return Err(Error::Protocol {
            what,
            message: a.error_text(),
        });
    }
    pulled(&a.body).map_err(|message| Error::Protocol { what, message })
}

/// The image id of a pull's progress `lines` (NDJSON), or why it has none.
fn pulled(lines: &[u8]) -> std::result::Result<String, String> {
    for line in lines.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("not a progress line: {e}"))?;
        match v["status"].as_str() {
            Some("done") => return Ok(v["id"].as_str().unwrap_or("?").to_owned()),
            Some("error") => {
                return Err(format!(
                    "{}: {}",
                    v["error"]["code"].as_str().unwrap_or("error"),
                    v["error"]["message"].as_str().unwrap_or("the pull failed")
                ))
            }
            _ => {}
        }
    }
    Err("the progress ended before the pull was done".into())
}

/// What became of one create.
#[derive(Debug, Clone)]
pub enum Created {
    /// Accepted (queued or further).
    Accepted,
    /// The daemon is full: retry after this many seconds.
    Busy(u64),
    /// Refused, with the daemon's reason.
    Refused(String),
}

/// `POST /v1/containers` with a prepared body.
pub async fn create(conn: &mut Conn, body: String) -> Result<Created> {
    let a = conn
        .call(Method::POST, "/v1/containers", Some(Bytes::from(body)))
        .await?;
    Ok(match a.status.as_u16() {
        200..=299 => Created::Accepted,
        429 | 503 => Created::Busy(a.retry_after.unwrap_or(1)),
        _ => Created::Refused(a.error_text()),
    })
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    index: Option<usize>,
    id: Option<String>,
    error: Option<serde_json::Value>,
}

/// `POST /v1/containers/batch` with `bodies` (prepared create bodies) whose ids are
/// `ids`; one outcome per item, in order.
pub async fn create_batch(
    conn: &mut Conn,
    ids: &[String],
    bodies: &[String],
) -> Result<Vec<Created>> {
    let mut text = String::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 20);
    text.push_str("{\"containers\":[");
    for (i, b) in bodies.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(b);
    }
    text.push_str("]}");
    let path = "/v1/containers/batch";
    let a = conn
        .call(Method::POST, path, Some(Bytes::from(text)))
        .await?;
    match a.status.as_u16() {
        202 | 207 | 200 | 201 => {}
        429 | 503 => return Ok(vec![Created::Busy(a.retry_after.unwrap_or(1)); ids.len()]),
        _ => return Ok(vec![Created::Refused(a.error_text()); ids.len()]),
    }
    let answer: BatchAnswer = a.json(&format!("POST {path}"))?;
    let mut out = vec![Created::Accepted; ids.len()];
    for (pos, item) in answer.results.iter().enumerate() {
        let Some(err) = &item.error else {
            continue;
        };
        let at = item
            .index
            .or_else(|| ids.iter().position(|i| Some(i) == item.id.as_ref()))
            .unwrap_or(pos);
        let reason = match (err["code"].as_str(), err["message"].as_str()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => err.to_string(),
        };
        let busy = err["code"].as_str() == Some("queue_full");
        if let Some(slot) = out.get_mut(at) {
            *slot = if busy {
                Created::Busy(1)
            } else {
                Created::Refused(reason)
            };
        }
    }
    Ok(out)
}

/// `DELETE /v1/containers/{id}?force=true`: `Ok(true)` once gone (or never there),
/// `Ok(false)` when the daemon asks to retry (the container is being created).
pub async fn delete(conn: &mut Conn, id: &str) -> Result<std::result::Result<bool, String>> {
    let a = conn
        .call(
            Method::DELETE,
            &format!("/v1/containers/{id}?force=true"),
            None,
        )
        .await?;
    Ok(match a.status.as_u16() {
        200..=299 | 404 => Ok(true),
        409 | 429 | 503 | 504 => Ok(false),
        _ => Err(a.error_text()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_ends_with_its_id_or_its_error() {
        let ok = b"{\"status\":\"resolved\",\"layers\":1}\n{\"status\":\"exists\",\"layer\":\"sha256:a\"}\n{\"status\":\"done\",\"reference\":\"x\",\"id\":\"sha256:b\"}\n";
        assert_eq!(pulled(ok), Ok("sha256:b".into()));
        let failed = b"{\"status\":\"resolved\"}\n{\"status\":\"error\",\"error\":{\"code\":\"bad_layer\",\"message\":\"truncated\"}}";
        assert_eq!(pulled(failed), Err("bad_layer: truncated".into()));
        assert!(pulled(b"{\"status\":\"resolved\"}\n").is_err());
        assert!(pulled(b"nope\n").is_err());
    }
}
