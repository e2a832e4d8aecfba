//! The protocol between the daemon's engine and one `berth-shim`: one datagram per
//! message (SOCK_SEQPACKET unix socket at `<shim state dir>/shim.sock`), JSON-encoded,
//! one enum per direction, so both ends are typed and a restarted daemon can reconnect
//! and ask again.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use berth_runtime_types::{CgroupDirs, Stats, Status};

/// File name of the shim's control socket inside its state directory.
pub const SOCKET_FILE: &str = "shim.sock";
/// File name of the exit status the shim writes (atomically) before reporting an exit.
pub const EXIT_FILE: &str = "exit.json";
/// File name of the shim's own pid.
pub const PID_FILE: &str = "shim.pid";
/// Largest datagram either side sends.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The argument that makes `berth-shim` clean up after a lost shim (its first argument,
/// followed by `--id ID --state-dir DIR --runtime-root ROOT`): the container is removed
/// as the runtime's `delete --force` would, with the runtime that shim used.
pub const CLEANUP_ARG: &str = "--cleanup";
/// The exit status of `berth-shim --cleanup` when a shim still serves the container:
/// it is not lost, nothing was touched, and the caller should follow it again.
pub const CLEANUP_STILL_SERVES: u8 = 3;

/// Where the shim records the exit of an exec'd process that has an output file of its
/// own: beside it, `<stem>.exit` (an [`ExitRecord`]), written before
/// [`Message::ExecExited`] is sent, so a daemon that missed the event still finds it.
pub fn exec_exit_file(output: &Path) -> PathBuf {
    output.with_extension("exit")
}

/// Daemon → shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Report the container's state.
    State,
    /// Start a container created with `--no-start`.
    Start,
    /// Send a signal to the init, or with `all` to every process of the container.
    Kill {
        /// Signal number.
        signal: i32,
        /// Every process, not only the init.
        all: bool,
    },
    /// Run a further process in the container.
    Exec {
        /// The process (runtime-spec `process` object).
        process: Box<oci_spec::runtime::Process>,
        /// A file (made by the shim, mode 0600) to take the process's stdout and
        /// stderr, its exit then recorded in [`exec_exit_file`]; `None`: the
        /// container's log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<std::path::PathBuf>,
    },
    /// Freeze the container.
    Pause,
    /// Thaw the container.
    Resume,
    /// cgroup statistics.
    Stats,
    /// Remove the container (killing it first with `force`); the shim exits afterwards.
    Delete {
        /// Kill a running container first.
        force: bool,
    },
    /// Exit the shim; refused while the container still exists.
    Shutdown,
}

/// What the shim knows of its container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    /// Container id.
    pub id: String,
    /// Lifecycle status.
    pub status: Status,
    /// Host pid of the init (0 before create and after exit).
    pub pid: i32,
    /// Exit status once stopped (128 + signal for a killed init).
    pub exit_code: Option<i32>,
    /// When the init exited, RFC 3339.
    pub exited_at: Option<String>,
    /// Where its cgroup is, once created (`None`: not yet, or not found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<CgroupDirs>,
}

/// The exit record in [`EXIT_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit status (128 + signal for a killed init).
    pub code: i32,
    /// When the init exited, RFC 3339.
    pub at: String,
}

/// Shim → daemon: replies to requests, in order, and events whenever they happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// The request succeeded.
    Ok,
    /// Reply to [`Request::State`].
    State(ShimState),
    /// Reply to [`Request::Exec`]: the new process's host pid.
    Exec {
        /// Host pid of the exec'd process.
        pid: i32,
    },
    /// Reply to [`Request::Stats`].
    Stats(Box<Stats>),
    /// The request failed.
    Error {
        /// One line saying why.
        message: String,
    },
    /// Event: the container exists (init set up, user code not yet run).
    Created {
        /// Host pid of the init.
        pid: i32,
        /// Where its cgroup is (`None`: not found).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cgroups: Option<CgroupDirs>,
    },
    /// Event: the user process runs.
    Started,
    /// Event: the init exited (already recorded in [`EXIT_FILE`]).
    Exited(ExitRecord),
    /// Event: the kernel's OOM killer killed a process of the container.
    Oom,
    /// Event: a process started with [`Request::Exec`] exited.
    ExecExited {
        /// Its host pid.
        pid: i32,
        /// Exit status (128 + signal when killed).
        code: i32,
    },
    /// Event: creating or starting failed; the shim cleans up and exits.
    Failed {
        /// One line saying why.
        message: String,
    },
}

/// The exit record a shim wrote in `state_dir`, if any (`Ok(None)`: no file).
pub fn read_exit_file(state_dir: &Path) -> io::Result<Option<ExitRecord>> {
    match std::fs::read(state_dir.join(EXIT_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Message {
    /// True for the messages the shim sends unasked (created, started, exited, oom,
    /// failed); false for replies to a request.
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            Message::Created { .. }
                | Message::Started
                | Message::Exited(_)
                | Message::Oom
                | Message::ExecExited { .. }
                | Message::Failed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_replies_are_told_apart() {
        assert!(Message::Started.is_event());
        assert!(Message::Exited(ExitRecord {
            code: 3,
            at: "now".into()
        })
        .is_event());
        assert!(!Message::Ok.is_event());
        assert!(!Message::Exec { pid: 1 }.is_event());
        assert!(Message::ExecExited { pid: 1, code: 0 }.is_event());
    }

    #[test]
    fn wire_form_is_tagged_json() {
        let text = serde_json::to_string(&Request::Kill {
            signal: 9,
            all: false,
        })
        .unwrap();
        assert_eq!(text, r#"{"op":"kill","signal":9,"all":false}"#);
        let text = serde_json::to_string(&Message::Exited(ExitRecord {
            code: 3,
            at: "t".into(),
        }))
        .unwrap();
        assert_eq!(text, r#"{"kind":"exited","code":3,"at":"t"}"#);
        let back: Message = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Message::Exited(ExitRecord { code: 3, .. })));
    }
}
