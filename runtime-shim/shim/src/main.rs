//! `berth-shim`: one process per container that owns it for its whole life, so the daemon
//! can die, restart or be upgraded while the container keeps running.
//!
//! It detaches (own session), becomes the child subreaper, creates the container — through
//! the runtime library in this very process by default, or through an external OCI
//! runtime binary with `--runtime` — and then serves the protocol of
//! [`berth_shim_protocol`] on `<state-dir>/shim.sock` from a single-threaded
//! poll loop: it never starts a thread, so cloning the container (and later `exec`s) is
//! safe. Its own diagnostics go to `<state-dir>/shim.log`.
//!
//! `berth-shim --spawner` is the engine's fork server instead ([`spawner`]): the shims it
//! forks run this same code without an exec. `berth-shim --cleanup …` removes what a lost
//! shim owned ([`cleanup`]).
//!
//! Depends on the runtime library and the shim protocol (and floor-0 helpers); never on
//! the engine.

mod backend;
mod cleanup;
mod console;
mod error;
mod oom;
mod output;
mod proctitle;
mod server;
mod spawner;

use std::path::PathBuf;
use std::process::ExitCode;

use berth_shim_protocol::{SpawnOptions, CLEANUP_ARG, SPAWNER_ARG};
use clap::Parser;

/// Size cap of `--log` unless given, in bytes.
const DEFAULT_LOG_MAX: u64 = 10 << 20;

/// The per-container shim of Berth.
#[derive(Parser, Debug)]
#[command(
    name = "berth-shim",
    version,
    about,
    long_about = None,
    after_help = "berth-shim --spawner: serve the engine's spawn requests on stdin instead, \
                  forking a shim for each (the engine starts one such process)."
)]
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
    #[arg(long, default_value_t = DEFAULT_LOG_MAX)]
    pub log_max: u64,
    /// Create the container but wait for a `start` request.
    #[arg(long)]
    pub no_start: bool,
    /// Stdin is a connected SEQPACKET socket: serve it as a client from the start (the
    /// daemon's connection, without waiting for the socket file).
    #[arg(long)]
    pub control_stdin: bool,
}

impl Cli {
    /// The command line a spawn request stands for; the control socket is on stdin.
    fn spawned(opts: SpawnOptions) -> Cli {
        Cli {
            id: opts.id,
            bundle: opts.bundle,
            state_dir: opts.state_dir,
            runtime_root: opts.runtime_root,
            runtime: opts.runtime,
            log: opts.log,
            log_max: opts.log_max.unwrap_or(DEFAULT_LOG_MAX),
            no_start: opts.no_start,
            control_stdin: true,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.len() == 1 && args[0] == SPAWNER_ARG {
        return ExitCode::from(spawner::serve());
    }
    if args.first().is_some_and(|a| a == CLEANUP_ARG) {
        return ExitCode::from(cleanup::run(args[1..].to_vec()));
    }
    let cli = Cli::parse();
    ExitCode::from(server::run(cli))
}
