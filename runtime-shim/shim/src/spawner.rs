//! `berth-shim --spawner`: the engine's fork server (see
//! the engine's shim adapter for why). Stdin is the engine's socket; each request
//! is a [`SpawnOptions`] with the shim's end of its control socket attached. The answer
//! is the new shim's pid with a pidfd attached, or why there is none. One thread, one
//! poll loop over the engine's socket and a SIGCHLD signalfd: the shims are our
//! children and are reaped here. End of file on stdin ends the spawner; shims live on.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use berth_runtime::close_fds;
use berth_shim_protocol::wire::{self, Received};
use berth_shim_protocol::{SpawnOptions, SpawnReply};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::{proctitle, server, Cli};

/// Serve spawn requests until the engine closes its end; the exit status.
pub fn serve() -> u8 {
    match Spawner::new().and_then(|mut s| s.run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-shim spawner: {e}");
            1
        }
    }
}

struct Spawner {
    engine: OwnedFd,
    sigchld: SignalFd,
    buf: Vec<u8>,
}

impl Spawner {
    fn new() -> io::Result<Spawner> {
        // The engine's socket moves off fd 0 (close-on-exec), and fd 0 becomes /dev/null.
        // SAFETY: fcntl F_DUPFD_CLOEXEC on fd 0 returns a new descriptor or -1.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just made by fcntl that nothing else owns.
        let engine = unsafe { OwnedFd::from_raw_fd(fd) };
        let devnull = std::fs::File::open("/dev/null")?;
        // SAFETY: dup2 onto our own stdin.
        if unsafe { libc::dup2(devnull.as_raw_fd(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let sigchld = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(Spawner {
            engine,
            sigchld,
            buf: Vec::new(),
        })
    }

    fn run(&mut self) -> io::Result<()> {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.engine.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.sigchld.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of pollfd of the given length.
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if fds[1].revents != 0 {
                while let Ok(Some(_)) = self.sigchld.read_signal() {}
                reap();
            }
            if fds[0].revents != 0 && !self.answer()? {
                reap();
                return Ok(());
            }
        }
    }

    /// Take one request and answer it; `false` once the engine has gone.
    fn answer(&mut self) -> io::Result<bool> {
        let (opts, control) =
            match wire::recv_with_fd::<SpawnOptions>(self.engine.as_fd(), &mut self.buf) {
                Ok((Received::Message(opts), control)) => (opts, control),
                Ok((Received::Closed, _)) => return Ok(false),
                Ok((Received::Empty, _)) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.reply(
                        &SpawnReply::Error {
                            message: e.to_string(),
                        },
                        None,
                    )?;
                    return Ok(true);
                }
                Err(e) => return Err(e),
            };
        let Some(control) = control else {
            self.reply(
                &SpawnReply::Error {
                    message: format!("the request for {} came without a control socket", opts.id),
                },
                None,
            )?;
            return Ok(true);
        };
        match fork_shim(opts, control) {
            Ok((pid, pidfd)) => self.reply(&SpawnReply::Spawned { pid }, Some(pidfd))?,
            Err(e) => self.reply(
                &SpawnReply::Error {
                    message: e.to_string(),
                },
                None,
            )?,
        }
        Ok(true)
    }

    fn reply(&self, reply: &SpawnReply, pidfd: Option<OwnedFd>) -> io::Result<()> {
        match pidfd {
            Some(fd) => wire::send_with_fd(self.engine.as_fd(), reply, fd.as_fd()),
            None => wire::send(self.engine.as_fd(), reply, false),
        }
    }
}

/// Reap every child that has exited.
fn reap() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if matches!(status, WaitStatus::StillAlive) {
            break;
        }
    }
}

/// Fork a shim; its pid and a pidfd for it.
fn fork_shim(opts: SpawnOptions, control: OwnedFd) -> io::Result<(i32, OwnedFd)> {
    let title = command_line(&opts);
    // SAFETY: this process has a single thread, so the child may run any code.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = become_shim(opts, control, &title);
            std::process::exit(i32::from(code))
        }
        ForkResult::Parent { child } => {
            drop(control);
            // SAFETY: pidfd_open of our own child, not yet reaped, no flags.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0u32) };
            if fd < 0 {
                let err = io::Error::last_os_error();
                // No handle to give means no shim: it is stopped before it does anything
                // (it is our unreaped child, so its pid is still its own).
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                return Err(io::Error::new(err.kind(), format!("pidfd_open: {err}")));
            }
            // SAFETY: a descriptor just returned by pidfd_open that nothing else owns.
            Ok((child.as_raw(), unsafe { OwnedFd::from_raw_fd(fd as i32) }))
        }
    }
}

/// In the forked child: start as an exec'd shim would, then be one.
fn become_shim(opts: SpawnOptions, control: OwnedFd, title: &[OsString]) -> u8 {
    let control = control.into_raw_fd();
    // The control socket on stdin, nothing above stderr (the engine's socket and the
    // signalfd are the spawner's), no signal blocked.
    // SAFETY: dup2 onto this process's own stdin.
    if unsafe { libc::dup2(control, 0) } < 0 {
        eprintln!(
            "berth-shim {}: control socket onto stdin: {}",
            opts.id,
            io::Error::last_os_error()
        );
        return 1;
    }
    // If a shim kept the spawner's socket open, a dead spawner would never be seen.
    close_fds::close_range(3, u32::MAX);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    proctitle::set(title);
    server::run(Cli::spawned(opts))
}

/// The command line an exec'd shim would have had.
fn command_line(opts: &SpawnOptions) -> Vec<OsString> {
    let program = std::env::args_os()
        .next()
        .unwrap_or_else(|| OsString::from("berth-shim"));
    std::iter::once(program)
        .chain(opts.args())
        .chain(std::iter::once(OsString::from("--control-stdin")))
        .collect()
}
