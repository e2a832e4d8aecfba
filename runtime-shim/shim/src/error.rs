//! What can go wrong in the shim, typed: each failure carries what was being done and on
//! what. The engine gets the one-line `Display` in `Message::Error` or `Message::Failed`.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// A failure of the shim or of the runtime it drives.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The built-in runtime refused or failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    /// A file or socket call on `path` failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `console socket`).
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A call on no path failed (a socket pair, the terminal).
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// JSON that did not decode or encode.
    #[error("{what}: {source}")]
    Json {
        /// Which JSON (`invalid spec in /b/config.json`, `runtime events`).
        what: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// The external runtime could not be run at all.
    #[error("running {}: {source}", runtime.display())]
    Launch {
        /// The runtime binary.
        runtime: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The external runtime ran and failed; `last` is its last line of stderr or log.
    #[error("{} {verb} failed ({status}): {last}", runtime.display())]
    RuntimeFailed {
        /// The runtime binary.
        runtime: PathBuf,
        /// Its command (`create`, `kill`).
        verb: String,
        /// How it exited.
        status: ExitStatus,
        /// What it said last.
        last: String,
    },
    /// A pid file that holds no pid.
    #[error("bad pid {text:?} in {}", path.display())]
    BadPid {
        /// The pid file.
        path: PathBuf,
        /// What it held.
        text: String,
    },
    /// A signal number the host has no signal for.
    #[error("invalid signal {0}")]
    InvalidSignal(i32),
    /// The container was deleted already.
    #[error("the container is deleted")]
    Deleted,
    /// An external-runtime call on the built-in runtime (a bug).
    #[error("not an external runtime")]
    NotExternal,
    /// A request the shim refuses in its current state, or with these arguments.
    #[error("{0}")]
    Refused(String),
}

impl ShimError {
    /// A file or socket call on `path` failed while doing `what`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ShimError::Io { what, path, source }
    }

    /// A call on no path failed while doing `what`.
    pub fn sys(what: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| ShimError::Sys { what, source }
    }

    /// JSON named `what` did not decode or encode.
    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| ShimError::Json { what, source }
    }
}

/// The shim's result.
pub type Result<T> = std::result::Result<T, ShimError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_and_where() {
        let e = ShimError::io("reading", "/s/init.pid")(io::Error::from_raw_os_error(2));
        assert_eq!(
            e.to_string(),
            "reading /s/init.pid: No such file or directory (os error 2)"
        );
        let e = ShimError::BadPid {
            path: "/s/init.pid".into(),
            text: "x\n".into(),
        };
        assert_eq!(e.to_string(), "bad pid \"x\\n\" in /s/init.pid");
        let runtime = berth_runtime::Error::NotFound("c1".into());
        assert_eq!(
            ShimError::from(runtime).to_string(),
            berth_runtime::Error::NotFound("c1".into()).to_string()
        );
        assert_eq!(
            ShimError::InvalidSignal(99).to_string(),
            "invalid signal 99"
        );
    }
}
