//! Running one plugin (spec section 2): its binary found in the plugin directories, the
//! `CNI_*` environment, the configuration on stdin, the result on stdout, an error object
//! on stdout when it exits non-zero, and a timeout after which the plugin and every
//! process it started (its process group) are killed and the plugin is reaped.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::{CniError, PluginCall};

/// How many bytes of bad output an error shows.
const HEAD: usize = 256;

/// The environment variables a plugin is given (others of ours are not passed on).
const CNI_VARS: [&str; 6] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

/// Plugins run `iptables` and the like: a PATH if ours has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where to find plugins and how long each may run.
#[derive(Debug, Clone)]
pub(crate) struct Plugins {
    /// The plugin directories, searched in order (`CNI_PATH`).
    pub dirs: Vec<PathBuf>,
    /// How long one plugin may run.
    pub timeout: Duration,
}

/// One invocation's inputs.
pub(crate) struct Invocation<'a> {
    /// What is run (for errors).
    pub call: PluginCall,
    /// The container's network namespace; none: `CNI_NETNS` empty (a DEL whose namespace
    /// is gone).
    pub netns: Option<&'a Path>,
    /// The interface name in the container.
    pub ifname: &'a str,
    /// `CNI_ARGS`.
    pub cni_args: &'a str,
    /// The configuration on stdin.
    pub stdin: &'a [u8],
}

/// A CNI error object (what a failing plugin prints).
#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: Option<u64>,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// What a plugin left when it ended.
struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Plugins {
    /// The binary of plugin `name`: the first plugin directory that has it.
    pub fn find(&self, name: &str) -> Result<PathBuf, CniError> {
        let not_found = || CniError::PluginNotFound {
            name: name.to_owned(),
            dirs: self.dirs.clone(),
        };
        if !super::config::valid_plugin_name(name) {
            return Err(not_found());
        }
        self.dirs
            .iter()
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .ok_or_else(not_found)
    }

    /// Run the plugin of `inv.call`; its stdout when it exits 0, else its error.
    pub fn run(&self, inv: &Invocation) -> Result<Vec<u8>, CniError> {
        let path = self.find(&inv.call.plugin)?;
        let started = Instant::now();
        let out = self.run_binary(&path, inv)?;
        tracing::debug!(
            call = %inv.call,
            ms = started.elapsed().as_millis() as u64,
            stderr = %String::from_utf8_lossy(&out.stderr).trim(),
            "CNI plugin ran"
        );
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(failure(&inv.call, &out))
    }

    /// Run the plugin's result through [`Plugins::run`] and read it as JSON (an ADD's
    /// result, which the next plugin gets as `prevResult`).
    pub fn run_for_result(&self, inv: &Invocation) -> Result<Value, CniError> {
        let stdout = self.run(inv)?;
        match serde_json::from_slice::<Value>(&stdout) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(bad_output(&inv.call, "not a JSON object".into(), &stdout)),
            Err(e) => Err(bad_output(&inv.call, e.to_string(), &stdout)),
        }
    }

    /// Start the binary with the CNI environment and wait for it (or time out).
    fn run_binary(&self, path: &Path, inv: &Invocation) -> Result<Output, CniError> {
        let mut cmd = Command::new(path);
        for var in CNI_VARS {
            cmd.env_remove(var);
        }
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", DEFAULT_PATH);
        }
        let netns = inv.netns.map(|p| p.as_os_str()).unwrap_or_default();
        cmd.env("CNI_COMMAND", inv.call.command)
            .env("CNI_CONTAINERID", &inv.call.container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", inv.ifname)
            .env("CNI_ARGS", inv.cni_args)
            .env(
                "CNI_PATH",
                std::env::join_paths(&self.dirs).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout kills what it started too.
            .process_group(0);
        let child = cmd.spawn().map_err(|source| CniError::Spawn {
            call: Box::new(inv.call.clone()),
            path: path.to_owned(),
            source,
        })?;
        Running::new(child, inv.stdin).wait(&inv.call, self.timeout)
    }
}

/// The error for a plugin that exited non-zero: its error object if it printed one,
/// else its stderr, else its exit status.
fn failure(call: &PluginCall, out: &Output) -> CniError {
    if let Ok(obj) = serde_json::from_slice::<ErrorObject>(&out.stdout) {
        if obj.code.is_some() || !obj.msg.is_empty() {
            return CniError::PluginFailed {
                call: Box::new(call.clone()),
                code: obj.code,
                msg: obj.msg,
                details: obj.details,
            };
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(head(&out.stdout)).trim().to_owned();
    let msg = [stderr, stdout]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    CniError::PluginFailed {
        call: Box::new(call.clone()),
        code: None,
        msg: format!("{}{}", out.status, if msg.is_empty() { "" } else { ": " }) + &msg,
        details: String::new(),
    }
}

/// The error for output that is not a result, with its first bytes.
fn bad_output(call: &PluginCall, reason: String, stdout: &[u8]) -> CniError {
    CniError::BadOutput {
        call: Box::new(call.clone()),
        reason,
        head: String::from_utf8_lossy(head(stdout)).into_owned(),
    }
}

/// The first bytes of `bytes`.
fn head(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(HEAD)]
}

/// A started plugin: its pipes pumped in one loop (stdin written, stdout and stderr
/// read) until it has exited and closed them, or the deadline.
struct Running<'a> {
    child: Child,
    /// Tells when the child exits (none where pidfd_open(2) is missing: then polled).
    pidfd: Option<OwnedFd>,
    stdin: Option<std::process::ChildStdin>,
    input: &'a [u8],
    stdout: Option<std::process::ChildStdout>,
    stderr: Option<std::process::ChildStderr>,
    out: Vec<u8>,
    err: Vec<u8>,
    status: Option<ExitStatus>,
}

/// How often a child is polled for its exit when there is no pidfd.
const POLL_EXIT: Duration = Duration::from_millis(5);

/// How long output is still read after the plugin exited (a process it left behind
/// may hold the pipes open).
const AFTER_EXIT: Duration = Duration::from_secs(1);

impl<'a> Running<'a> {
    fn new(mut child: Child, input: &'a [u8]) -> Self {
        Running {
            pidfd: pidfd_open(child.id()),
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            input,
            out: Vec::new(),
            err: Vec::new(),
            status: None,
        }
    }

    /// Pump until done; on the deadline kill the plugin's process group and reap it
    /// (dropping a `Running` that has not seen its exit does the same).
    fn wait(mut self, call: &PluginCall, timeout: Duration) -> Result<Output, CniError> {
        let mut deadline = Instant::now() + timeout;
        let io_err = |what| {
            move |source| CniError::Wait {
                call: Box::new(call.clone()),
                what,
                source,
            }
        };
        loop {
            let done_io = self.stdout.is_none() && self.stderr.is_none();
            if done_io && self.status.is_some() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                if self.status.is_none() {
                    self.kill().map_err(io_err("killing the plugin"))?;
                    return Err(CniError::Timeout {
                        call: Box::new(call.clone()),
                        timeout,
                    });
                }
                // It exited but something it started holds its output open: take what
                // it wrote.
                break;
            }
            let exited = self.status.is_some();
            self.step(deadline - now)
                .map_err(io_err("waiting for the plugin"))?;
            if !exited && self.status.is_some() {
                deadline = deadline.min(Instant::now() + AFTER_EXIT);
            }
        }
        Ok(Output {
            status: self.status.unwrap_or_default(),
            stdout: std::mem::take(&mut self.out),
            stderr: std::mem::take(&mut self.err),
        })
    }

    /// One poll(2) over the pipes still open and the pidfd, and what it found ready.
    fn step(&mut self, left: Duration) -> io::Result<()> {
        let mut fds = Vec::with_capacity(4);
        let watch = |fd: Option<RawFd>, events, fds: &mut Vec<libc::pollfd>| {
            if let Some(fd) = fd {
                fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
            }
        };
        watch(
            self.stdin.as_ref().map(|f| f.as_raw_fd()),
            libc::POLLOUT,
            &mut fds,
        );
        watch(
            self.stdout.as_ref().map(|f| f.as_raw_fd()),
            libc::POLLIN,
            &mut fds,
        );
        watch(
            self.stderr.as_ref().map(|f| f.as_raw_fd()),
            libc::POLLIN,
            &mut fds,
        );
        let pidfd = self.pidfd.as_ref().map(|f| f.as_raw_fd());
        if self.status.is_none() {
            watch(pidfd, libc::POLLIN, &mut fds);
        }
        let mut wait = left;
        if pidfd.is_none() && self.status.is_none() {
            wait = wait.min(POLL_EXIT);
        }
        poll(&mut fds, wait)?;
        for fd in fds.iter().filter(|fd| fd.revents != 0) {
            self.ready(fd.fd)?;
        }
        if self.status.is_none()
            && (pidfd.is_none() || fds.iter().any(|f| Some(f.fd) == pidfd && f.revents != 0))
        {
            self.status = self.child.try_wait()?;
        }
        Ok(())
    }

    /// Serve the pipe `fd`, which poll(2) says is ready.
    fn ready(&mut self, fd: RawFd) -> io::Result<()> {
        if self.stdin.as_ref().is_some_and(|f| f.as_raw_fd() == fd) {
            self.write_some();
        } else if self.stdout.as_ref().is_some_and(|f| f.as_raw_fd() == fd) {
            read_some(&mut self.stdout, &mut self.out)?;
        } else if self.stderr.as_ref().is_some_and(|f| f.as_raw_fd() == fd) {
            read_some(&mut self.stderr, &mut self.err)?;
        }
        Ok(())
    }

    /// Write what fits without blocking (at most PIPE_BUF bytes, which poll(2)'s
    /// POLLOUT promises room for); close stdin when all is written or the plugin
    /// closed its end.
    fn write_some(&mut self) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        let chunk = &self.input[..self.input.len().min(libc::PIPE_BUF)];
        match stdin.write(chunk) {
            Ok(n) => self.input = &self.input[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => return,
            // EPIPE: it does not read its stdin; nothing more to give.
            Err(_) => self.input = &[],
        }
        if self.input.is_empty() {
            self.stdin = None;
        }
    }

    /// Kill the plugin's process group (it and what it started) and reap the plugin.
    fn kill(&mut self) -> io::Result<()> {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group we made at
        // spawn (the plugin is not reaped yet, so its id names no other group).
        let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(err);
            }
        }
        self.status = Some(self.child.wait()?);
        Ok(())
    }
}

impl Drop for Running<'_> {
    /// A plugin whose exit was not seen (an error while waiting) is killed and reaped.
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
        }
    }
}

/// Read once from a pipe poll(2) says is ready; at end of file, close it.
fn read_some<R: Read + AsRawFd>(pipe: &mut Option<R>, into: &mut Vec<u8>) -> io::Result<()> {
    let Some(p) = pipe.as_mut() else {
        return Ok(());
    };
    let mut buf = [0u8; 8192];
    match p.read(&mut buf) {
        Ok(0) => *pipe = None,
        Ok(n) => into.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// poll(2) over `fds` for at most `wait`, retried on EINTR by the caller's loop.
fn poll(fds: &mut [libc::pollfd], wait: Duration) -> io::Result<()> {
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: fds points at fds.len() initialized pollfd structs that outlive the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(err);
        }
        for fd in fds.iter_mut() {
            fd.revents = 0;
        }
    }
    Ok(())
}

/// A pidfd for `pid` (our unreaped child), readable once it exits.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a descriptor the kernel just gave us and nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
