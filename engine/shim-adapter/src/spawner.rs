//! The engine's end of the shim spawner: one `berth-shim --spawner` process, started once,
//! that forks a shim per container when asked.
//!
//! Why not spawn each shim from the daemon: an exec per container loads and relocates
//! the shim and its libraries again, and the exec closes every close-on-exec descriptor
//! the daemon holds — one socket per running container — so each start cost more the
//! more containers ran (in a 1000-container burst, over a third of a millisecond at the
//! end). A fork of the small, single-threaded spawner costs neither. The forked shim
//! runs exactly the code an exec'd one runs, with the same descriptors (its control
//! socket on stdin, nothing above stderr), an empty signal mask, and the command line an
//! exec'd shim would show (`berth-shim --id …`; where the kernel refuses to move the
//! command line — no CAP_SYS_RESOURCE — it is rewritten in place, as one string with
//! its arguments separated by spaces), so `ps` and tools that look for shims by `--id`
//! still find them.
//!
//! Shims are the spawner's children: it reaps them. Each answer carries a pidfd, so the
//! engine can kill a shim that hangs without ever signalling a recycled pid. When the
//! engine's end closes, the spawner exits; its shims live on (own sessions, as before).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use berth_shim_protocol::wire::{self, Received};
use berth_shim_protocol::{SpawnOptions, SpawnReply, SPAWNER_ARG};

use crate::client::ShimClient;

/// Longest wait for the spawner's answer: a fork takes well under a millisecond, so only
/// a stopped or wedged spawner runs into it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong asking for a shim.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `berth-shim --spawner` could not be started.
    #[error("starting {binary} {SPAWNER_ARG}: {source}")]
    Start {
        /// The binary.
        binary: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The spawner was already gone: nothing was asked, a new spawner may be tried.
    #[error("the shim spawner has exited")]
    Gone,
    /// The spawner went away (or stopped answering) during the request: whether a shim
    /// was made is unknown, and a late answer could be taken for the next request's, so
    /// this spawner must not be asked again.
    #[error("the shim spawner did not answer: {0}")]
    Lost(String),
    /// The spawner answered that it made no shim.
    #[error("the shim spawner could not make the shim: {0}")]
    Refused(String),
    /// A socket or descriptor of our own failed (or the request could not be sent in
    /// time); this spawner must not be asked again.
    #[error("shim spawner {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

/// A running `berth-shim --spawner`; dropping it stops the spawner (not its shims).
#[derive(Debug)]
pub struct Spawner {
    process: Child,
    socket: OwnedFd,
    buf: Vec<u8>,
}

/// A shim just forked: its pid, a pidfd to signal it by, and a client already
/// connected to it (the shim serves its control socket from its first instant).
#[derive(Debug)]
pub struct SpawnedShim {
    /// The shim's pid.
    pub pid: i32,
    pidfd: OwnedFd,
    /// The engine's end of the shim's control socket.
    pub client: ShimClient,
}

impl Spawner {
    /// Start `binary --spawner`, its stdin one end of a socket pair. Its stderr is ours,
    /// so what it (or a shim before it opens its log) has to say reaches the daemon's log.
    pub fn start(binary: &Path) -> Result<Spawner, SpawnError> {
        let start_err = |source: io::Error| SpawnError::Start {
            binary: binary.display().to_string(),
            source,
        };
        let (ours, theirs) = seqpacket_pair().map_err(start_err)?;
        let process = Command::new(binary)
            .arg(SPAWNER_ARG)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(start_err)?;
        let spawner = Spawner {
            process,
            socket: ours,
            buf: Vec::new(),
        };
        // A stopped spawner must not hang a start: neither waiting for its answer nor
        // for room in its full queue.
        let fd = spawner.socket.as_fd();
        wire::set_read_timeout(fd, Some(ANSWER_TIMEOUT))
            .and_then(|()| wire::set_send_timeout(fd, Some(ANSWER_TIMEOUT)))
            .map_err(|source| SpawnError::Io {
                op: "setsockopt",
                source,
            })?;
        Ok(spawner)
    }

    /// The spawner's pid.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Fork a shim for `opts` (its `binary` is the spawner's own and not sent).
    pub fn spawn(&mut self, opts: &SpawnOptions) -> Result<SpawnedShim, SpawnError> {
        let io_err = |op| move |source| SpawnError::Io { op, source };
        let (ours, theirs) = seqpacket_pair().map_err(io_err("socketpair"))?;
        if let Err(e) = wire::send_with_fd(self.socket.as_fd(), opts, theirs.as_fd()) {
            return Err(match e.raw_os_error() {
                Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN) => {
                    SpawnError::Gone
                }
                _ => SpawnError::Io {
                    op: "send",
                    source: e,
                },
            });
        }
        drop(theirs);
        let (reply, pidfd) = wire::recv_with_fd::<SpawnReply>(self.socket.as_fd(), &mut self.buf)
            .map_err(|e| SpawnError::Lost(e.to_string()))?;
        match (reply, pidfd) {
            (Received::Message(SpawnReply::Spawned { pid }), Some(pidfd)) => Ok(SpawnedShim {
                pid,
                pidfd,
                client: ShimClient::from_fd(ours),
            }),
            (Received::Message(SpawnReply::Spawned { pid }), None) => Err(SpawnError::Lost(
                format!("shim {pid} was reported without its pidfd"),
            )),
            (Received::Message(SpawnReply::Error { message }), _) => {
                Err(SpawnError::Refused(message))
            }
            (Received::Closed | Received::Empty, _) => {
                Err(SpawnError::Lost("it closed its socket".into()))
            }
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // It holds nothing worth a graceful end, and a stopped spawner must not hang us.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl SpawnedShim {
    /// Wait at most `timeout` for the shim to exit; whether it did.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        pidfd_exited(self.pidfd.as_fd(), timeout).unwrap_or(false)
    }

    /// SIGKILL the shim. Once it has exited this does nothing: a pidfd never names
    /// another process.
    pub fn kill(&self) -> io::Result<()> {
        // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        let err = io::Error::last_os_error();
        if rc == 0 || err.raw_os_error() == Some(libc::ESRCH) {
            Ok(())
        } else {
            Err(err)
        }
    }
}

/// Wait at most `timeout` for the process of `pidfd` to exit; whether it did. A signal
/// delivered to this thread (EINTR) says nothing about that process: the wait goes on.
pub(crate) fn pidfd_exited(pidfd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; a pidfd is readable once its process has exited.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A close-on-exec SOCK_SEQPACKET pair.
fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}
