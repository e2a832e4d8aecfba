//! `run`: create and start in one go; in the foreground, forward signals to the container
//! and exit with its status, as runc does.

use std::process::ExitCode;

use berth_runtime::container::{self, Container, CreateOptions};
use berth_runtime::error::SysContext;
use berth_runtime::Error;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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
    if detach {
        start_or_remove(container::create(opts)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Block every signal before the init exists: from then on they are taken with
    // sigwait and forwarded, none acted on by us or lost. The init unblocks its own.
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).sys("sigprocmask", "run")?;
    let c = start_or_remove(container::create(opts)?)?;
    let init = Pid::from_raw(c.pid());
    let code = loop {
        let signal = all.wait().sys("sigwait", "run")?;
        if signal != Signal::SIGCHLD {
            let _ = kill(init, signal);
            continue;
        }
        match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(e) => return Err(Error::sys("waitpid", init, e)),
        }
    };
    if !keep {
        c.delete(true)?;
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
