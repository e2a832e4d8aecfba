//! The container's init, from clone to exec: everything here runs in the child, inside
//! the new namespaces, before any user code.
//!
//! Order matters and follows runc: join the cgroup namespace only once placed in the
//! cgroup; mount everything before pivot_root; write sysctls before /proc/sys is made
//! read-only; switch user after everything that needs privilege; find the program last
//! so that a missing binary fails `create`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{openat, OFlag};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{sethostname, setsid, write};

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::channel::{Channel, Message};
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookKind};
use crate::namespaces::Namespaces;
use crate::process::Ready;
use crate::rootfs::{self, MountContext};
use crate::state::{OciState, EXEC_FIFO};
use crate::{console, network, process, sysctl};

/// What the init needs from the runtime; all of it was prepared before the clone.
pub struct InitConfig<'a> {
    /// The container id.
    pub id: &'a str,
    /// The bundle with its parsed spec.
    pub bundle: &'a Bundle,
    /// The namespace plan (namespaces to join are already open).
    pub namespaces: &'a Namespaces,
    /// The container's cgroup (already created; the parent moves the init into it).
    pub cgroup: &'a Cgroup,
    /// The init's end of the setup channel.
    pub channel: &'a Channel,
    /// The container's state directory, opened O_PATH: the exec FIFO is reached through
    /// it after pivot_root, when the host's paths are gone.
    pub state_dir: &'a OwnedFd,
    /// The console socket, when the process wants a terminal.
    pub console: Option<&'a UnixStream>,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The compiled seccomp filter, if the spec has one.
    pub seccomp: Option<&'a crate::seccomp::Program>,
    /// Descriptors after stdio handed to the user process.
    pub preserve_fds: u32,
}

/// Run the init: set up, report, wait for `start`, exec. Never returns.
pub fn run(cfg: InitConfig) -> ! {
    let (result, warnings) = crate::warnings::collect(|| setup(&cfg));
    send_warnings(cfg.channel, warnings);
    let (ready, hook_state) = match result {
        Ok(ready) => ready,
        Err(e) => {
            let _ = cfg.channel.send(&Message::Failed(e.to_string()));
            // SAFETY: _exit is always safe; it skips destructors and atexit handlers that
            // belong to the parent's copy of the process.
            unsafe { libc::_exit(1) }
        }
    };
    if let Err(e) = wait_and_exec(&cfg, ready.as_ref(), hook_state) {
        // After `create` returned there is nobody to report to but stderr.
        eprintln!("berth-runc init: {e}");
    }
    // SAFETY: as above.
    unsafe { libc::_exit(127) }
}

/// Hand what setup warned about to the runtime, which logs it (we cannot: see
/// [`crate::warnings`]).
pub(crate) fn send_warnings(channel: &Channel, warnings: Vec<String>) {
    for warning in warnings {
        let _ = channel.send(&Message::Warning(warning));
    }
}

/// Close every descriptor inherited from the caller that the init does not use. The exec
/// would close the close-on-exec ones, but a container can stay created for long: until
/// then it held its caller's sockets, pipes and files open — a shim's control socket, for
/// one, whose closing is how the engine learns that the shim died.
fn close_inherited(cfg: &InitConfig) {
    // Stdio and the descriptors handed to the user process stay.
    let first = 3 + cfg.preserve_fds;
    let mut keep: Vec<u32> = [cfg.channel.raw_fd(), cfg.state_dir.as_raw_fd()]
        .into_iter()
        .chain(cfg.console.map(|c| c.as_raw_fd()))
        .chain(cfg.namespaces.join.iter().map(|j| j.fd.as_raw_fd()))
        .filter_map(|fd| u32::try_from(fd).ok())
        .filter(|&fd| fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    // Kept ones are sorted, distinct and at or above `first`: close the gaps around them.
    let mut from = first;
    for fd in keep {
        if fd > from {
            crate::close_fds::close_range(from, fd - 1);
        }
        from = fd + 1;
    }
    crate::close_fds::close_range(from, u32::MAX);
}

/// Everything between clone and "ready": the program to exec (none without `process`),
/// and the state document for the hooks the init runs itself (if the spec has any).
fn setup<'a>(cfg: &InitConfig<'a>) -> Result<(Option<Ready<'a>>, Option<OciState>)> {
    // If the runtime dies while we set up, so do we: nobody would ever start or delete
    // us. Cleared once the runtime has recorded the container.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys("prctl", "PR_SET_PDEATHSIG")?;
    // The runtime may block or ignore signals (Rust ignores SIGPIPE); the user program
    // must start with the defaults.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .sys("sigprocmask", "init")?;
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.sys("signal", "SIGPIPE")?;
    close_inherited(cfg);

    match cfg.channel.recv()? {
        Some(Message::Proceed) => {}
        _ => {
            return Err(Error::sys(
                "recv",
                "init channel: runtime went away",
                nix::errno::Errno::EPIPE,
            ))
        }
    }
    if cfg.namespaces.new_user() {
        // The runtime has written our maps: become the container's root, so files we
        // create belong to a mapped id.
        let root_gid = nix::unistd::Gid::from_raw(0);
        let root_uid = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid)
            .sys("setresgid", "0 in user namespace")?;
        nix::unistd::setresuid(root_uid, root_uid, root_uid)
            .sys("setresuid", "0 in user namespace")?;
    }
    if cfg.namespaces.new_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).sys("unshare", "cgroup namespace")?;
    }
    cfg.namespaces.join_others()?;
    if cfg
        .namespaces
        .clone_flags
        .contains(CloneFlags::CLONE_NEWNET)
    {
        network::loopback_up()?;
    }

    let spec = &cfg.bundle.spec;
    // Device nodes and mount points get exactly the modes the spec asks for.
    umask(Mode::empty());
    let ctx = MountContext {
        bundle: &cfg.bundle.path,
        rootfs: &cfg.bundle.rootfs,
        cgroup: cfg.cgroup,
        cgroupns: cfg.namespaces.new_cgroup,
        userns: cfg.namespaces.new_user(),
        mount_label: spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref()),
        shared_ns: !cfg.namespaces.has_mount(),
        overlay: cfg.bundle.overlay.as_ref(),
    };
    rootfs::prepare(spec, &ctx)?;
    let hook_state = create_hooks(cfg)?;
    rootfs::enter(&cfg.bundle.rootfs, cfg.no_pivot, ctx.shared_ns)?;

    // `process` is optional until `start`, which refuses a container without one.
    let process = spec.process().as_ref();
    setsid().sys("setsid", "init")?;
    if let Some(process) = process.filter(|p| p.terminal() == Some(true)) {
        let socket = cfg.console.ok_or_else(|| {
            Error::sys(
                "console",
                "terminal requested without a console socket",
                nix::errno::Errno::EINVAL,
            )
        })?;
        console::attach_terminal(socket, process.console_size().as_ref(), true)?;
    }

    if cfg.namespaces.new_uts() {
        if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            sethostname(name).sys("sethostname", name)?;
        }
        if let Some(name) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            set_domainname(name)?;
        }
    }
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        sysctl::apply(sysctl)?;
    }
    rootfs::finish(spec)?;
    // Should the runtime die from here on, our next message to it fails and we leave;
    // cleared before the switch of user, which would clear it anyway.
    nix::sys::prctl::set_pdeathsig(None).sys("prctl", "PR_SET_PDEATHSIG")?;
    let ready = match process {
        Some(p) => Some(process::become_user_process(
            p,
            cfg.seccomp,
            cfg.preserve_fds,
        )?),
        None => None,
    };
    Ok((ready, hook_state))
}

/// Hooks due while the mounts are prepared and the root not yet switched: the runtime
/// runs prestart and createRuntime in its namespaces, then we run createContainer in
/// ours. Returns the state for startContainer. Skipped (no round trip) without hooks.
fn create_hooks(cfg: &InitConfig) -> Result<Option<OciState>> {
    let Some(hooks) = cfg.bundle.spec.hooks().as_ref() else {
        return Ok(None);
    };
    let due = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
    ];
    if due.iter().all(|k| k.select(hooks).is_empty()) {
        return Ok(None);
    }
    cfg.channel.send(&Message::RunCreateHooks)?;
    let state = match cfg.channel.recv()? {
        Some(Message::HooksDone(state)) => *state,
        _ => {
            return Err(Error::sys(
                "recv",
                "init channel: runtime went away during hooks",
                nix::errno::Errno::EPIPE,
            ))
        }
    };
    hooks::run(Some(hooks), HookKind::CreateContainer, &state)?;
    Ok(Some(state))
}

/// setdomainname(2), which nix does not wrap.
fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc < 0 {
        return Err(Error::sys("setdomainname", name, nix::errno::Errno::last()));
    }
    Ok(())
}

/// Report ready, wait until the runtime has recorded us and `start` opens the FIFO,
/// then become the user program. Should the runtime die before recording the container,
/// the channel reports end-of-file and we leave by ourselves.
fn wait_and_exec(
    cfg: &InitConfig,
    ready: Option<&Ready>,
    hook_state: Option<OciState>,
) -> Result<()> {
    cfg.channel.send(&Message::Ready)?;
    match cfg.channel.recv()? {
        Some(Message::Committed) => {}
        _ => {
            return Err(Error::sys(
                "recv",
                "init channel: runtime went away",
                nix::errno::Errno::EPIPE,
            ))
        }
    }
    // Blocks until `start` opens the FIFO for reading.
    let fifo = openat(
        cfg.state_dir.as_fd(),
        EXEC_FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys("open", EXEC_FIFO)?;
    write(&fifo, b"0").sys("write", EXEC_FIFO)?;
    // `start` reads the FIFO until it closes at our exec: whatever keeps us from getting
    // there is written to it, and `start` fails with that reason.
    if let Err(e) = start_container(cfg, ready, hook_state) {
        let _ = write(&fifo, e.to_string().as_bytes());
        return Err(e);
    }
    Ok(())
}

/// The startContainer hooks, then the exec; returns only on failure. (`start` refuses a
/// container without a process before it opens the FIFO; another reader learns why.)
fn start_container(
    cfg: &InitConfig,
    ready: Option<&Ready>,
    hook_state: Option<OciState>,
) -> Result<()> {
    let ready = ready.ok_or_else(|| Error::NoProcess(cfg.id.to_string()))?;
    if let (Some(mut state), Some(hooks)) = (hook_state, cfg.bundle.spec.hooks().as_ref()) {
        state.status = crate::state::Status::Created;
        hooks::run(Some(hooks), HookKind::StartContainer, &state)?;
    }
    ready.exec()
}
