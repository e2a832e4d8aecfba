//! One message, one datagram: JSON on a SOCK_SEQPACKET unix socket. Shared by the shim and
//! [`super::client`], so both ends frame and size messages alike.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::protocol::MAX_MESSAGE;

/// What one receive produced.
#[derive(Debug)]
pub enum Received<T> {
    /// A whole message.
    Message(T),
    /// The peer closed its end (or died).
    Closed,
    /// Nothing to read now (only with `dontwait`).
    Empty,
}

/// Send `msg` as one datagram. Never raises SIGPIPE; with `dontwait`, a peer whose
/// buffer is full is an `EAGAIN` error instead of a wait.
pub fn send<T: Serialize>(fd: BorrowedFd<'_>, msg: &T, dontwait: bool) -> io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes exceeds {MAX_MESSAGE}", bytes.len()),
        ));
    }
    let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: `bytes` is a live buffer of the given length; `fd` is open.
        let n = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), flags) };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receive one datagram into `buf` (reused between calls, grown once to
/// [`MAX_MESSAGE`]) and decode it.
pub fn recv<T: DeserializeOwned>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    dontwait: bool,
) -> io::Result<Received<T>> {
    buf.clear();
    buf.reserve(MAX_MESSAGE);
    let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
    let n = loop {
        // SAFETY: the spare capacity of `buf` is at least MAX_MESSAGE writable bytes;
        // the kernel writes at most that many.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.capacity(),
                flags,
            )
        };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock if dontwait => return Ok(Received::Empty),
            io::ErrorKind::ConnectionReset => return Ok(Received::Closed),
            _ => return Err(err),
        }
    };
    if n == 0 {
        return Ok(Received::Closed);
    }
    // SAFETY: the kernel initialised the first `n` bytes.
    unsafe { buf.set_len(n) };
    serde_json::from_slice(buf)
        .map(Received::Message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::protocol::{Message, Request};
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    #[test]
    fn round_trip_and_close() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            recv::<Request>(b.as_fd(), &mut buf, true).unwrap(),
            Received::Empty
        ));
        send(a.as_fd(), &Request::Pause, false).unwrap();
        send(a.as_fd(), &Message::Oom, false).unwrap();
        assert!(matches!(
            recv::<Request>(b.as_fd(), &mut buf, false).unwrap(),
            Received::Message(Request::Pause)
        ));
        assert!(matches!(
            recv::<Message>(b.as_fd(), &mut buf, false).unwrap(),
            Received::Message(Message::Oom)
        ));
        drop(a);
        assert!(matches!(
            recv::<Message>(b.as_fd(), &mut buf, false).unwrap(),
            Received::Closed
        ));
    }
}
