//! `terminal: true`: the runtime makes the container's pty and hands its master over a
//! unix socket, as runc does with `--console-socket`; the shim keeps the master for the
//! container's life (closing it would hang the container up) and copies what the
//! terminal shows into the container's log.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime::console::receive_master;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{recv, MsgFlags};
use nix::sys::stat::{umask, Mode};
use serde::Deserialize;

use crate::error::{Result, ShimError};
use crate::output::drain_into;

/// How long the runtime's message may take once it has connected.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The part of config.json that says whether the process wants a terminal.
#[derive(Deserialize)]
struct Probe {
    process: Option<ProbeProcess>,
}

#[derive(Deserialize)]
struct ProbeProcess {
    terminal: Option<bool>,
}

/// Whether the bundle's process asks for a terminal (an external runtime must then be
/// given a console socket, and refuses one otherwise).
pub fn wants_terminal(bundle: &Path) -> Result<bool> {
    let path = bundle.join("config.json");
    let text = fs::read(&path).map_err(ShimError::io("reading", &path))?;
    let probe: Probe = serde_json::from_slice(&text).map_err(ShimError::json(format!(
        "invalid spec in {}",
        path.display()
    )))?;
    Ok(probe.process.and_then(|p| p.terminal) == Some(true))
}

/// Where the pty master comes back from the runtime's `create`. Taken only once the
/// container exists, so a failure here is cleaned up like any failure after create.
pub enum Handover {
    /// No terminal wanted (an external runtime told of none).
    None,
    /// Our end of the socket pair the built-in runtime's init got: it sends the master
    /// before `create` returns, and uses its end only if the process wants a terminal.
    Pair(UnixStream),
    /// The socket an external runtime was told with `--console-socket`.
    Socket(ConsoleSocket),
}

impl Handover {
    /// The master, if the runtime made a terminal.
    pub fn take(self) -> Result<Option<OwnedFd>> {
        let master = match self {
            Handover::None => return Ok(None),
            Handover::Pair(ours) => {
                // Nothing waiting (no terminal), or the end of file of an init already
                // gone (its failure is seen by the start): no master.
                let mut byte = [0u8; 1];
                match recv(
                    ours.as_raw_fd(),
                    &mut byte,
                    MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(0) | Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                    Ok(_) => receive_master(&ours)?,
                    Err(e) => return Err(ShimError::sys("console socket")(e.into())),
                }
            }
            Handover::Socket(socket) => socket.accept_master()?,
        };
        if !nix::unistd::isatty(&master).unwrap_or(false) {
            return Err(ShimError::Refused(
                "the runtime's console socket passed something that is not a terminal".into(),
            ));
        }
        Ok(Some(master))
    }
}

/// A listening console socket for an external runtime, removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listen at `path` (replacing a stale socket file), for root only.
    pub fn listen(path: PathBuf) -> Result<ConsoleSocket> {
        let _ = fs::remove_file(&path);
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(&path);
        umask(old);
        let listener = bound
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(ShimError::io("console socket", &path))?;
        Ok(ConsoleSocket { listener, path })
    }

    /// Where the runtime connects.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the runtime sent; it connected and sent before its `create` returned.
    fn accept_master(&self) -> Result<OwnedFd> {
        let (stream, _) = self.listener.accept().map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => ShimError::Refused(
                "the runtime made no terminal: nothing came on the console socket".to_owned(),
            ),
            _ => ShimError::io("console socket", &self.path)(e),
        })?;
        stream
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .map_err(ShimError::io("console socket", &self.path))?;
        Ok(receive_master(&stream)?)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The container's terminal as the shim holds it. The master is watched edge-triggered
/// through an epoll descriptor of its own: while no process holds the terminal open
/// (one that closed its stdio, say) the master reads EIO and polls as hung up, which a
/// level-triggered watch would report without end; the master stays open all the same,
/// as the container may open its terminal again.
pub struct Console {
    master: OwnedFd,
    epoll: Epoll,
}

impl Console {
    /// Hold `master`, non-blocking, watched for new output.
    pub fn new(master: OwnedFd) -> io::Result<Console> {
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(
            &master,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, 0),
        )?;
        Ok(Console { master, epoll })
    }

    /// What the shim's poll loop watches: readable when the terminal has news.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    /// Take the news and read what the terminal holds, handing it to `sink`. An error is
    /// the master's own (`sink` reports its failures itself).
    pub fn drain(&mut self, sink: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut events = [EpollEvent::empty(); 1];
        self.epoll.wait(&mut events, EpollTimeout::ZERO)?;
        drain_into(self.master.as_fd(), sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_is_read_from_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want) in [
            (r#"{"process": {"terminal": true, "args": ["sh"]}}"#, true),
            (r#"{"process": {"terminal": false}}"#, false),
            (r#"{"ociVersion": "1.0.2"}"#, false),
        ] {
            fs::write(dir.path().join("config.json"), text).unwrap();
            assert_eq!(wants_terminal(dir.path()).unwrap(), want, "{text}");
        }
        fs::write(dir.path().join("config.json"), "{").unwrap();
        let e = wants_terminal(dir.path()).unwrap_err();
        assert!(matches!(e, ShimError::Json { .. }), "{e:?}");
        assert!(e.to_string().contains("config.json"), "{e}");
    }

    #[test]
    fn the_master_is_taken_when_sent() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        assert!(Handover::Pair(ours).take().unwrap().is_none());
        // What the runtime's init does with a terminal: the master arrives.
        let (ours, theirs2) = UnixStream::pair().unwrap();
        let _slave = berth_runtime::console::create_and_send(&theirs2).unwrap();
        let master = Handover::Pair(ours).take().unwrap().expect("a master");
        assert!(nix::unistd::isatty(&master).unwrap());
        // An init gone before sending anything: end of file, no master.
        let (ours, gone) = UnixStream::pair().unwrap();
        drop(gone);
        assert!(Handover::Pair(ours).take().unwrap().is_none());
        drop(theirs);

        let dir = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::listen(dir.path().join("tty.sock")).unwrap();
        let path = socket.path().to_path_buf();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = Handover::Socket(socket).take().unwrap_err();
        assert!(e.to_string().contains("no terminal"), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn a_terminal_nobody_holds_is_kept_without_busy_polling() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let slave = berth_runtime::console::create_and_send(&theirs).unwrap();
        let master = Handover::Pair(ours).take().unwrap().unwrap();
        let mut console = Console::new(master).unwrap();
        // The pty moves data to the master's side asynchronously: wait up to `ms`.
        let readable = |c: &Console, ms: i32| {
            let mut pfd = libc::pollfd {
                fd: c.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
        };
        let mut got = Vec::new();
        nix::unistd::write(&slave, b"hello\n").unwrap();
        assert!(readable(&console, 5000));
        console
            .drain(|d| {
                got.extend_from_slice(d);
                Ok(())
            })
            .unwrap();
        assert_eq!(got, b"hello\r\n");
        // Every slave closed: news once, then quiet, though the master still reads EIO.
        drop(slave);
        assert!(readable(&console, 5000));
        console.drain(|_| Ok(())).unwrap();
        assert!(
            !readable(&console, 200),
            "a hung-up terminal keeps the loop busy"
        );
    }
}
