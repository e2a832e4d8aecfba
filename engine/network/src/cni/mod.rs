//! The CNI driver: networks defined by CNI configuration files (`.conflist`, or a single
//! plugin's `.conf`), attached by running their plugins as the CNI spec 1.0 says.
//!
//! Parts, by concept: [`config`] (loading and validating configuration files),
//! `exec` (running one plugin: environment, stdin, stdout, error object, timeout),
//! [`result`] (the result types), `cache` (each attachment's result and the exact
//! configuration used, on disk, so a DEL after a restart gets the right `prevResult`),
//! `lock` (one operation at a time per network and container, across threads and
//! processes) and `chain` (ADD, CHECK and DEL over a list of plugins: [`Cni`]).
//!
//! Everything here blocks (plugins are processes we wait for); call it from a worker
//! thread that is in the host's network namespace, which the plugins inherit.

mod cache;
mod chain;
pub mod config;
mod exec;
mod lock;
pub mod result;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cache::CachedAttachment;
pub use chain::Cni;
pub use config::{load_dir, load_file, NetworkList, SUPPORTED_VERSIONS};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};

use crate::ports::PortMapping;

/// Where plugins are looked for when no directory is configured.
pub const DEFAULT_PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

/// Where configuration files are read from when no directory is configured.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/cni/net.d";

/// How long one plugin may run unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the runtime passes to the plugins of one attachment besides the ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniArgs {
    /// `CNI_ARGS` as `K=V;…` pairs (`IgnoreUnknown=1` is put first when any are given,
    /// as other runtimes do, so plugins that do not know a key do not fail).
    #[serde(default)]
    pub args: Vec<(String, String)>,
    /// Published ports, passed as `runtimeConfig.portMappings` to each plugin that
    /// declares `capabilities.portMappings`.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

/// One plugin invocation, as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCall {
    /// The plugin's type (its binary's name).
    pub plugin: String,
    /// `ADD`, `DEL`, `CHECK` or `VERSION`.
    pub command: &'static str,
    /// The network (the configuration's name).
    pub network: String,
    /// The container.
    pub container: String,
}

impl fmt::Display for PluginCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin {} {} (network {}, container {})",
            self.plugin, self.command, self.network, self.container
        )
    }
}

/// What went wrong in the CNI driver.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// A configuration file could not be read.
    #[error("CNI config {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration file is not JSON.
    #[error("CNI config {file}: does not parse: {source}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A configuration file is JSON but not a valid CNI configuration.
    #[error("CNI config {file}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The configuration directory could not be listed.
    #[error("CNI config dir {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Two files define the same network name: the later one (by file name) is ignored.
    #[error("CNI config {file}: network {name:?} is already defined by {first}")]
    Duplicate {
        /// The ignored file.
        file: PathBuf,
        /// The network name.
        name: String,
        /// The file that defines it first.
        first: PathBuf,
    },
    /// A plugin's binary is in none of the plugin directories.
    #[error("CNI plugin {name:?} not found in {dirs:?}")]
    PluginNotFound {
        /// The plugin type.
        name: String,
        /// Where it was looked for.
        dirs: Vec<PathBuf>,
    },
    /// A value passed in is not acceptable to CNI.
    #[error("CNI: invalid {what} {value:?}: {reason}")]
    BadArgument {
        /// Which argument.
        what: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A plugin could not be started.
    #[error("CNI {call}: cannot run {path}: {source}")]
    Spawn {
        /// The invocation.
        call: Box<PluginCall>,
        /// The binary.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A plugin exited with an error.
    #[error("CNI {call} failed{}: {msg}{}", code.map(|c| format!(" (code {c})")).unwrap_or_default(), if details.is_empty() { String::new() } else { format!(": {details}") })]
    PluginFailed {
        /// The invocation.
        call: Box<PluginCall>,
        /// The CNI error code, when the plugin printed an error object.
        code: Option<u64>,
        /// Its message (or its stderr, or its exit status).
        msg: String,
        /// Its details.
        details: String,
    },
    /// A plugin ran longer than the timeout: it and its children were killed.
    #[error("CNI {call}: no answer after {timeout:?}, killed")]
    Timeout {
        /// The invocation.
        call: Box<PluginCall>,
        /// The timeout.
        timeout: Duration,
    },
    /// A plugin's output is not a CNI result.
    #[error("CNI {call}: output does not parse ({reason}): {head:?}")]
    BadOutput {
        /// The invocation.
        call: Box<PluginCall>,
        /// Why it does not parse.
        reason: String,
        /// The first bytes of the output.
        head: String,
    },
    /// Waiting for a plugin failed.
    #[error("CNI {call}: {what}: {source}")]
    Wait {
        /// The invocation.
        call: Box<PluginCall>,
        /// The step that failed.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The result cache or a lock file could not be read or written.
    #[error("CNI cache {path}: {source}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A cache file does not parse.
    #[error("CNI cache {path}: does not parse: {source}")]
    CacheParse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// An ADD for an attachment that is already made (DEL it first).
    #[error("CNI network {network}: container {container} is already attached as {ifname}")]
    AlreadyAttached {
        /// The network.
        network: String,
        /// The container.
        container: String,
        /// The interface.
        ifname: String,
    },
    /// A CHECK for an attachment with no cached ADD result.
    #[error("CNI network {network}: no ADD result cached for container {container} ({ifname})")]
    NotAttached {
        /// The network.
        network: String,
        /// The container.
        container: String,
        /// The interface.
        ifname: String,
    },
    /// CHECK asked of a network whose version has none (before 0.4.0).
    #[error("CNI network {network}: CHECK needs cniVersion 0.4.0 or later, it has {version}")]
    CheckUnsupported {
        /// The network.
        network: String,
        /// Its cniVersion.
        version: String,
    },
    /// An ADD failed and the DEL that should undo it failed too: the attachment stays
    /// in the cache, for a later DEL.
    #[error("{add}; undoing it failed too: {del}")]
    UndoFailed {
        /// Why the ADD failed.
        add: Box<CniError>,
        /// Why the DEL failed.
        del: Box<CniError>,
    },
}
