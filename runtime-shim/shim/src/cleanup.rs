//! `berth-shim --cleanup`: remove what a lost shim owned. A shim killed (SIGKILL, OOM)
//! leaves its container running unsupervised, with its cgroups and runtime state; the
//! engine runs this one-shot mode to take them away, as the runtime's `delete --force`
//! does — only the container's init and what is in its cgroup are killed — with the
//! runtime and root the lost shim used (the built-in library, or the external binary it
//! recorded in [`RUNTIME_FILE`]). Its stale pid file and socket go too, so nothing
//! later signals a recycled pid. One line on stderr (and in the shim log) on failure.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_runtime::container::Container;
use berth_runtime::state::{now_rfc3339, ContainerDir};
use berth_runtime::Error;
use berth_shim_protocol::{Status, CLEANUP_STILL_SERVES, PID_FILE, SOCKET_FILE};
use clap::Parser;

use crate::backend::Backend;
use crate::error::{Result, ShimError};
use crate::server::{self, SHIM_LOG};

/// Where a shim that drives an external runtime records its path (written before the
/// container is made); without it the shim used the built-in library.
pub const RUNTIME_FILE: &str = "runtime.path";

/// `berth-shim --cleanup …`.
#[derive(Parser, Debug)]
#[command(name = "berth-shim --cleanup")]
struct CleanupCli {
    /// The container id.
    #[arg(long)]
    id: String,
    /// The lost shim's own directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// The runtime's state root the lost shim used.
    #[arg(long)]
    runtime_root: PathBuf,
}

/// Clean up after the shim of `args` (the arguments after `--cleanup`); the exit status.
pub fn run(args: Vec<OsString>) -> u8 {
    let cli = match CleanupCli::try_parse_from(
        std::iter::once("berth-shim --cleanup".into()).chain(args),
    ) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    // The engine thinks the shim is gone; a shim that still answers owns its container.
    if server::answers(&cli.state_dir) {
        eprintln!(
            "berth-shim {}: a shim still serves {}; it is not lost",
            cli.id,
            cli.state_dir.display()
        );
        return CLEANUP_STILL_SERVES;
    }
    match clean_up(&cli) {
        Ok(()) => 0,
        Err(message) => {
            let message = message.to_string();
            note(&cli, &format!("cleanup failed: {message}"));
            eprintln!("berth-shim {}: cleanup failed: {message}", cli.id);
            1
        }
    }
}

fn clean_up(cli: &CleanupCli) -> Result<()> {
    match fs::read(cli.state_dir.join(RUNTIME_FILE)) {
        Ok(path) => delete_external(cli, PathBuf::from(OsString::from_vec(path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => delete_builtin(cli),
        Err(e) => Err(ShimError::io("reading", cli.state_dir.join(RUNTIME_FILE))(
            e,
        )),
    }?;
    for name in [PID_FILE, SOCKET_FILE] {
        let _ = fs::remove_file(cli.state_dir.join(name));
    }
    note(cli, "cleaned up after a lost shim");
    Ok(())
}

/// `delete --force` through the library: a container that is not there is no error,
/// and what a killed `create` left (no record yet) goes too.
fn delete_builtin(cli: &CleanupCli) -> Result<()> {
    let root = &cli.runtime_root;
    match Container::load(root, &cli.id) {
        // Gone meanwhile: another cleanup of it got the lock first.
        Ok(c) => match c.delete(true) {
            Err(Error::NotFound(_)) => Ok(()),
            other => other,
        },
        Err(Error::NotFound(_)) => Ok(()),
        Err(Error::WrongState {
            status: Status::Creating,
            ..
        }) => ContainerDir::open(root, &cli.id).and_then(ContainerDir::remove_abandoned),
        Err(e) => Err(e),
    }
    .map_err(ShimError::from)
}

/// `runtime --root R delete --force id`, unless the runtime has no state for it.
fn delete_external(cli: &CleanupCli, runtime: PathBuf) -> Result<()> {
    if !cli.runtime_root.join(&cli.id).exists() {
        return Ok(());
    }
    let mut backend = Backend::External {
        runtime,
        root: cli.runtime_root.clone(),
        id: cli.id.clone(),
        log: cli.state_dir.join("runtime.log"),
        state_dir: cli.state_dir.clone(),
    };
    backend.delete(true)
}

/// One line in the shim log of the lost shim (kept until the container is removed).
fn note(cli: &CleanupCli, message: &str) {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(Path::new(&cli.state_dir).join(SHIM_LOG));
    if let Ok(mut log) = log {
        let _ = writeln!(log, "{} berth-shim {}: {message}", now_rfc3339(), cli.id);
    }
}
