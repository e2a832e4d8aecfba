//! Who makes and drives the container: the runtime library in this process (the default,
//! no exec at all) or an external OCI runtime binary with runc's command line.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_runtime::cgroups::{CgroupDirs, CgroupMounts, Stats};
use berth_runtime::container::{self, Container, CreateOptions};
use berth_runtime::exec::ExecOptions;
use nix::sys::signal::Signal;
use oci_spec::runtime::Process;

use crate::console::{self, ConsoleSocket, Handover};
use crate::error::{Result, ShimError};

/// The console socket an external runtime connects to, in the shim's state directory.
const CONSOLE_SOCKET: &str = "tty.sock";

/// The container, as one of the two ways of driving it.
// One value for the life of the process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// Through the library; `None` once deleted.
    Builtin {
        root: PathBuf,
        id: String,
        container: Option<Container>,
    },
    /// Through `runtime --root root <verb> … id`.
    External {
        runtime: PathBuf,
        root: PathBuf,
        id: String,
        /// Where the runtime's own log goes (`--log`), for its error messages.
        log: PathBuf,
        /// The shim's state directory, for the runtime's temporary files.
        state_dir: PathBuf,
    },
}

/// The container's stdout/stderr while a process of it is made: fds 1 and 2 of the shim
/// point there for the duration (the library's clone and the runtime binary inherit them).
pub struct Stdio2<'a> {
    pub out: Option<&'a [OwnedFd; 2]>,
    /// The shim's own stderr (its log), restored afterwards.
    pub shim_log: &'a OwnedFd,
    pub devnull: &'a OwnedFd,
}

impl Stdio2<'_> {
    /// Run `f` with fds 1/2 on the container's pipes (or /dev/null), then restore them.
    fn around<T>(&self, f: impl FnOnce() -> T) -> T {
        let (o, e) = match self.out {
            Some([o, e]) => (o.as_raw_fd(), e.as_raw_fd()),
            None => (self.devnull.as_raw_fd(), self.devnull.as_raw_fd()),
        };
        // SAFETY: dup2 onto the standard descriptors, all of which this process owns.
        unsafe {
            libc::dup2(o, 1);
            libc::dup2(e, 2);
        }
        let result = f();
        // SAFETY: as above.
        unsafe {
            libc::dup2(self.devnull.as_raw_fd(), 1);
            libc::dup2(self.shim_log.as_raw_fd(), 2);
        }
        result
    }
}

impl Backend {
    /// Create the container; returns the init's host pid and where the master of its
    /// pty comes back, if the process has a terminal.
    pub fn create(&mut self, bundle: &Path, stdio: &Stdio2<'_>) -> Result<(i32, Handover)> {
        match self {
            Backend::Builtin {
                root,
                id,
                container,
            } => {
                let opts = CreateOptions {
                    root: root.clone(),
                    id: id.clone(),
                    bundle: bundle.to_path_buf(),
                    pid_file: None,
                    console_socket: None,
                    no_pivot: false,
                    preserve_fds: 0,
                };
                // The init uses its end only if the process wants a terminal.
                let (ours, theirs) =
                    UnixStream::pair().map_err(ShimError::sys("console socket pair"))?;
                let c = stdio.around(|| container::create_with_console(&opts, Some(theirs)))?;
                let pid = c.pid();
                *container = Some(c);
                Ok((pid, Handover::Pair(ours)))
            }
            Backend::External { state_dir, id, .. } => {
                let pid_file = state_dir.join("init.pid");
                let console = if console::wants_terminal(bundle)? {
                    Handover::Socket(ConsoleSocket::listen(state_dir.join(CONSOLE_SOCKET))?)
                } else {
                    Handover::None
                };
                let id = id.clone();
                let mut args: Vec<std::ffi::OsString> = vec![
                    "create".into(),
                    "--bundle".into(),
                    bundle.into(),
                    "--pid-file".into(),
                    pid_file.clone().into(),
                ];
                if let Handover::Socket(socket) = &console {
                    args.extend(["--console-socket".into(), socket.path().into()]);
                }
                args.extend(["--".into(), id.clone().into()]);
                stdio.around(|| self.run(&args, true))?;
                let pid = read_pid(&pid_file);
                let _ = fs::remove_file(&pid_file);
                match pid {
                    Ok(pid) => Ok((pid, console)),
                    Err(e) => {
                        // Made, but unknown to us: not left behind.
                        let _ = self.run(&["delete", "--force", "--", id.as_str()], false);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Let the user process run.
    pub fn start(&self) -> Result<()> {
        match self {
            Backend::Builtin { .. } => Ok(self.container()?.start()?),
            Backend::External { id, .. } => {
                self.run(&["start", "--", id.as_str()], false).map(drop)
            }
        }
    }

    /// Signal the init (or every process with `all`).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let sig = Signal::try_from(signal).map_err(|_| ShimError::InvalidSignal(signal))?;
        match self {
            Backend::Builtin { .. } => Ok(self.container()?.kill(sig, all)?),
            Backend::External { id, .. } => {
                let n = signal.to_string();
                let mut args = vec!["kill"];
                if all {
                    args.push("--all");
                }
                args.extend(["--", id.as_str(), n.as_str()]);
                self.run(&args, false).map(drop)
            }
        }
    }

    /// Freeze or thaw.
    pub fn pause(&self, pause: bool) -> Result<()> {
        match self {
            Backend::Builtin { .. } => {
                let c = self.container()?;
                Ok(if pause { c.pause() } else { c.resume() }?)
            }
            Backend::External { id, .. } => {
                let verb = if pause { "pause" } else { "resume" };
                self.run(&[verb, "--", id.as_str()], false).map(drop)
            }
        }
    }

    /// cgroup statistics.
    pub fn stats(&self) -> Result<Stats> {
        match self {
            Backend::Builtin { .. } => Ok(self.container()?.stats()?),
            Backend::External { id, .. } => {
                let out = self.run(&["events", "--stats", "--", id.as_str()], false)?;
                let mut value: serde_json::Value =
                    serde_json::from_slice(&out).map_err(ShimError::json("runtime events"))?;
                serde_json::from_value(value["data"].take())
                    .map_err(ShimError::json("runtime events data"))
            }
        }
    }

    /// Run one more process in the container; returns its host pid.
    pub fn exec(&self, process: Process, stdio: &Stdio2<'_>) -> Result<i32> {
        match self {
            Backend::Builtin { .. } => {
                let c = self.container()?;
                let opts = ExecOptions {
                    process,
                    pid_file: None,
                    console_socket: None,
                };
                stdio
                    .around(|| c.exec(&opts, None))
                    .map(|p| p.as_raw())
                    .map_err(ShimError::from)
            }
            Backend::External { state_dir, id, .. } => {
                let spec = state_dir.join("exec-process.json");
                let pid_file = state_dir.join("exec.pid");
                let json = serde_json::to_vec(&process).map_err(ShimError::json("exec process"))?;
                fs::write(&spec, json).map_err(ShimError::io("writing", &spec))?;
                let (spec_arg, pid_arg) =
                    (spec.as_os_str().to_owned(), pid_file.as_os_str().to_owned());
                let args: [&std::ffi::OsStr; 8] = [
                    "exec".as_ref(),
                    "--detach".as_ref(),
                    "--process".as_ref(),
                    &spec_arg,
                    "--pid-file".as_ref(),
                    &pid_arg,
                    "--".as_ref(),
                    id.as_ref(),
                ];
                let result = stdio.around(|| self.run(&args, true));
                let _ = fs::remove_file(&spec);
                result?;
                let pid = read_pid(&pid_file);
                let _ = fs::remove_file(&pid_file);
                pid
            }
        }
    }

    /// Remove the container.
    pub fn delete(&mut self, force: bool) -> Result<()> {
        match self {
            Backend::Builtin {
                root,
                id,
                container,
            } => {
                let c = container.take().ok_or(ShimError::Deleted)?;
                if let Err(e) = c.delete(force) {
                    // Still there (refused, or half-deleted): keep driving what is left.
                    *container = Container::load(root, id).ok();
                    return Err(e.into());
                }
                Ok(())
            }
            Backend::External { id, .. } => {
                let id = id.clone();
                let mut args = vec!["delete"];
                if force {
                    args.push("--force");
                }
                args.extend(["--", &id]);
                self.run(&args, false).map(drop)
            }
        }
    }

    /// The container's cgroup directories: where the built-in runtime made them, or for
    /// an external runtime's container those of its init `pid` (`None`: not found).
    pub fn cgroup_dirs(&self, pid: i32) -> Option<CgroupDirs> {
        match self {
            Backend::Builtin {
                container: Some(c), ..
            } => Some(c.record().cgroup.cgroup_dirs()),
            _ => CgroupMounts::read()
                .and_then(|mounts| mounts.of_process(pid))
                .ok(),
        }
    }

    /// Whether the runtime still knows the container.
    pub fn exists(&self) -> bool {
        match self {
            Backend::Builtin { root, id, .. } => Container::load(root, id).is_ok(),
            Backend::External { id, .. } => self.run(&["state", "--", id.as_str()], false).is_ok(),
        }
    }

    fn container(&self) -> Result<&Container> {
        match self {
            Backend::Builtin {
                container: Some(c), ..
            } => Ok(c),
            _ => Err(ShimError::Deleted),
        }
    }

    /// Run the external runtime; its stdout is returned. Callers put `--` before the
    /// positional arguments: an id must never be read as an option. With `inherit`, its stdout and
    /// stderr are the shim's fds 1/2 (the container's pipes, for `create` and `exec`);
    /// otherwise both are captured. A failure is the runtime's last line of stderr (or
    /// of its `--log`).
    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], inherit: bool) -> Result<Vec<u8>> {
        let Backend::External {
            runtime, root, log, ..
        } = self
        else {
            return Err(ShimError::NotExternal);
        };
        let mut cmd = Command::new(runtime);
        cmd.arg("--root")
            .arg(root)
            .arg("--log")
            .arg(log)
            .args(args)
            .stdin(Stdio::null());
        if inherit {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        let verb = args
            .first()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = cmd.output().map_err(|source| ShimError::Launch {
            runtime: runtime.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => line.to_owned(),
            None => fs::read_to_string(log)
                .ok()
                .and_then(|t| t.lines().last().map(str::to_owned))
                .unwrap_or_default(),
        };
        Err(ShimError::RuntimeFailed {
            runtime: runtime.clone(),
            verb,
            status: out.status,
            last,
        })
    }
}

/// The init's pid an external runtime wrote with `--pid-file`.
fn read_pid(path: &Path) -> Result<i32> {
    let text = fs::read_to_string(path).map_err(ShimError::io("reading", path))?;
    text.trim().parse().map_err(|_| ShimError::BadPid {
        path: path.to_owned(),
        text,
    })
}
