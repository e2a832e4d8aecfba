//! OCI hooks: programs run at fixed points of a container's life, each given the
//! container's state (the runtime-spec state document) on stdin.
//!
//! What the spec asks (config.md, "POSIX-platform Hooks"; runtime.md, "Lifecycle"):
//! - `path` is absolute, `args` is execv's argv (args[0] included), `env` is environ,
//!   `timeout` is seconds and, if set, greater than zero;
//! - the hooks of one kind run in the listed order; a failure of prestart, createRuntime,
//!   createContainer, startContainer or (since runtime-spec 1.1) poststart makes the
//!   runtime generate an error, stop the container and go on at delete; a poststop
//!   failure is only logged as a warning and the remaining hooks still run.
//!
//! Where runc's behaviour fills a gap, Berth follows it: a hook without `env` inherits
//! the runtime's environment (Go's exec with a nil Env); without `args` its argv is just
//! its path; a timeout kills it.
//!
//! A hook is a plain child of the calling process, spawned with `std::process::Command`
//! (fork/exec or posix_spawn, no threads) and waited for with a pidfd and poll(2), so
//! both the single-threaded runtime before it clones the init and the init itself (for
//! `startContainer`) can run hooks without ever starting a thread. The state is handed
//! over as a memfd — a file, not a pipe — so a hook that never reads stdin cannot block
//! the runtime, and nobody can be killed by SIGPIPE (the init runs with SIGPIPE at its
//! default). Each hook gets a process group of its own, so that a timeout kills
//! whatever it started too.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{pipe2, Pid};
use oci_spec::runtime::{Hook, Hooks};

use crate::state::OciState;

/// How much of a hook's stderr (and stdout) is kept for the error message.
const KEEP_OUTPUT: usize = 4096;
/// How much of it the one-line error message shows.
const SHOW_OUTPUT: usize = 400;
/// How often to look for the hook's exit where pidfds are not available (Linux < 5.3).
const EXIT_POLL: Duration = Duration::from_millis(10);

/// A hook that could not run, failed or ran too long.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The spec's hook entry is not valid.
    #[error("{kind} hook {path}: {reason}")]
    Invalid {
        /// `createRuntime`, `poststop`, ...
        kind: String,
        /// The hook's path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The hook could not be started, or waiting for it failed.
    #[error("{kind} hook {path}: {op}: {source}")]
    Io {
        /// The hook kind.
        kind: String,
        /// The hook's path.
        path: PathBuf,
        /// What failed.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{kind} hook {path} timed out after {seconds} s{output}")]
    TimedOut {
        /// The hook kind.
        kind: String,
        /// The hook's path.
        path: PathBuf,
        /// Its timeout.
        seconds: i64,
        /// What it wrote to stderr (or stdout) until then.
        output: Output,
    },
    /// The hook exited unsuccessfully.
    #[error("{kind} hook {path} failed: {status}{output}")]
    Failed {
        /// The hook kind.
        kind: String,
        /// The hook's path.
        path: PathBuf,
        /// `exit status 3`, `killed by signal 9`, ...
        status: String,
        /// What it wrote to stderr (or stdout).
        output: Output,
    },
    /// The state document could not be serialized.
    #[error("{kind} hooks: container state: {source}")]
    State {
        /// The hook kind.
        kind: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// The tail of what a hook wrote to stderr — or, if nothing, to stdout — as one line
/// for an error message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    stream: &'static str,
    text: String,
}

impl Output {
    /// The text shown, lines joined with " | " (empty if the hook wrote nothing).
    pub fn text(&self) -> &str {
        &self.text
    }

    fn from_captures(stderr: &Capture, stdout: &Capture) -> Self {
        let (stream, chosen) = if stderr.bytes.iter().any(|b| !b.is_ascii_whitespace()) {
            ("stderr", stderr)
        } else {
            ("stdout", stdout)
        };
        let text = String::from_utf8_lossy(&chosen.bytes);
        let line = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" | ");
        let chars = line.chars().count();
        let text = if chars > SHOW_OUTPUT || chosen.truncated {
            let tail: String = line
                .chars()
                .skip(chars.saturating_sub(SHOW_OUTPUT))
                .collect();
            format!("…{tail}")
        } else {
            line
        };
        Output { stream, text }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            Ok(())
        } else {
            write!(f, "; {}: {}", self.stream, self.text)
        }
    }
}

/// The six points of the lifecycle where hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated; during `create`, in the runtime's namespaces, right before
    /// createRuntime.
    Prestart,
    /// During `create`, in the runtime's namespaces, after the container's mounts and
    /// before pivot_root.
    CreateRuntime,
    /// During `create`, in the container's namespaces (path resolved in the runtime's
    /// mount namespace), after createRuntime and before pivot_root.
    CreateContainer,
    /// During `start`, inside the container, right before the user program is executed.
    StartContainer,
    /// After the user program was executed, before `start` returns, in the runtime's
    /// namespaces.
    Poststart,
    /// After the container is deleted, before `delete` returns; failures only warn.
    Poststop,
}

impl HookKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The name config.json uses.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks` (none if the list is absent).
    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        #[allow(deprecated)] // prestart: still part of the spec, and runc runs it.
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Check every hook of the spec before anything is created: absolute paths, timeouts
/// greater than zero.
pub fn validate(hooks: &Hooks) -> Result<(), HookError> {
    for kind in HookKind::ALL {
        for hook in kind.select(hooks) {
            check(hook, kind.name())?;
        }
    }
    Ok(())
}

/// Check one hook; returns its timeout.
fn check(hook: &Hook, kind: &str) -> Result<Option<i64>, HookError> {
    let invalid = |reason: String| HookError::Invalid {
        kind: kind.to_string(),
        path: hook.path().clone(),
        reason,
    };
    if !hook.path().is_absolute() {
        return Err(invalid("path must be absolute".into()));
    }
    match hook.timeout() {
        Some(t) if t <= 0 => Err(invalid(format!(
            "timeout must be greater than zero, not {t}"
        ))),
        timeout => Ok(timeout),
    }
}

/// Run the hooks of `kind` in `hooks` (if any) in order; the first failure stops them
/// and is returned. For every kind but poststop.
pub fn run(hooks: Option<&Hooks>, kind: HookKind, state: &OciState) -> Result<(), HookError> {
    match hooks {
        Some(hooks) => run_hooks(kind.select(hooks), state, kind.name()),
        None => Ok(()),
    }
}

/// Run every hook of `kind` in `hooks` (if any), logging each failure as a warning and
/// going on, as the spec asks of poststop.
pub fn run_warn_only(hooks: Option<&Hooks>, kind: HookKind, state: &OciState) {
    let Some(hooks) = hooks else { return };
    let list = kind.select(hooks);
    if list.is_empty() {
        return;
    }
    let json = match serde_json::to_vec(state) {
        Ok(json) => json,
        Err(source) => {
            let err = HookError::State {
                kind: kind.name().to_string(),
                source,
            };
            tracing::warn!(id = %state.id, "{err}");
            return;
        }
    };
    for hook in list {
        if let Err(err) = run_one(hook, &json, kind.name()) {
            tracing::warn!(id = %state.id, "{err}");
        }
    }
}

/// Run `hooks` in order with `state` on their stdin; the first that fails (cannot start,
/// exits non-zero, is killed, or runs past its timeout) stops the rest and is returned.
/// `kind` names them in messages ("createRuntime", ...).
pub fn run_hooks(hooks: &[Hook], state: &OciState, kind: &str) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|source| HookError::State {
        kind: kind.to_string(),
        source,
    })?;
    for hook in hooks {
        run_one(hook, &json, kind)?;
        tracing::debug!(id = %state.id, kind, path = %hook.path().display(), "hook ran");
    }
    Ok(())
}

/// Run one hook to its end.
fn run_one(hook: &Hook, state: &[u8], kind: &str) -> Result<(), HookError> {
    let path = hook.path();
    let io_error = |op: &'static str| {
        move |source: io::Error| HookError::Io {
            kind: kind.to_string(),
            path: path.clone(),
            op,
            source,
        }
    };
    let timeout = check(hook, kind)?;

    let stdin = state_file(state).map_err(io_error("pass the state"))?;
    let (mut stdout, stdout_w) = capture_pipe().map_err(io_error("pipe"))?;
    let (mut stderr, stderr_w) = capture_pipe().map_err(io_error("pipe"))?;
    // The Command (and with it our copies of the pipes' write ends) is gone once spawn
    // returns, so the pipes report end-of-file when the hook and its children are done.
    let mut child = spawn(hook, stdin, stdout_w, stderr_w).map_err(io_error("start"))?;
    let running = Running::new(&mut child);

    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let outcome = running.wait(&mut [&mut stdout, &mut stderr], deadline);
    let outcome = outcome.map_err(io_error("wait"))?;
    stdout.drain();
    stderr.drain();
    let output = Output::from_captures(&stderr, &stdout);
    match outcome {
        Outcome::TimedOut => Err(HookError::TimedOut {
            kind: kind.to_string(),
            path: path.clone(),
            seconds: timeout.unwrap_or_default(),
            output,
        }),
        Outcome::Exited(status) if status.success() => Ok(()),
        Outcome::Exited(status) => Err(HookError::Failed {
            kind: kind.to_string(),
            path: path.clone(),
            status: describe(status),
            output,
        }),
    }
}

/// Spawn the hook: argv from `args` (argv[0] included), environment from `env` (the
/// runtime's own when absent, as runc), stdin the state, a process group of its own.
fn spawn(hook: &Hook, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> io::Result<Child> {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(argv0).args(rest);
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for entry in env {
            match entry.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    cmd.env(key, value);
                }
                _ => tracing::warn!(
                    "hook {}: ignoring environment entry {entry:?}: not KEY=value",
                    hook.path().display()
                ),
            }
        }
    }
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    cmd.spawn()
}

/// The state document as a file at offset 0 for the hook's stdin: a memfd, or, where
/// memfd_create is not allowed (an old kernel, a seccomp profile), a pipe filled before
/// the hook starts.
fn state_file(state: &[u8]) -> io::Result<OwnedFd> {
    if let Ok(fd) = memfd_create(c"berth-hook-state", MFdFlags::MFD_CLOEXEC) {
        let mut file = File::from(fd);
        file.write_all(state)?;
        file.rewind()?;
        return Ok(file.into());
    }
    state_pipe(state)
}

/// The fallback of [`state_file`]: a pipe holding the whole state, its write end closed.
fn state_pipe(state: &[u8]) -> io::Result<OwnedFd> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    File::from(write).write_all(state).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            io::Error::other(format!(
                "the state ({} bytes) does not fit in a pipe and memfd_create failed",
                state.len()
            ))
        } else {
            e
        }
    })?;
    Ok(read)
}

/// A pipe whose read end (non-blocking) we keep; the write end goes to the hook.
fn capture_pipe() -> io::Result<(Capture, OwnedFd)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((
        Capture {
            file: Some(File::from(read)),
            bytes: Vec::new(),
            truncated: false,
        },
        write,
    ))
}

/// The read end of a hook's stdout or stderr and the last [`KEEP_OUTPUT`] bytes read.
struct Capture {
    file: Option<File>,
    bytes: Vec<u8>,
    truncated: bool,
}

impl Capture {
    /// Read what is there without blocking; closes the pipe at end-of-file.
    fn drain(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) => {
                    self.file = None;
                    return;
                }
                Ok(n) => {
                    self.bytes.extend_from_slice(&buf[..n]);
                    if self.bytes.len() > 2 * KEEP_OUTPUT {
                        let cut = self.bytes.len() - KEEP_OUTPUT;
                        self.bytes.drain(..cut);
                        self.truncated = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.file = None;
                    return;
                }
            }
        }
    }
}

/// How a hook ended.
enum Outcome {
    Exited(ExitStatus),
    TimedOut,
}

/// A spawned hook; dropping it before it was reaped kills its process group and reaps it,
/// so no error path leaves a hook behind.
struct Running<'a> {
    child: &'a mut Child,
    pidfd: Option<OwnedFd>,
    reaped: bool,
}

impl<'a> Running<'a> {
    fn new(child: &'a mut Child) -> Self {
        let pidfd = pidfd_open(child.id());
        Running {
            child,
            pidfd,
            reaped: false,
        }
    }

    /// Wait for the hook to exit or the deadline to pass (then kill it), reading its
    /// output meanwhile so that it never blocks on a full pipe.
    fn wait(
        mut self,
        outputs: &mut [&mut Capture; 2],
        deadline: Option<Instant>,
    ) -> io::Result<Outcome> {
        loop {
            if self.pidfd.is_none() {
                if let Some(status) = self.child.try_wait()? {
                    self.reaped = true;
                    return Ok(Outcome::Exited(status));
                }
            }
            let mut wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        self.kill_and_reap()?;
                        return Ok(Outcome::TimedOut);
                    }
                },
                None => None,
            };
            if self.pidfd.is_none() {
                wait = Some(wait.map_or(EXIT_POLL, |w| w.min(EXIT_POLL)));
            }
            let timeout = match wait {
                // Round up, so that a deadline less than 1 ms away is not spun on.
                Some(w) => PollTimeout::try_from(w + Duration::from_micros(999))
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };

            let (exited, ready) = {
                let mut fds = Vec::with_capacity(3);
                if let Some(pidfd) = &self.pidfd {
                    fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
                }
                let pidfds = fds.len();
                let mut which = Vec::with_capacity(2);
                for (i, output) in outputs.iter().enumerate() {
                    if let Some(file) = &output.file {
                        fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
                        which.push(i);
                    }
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                let fired = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                let exited = pidfds == 1 && fired(&fds[0]);
                let ready: Vec<usize> = which
                    .iter()
                    .zip(&fds[pidfds..])
                    .filter(|(_, fd)| fired(fd))
                    .map(|(i, _)| *i)
                    .collect();
                (exited, ready)
            };
            for i in ready {
                outputs[i].drain();
            }
            if exited {
                let status = self.child.wait()?;
                self.reaped = true;
                return Ok(Outcome::Exited(status));
            }
        }
    }

    /// SIGKILL the hook's process group (the hook and whatever it started) and reap it.
    fn kill_and_reap(&mut self) -> io::Result<()> {
        let pgid = Pid::from_raw(self.child.id() as i32);
        match killpg(pgid, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(e.into()),
        }
        self.child.wait()?;
        self.reaped = true;
        Ok(())
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill_and_reap();
        }
    }
}

/// pidfd_open(2) on our own child; `None` where the kernel lacks it (then we poll).
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor and nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// "exit status 3", "killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => match Signal::try_from(sig) {
            Ok(name) => format!("killed by signal {sig} ({name})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;
    use crate::state::{Status, OCI_VERSION};

    fn state() -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: "hooked".into(),
            pid: 4242,
            status: Status::Created,
            bundle: "/bundles/hooked".into(),
            rootfs: "/bundles/hooked/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            annotations: HashMap::from([("org.example.key".into(), "value".into())]),
        }
    }

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    /// An executable shell script in `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs_write(&path, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn fs_write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    /// Run one hook; retried on ETXTBSY, which a script written a moment ago can cause
    /// when another test thread forks while the file is still open for writing.
    fn run(hook: &Hook) -> Result<(), HookError> {
        for _ in 0..50 {
            match run_hooks(std::slice::from_ref(hook), &state(), "createRuntime") {
                Err(HookError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ETXTBSY) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
        panic!("script stayed busy");
    }

    /// Wait up to `limit` for `pid` to be gone (or a zombie awaiting its reaper).
    fn gone(pid: i32, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            if berth_procfs::Stat::read(pid).map_or(true, |s| s.exited()) {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_hook_reads_the_state_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("state.json");
        let path = script(dir.path(), "save", &format!("cat > '{}'", out.display()));
        run(&hook(serde_json::json!({ "path": path }))).unwrap();
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(saved["ociVersion"], OCI_VERSION);
        assert_eq!(saved["id"], "hooked");
        assert_eq!(saved["pid"], 4242);
        assert_eq!(saved["status"], "created");
        assert_eq!(saved["bundle"], "/bundles/hooked");
        assert_eq!(saved["annotations"]["org.example.key"], "value");
    }

    #[test]
    fn a_failing_hook_names_its_path_status_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "fail",
            "echo 'some noise' ; echo 'first line' >&2 ; echo 'no network for you' >&2 ; exit 3",
        );
        let err = run(&hook(serde_json::json!({ "path": path }))).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, HookError::Failed { .. }), "{message}");
        assert_eq!(
            message,
            format!(
                "createRuntime hook {} failed: exit status 3; stderr: first line | no network for you",
                path.display()
            )
        );
    }

    #[test]
    fn stdout_stands_in_for_an_empty_stderr_and_long_output_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "chatty",
            "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done; exit 1",
        );
        let err = run(&hook(serde_json::json!({ "path": path }))).unwrap_err();
        let HookError::Failed { output, .. } = &err else {
            panic!("{err}");
        };
        assert!(err.to_string().contains("; stdout: …"), "{err}");
        assert!(output.text().ends_with("line 1998 | line 1999"), "{err}");
        assert!(output.text().chars().count() <= SHOW_OUTPUT + 1, "{err}");
    }

    #[test]
    fn a_hook_killed_by_a_signal_says_which() {
        let hook = hook(serde_json::json!({
            "path": "/bin/sh", "args": ["sh", "-c", "kill -9 $$"]
        }));
        let err = run(&hook).unwrap_err().to_string();
        assert!(err.contains("killed by signal 9 (SIGKILL)"), "{err}");
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("sleeper.pid");
        let path = script(
            dir.path(),
            "slow",
            &format!(
                "echo starting >&2; sleep 60 & echo $! > '{}'; wait",
                pid_file.display()
            ),
        );
        let started = Instant::now();
        let err = run(&hook(serde_json::json!({ "path": path, "timeout": 1 }))).unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, HookError::TimedOut { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "createRuntime hook {} timed out after 1 s; stderr: starting",
                path.display()
            )
        );
        assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        let sleeper: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            gone(sleeper, Duration::from_secs(2)),
            "sleep {sleeper} survived"
        );
    }

    #[test]
    fn a_hook_within_its_timeout_succeeds() {
        let hook = hook(serde_json::json!({
            "path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null"], "timeout": 5
        }));
        run(&hook).unwrap();
    }

    #[test]
    fn args_and_env_are_passed_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": [
                "custom-argv0", "-c",
                format!("tr '\\0' '\\n' < /proc/$$/cmdline > '{0}'; env >> '{0}'", out.display()),
                "first", "second arg"
            ],
            "env": ["GREETING=hello world", "EMPTY=", "PATH=/usr/bin:/bin"]
        }));
        run(&hook).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "custom-argv0", "{text}");
        assert_eq!(lines[1], "-c", "{text}");
        assert_eq!(&lines[3..5], ["first", "second arg"], "{text}");
        assert!(lines.contains(&"GREETING=hello world"), "{text}");
        assert!(lines.contains(&"EMPTY="), "{text}");
        if std::env::var_os("HOME").is_some() {
            assert!(!lines.iter().any(|l| l.starts_with("HOME=")), "{text}");
        }
    }

    #[test]
    fn without_env_the_hook_inherits_the_runtimes() {
        let Some(home) = std::env::var_os("HOME") else {
            eprintln!("skipping: HOME is not set");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let path = script(
            dir.path(),
            "env",
            &format!("echo \"$HOME\" > '{}'", out.display()),
        );
        run(&hook(serde_json::json!({ "path": path }))).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.trim_end(), home.to_string_lossy());
    }

    #[test]
    fn a_hook_that_ignores_stdin_and_floods_stdout_does_not_hang() {
        let hook = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", "head -c 2000000 /dev/zero; head -c 100000 /dev/zero >&2"],
            "timeout": 20
        }));
        run(&hook).unwrap();
    }

    #[test]
    fn a_hook_is_done_when_it_exits_even_if_its_children_keep_its_output_open() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("daemon.pid");
        let hook = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("sleep 60 & echo $! > '{}'; exit 0", pid_file.display())]
        }));
        let started = Instant::now();
        run(&hook).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let daemon: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // What a hook leaves running is its own business; clean up after the test.
        let _ = nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGKILL);
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let err = run(&hook(serde_json::json!({ "path": "/no/such/hook" })))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("createRuntime hook /no/such/hook: start: No such file"),
            "{err}"
        );
    }

    #[test]
    fn the_first_failure_stops_the_rest_but_poststop_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("second-ran");
        let hooks: Hooks = serde_json::from_value(serde_json::json!({
            "createRuntime": [
                { "path": "/bin/false" },
                { "path": "/bin/sh", "args": ["sh", "-c", format!("touch '{}'", marker.display())] }
            ],
            "poststop": [
                { "path": "/bin/false" },
                { "path": "/bin/sh", "args": ["sh", "-c", format!("touch '{}'", marker.display())] }
            ]
        }))
        .unwrap();
        let err = super::run(Some(&hooks), HookKind::CreateRuntime, &state()).unwrap_err();
        assert!(err.to_string().contains("exit status 1"), "{err}");
        assert!(!marker.exists());
        run_warn_only(Some(&hooks), HookKind::Poststop, &state());
        assert!(marker.exists());
        super::run(None, HookKind::Poststart, &state()).unwrap();
    }

    #[test]
    fn the_pipe_fallback_holds_the_state_or_says_it_is_too_big() {
        let fd = state_pipe(b"{\"id\": \"x\"}").unwrap();
        let mut text = String::new();
        File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"id\": \"x\"}");
        let err = state_pipe(&vec![b' '; 4 << 20]).unwrap_err().to_string();
        assert!(err.contains("does not fit in a pipe"), "{err}");
    }

    #[test]
    fn hooks_run_without_starting_a_thread() {
        // As in the container's init: a single-threaded process must stay one.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("state.json");
        let hook = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > '{}'", out.display())],
            "timeout": 5
        }));
        // SAFETY: the child runs the hook (fork/exec, poll, wait) and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = run_hooks(std::slice::from_ref(&hook), &state(), "startContainer").is_ok();
                let threads = std::fs::read_to_string("/proc/self/status")
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.replace(char::is_whitespace, "") == "Threads:1");
                // SAFETY: leaves the child without running the harness's teardown.
                unsafe { libc::_exit(if ok && threads { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        let saved = std::fs::read_to_string(&out).unwrap();
        assert!(saved.contains("\"id\":\"hooked\""), "{saved}");
    }

    #[test]
    fn validate_refuses_relative_paths_and_bad_timeouts() {
        let relative: Hooks = serde_json::from_value(serde_json::json!({
            "createContainer": [{ "path": "bin/hook" }]
        }))
        .unwrap();
        assert_eq!(
            validate(&relative).unwrap_err().to_string(),
            "createContainer hook bin/hook: path must be absolute"
        );
        let zero: Hooks = serde_json::from_value(serde_json::json!({
            "poststop": [{ "path": "/bin/true", "timeout": 0 }]
        }))
        .unwrap();
        assert_eq!(
            validate(&zero).unwrap_err().to_string(),
            "poststop hook /bin/true: timeout must be greater than zero, not 0"
        );
        let fine: Hooks = serde_json::from_value(serde_json::json!({
            "prestart": [{ "path": "/bin/true", "timeout": 3 }],
            "startContainer": [{ "path": "/bin/true" }]
        }))
        .unwrap();
        validate(&fine).unwrap();
        assert_eq!(HookKind::Prestart.select(&fine).len(), 1);
        assert_eq!(HookKind::Poststart.select(&fine).len(), 0);
    }
}
