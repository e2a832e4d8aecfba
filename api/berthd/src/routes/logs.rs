//! `GET /v1/containers/{id}/logs`: the container's stdout and stderr as its shim keeps
//! them (a capped file plus one rotated part), whole, the last lines, or followed live.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use tokio::sync::mpsc;

use super::containers::record;
use super::events::LineStream;
use super::{blocking, ApiError, App, Query, Reply};

/// How often a follower looks for new output.
const POLL: Duration = Duration::from_millis(100);
/// Chunks buffered per follower before the reader waits for it.
const FOLLOW_BUFFER: usize = 64;
/// Largest chunk read at once while following.
const CHUNK: usize = 64 << 10;

/// Parse `?tail=N`.
fn tail_of(query: &Query) -> Result<Option<usize>, ApiError> {
    query
        .get("tail")
        .map(|t| {
            t.parse::<usize>().map_err(|_| {
                ApiError::bad_request("bad_query", format!("tail={t:?}: expected a line count"))
            })
        })
        .transpose()
}

/// The log file of `id`, after checking the container exists.
fn log_path(app: &App, id: &str) -> Result<PathBuf, ApiError> {
    record(app, id)?;
    let shim = app
        .shim
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no_logs", "this daemon keeps no logs"))?;
    Ok(shim.container_log(id))
}

/// What is kept so far: the rotated part, then the current file.
fn read_all(log: &Path) -> Result<Vec<u8>, ApiError> {
    let mut text = std::fs::read(log.with_extension("log.1")).unwrap_or_default();
    match std::fs::read(log) {
        Ok(t) => text.extend_from_slice(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ApiError::internal(format!(
                "reading the log {}: {e}",
                log.display()
            )))
        }
    }
    Ok(text)
}

/// A plain-text response.
fn text_response<B>(body: B) -> Response<B> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `GET /v1/containers/{id}/logs[?tail=N]`: what is kept, or its last `N` lines.
pub async fn read(app: &Arc<App>, id: &str, query: &Query) -> Reply {
    let tail = tail_of(query)?;
    let log = log_path(app, id)?;
    let text = blocking(move || read_all(&log)).await?;
    let text = match tail {
        None => text,
        Some(n) => last_lines(&text, n).to_vec(),
    };
    Ok(text_response(Full::new(Bytes::from(text))))
}

/// `GET /v1/containers/{id}/logs?follow=true[&tail=N]`: what is kept (or its last `N`
/// lines), then new output as it is written, until the container has stopped and its
/// output is drained, or the client leaves.
pub fn follow(app: &Arc<App>, id: &str, query: &Query) -> Result<Response<LineStream>, ApiError> {
    let tail = tail_of(query)?;
    let log = log_path(app, id)?;
    let (tx, rx) = mpsc::channel::<Bytes>(FOLLOW_BUFFER);
    let app = Arc::clone(app);
    let id = id.to_owned();
    // The reads are of a local file, at most CHUNK at a time: done inline, not on a
    // blocking thread a follower would hold for its whole life.
    tokio::spawn(async move {
        let mut follower = Follower::new(log);
        let first = match follower.backlog(tail) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(container = %id, "following the log: {e}");
                return;
            }
        };
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        loop {
            // Decide before reading, so output written just before the stop is sent.
            let done = !app.engine.get(&id).is_some_and(|r| {
                matches!(
                    r.state,
                    State::Queued
                        | State::Creating
                        | State::Created
                        | State::Running
                        | State::Paused
                )
            });
            loop {
                match follower.more() {
                    Ok(chunk) if chunk.is_empty() => break,
                    Ok(chunk) => {
                        if tx.send(Bytes::from(chunk)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(container = %id, "following the log: {e}");
                        return;
                    }
                }
            }
            if done {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = tx.closed() => return,
            }
        }
    });
    Ok(text_response(LineStream::new(rx)))
}

/// Reads a log file onwards from where it last stopped, across the shim's rotations.
struct Follower {
    path: PathBuf,
    file: Option<std::fs::File>,
    inode: u64,
    offset: u64,
}

impl Follower {
    fn new(path: PathBuf) -> Self {
        Follower {
            path,
            file: None,
            inode: 0,
            offset: 0,
        }
    }

    /// What is kept now (its last `tail` lines if given); following goes on from here.
    fn backlog(&mut self, tail: Option<usize>) -> std::io::Result<Vec<u8>> {
        let mut text = std::fs::read(self.path.with_extension("log.1")).unwrap_or_default();
        // Read the current file through the descriptor kept for following, so nothing
        // written meanwhile falls between the backlog and what follows.
        match self.open_at(0) {
            Ok(()) => {
                let f = self.file.as_mut().expect("just opened");
                self.offset = f.read_to_end(&mut text)? as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(match tail {
            None => text,
            Some(n) => last_lines(&text, n).to_vec(),
        })
    }

    /// (Re)open the log and seek to `offset`.
    fn open_at(&mut self, offset: u64) -> std::io::Result<()> {
        let mut f = std::fs::File::open(&self.path)?;
        self.inode = f.metadata()?.ino();
        f.seek(SeekFrom::Start(offset))?;
        self.file = Some(f);
        self.offset = offset;
        Ok(())
    }

    /// Output written since the last call (empty when none).
    fn more(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(f) = self.file.as_mut() {
            f.by_ref().take(CHUNK as u64).read_to_end(&mut out)?;
            self.offset += out.len() as u64;
            if !out.is_empty() {
                return Ok(out);
            }
        }
        // Nothing new in the file we hold: the shim may have rotated it (new inode or
        // shorter), or it may only now exist.
        match std::fs::metadata(&self.path) {
            Ok(meta)
                if self.file.is_none() || meta.ino() != self.inode || meta.len() < self.offset =>
            {
                self.open_at(0)?;
                let f = self.file.as_mut().expect("just opened");
                f.by_ref().take(CHUNK as u64).read_to_end(&mut out)?;
                self.offset += out.len() as u64;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }
}

/// The last `n` lines of `text` (a final line without a newline counts).
fn last_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 1), b"c");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn follower_reads_on_across_rotation() {
        let dir = std::env::temp_dir().join(format!("berth-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("container.log");
        std::fs::write(&log, b"one\n").unwrap();
        let mut f = Follower::new(log.clone());
        assert_eq!(f.backlog(None).unwrap(), b"one\n");
        assert_eq!(f.more().unwrap(), b"");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut w| std::io::Write::write_all(&mut w, b"two\n"))
            .unwrap();
        assert_eq!(f.more().unwrap(), b"two\n");
        // Rotation: the file moves to .1 and a new one starts.
        std::fs::rename(&log, log.with_extension("log.1")).unwrap();
        std::fs::write(&log, b"three\n").unwrap();
        assert_eq!(f.more().unwrap(), b"three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
