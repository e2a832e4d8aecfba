//! How a `berth-shim` is started: its options (one struct; the command line and the
//! spawner's request are two encodings of it), and the spawner's answer.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The argument that makes `berth-shim` a spawner (its only argument then).
pub const SPAWNER_ARG: &str = "--spawner";

/// How to start a `berth-shim`: the command line of the engine's exec, and the request a
/// spawner sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpawnOptions {
    /// The `berth-shim` binary (not sent to a spawner: it is that binary).
    #[serde(skip)]
    pub binary: PathBuf,
    /// Container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The shim's own directory (socket, pid, exit record, shim log).
    pub state_dir: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// An external OCI runtime binary (runc, crun, berth-runc); `None`: the built-in library.
    pub runtime: Option<PathBuf>,
    /// Where the container's stdout/stderr go; `None`: discarded.
    pub log: Option<PathBuf>,
    /// Size cap of the log file in bytes; `None`: the shim's default (10 MiB).
    pub log_max: Option<u64>,
    /// Create only; wait for [`crate::Request::Start`].
    pub no_start: bool,
}

impl SpawnOptions {
    /// The shim's arguments (after the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--runtime-root".into(),
            self.runtime_root.clone().into(),
        ];
        if let Some(runtime) = &self.runtime {
            args.extend(["--runtime".into(), runtime.clone().into()]);
        }
        if let Some(log) = &self.log {
            args.extend(["--log".into(), log.clone().into()]);
        }
        if let Some(max) = self.log_max {
            args.extend(["--log-max".into(), max.to_string().into()]);
        }
        if self.no_start {
            args.push("--no-start".into());
        }
        args
    }
}

/// The spawner's answer to a [`SpawnOptions`] request (which carries the shim's end of
/// its control socket pair).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpawnReply {
    /// The shim runs with this pid; its pidfd travels with the answer.
    Spawned {
        /// The shim's pid.
        pid: i32,
    },
    /// No shim was made.
    Error {
        /// Why.
        message: String,
    },
}
