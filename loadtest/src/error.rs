//! What can stop a run, with the context needed to act on it.

use std::path::PathBuf;

/// Why the harness could not run or finish an experiment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A binary the harness needs is missing and could not be built.
    #[error("{0}")]
    Binaries(String),
    /// The containers' root filesystem could not be built from the host's binaries.
    #[error("building the root filesystem: {0}")]
    Rootfs(#[from] berth_host_rootfs::Error),
    /// A helper program (cargo, berth-runc) failed.
    #[error("{program}: {message}")]
    Program {
        /// The program.
        program: String,
        /// What went wrong.
        message: String,
    },
    /// Docker's defaults could not be made into a spec for the bundle burst.
    #[error("building the spec with docker's defaults: {0}")]
    Runspec(#[from] berth_images::runspec::RunspecError),
    /// The daemon could not be started, or died.
    #[error("berthd: {0}")]
    Daemon(String),
    /// The run's network namespace or network could not be made.
    #[error("network: {0}")]
    Network(String),
    /// Talking HTTP to the daemon failed.
    #[error("HTTP {method} {path}: {message}")]
    Http {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An answer of the daemon did not parse as expected.
    #[error("unexpected answer to {what}: {message}")]
    Protocol {
        /// The request it answered.
        what: String,
        /// What was wrong with it.
        message: String,
    },
    /// The run was interrupted by a signal.
    #[error("interrupted by {0}")]
    Interrupted(&'static str),
    /// The run took longer than `--timeout`.
    #[error("timed out after {0} s")]
    Timeout(u64),
    /// Bad command-line options.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An I/O error with its path.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;
