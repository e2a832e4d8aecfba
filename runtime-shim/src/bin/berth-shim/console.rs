//! `terminal: true`: the runtime makes the container's pty and hands its master over a
//! unix socket, as runc does with `--console-socket`; the shim keeps the master (closing
//! it would hang up the container) and copies what the container writes into its log.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime::console::receive_master;
use serde::Deserialize;

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
pub fn wants_terminal(bundle: &Path) -> Result<bool, String> {
    let path = bundle.join("config.json");
    let text = fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let probe: Probe = serde_json::from_slice(&text)
        .map_err(|e| format!("invalid spec in {}: {e}", path.display()))?;
    Ok(probe.process.and_then(|p| p.terminal) == Some(true))
}

/// The master the built-in runtime sent on our end of its console socket pair, if it made
/// a terminal: it does so before `create` returns, so nothing there means no terminal.
pub fn take_master(ours: &UnixStream) -> Result<Option<OwnedFd>, String> {
    let mut pfd = libc::pollfd {
        fd: ours.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    if unsafe { libc::poll(&mut pfd, 1, 0) } < 0 {
        return Err(format!("console socket: {}", io::Error::last_os_error()));
    }
    if pfd.revents & libc::POLLIN == 0 {
        return Ok(None);
    }
    receive_master(ours).map(Some).map_err(|e| e.to_string())
}

/// A listening console socket for an external runtime, removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listen at `path` (replacing a stale socket file).
    pub fn listen(path: PathBuf) -> Result<ConsoleSocket, String> {
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("console socket {}: {e}", path.display()))?;
        Ok(ConsoleSocket { listener, path })
    }

    /// Where the runtime connects.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the runtime sent; it connected and sent before its `create` returned.
    pub fn accept_master(&self) -> Result<OwnedFd, String> {
        let (stream, _) = self.listener.accept().map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => {
                "the runtime made no terminal: nothing came on the console socket".to_owned()
            }
            _ => format!("console socket {}: {e}", self.path.display()),
        })?;
        stream
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .map_err(|e| format!("console socket {}: {e}", self.path.display()))?;
        receive_master(&stream).map_err(|e| e.to_string())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_is_read_from_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want) in [
            (
                r#"{"process": {"terminal": true, "args": ["sh"]}}"#,
                Ok(true),
            ),
            (r#"{"process": {"terminal": false}}"#, Ok(false)),
            (r#"{"ociVersion": "1.0.2"}"#, Ok(false)),
        ] {
            fs::write(dir.path().join("config.json"), text).unwrap();
            assert_eq!(wants_terminal(dir.path()), want, "{text}");
        }
        fs::write(dir.path().join("config.json"), "{").unwrap();
        let e = wants_terminal(dir.path()).unwrap_err();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn the_master_is_taken_when_sent() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        assert!(take_master(&ours).unwrap().is_none());
        // What the runtime's init does with a terminal: the master arrives.
        let _slave = berth_runtime::console::create_and_send(&theirs).unwrap();
        let master = take_master(&ours).unwrap().expect("a master");
        assert!(nix::unistd::isatty(&master).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::listen(dir.path().join("console.sock")).unwrap();
        let e = socket.accept_master().unwrap_err();
        assert!(e.contains("no terminal"), "{e}");
        let path = socket.path().to_path_buf();
        drop(socket);
        assert!(!path.exists());
    }
}
