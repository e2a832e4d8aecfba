//! The command line: every knob of the experiment in one place.

use std::path::PathBuf;

use clap::Parser;

/// Fire a burst of container creates at berthd and report how fast they start.
///
/// By default it starts a private berthd (its own socket and state directory under a
/// temporary directory), prepares a root filesystem from the host's own binaries, creates
/// `--containers` containers with `--concurrency` HTTP clients, follows the event stream
/// until every one is running or failed, then deletes them all and stops its daemon.
#[derive(Debug, Parser)]
#[command(name = "berth-loadtest", version)]
pub struct Args {
    /// Containers to create.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub containers: usize,
    /// Concurrent HTTP clients (each keeps one connection open).
    #[arg(short = 'c', long, default_value_t = 100)]
    pub concurrency: usize,
    /// Start workers of the harness's own berthd (`berthd --workers`).
    #[arg(short = 'w', long, default_value_t = 10)]
    pub workers: usize,
    /// OCI runtime: `builtin` or the absolute path of a runc-compatible binary such as
    /// /usr/sbin/runc (its own berthd's `--runtime`; with `--host`, asked per container).
    #[arg(long, default_value = "builtin")]
    pub runtime: String,
    /// Use POST /v1/containers/batch, SIZE creates per request (default 100).
    #[arg(long, value_name = "SIZE", num_args = 0..=1, default_missing_value = "100")]
    pub batch: Option<usize>,
    /// Leave the containers and the daemon running, and print how to clean up.
    #[arg(long)]
    pub keep: bool,
    /// Run the burst this many times (a fresh daemon each time) and report the median.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Verify this many random containers from the inside (namespaces, pid 1, cgroup).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub check: usize,
    /// Use the berthd listening on this unix socket instead of starting one.
    #[arg(long, value_name = "SOCKET")]
    pub host: Option<PathBuf>,
    /// Give up after this many seconds in all (each run's burst, checks and cleanup).
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout: u64,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Draw running containers over time and the latency distribution to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Run the burst from this image (pulled once through the API before the burst, each
    /// container `{"image": REF, "args": [the bundle burst's command], "pull": "never"}`)
    /// instead of from a root filesystem with an inline spec.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Run the bundle burst with the spec berthd gives a container from an image (docker's
    /// default capabilities, seccomp profile, masked paths, sysctls and /etc files) on the
    /// same root filesystem: beside `--image`, it tells what the image path costs (overlay,
    /// preparation) apart from what docker's defaults cost.
    #[arg(long, conflicts_with = "image")]
    pub docker_defaults: bool,
    /// Put every container on this network: `bridge` (or `berth0`, the default bridge
    /// network), a CNI network of `--cni-conf-dir`, or another name (made as a bridge
    /// network before the burst). The run gets a network namespace of its own, its berthd
    /// and everything it makes for the network live in it; own daemon only.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Each container publishes one port: its port 8080/tcp on host port 20000 + its
    /// index (with `--network`).
    #[arg(long, requires = "network")]
    pub publish: bool,
    /// CNI network configurations for `--network` (handed to berthd's `--cni-conf-dir`;
    /// default: an empty directory of the run).
    #[arg(long, value_name = "DIR", requires = "network")]
    pub cni_conf_dir: Option<PathBuf>,
    /// Directory holding berthd, berth-shim and berth-runc (default: beside this
    /// executable, else built with cargo).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// The host port of container 0 with `--publish` (container `i` gets this + `i`).
pub const PUBLISH_BASE: u16 = 20000;
/// The container port each container publishes.
pub const PUBLISHED_PORT: u16 = 8080;

/// A network name the harness can put into a request and a path as it is.
fn valid_network(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Args {
    /// Refuse combinations that cannot work, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.containers == 0 {
            return Err("--containers must be at least 1".into());
        }
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if self.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if self.repeat == 0 {
            return Err("--repeat must be at least 1".into());
        }
        if self.batch == Some(0) || self.batch.is_some_and(|b| b > 1000) {
            return Err("--batch SIZE must be between 1 and 1000".into());
        }
        if self.keep && self.repeat > 1 {
            return Err("--keep keeps one run's containers: use it without --repeat".into());
        }
        if self.image.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err("--image: expected an image reference such as busybox".into());
        }
        if let Some(network) = &self.network {
            if self.host.is_some() {
                return Err(format!(
                    "--network {network}: only with the harness's own berthd (it runs it in a \
                     network namespace of its own), not with --host"
                ));
            }
            if !valid_network(network) {
                return Err(format!(
                    "--network {network:?}: expected a network name (letters, digits, `-`, `_`, `.`)"
                ));
            }
        }
        if self.publish && self.containers > usize::from(u16::MAX - PUBLISH_BASE) + 1 {
            return Err(format!(
                "--publish: host ports {PUBLISH_BASE} + index run out past {} containers",
                usize::from(u16::MAX - PUBLISH_BASE) + 1
            ));
        }
        if self.runtime != "builtin" && !PathBuf::from(&self.runtime).is_absolute() {
            return Err(format!(
                "--runtime {}: expected `builtin` or an absolute path",
                self.runtime
            ));
        }
        Ok(())
    }
}
