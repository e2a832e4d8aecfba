//! One message, one datagram: JSON on a SOCK_SEQPACKET unix socket. Shared by the shim and
//! the engine's shim adapter, so both ends frame and size messages alike.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::MAX_MESSAGE;

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
    let bytes = encode(msg)?;
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
    decode(buf).map(Received::Message)
}

/// [`send`] (waiting) with one descriptor passed along (SCM_RIGHTS): the receiver gets
/// its own copy of `passed`.
pub fn send_with_fd<T: Serialize>(
    fd: BorrowedFd<'_>,
    msg: &T,
    passed: BorrowedFd<'_>,
) -> io::Result<()> {
    let bytes = encode(msg)?;
    let fds = [passed.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&bytes)];
    loop {
        match sendmsg::<()>(fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// [`recv`] (waiting) of a message that may carry one descriptor, which arrives
/// close-on-exec. A message that does not decode is an `InvalidData` error, and the
/// descriptor that came with it is closed.
pub fn recv_with_fd<T: DeserializeOwned>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
) -> io::Result<(Received<T>, Option<OwnedFd>)> {
    // Zeroed once: later calls reuse the full-length buffer.
    buf.resize(MAX_MESSAGE, 0);
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (n, passed) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut passed = None;
                // More descriptors than one were sent: the message is not one of ours.
                let cmsgs = msg.cmsgs().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "too many descriptors passed")
                })?;
                for cmsg in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        for raw in fds {
                            // SAFETY: the kernel just installed this descriptor for us;
                            // nothing else owns it.
                            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                            // A second descriptor is not expected: dropping it closes it.
                            passed.get_or_insert(owned);
                        }
                    }
                }
                break (msg.bytes, passed);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) => return Ok((Received::Closed, None)),
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok((Received::Closed, None));
    }
    Ok((Received::Message(decode(&buf[..n])?), passed))
}

/// Bound every wait of a receive on `fd` (`None`: wait forever). A wait that runs out
/// is an error of kind `WouldBlock`.
pub fn set_read_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    set_timeout(fd, libc::SO_RCVTIMEO, timeout)
}

/// Bound every wait of a send on `fd` for room in the peer's queue, as
/// [`set_read_timeout`] does for receives.
pub fn set_send_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    set_timeout(fd, libc::SO_SNDTIMEO, timeout)
}

fn set_timeout(
    fd: BorrowedFd<'_>,
    option: libc::c_int,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let tv = timeout.map_or(
        libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        // A zero timeval would mean "forever": the shortest wait is a microsecond.
        |t| libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros().max(u32::from(t.is_zero())) as libc::suseconds_t,
        },
    );
    // SAFETY: setsockopt with a timeval of the size given, on an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// JSON of `msg`, refused past [`MAX_MESSAGE`].
fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes exceeds {MAX_MESSAGE}", bytes.len()),
        ));
    }
    Ok(bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Request};
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

    #[test]
    fn a_descriptor_travels_with_its_message() {
        let pair = || {
            socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .unwrap()
        };
        let (a, b) = pair();
        let (x, y) = pair();
        send_with_fd(a.as_fd(), &Request::Start, x.as_fd()).unwrap();
        drop(x);
        let mut buf = Vec::new();
        let (msg, passed) = recv_with_fd::<Request>(b.as_fd(), &mut buf).unwrap();
        assert!(matches!(msg, Received::Message(Request::Start)));
        // The copy that arrived is the other end of `y`'s pair, and close-on-exec.
        let passed = passed.expect("a descriptor");
        // SAFETY: fcntl F_GETFD on a descriptor we own.
        let flags = unsafe { libc::fcntl(passed.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        send(passed.as_fd(), &Message::Oom, false).unwrap();
        assert!(matches!(
            recv::<Message>(y.as_fd(), &mut buf, false).unwrap(),
            Received::Message(Message::Oom)
        ));
        // A message that is not JSON is an error; one without a descriptor has none.
        // SAFETY: send of a live buffer on our socket.
        unsafe { libc::send(a.as_raw_fd(), b"{".as_ptr().cast(), 1, 0) };
        let err = recv_with_fd::<Request>(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        send(a.as_fd(), &Request::Pause, false).unwrap();
        let (msg, passed) = recv_with_fd::<Request>(b.as_fd(), &mut buf).unwrap();
        assert!(matches!(msg, Received::Message(Request::Pause)) && passed.is_none());
        drop(a);
        assert!(matches!(
            recv_with_fd::<Request>(b.as_fd(), &mut buf).unwrap().0,
            Received::Closed
        ));
    }
}
