//! `run`: create and start in one go; in the foreground, wait for the container with
//! signals forwarded and exit with its status, as runc does. A foreground container that
//! asks for a terminal without `--console-socket` gets a pty relayed to our stdio.

use std::process::ExitCode;

use berth_runtime::bundle::Bundle;
use berth_runtime::container::{self, Container, CreateOptions};
use berth_runtime::Error;
use nix::unistd::Pid;

use crate::foreground::{self, Foreground};

/// Start a freshly created container, deleting it if the start fails.
fn start_or_remove(c: Container) -> Result<Container, Error> {
    match c.start() {
        Ok(()) => Ok(c),
        Err(e) => {
            let _ = c.delete(true);
            Err(e)
        }
    }
}

/// Create and start; unless `detach`, wait for the container and return its exit status.
pub fn run(opts: &CreateOptions, detach: bool, keep: bool) -> Result<ExitCode, Error> {
    let terminal = opts.console_socket.is_none() && wants_terminal(opts);
    if detach {
        if terminal {
            return Err(Error::Unsupported(
                "a terminal for a detached container without --console-socket",
            ));
        }
        start_or_remove(container::create(opts)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let fg = Foreground::take_signals()?;
    let (c, master) = if terminal {
        let (ours, theirs) = foreground::console_pair()?;
        let c = container::create_with_console(opts, Some(theirs))?;
        match foreground::receive_master(&ours) {
            Ok(master) => (c, Some(master)),
            Err(e) => {
                let _ = c.delete(true);
                return Err(e);
            }
        }
    } else {
        (container::create(opts)?, None)
    };
    let c = start_or_remove(c)?;
    let code = fg.wait(Pid::from_raw(c.pid()), master.as_ref())?;
    if !keep {
        c.delete(true)?;
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// Whether the bundle's process asks for a terminal (false if it cannot be read: `create`
/// reports that properly).
fn wants_terminal(opts: &CreateOptions) -> bool {
    Bundle::load(&opts.bundle)
        .ok()
        .and_then(|b| b.spec.process().as_ref().and_then(|p| p.terminal()))
        == Some(true)
}
