//! `linux.seccomp.listenerPath`: handing the SCMP_ACT_NOTIFY listener to the seccomp agent.
//!
//! The runtime spec: connect to the UNIX socket at listenerPath and send the container
//! process state (JSON) with the listener fd attached (SCM_RIGHTS), then close the
//! connection. The agent answers the container's notified syscalls from then on.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use serde::Serialize;

use super::SeccompError;

/// The runtime spec's "container process state", sent along with the listener.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessState<'a, S: Serialize> {
    oci_version: &'a str,
    /// Names of the fds attached, in order.
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: &'a S,
}

/// Send `listener` (from [`install`](super::install)) to the agent at `listener_path`, with
/// the container process state: its `pid`, `listenerMetadata`, and the container `state`
/// (the runtime's `state` JSON).
pub fn send_listener<S: Serialize>(
    listener_path: &Path,
    listener: BorrowedFd<'_>,
    pid: i32,
    metadata: Option<&str>,
    state: &S,
) -> Result<(), SeccompError> {
    let failed = |source: std::io::Error| SeccompError::Listener {
        path: listener_path.to_path_buf(),
        source,
    };
    let message = serde_json::to_vec(&ProcessState {
        oci_version: crate::state::OCI_VERSION,
        fds: ["seccompFd"],
        pid,
        metadata,
        state,
    })
    .map_err(|e| failed(e.into()))?;
    let stream = UnixStream::connect(listener_path).map_err(failed)?;
    let fds = [listener.as_raw_fd()];
    let sent = sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &[IoSlice::new(&message)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|errno| failed(errno.into()))?;
    if sent != message.len() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", message.len()),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::IoSliceMut;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;

    use nix::sys::socket::{recvmsg, ControlMessageOwned};

    use super::*;

    #[test]
    fn agent_receives_state_and_fd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let agent = UnixListener::bind(&path).unwrap();

        // Any fd stands in for the listener: one end of a pipe, whose other end proves
        // the agent got the same pipe.
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let state = serde_json::json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating"});
        send_listener(&path, write_end.as_fd(), 4242, Some("meta"), &state).unwrap();
        drop(write_end);

        let (conn, _) = agent.accept().unwrap();
        let mut buf = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let received = match msg.cmsgs().unwrap().next() {
            Some(ControlMessageOwned::ScmRights(fds)) => {
                assert_eq!(fds.len(), 1);
                // SAFETY: the fd was just received and is ours.
                unsafe { OwnedFd::from_raw_fd(fds[0]) }
            }
            other => panic!("no fd: {other:?}"),
        };
        let len = msg.bytes;
        let json: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert_eq!(json["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(json["pid"], 4242);
        assert_eq!(json["metadata"], "meta");
        assert_eq!(json["state"]["id"], "c1");
        assert_eq!(json["ociVersion"], crate::state::OCI_VERSION);

        // The received fd is the pipe's write end: writing through it reaches read_end.
        nix::unistd::write(&received, b"x").unwrap();
        let mut one = [0u8; 1];
        assert_eq!(nix::unistd::read(&read_end, &mut one).unwrap(), 1);
    }

    #[test]
    fn missing_agent_is_a_clear_error() {
        let (_r, w) = nix::unistd::pipe().unwrap();
        let err = send_listener(
            Path::new("/nonexistent/agent.sock"),
            w.as_fd(),
            1,
            None,
            &serde_json::json!({}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("seccomp: listenerPath /nonexistent/agent.sock: "),
            "{err}"
        );
    }
}
