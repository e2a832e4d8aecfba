//! The setup protocol between the runtime (parent) and the container's init (child).
//!
//! A SOCK_SEQPACKET socketpair: every message is one datagram, so message boundaries are
//! kept without framing, and a peer that dies shows up as end-of-file. Messages go
//! through plain write(2) and read(2): the init talks on it under the user's seccomp
//! profile, and those are the calls every profile that lets a program run allows.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::{read, write};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// Everything the parent and the init say to each other during `create`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// Parent → init: you are in your cgroup; set the container up.
    Proceed,
    /// Init → parent: the container is set up; the user program was found.
    Ready,
    /// Parent → init: the state is recorded; stop depending on the parent.
    Committed,
    /// Init → parent: mounts are prepared; run the prestart and createRuntime hooks.
    RunCreateHooks,
    /// Parent → init: those hooks ran; here is the state for the init's own hooks.
    HooksDone(Box<crate::state::OciState>),
    /// Init → parent: setup failed.
    Failed(String),
    /// Init → parent, before `Ready` or `Failed`: something was left out (a capability
    /// the runtime cannot grant, say); the runtime logs it.
    Warning(String),
}

/// Largest message we ever send; failure messages are truncated to fit.
const MAX_MESSAGE: usize = 4096;

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Create both ends: (parent, child). Both are close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .sys("socketpair", "init channel")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Send one message. A peer that is gone gives EPIPE to the runtime (which ignores
    /// SIGPIPE, as every Rust program) and SIGPIPE to an init, which then has nobody to
    /// report to anyway.
    pub fn send(&self, msg: &Message) -> Result<()> {
        let mut bytes = serde_json::to_vec(msg).unwrap_or_default();
        if bytes.len() > MAX_MESSAGE {
            bytes = serde_json::to_vec(&Message::Failed("error message too long".into()))
                .unwrap_or_default();
        }
        write(&self.fd, &bytes)
            .sys("write", "init channel")
            .map(drop)
    }

    /// Receive one message; `None` when the peer has closed its end (or died).
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = [0u8; MAX_MESSAGE];
        let n = loop {
            match read(&self.fd, &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.sys("read", "init channel")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n]).map(Some).map_err(|e| {
            Error::sys(
                "decode",
                format!("init channel message: {e}"),
                nix::errno::Errno::EPROTO,
            )
        })
    }

    /// The raw descriptor, for the init to keep across its setup.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}
