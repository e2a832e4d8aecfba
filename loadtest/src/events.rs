//! Following `GET /v1/events`: a task reads the NDJSON stream and hands each line the
//! run cares about to the burst, as it arrives.

use std::path::Path;
use std::time::SystemTime;

use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::client::Conn;
use crate::error::{Error, Result};

/// One line of the stream, as far as the harness reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Line {
    /// A state change.
    Event(Event),
    /// The daemon dropped events for this client (how many does not matter: the
    /// records fill the gap).
    Lagged {},
}

/// A container's state change.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// When, RFC 3339.
    pub at: String,
    /// Container id.
    pub id: String,
    /// The state it is in now.
    pub state: String,
    /// Host pid of its init, once known.
    pub pid: Option<i32>,
    /// Exit status, once stopped.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Event {
    /// `at` as a wall-clock instant (the daemon runs on this machine: same clock).
    pub fn when(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.at).ok()
    }
}

/// What the follower task reports.
#[derive(Debug)]
pub enum Notice {
    /// A line of the stream about one of this run's containers (or a lag notice).
    Line(Line),
    /// The stream ended or broke: the daemon went away.
    Ended(String),
}

/// A subscription to the daemon's state events.
pub struct Follower {
    /// Lines as they arrive.
    pub rx: mpsc::UnboundedReceiver<Notice>,
    /// The daemon's pid, from the socket's peer credentials.
    pub daemon_pid: Option<u32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribe to state events of containers whose id starts with `prefix`. Returns once
/// the daemon answered, so every event after this call is seen.
pub async fn follow(socket: &Path, prefix: &str) -> Result<Follower> {
    let path = "/v1/events?type=state";
    let (status, mut body, daemon_pid) = Conn::stream(socket, path).await?;
    if !status.is_success() {
        return Err(Error::Protocol {
            what: format!("GET {path}"),
            message: format!("status {status}"),
        });
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let prefix = prefix.to_owned();
    let task = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
        loop {
            let frame = match body.frame().await {
                None => {
                    let _ = tx.send(Notice::Ended("the event stream ended".into()));
                    return;
                }
                Some(Err(e)) => {
                    let _ = tx.send(Notice::Ended(format!("the event stream broke: {e}")));
                    return;
                }
                Some(Ok(f)) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                let line = &buf[start..start + nl];
                start += nl + 1;
                match serde_json::from_slice::<Line>(line) {
                    Ok(Line::Event(e)) if !e.id.starts_with(&prefix) => {}
                    Ok(l) => {
                        if tx.send(Notice::Line(l)).is_err() {
                            return;
                        }
                    }
                    // A line of a kind this harness does not know: not about a start.
                    Err(_) => {}
                }
            }
            buf.drain(..start);
        }
    });
    Ok(Follower {
        rx,
        daemon_pid,
        task,
    })
}
