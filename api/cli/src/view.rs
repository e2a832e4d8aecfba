//! What the CLI reads of the daemon's JSON: only the fields it shows, each optional, so
//! that fields the daemon adds later change nothing here.

use serde::Deserialize;

/// A container record, as far as the CLI shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RecordView {
    /// Container id.
    pub id: String,
    /// Lifecycle state.
    pub state: String,
    /// Host pid of its init.
    pub pid: Option<i64>,
    /// Exit status, once stopped.
    pub exit_code: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When each step happened (RFC 3339).
    pub timestamps: TimestampsView,
}

/// A record's timestamps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TimestampsView {
    /// Accepted by the daemon.
    pub queued: Option<String>,
    /// Created by its shim.
    pub created: Option<String>,
    /// Started.
    pub started: Option<String>,
    /// Exited.
    pub exited: Option<String>,
}

impl RecordView {
    /// Whether the container is alive or on its way (not stopped, failed or deleted).
    pub fn is_live(&self) -> bool {
        !matches!(self.state.as_str(), "stopped" | "failed" | "deleted")
    }
}

/// One page of `GET /v1/containers`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageView {
    /// The records (kept as JSON, to print them as they came with `--json`).
    pub containers: Vec<serde_json::Value>,
    /// The id to continue after, when there are more.
    pub next: Option<String>,
}

/// A line of `GET /v1/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventView {
    /// `event` or `lagged`.
    pub item: String,
    /// Sequence number.
    pub seq: u64,
    /// When (RFC 3339).
    pub at: String,
    /// Container id.
    pub id: String,
    /// `state` or `oom`.
    #[serde(rename = "type")]
    pub kind: String,
    /// State after the event.
    pub state: String,
    /// State before.
    pub previous: Option<String>,
    /// Host pid of the init.
    pub pid: Option<i64>,
    /// Exit status.
    pub exit_code: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Events this client missed (`lagged`).
    pub missed: u64,
    /// What happened to an image (`image`): pulled, imported or deleted.
    pub action: String,
    /// The image's full name (`image`; its `id` is the image id).
    pub name: String,
}

/// An image as `GET /v1/images` lists it (ImageSummary).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageView {
    /// Full name, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    /// Image id: the config's digest.
    pub id: String,
    /// Bytes of its blobs.
    pub size: u64,
    /// When it was pulled or imported (RFC 3339).
    pub created: Option<String>,
    /// How many layers it has.
    pub layers: u64,
}

/// One line of a pull's progress (PullProgress).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PullProgressView {
    /// resolved, downloading, exists, unpacked, done or error.
    pub status: String,
    /// The image's full name (resolved, done).
    pub reference: Option<String>,
    /// The manifest's digest (resolved).
    pub manifest: Option<String>,
    /// How many layers (resolved).
    pub layers: Option<u64>,
    /// The layer's digest (downloading, exists, unpacked).
    pub layer: Option<String>,
    /// Bytes downloaded so far (downloading).
    pub current: Option<u64>,
    /// The layer's size (downloading).
    pub total: Option<u64>,
    /// The image id (done).
    pub id: Option<String>,
    /// Why the pull failed (error).
    pub error: Option<ErrorView>,
}

/// The daemon's `{code, message}` of an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorView {
    /// Machine-readable code.
    pub code: String,
    /// For humans.
    pub message: String,
}

/// A network as `GET /v1/networks` lists it (NetworkInfo).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NetworkView {
    /// Its name.
    pub name: String,
    /// 64 hex characters.
    pub id: String,
    /// How it attaches containers.
    pub driver: DriverView,
    /// The containers on it, by id.
    pub containers: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A network's driver, as far as the CLI shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DriverView {
    /// `bridge` or `cni`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A bridge network's subnet, e.g. `10.1.0.0/16`.
    pub subnet: Option<String>,
}

/// `sha256:0123456789abcdef…` as its first 12 hex digits (a digest without an
/// algorithm as it is, cut to 12).
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// The answer of `POST /v1/containers/{id}/exec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExecView {
    /// Host pid of the process.
    pub pid: Option<i64>,
    /// Its exit status (when waited for).
    pub exit_code: Option<i64>,
    /// Its stdout and stderr, combined.
    pub output: String,
    /// Whether the daemon cut the output short.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_fine() {
        let r: RecordView = serde_json::from_str(
            r#"{"id":"a","state":"running","pid":7,"new":1,"timestamps":{"queued":null}}"#,
        )
        .unwrap();
        assert_eq!((r.id.as_str(), r.pid, r.is_live()), ("a", Some(7), true));
        let e: EventView = serde_json::from_str(r#"{"item":"lagged","missed":3}"#).unwrap();
        assert_eq!((e.item.as_str(), e.missed), ("lagged", 3));
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
    }
}
