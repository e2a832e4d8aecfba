//! A small harness for the tests of berthd's configuration, TCP listener and metrics:
//! a scratch directory cleaned up on drop, berthd started with any flags and
//! environment, and HTTP/1.1 requests over its unix socket or TCP.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../../../engine/tests/support/mod.rs"]
pub mod support;

/// A scratch directory; on drop (also when a test fails) every shim under its state
/// directory is killed, every container removed, and the directory deleted.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory named after the test and this process.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("berth-cfg-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The state directory the daemons here use by default.
    pub fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    /// The unix socket the daemons here use by default.
    pub fn socket(&self) -> PathBuf {
        self.0.join("berth.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for state in [self.state(), self.0.join("state-env")] {
            for entry in fs::read_dir(state.join("shims"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(pid) = fs::read_to_string(entry.path().join("shim.pid")) {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            if let Ok(list) = berth_api::engine::runtime::container::list(&state.join("runtime")) {
                for c in list {
                    let _ = c.delete(true);
                }
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// berthd with `args` and `env` (and nothing else from this process's `BERTH_*`).
pub fn berthd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berthd"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BERTH_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    cmd
}

/// Run berthd expecting it to refuse to start; its output.
pub fn refused(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = berthd(args, env).stdin(Stdio::null()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "berthd {args:?} should exit 2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running berthd; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Daemon {
    child: Option<Child>,
    /// Its unix socket.
    pub socket: PathBuf,
}

impl Daemon {
    /// Start berthd with the scratch socket, state and the workspace's shim, plus
    /// `extra` flags and `env`; wait until the socket answers.
    pub fn start(scratch: &Scratch, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let socket = scratch.socket();
        let state = scratch.state();
        let shim = support::shim_binary();
        let mut args = vec![
            "--socket",
            socket.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--shim",
            shim.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Self::spawn(berthd(&args, env), socket)
    }

    /// Start `cmd` (a berthd) and wait until `socket` answers.
    pub fn spawn(mut cmd: Command, socket: PathBuf) -> Self {
        let child = cmd.stdin(Stdio::null()).spawn().unwrap();
        let mut daemon = Daemon {
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&daemon.socket).is_err() {
            if let Some(child) = daemon.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("berthd exited early: {status}");
                }
            }
            assert!(Instant::now() < deadline, "berthd did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    /// SIGTERM; the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request over the unix socket.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let stream = UnixStream::connect(&self.socket).unwrap();
        request(stream, method, path, &[], body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A request over TCP to `addr` with extra `headers`.
pub fn call_tcp(addr: &str, method: &str, path: &str, headers: &[&str]) -> Resp {
    let stream = TcpStream::connect(addr).unwrap();
    request(stream, method, path, headers, None)
}

/// Send one HTTP/1.1 request on `stream` and read the whole answer.
pub fn request<S: Read + Write>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    let _ = stream.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    Resp::parse(&out)
}

/// A parsed HTTP response; `json` is `Null` for a body that is not JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Resp {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Resp {
            status,
            headers,
            text: body.to_owned(),
            json: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `dir` is absent or empty.
pub fn absent_or_empty(dir: &Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Lint a Prometheus exposition with promtool where it is installed (CI installs it).
pub fn promtool_check(exposition: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: /metrics not linted");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
