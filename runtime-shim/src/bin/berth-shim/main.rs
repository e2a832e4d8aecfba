//! `berth-shim`: one process per container that owns it for its whole life, so the daemon
//! can die, restart or be upgraded while the container keeps running.
//!
//! It detaches (own session), becomes the child subreaper, creates the container — through
//! the runtime library in this very process by default, or through an external OCI
//! runtime binary with `--runtime` — and then serves the protocol of
//! [`berth_runtime::shim::protocol`] on `<state-dir>/shim.sock` from a single-threaded
//! poll loop: it never starts a thread, so cloning the container (and later `exec`s) is
//! safe. Its own diagnostics go to `<state-dir>/shim.log`.

mod backend;
mod oom;
mod output;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The per-container shim of Berth.
#[derive(Parser, Debug)]
#[command(name = "berth-shim", version, about, long_about = None)]
pub struct Cli {
    /// The container id.
    #[arg(long)]
    pub id: String,
    /// The bundle directory (config.json and root filesystem).
    #[arg(long)]
    pub bundle: PathBuf,
    /// The shim's own directory: socket, pid file, exit record, shim log.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The runtime's state root.
    #[arg(long)]
    pub runtime_root: PathBuf,
    /// An external OCI runtime binary (runc, crun, berth-runc); default: the built-in
    /// runtime library, in process.
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// Append the container's stdout and stderr to this file (default: discard them).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Size cap of --log in bytes: past it the log moves to `<log>.1` and a new one
    /// starts (0: no cap).
    #[arg(long, default_value_t = 10 << 20)]
    pub log_max: u64,
    /// Create the container but wait for a `start` request.
    #[arg(long)]
    pub no_start: bool,
    /// Stdin is a connected SEQPACKET socket: serve it as a client from the start (the
    /// daemon's connection, without waiting for the socket file).
    #[arg(long)]
    pub control_stdin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    server::run(cli)
}
