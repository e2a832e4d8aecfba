//! The engine's end of a shim: connect to its socket, ask, and hear its events; and
//! [`spawn_shim`] to start one by exec.
//!
//! Events go only to clients connected when they happen. After connecting (first time or
//! after a daemon restart), ask [`Request::State`]: it is the truth of the moment, and
//! when the shim is gone, [`read_exit_file`] tells how the container ended.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

use super::protocol::{ExitRecord, Message, Request, EXIT_FILE, SOCKET_FILE};
use super::wire::{self, Received};

/// What can go wrong talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("connecting to shim socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("shim socket {op}: {source}")]
    Io {
        /// `send` or `recv`.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The shim closed the connection: it exited (or was killed).
    #[error("the shim closed its socket (it exited or was killed)")]
    Closed,
}

/// A connection to one shim.
#[derive(Debug)]
pub struct ShimClient {
    fd: OwnedFd,
    buf: Vec<u8>,
    events: VecDeque<Message>,
}

impl ShimClient {
    /// Connect to the shim whose state directory is `state_dir`.
    pub fn connect(state_dir: &Path) -> Result<ShimClient, ClientError> {
        let path = state_dir.join(SOCKET_FILE);
        let err = |source: io::Error| ClientError::Connect {
            path: path.clone(),
            source,
        };
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| err(e.into()))?;
        let addr = UnixAddr::new(&path).map_err(|e| err(e.into()))?;
        connect(fd.as_raw_fd(), &addr).map_err(|e| err(e.into()))?;
        Ok(ShimClient {
            fd,
            buf: Vec::new(),
            events: VecDeque::new(),
        })
    }

    /// A client over a socket already connected to a shim.
    pub fn from_fd(fd: OwnedFd) -> ShimClient {
        ShimClient {
            fd,
            buf: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// [`ShimClient::connect`], retrying while the socket does not exist yet (a shim just
    /// spawned binds it within milliseconds), for at most `timeout`.
    pub fn connect_timeout(state_dir: &Path, timeout: Duration) -> Result<ShimClient, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(500);
        loop {
            match ShimClient::connect(state_dir) {
                Err(ClientError::Connect { source, .. })
                    if matches!(
                        source.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ECONNREFUSED)
                    ) && Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Send `req` and wait for its reply. Events that arrive meanwhile are kept, in
    /// order, for [`ShimClient::recv_event`] / [`ShimClient::take_events`].
    pub fn request(&mut self, req: &Request) -> Result<Message, ClientError> {
        wire::send(self.fd.as_fd(), req, false)
            .map_err(|source| ClientError::Io { op: "send", source })?;
        loop {
            let msg = self.recv(false)?.ok_or(ClientError::Closed)?;
            if msg.is_event() {
                self.events.push_back(msg);
            } else {
                return Ok(msg);
            }
        }
    }

    /// The next event, waiting for it. [`ClientError::Closed`] when the shim is gone.
    pub fn recv_event(&mut self) -> Result<Message, ClientError> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(ev);
        }
        self.recv(false)?.ok_or(ClientError::Closed)
    }

    /// The next message without waiting: a kept event first, then whatever the socket
    /// holds; `Ok(None)` when there is nothing. For an event loop that polls
    /// [`ShimClient::as_raw_fd`] and has no request outstanding, every message is an
    /// event. [`ClientError::Closed`] when the shim is gone.
    pub fn try_recv(&mut self) -> Result<Option<Message>, ClientError> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        self.recv(true)
    }

    /// Bound every wait for a message (`None`: wait forever, the default). A wait that
    /// runs out is an [`ClientError::Io`] of kind `WouldBlock`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        wire::set_read_timeout(self.fd.as_fd(), timeout).map_err(|source| ClientError::Io {
            op: "setsockopt",
            source,
        })
    }

    /// Events kept while waiting for replies, oldest first.
    pub fn take_events(&mut self) -> Vec<Message> {
        self.events.drain(..).collect()
    }

    /// The socket, to register with an event loop (readable: a message or the shim's end).
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv(&mut self, dontwait: bool) -> Result<Option<Message>, ClientError> {
        match wire::recv(self.fd.as_fd(), &mut self.buf, dontwait) {
            Ok(Received::Message(m)) => Ok(Some(m)),
            Ok(Received::Empty) => Ok(None),
            Ok(Received::Closed) => Err(ClientError::Closed),
            Err(source) => Err(ClientError::Io { op: "recv", source }),
        }
    }
}

impl AsRawFd for ShimClient {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The exit record a shim wrote in `state_dir`, if any (`Ok(None)`: no file).
pub fn read_exit_file(state_dir: &Path) -> io::Result<Option<ExitRecord>> {
    match std::fs::read(state_dir.join(EXIT_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// How to start a `berth-shim`: the command line of [`spawn_shim`], and the request a
/// [`super::spawner::Spawner`] sends.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SpawnOptions {
    /// The `berth-shim` binary (not sent to a spawner: it is that binary).
    #[serde(skip)]
    pub binary: PathBuf,
    /// Container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The shim's own directory (socket, pid, exit record, shim log).
    pub state_dir: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// An external OCI runtime binary (runc, crun, berth-runc); `None`: the built-in library.
    pub runtime: Option<PathBuf>,
    /// Where the container's stdout/stderr go; `None`: discarded.
    pub log: Option<PathBuf>,
    /// Size cap of the log file in bytes; `None`: the shim's default (10 MiB).
    pub log_max: Option<u64>,
    /// Create only; wait for [`Request::Start`].
    pub no_start: bool,
}

impl SpawnOptions {
    /// The shim's arguments (after the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--runtime-root".into(),
            self.runtime_root.clone().into(),
        ];
        if let Some(runtime) = &self.runtime {
            args.extend(["--runtime".into(), runtime.clone().into()]);
        }
        if let Some(log) = &self.log {
            args.extend(["--log".into(), log.clone().into()]);
        }
        if let Some(max) = self.log_max {
            args.extend(["--log-max".into(), max.to_string().into()]);
        }
        if self.no_start {
            args.push("--no-start".into());
        }
        args
    }

    /// The command line `spawn_shim` runs.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

/// Start a shim by exec. It detaches itself (own session) and outlives the caller; while
/// the caller lives, the shim is its child: reap it (`try_wait`) once its socket closes.
/// The engine starts its shims through a [`super::spawner::Spawner`] instead.
pub fn spawn_shim(opts: &SpawnOptions) -> io::Result<Child> {
    opts.command().spawn()
}
