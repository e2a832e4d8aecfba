//! A process in the foreground of berth-runc (`run`, `exec`): signals are forwarded to
//! it, a pty master (if it has a terminal) is relayed to and from our stdio, and its exit
//! status becomes ours.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use berth_runtime::error::SysContext;
use berth_runtime::{console, Error};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals taken over from the moment a foreground process is about to exist.
pub struct Foreground {
    signals: SignalFd,
}

impl Foreground {
    /// Block every signal: from now on they arrive on a signalfd and are forwarded, none
    /// acted on by us or lost. Call before the child exists; children unblock their own.
    pub fn take_signals() -> Result<Self, Error> {
        let all = SigSet::all();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).sys("sigprocmask", "foreground")?;
        let signals = SignalFd::with_flags(&all, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .sys("signalfd", "foreground")?;
        Ok(Foreground { signals })
    }

    /// Wait for `pid` (our child), forwarding signals and relaying `master` if given,
    /// with our terminal in raw mode meanwhile. Returns its status as a shell would.
    pub fn wait(&self, pid: Pid, master: Option<&OwnedFd>) -> Result<i32, Error> {
        let stdin = std::io::stdin();
        let raw = master.and_then(|_| RawMode::enable(stdin.as_fd()));
        if let Some(m) = master {
            copy_window_size(stdin.as_fd(), m.as_fd());
        }
        let code = wait(&self.signals, pid, master);
        drop(raw);
        code
    }
}

/// A socketpair for a console: give one end to the runtime, receive the master on ours.
pub fn console_pair() -> Result<(UnixStream, UnixStream), Error> {
    UnixStream::pair().map_err(|e| Error::io("socketpair", "console", e))
}

/// Receive the pty master on our end of [`console_pair`].
pub fn receive_master(ours: &UnixStream) -> Result<OwnedFd, Error> {
    console::receive_master(ours)
}

/// Relay signals (and the pty, if any) until the init exits; returns its status as a
/// shell would (128 + signal for a killed process).
fn wait(signals: &SignalFd, init: Pid, master: Option<&OwnedFd>) -> Result<i32, Error> {
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    if let Some(m) = master {
        set_nonblocking(m.as_fd())?;
    }
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open && master_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", "run", e)),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready.get(1) == Some(&true) {
            if let Some(m) = master {
                master_open = relay(m.as_fd(), &mut std::io::stdout());
            }
        }
        if ready.get(2) == Some(&true) {
            if let Some(m) = master {
                stdin_open = relay(
                    stdin.as_fd(),
                    &mut std::fs::File::from(
                        m.try_clone()
                            .map_err(|e| Error::io("dup", "pty master", e))?,
                    ),
                );
            }
        }
        if ready[0] {
            while let Some(info) = signals.read_signal().sys("read", "signalfd")? {
                let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match signal {
                    Signal::SIGCHLD => {
                        if let Some(code) = reap(init)? {
                            if let (Some(m), true) = (master, master_open) {
                                relay(m.as_fd(), &mut std::io::stdout());
                            }
                            return Ok(code);
                        }
                    }
                    Signal::SIGWINCH => {
                        if let Some(m) = master {
                            copy_window_size(stdin.as_fd(), m.as_fd());
                        }
                    }
                    other => {
                        let _ = kill(init, other);
                    }
                }
            }
        }
    }
}

/// The init's exit status if it has exited.
fn reap(init: Pid) -> Result<Option<i32>, Error> {
    match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as i32)),
        Ok(_) => Ok(None),
        Err(e) => Err(Error::sys("waitpid", init, e)),
    }
}

/// Copy what is readable now from `from` to `to`; false once `from` is at its end (for
/// a pty master: every slave closed, reported as EIO).
fn relay(from: BorrowedFd, to: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    let mut file = std::fs::File::from(match from.try_clone_to_owned() {
        Ok(fd) => fd,
        Err(_) => return false,
    });
    loop {
        match file.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                    return false;
                }
                if n < buf.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Make `fd` non-blocking, so draining it never hangs.
fn set_nonblocking(fd: BorrowedFd) -> Result<(), Error> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).sys("fcntl", "pty master")?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags))
        .sys("fcntl", "pty master")
        .map(drop)
}

/// Give the pty the size of our terminal (nothing if stdin is not one).
fn copy_window_size(from: BorrowedFd, to: BorrowedFd) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read or write one winsize through a valid pointer.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// Our terminal in raw mode while we relay a container's pty; restored on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// Switch `fd` to raw mode if it is a terminal.
    fn enable(fd: BorrowedFd<'a>) -> Option<Self> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}
