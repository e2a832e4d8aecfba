//! An image's config turned into the runtime spec docker would run it with.
//!
//! [`build`] takes the image config, the container's root filesystem (the image's
//! /etc/passwd and /etc/group are read there, safely: it is untrusted) and the request's
//! [`Overrides`]; [`write_etc_files`] then gives the container its own /etc/hosts,
//! /etc/hostname and /etc/resolv.conf.
//!
//! What the engine reads back from the spec: the image's StopSignal is the annotation
//! [`STOP_SIGNAL_ANNOTATION`] (the OCI image spec's name for it; read it with
//! [`stop_signal`]: `None` means SIGTERM) and the image's Labels are annotations of the
//! same names (a label never overrides the stop-signal annotation).
//!
//! - [`command`]: Entrypoint/Cmd, Env, WorkingDir and hostname rules;
//! - [`user`]: `USER` resolved in the image's own id files;
//! - [`inroot`]: reading and making paths inside the untrusted rootfs;
//! - [`defaults`]: namespaces, capabilities, mounts, masked paths, devices, rlimits;
//! - [`seccomp`]: Berth's default seccomp profile;
//! - [`etc`]: the per-container /etc files.

pub mod command;
pub mod defaults;
pub mod etc;
pub mod inroot;
pub mod seccomp;
pub mod user;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Root, Spec};
use serde_json::json;

pub use etc::{write_etc_files, HostEntry};

use crate::manifest::{ImageConfig, RunConfig};

/// The annotation holding the image's StopSignal (e.g. `SIGQUIT`).
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";

/// What a request changes of the image's defaults (all optional: `Default` is "as the
/// image says").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces the image's Entrypoint (and drops its Cmd unless `args` are given); an
    /// empty list clears the Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's Cmd (an empty list counts as not given, as in docker).
    pub args: Option<Vec<String>>,
    /// `KEY=value` set over the image's Env; `KEY` alone removes it.
    pub env: Vec<String>,
    /// The working directory (absolute; empty means not given).
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved in the image (empty means not
    /// given).
    pub user: Option<String>,
    /// The hostname; default (also when empty) the first 12 characters of the id.
    pub hostname: Option<String>,
    /// A terminal: adds TERM=xterm and `process.terminal`.
    pub tty: bool,
    /// Capabilities to add to docker's default set (`NET_ADMIN`, `CAP_SYS_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities to remove from it (`ALL` starts from none).
    pub cap_drop: Vec<String>,
}

/// Why a spec could not be built. The engine prefixes the container id.
#[derive(Debug, thiserror::Error)]
pub enum RunspecError {
    /// Neither the image nor the request names a program.
    #[error("no command: the image has no Entrypoint or Cmd and the request gives none")]
    NoCommand,

    /// A string the kernel cannot take.
    #[error("{what} {value:?} contains a NUL byte")]
    Nul {
        /// Which field.
        what: &'static str,
        /// The value, NULs shown as `\0`.
        value: String,
    },

    /// An environment entry without a name.
    #[error("environment variable {entry:?} has no name (expected KEY=value)")]
    BadEnv {
        /// The entry.
        entry: String,
    },

    /// A relative working directory.
    #[error("working directory {path:?} is not an absolute path")]
    RelativeWorkdir {
        /// The directory.
        path: String,
    },

    /// A hostname the kernel would refuse.
    #[error(
        "hostname {name:?} is invalid (1 to 64 characters, no spaces, control characters or '/')"
    )]
    BadHostname {
        /// The name.
        name: String,
    },

    /// A user spec that does not parse.
    #[error("user {user:?}: {reason}")]
    BadUser {
        /// The spec.
        user: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// A user name the image's /etc/passwd does not have.
    #[error("unable to find user {user:?} in the image's /etc/passwd: {file}")]
    UnknownUser {
        /// The name.
        user: String,
        /// "no matching entry" or "the file does not exist".
        file: &'static str,
    },

    /// A group name the image's /etc/group does not have.
    #[error("unable to find group {group:?} in the image's /etc/group: {file}")]
    UnknownGroup {
        /// The name.
        group: String,
        /// "no matching entry" or "the file does not exist".
        file: &'static str,
    },

    /// The image's /etc/passwd or /etc/group could not be read.
    #[error("reading /{file} in {}: {source}", rootfs.display())]
    IdFile {
        /// The root filesystem.
        rootfs: PathBuf,
        /// `etc/passwd` or `etc/group`.
        file: String,
        /// Why.
        source: std::io::Error,
    },

    /// The working directory could not be made inside the rootfs.
    #[error("working directory {path:?}: {source}")]
    Workdir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },

    /// A capability name Linux does not have.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name as given.
        name: String,
    },

    /// An image for another operating system.
    #[error("the image is for {os:?}, not linux")]
    WrongOs {
        /// The image's os.
        os: String,
    },

    /// Writing a per-container /etc file failed.
    #[error("writing {}: {source}", path.display())]
    EtcFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// An extra /etc/hosts entry that would corrupt the file.
    #[error("extra host {name:?}: a host name must be non-empty, without spaces or '#'")]
    BadHost {
        /// The name.
        name: String,
    },

    /// The assembled spec did not deserialize (a bug in this module, not bad input).
    #[error("building the runtime spec: {0}")]
    Spec(String),
}

/// The runtime spec for container `id` of the image with `config`, whose root filesystem
/// (mounted already) is `rootfs`, as changed by `overrides`. A missing working directory
/// is made in the rootfs, as docker does. No cgroupsPath: the engine sets that (and the
/// network, in the network namespace the spec asks for).
pub fn build(
    id: &str,
    config: &ImageConfig,
    rootfs: &Path,
    overrides: &Overrides,
) -> Result<Spec, RunspecError> {
    if !config.os.is_empty() && config.os != "linux" {
        return Err(RunspecError::WrongOs {
            os: config.os.clone(),
        });
    }
    let run = &config.config;
    let hostname = command::hostname(id, overrides)?;
    let args = command::args(run, overrides)?;
    let cwd = command::cwd(run, overrides)?;
    // An empty user means not given, as in docker.
    let user_spec = [overrides.user.as_deref(), run.user.as_deref()]
        .into_iter()
        .flatten()
        .find(|u| !u.is_empty());
    let user = user::resolve(rootfs, user_spec.unwrap_or_default())?;
    let env = command::env(run, overrides, &hostname, &user.home)?;
    let caps = defaults::capabilities(&overrides.cap_add, &overrides.cap_drop)?;
    let nofile = defaults::nofile_limit();
    // Last: nothing is made in the rootfs for a request refused above.
    inroot::ensure_dir(rootfs, &cwd)?;

    let mut value = defaults::base(&caps);
    value["process"] = json!({
        "terminal": overrides.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "args": args,
        "env": env,
        "cwd": cwd.to_string_lossy(),
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
        "noNewPrivileges": false,
    });
    value["hostname"] = json!(hostname);
    let mut spec: Spec =
        serde_json::from_value(value).map_err(|e| RunspecError::Spec(e.to_string()))?;
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.set_annotations(Some(annotations(run)));
    Ok(spec)
}

/// Labels, then the stop signal (which a label cannot override).
fn annotations(run: &RunConfig) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = run
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.remove(STOP_SIGNAL_ANNOTATION);
    if let Some(signal) = run.stop_signal.as_ref().filter(|s| !s.is_empty()) {
        out.insert(STOP_SIGNAL_ANNOTATION.into(), signal.clone());
    }
    out
}

/// The image's stop signal as [`build`] recorded it (`SIGQUIT`, `3`, …); `None`: SIGTERM.
pub fn stop_signal(spec: &Spec) -> Option<&str> {
    spec.annotations()
        .as_ref()?
        .get(STOP_SIGNAL_ANNOTATION)
        .map(String::as_str)
}

#[cfg(test)]
mod tests;
