//! `exec`: one more process in a running container. It joins the container's namespaces
//! and cgroup and runs with the process settings it is given (by default the container's
//! own, see the CLI), as `runc exec` does.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{setsid, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::bundle::Bundle;
use crate::channel::{self, Channel, Message};
use crate::container::Container;
use crate::error::{Error, IoContext, Result, SysContext};
use crate::namespaces::flag;
use crate::process::Ready;
use crate::{console, fork, process};

/// What to run in the container.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The process, complete (args, env, cwd, user, terminal …).
    pub process: Process,
    /// Where to write the new process's host pid.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when the process wants a terminal.
    pub console_socket: Option<PathBuf>,
}

/// The name of a namespace type under /proc/<pid>/ns.
fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    use LinuxNamespaceType as T;
    match kind {
        T::Mount => "mnt",
        T::Cgroup => "cgroup",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::User => "user",
        T::Pid => "pid",
        T::Network => "net",
        T::Time => "time",
    }
}

/// A namespace of the container's init, opened.
struct NsFile {
    kind: LinuxNamespaceType,
    fd: OwnedFd,
}

impl Container {
    /// The container's bundle spec, as loaded at create time.
    pub fn spec_bundle(&self) -> Result<Bundle> {
        Bundle::load(&self.record().bundle)
    }

    /// Start `opts.process` inside the container; returns its host pid. The process is a
    /// child of the caller, which must be single-threaded. `console` replaces
    /// `opts.console_socket` for callers that receive the pty master themselves.
    pub fn exec(&self, opts: &ExecOptions, console: Option<UnixStream>) -> Result<Pid> {
        let status = self.status();
        if !status.can_exec() {
            return Err(Error::WrongState {
                id: self.id().to_string(),
                action: "exec in",
                status,
            });
        }
        if opts
            .process
            .args()
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            return Err(Error::Unsupported("exec without a command"));
        }
        let terminal = opts.process.terminal() == Some(true);
        let console = console::stream_or_connect(console, opts.console_socket.as_deref())?;
        if terminal && console.is_none() {
            return Err(Error::Unsupported("a terminal without --console-socket"));
        }

        // Join every namespace the container has, through its init.
        let bundle = self.spec_bundle()?;
        let init = self.pid();
        let mut namespaces = Vec::new();
        for ns in bundle
            .spec
            .linux()
            .iter()
            .flat_map(|l| l.namespaces().iter().flatten())
        {
            let path = format!("/proc/{init}/ns/{}", proc_name(ns.typ()));
            let file = File::open(&path).io("open namespace", &path)?;
            namespaces.push(NsFile {
                kind: ns.typ(),
                fd: file.into(),
            });
        }
        // The mount namespace last: it changes what paths mean.
        namespaces.sort_by_key(|n| n.kind == LinuxNamespaceType::Mount);
        // Without one the container shares ours and its init is only chrooted: so is
        // the new process, into the init's root.
        let chroot = (!namespaces
            .iter()
            .any(|n| n.kind == LinuxNamespaceType::Mount))
        .then(|| PathBuf::from(format!("/proc/{init}/root")));

        // The container's seccomp profile applies to exec'd processes too.
        let seccomp = process::compile_seccomp(bundle.spec.linux().as_ref(), self.root())?;
        let (parent, child) = channel::pair()?;
        for ns in namespaces
            .iter()
            .filter(|n| n.kind == LinuxNamespaceType::Pid)
        {
            setns(&ns.fd, CloneFlags::CLONE_NEWPID)
                .sys("setns", format!("pid namespace of {}", self.id()))?;
        }
        let parent_fd = parent.raw_fd();
        let pid = fork::clone_init(CloneFlags::empty(), || {
            // SAFETY: closing a descriptor this (child) process owns and never uses again.
            unsafe { libc::close(parent_fd) };
            let (result, warnings) = crate::warnings::collect(|| {
                join_and_prepare(
                    &child,
                    &namespaces,
                    chroot.as_deref(),
                    &opts.process,
                    console.as_ref(),
                    seccomp.as_ref(),
                )
            });
            crate::init::send_warnings(&child, warnings);
            let result = result.and_then(|ready| {
                child.send(&Message::Ready)?;
                Ok(ready)
            });
            match result {
                Ok(ready) => {
                    if let Err(e) = ready.exec() {
                        // The parent waits for the exec: tell it why there was none.
                        let _ = child.send(&Message::Failed(e.to_string()));
                    }
                }
                Err(e) => {
                    let _ = child.send(&Message::Failed(e.to_string()));
                }
            }
            // SAFETY: _exit skips the parent's destructors, which are not ours to run.
            unsafe { libc::_exit(127) }
        })?;
        drop(child);
        drop(console);

        let fail = |e: Error| {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            e
        };
        self.record()
            .cgroup
            .add_process(pid.as_raw())
            .map_err(|e| fail(e.into()))?;
        parent.send(&Message::Proceed).map_err(fail)?;
        loop {
            match parent.recv().map_err(fail)? {
                Some(Message::Ready) => break,
                Some(Message::Warning(warning)) => {
                    tracing::warn!(id = %self.id(), "exec: {warning}")
                }
                Some(Message::Failed(message)) => return Err(fail(self.init_failed(message))),
                other => {
                    return Err(fail(Error::InitLost {
                        id: self.id().to_string(),
                        reason: format!("exec process broke off setup ({other:?})"),
                    }))
                }
            }
        }
        // Ready comes just before the exec: wait for the exec itself (the channel is
        // close-on-exec, so it ends there) or its failure, as runc's exec returns once
        // the program runs.
        match parent.recv().map_err(fail)? {
            None => {}
            Some(Message::Failed(message)) => return Err(fail(self.init_failed(message))),
            other => {
                return Err(fail(Error::InitLost {
                    id: self.id().to_string(),
                    reason: format!("exec process said {other:?} instead of exec'ing"),
                }))
            }
        }
        if let Some(pid_file) = &opts.pid_file {
            crate::container::write_pid_file(pid_file, pid.as_raw()).map_err(fail)?;
        }
        tracing::info!(id = %self.id(), pid = pid.as_raw(), "exec");
        Ok(pid)
    }

    /// The error for an exec process that reported `message` instead of running.
    fn init_failed(&self, message: String) -> Error {
        Error::Init {
            id: self.id().to_string(),
            message,
        }
    }
}

/// In the child: wait to be placed in the cgroup, join the namespaces, become the process.
fn join_and_prepare<'a>(
    channel: &Channel,
    namespaces: &[NsFile],
    chroot: Option<&std::path::Path>,
    process: &Process,
    console: Option<&UnixStream>,
    filter: Option<&'a crate::seccomp::Program>,
) -> Result<Ready<'a>> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys("prctl", "PR_SET_PDEATHSIG")?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .sys("sigprocmask", "exec")?;
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.sys("signal", "SIGPIPE")?;
    match channel.recv()? {
        Some(Message::Proceed) => {}
        _ => {
            return Err(Error::sys(
                "recv",
                "exec channel: runtime went away",
                nix::errno::Errno::EPIPE,
            ))
        }
    }
    for ns in namespaces
        .iter()
        .filter(|n| n.kind != LinuxNamespaceType::Pid)
    {
        setns(&ns.fd, flag(ns.kind)).sys("setns", format!("{} namespace", ns.kind))?;
    }
    if let Some(root) = chroot {
        nix::unistd::chroot(root).sys("chroot", root.display())?;
        nix::unistd::chdir("/").sys("chdir", "/")?;
    }
    if let Some(socket) = console {
        setsid().sys("setsid", "exec")?;
        console::attach_terminal(socket, process.console_size().as_ref(), false)?;
    }
    nix::sys::prctl::set_pdeathsig(None).sys("prctl", "PR_SET_PDEATHSIG")?;
    process::become_user_process(process, filter, 0)
}
