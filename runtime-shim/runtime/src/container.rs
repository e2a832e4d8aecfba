//! The runtime's side of a container's life: create, start, kill, delete, and the state
//! queries. Each operation is one function over the container's state directory, so the
//! `berth-runc` CLI and the in-process shim share exactly one implementation.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{mkfifo, Pid};

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::channel::{self, Message};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::hooks::{self, HookKind};
use crate::init::{self, InitConfig};
use crate::namespaces::Namespaces;
use crate::state::{self, ContainerDir, OciState, Record, Status, EXEC_FIFO};
use crate::{console, fork, id, process_info};

/// How long `delete`/`kill` wait for processes to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start` waits for the init to open its FIFO.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What `create` needs to know.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The runtime's state root (e.g. /run/berth-runc).
    pub root: PathBuf,
    /// The container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's host pid.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when the process wants a terminal.
    pub console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// How many file descriptors after stdio (3, 4, …) the container inherits; every
    /// other descriptor is closed at the exec.
    pub preserve_fds: u32,
}

/// A container known to the runtime.
#[derive(Debug)]
pub struct Container {
    dir: ContainerDir,
    record: Record,
}

/// Undo a half-made container: kill the init, remove the cgroup and the state directory.
pub(crate) struct Rollback<'a> {
    pub(crate) dir: Option<ContainerDir>,
    pub(crate) cgroup: Option<&'a Cgroup>,
    pub(crate) init: Option<Pid>,
    /// The root filesystem and the mounts below it before create, for a container in
    /// the runtime's mount namespace: the init's mounts there outlive it.
    pub(crate) shared_mounts: Option<(PathBuf, Vec<PathBuf>)>,
}

impl Rollback<'_> {
    pub(crate) fn disarm(&mut self) -> ContainerDir {
        self.cgroup = None;
        self.init = None;
        self.shared_mounts = None;
        self.dir.take().expect("rollback disarmed twice")
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.init {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some((rootfs, keep)) = &self.shared_mounts {
            if let Err(e) = crate::rootfs::unmount_below(rootfs, keep) {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(cgroup) = self.cgroup {
            if let Err(e) = cgroup.destroy() {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
    }
}

/// Create a container: after this returns its init exists in its namespaces, cgroup and
/// root filesystem, and waits for [`Container::start`]. On error nothing is left behind.
///
/// The init is a child of the calling process, which must be single-threaded.
pub fn create(opts: &CreateOptions) -> Result<Container> {
    create_with_console(opts, None)
}

/// [`create`] with a console socket the caller has already connected, for callers that
/// receive the pty master themselves (`run` in the foreground, the shim).
pub fn create_with_console(opts: &CreateOptions, console: Option<UnixStream>) -> Result<Container> {
    id::validate(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    let namespaces = Namespaces::from_spec(linux)?;
    // Without a mount namespace the container inherits the runtime's (runtime-spec):
    // its mounts are made there, below its root, and removed again at delete.
    let shared_mounts = if namespaces.has_mount() {
        None
    } else {
        let conflicts = crate::rootfs::shared_namespace_conflicts(spec);
        if !conflicts.is_empty() {
            return Err(Error::InvalidSpec {
                path: bundle.path.join(crate::bundle::CONFIG_FILE),
                reason: Box::new(crate::error::SpecError::SharedMounts(conflicts)),
            });
        }
        Some(crate::rootfs::mounts_below(&bundle.rootfs)?)
    };
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    if terminal && opts.console_socket.is_none() && console.is_none() {
        return Err(Error::InvalidSpec {
            path: bundle.path.join(crate::bundle::CONFIG_FILE),
            reason: Box::new(crate::error::SpecError::NoConsoleSocket),
        });
    }
    let console = console::stream_or_connect(console, opts.console_socket.as_deref())?;
    let seccomp = crate::process::compile_seccomp(linux, &opts.root)?;

    let mut cgroup = Cgroup::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &opts.id,
        &opts.root,
    )?;
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    let _lock = dir.lock()?;
    let mut rollback = Rollback {
        dir: Some(dir),
        cgroup: None,
        init: None,
        shared_mounts: shared_mounts
            .clone()
            .map(|keep| (bundle.rootfs.clone(), keep)),
    };
    let dir_path = rollback
        .dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default();

    // Recorded before it is made: a `create` killed from here on (a hook that hangs)
    // leaves no state.json, and the cleanup (`remove_abandoned`) removes the cgroup by this.
    cgroup.claim()?;
    if let Some(dir) = rollback.dir.as_ref() {
        dir.write_cgroup(&cgroup)?;
    }
    cgroup.build(linux.and_then(|l| l.resources().as_ref()))?;
    rollback.cgroup = Some(&cgroup);

    let fifo = dir_path.join(EXEC_FIFO);
    // The init opens the FIFO after switching to the container's user: anyone may
    // write to it (only the runtime reads). Set the mode explicitly, past the umask.
    mkfifo(&fifo, Mode::from_bits_truncate(0o622)).sys("mkfifo", fifo.display())?;
    fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .io("chmod", &fifo)?;
    let state_dir: OwnedFd = open(
        &dir_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys("open", dir_path.display())?;

    let (parent, child) = channel::pair()?;
    namespaces.join_pid()?;
    let parent_fd = parent.raw_fd();
    let pid = fork::clone_init(namespaces.clone_flags, || {
        // The init must not hold the runtime's end, or it could never see it close.
        // SAFETY: closing a descriptor this (child) process owns and never uses again.
        unsafe { libc::close(parent_fd) };
        init::run(InitConfig {
            id: &opts.id,
            bundle: &bundle,
            namespaces: &namespaces,
            cgroup: &cgroup,
            channel: &child,
            state_dir: &state_dir,
            console: console.as_ref(),
            no_pivot: opts.no_pivot,
            seccomp: seccomp.as_ref(),
            preserve_fds: opts.preserve_fds,
        })
    })?;
    rollback.init = Some(pid);
    drop(child);
    drop(console);

    cgroup.add_process(pid.as_raw())?;
    if namespaces.new_user() {
        if let Some(linux) = linux {
            crate::userns::write_mappings(pid.as_raw(), linux)?;
        }
    }
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        let path = format!("/proc/{pid}/oom_score_adj");
        fs::write(&path, adj.to_string()).io("write", path)?;
    }
    let record = Record {
        id: opts.id.clone(),
        pid: pid.as_raw(),
        pid_start_time: process_info::start_time(pid.as_raw()).ok_or_else(|| Error::InitLost {
            id: opts.id.clone(),
            reason: "exited at once".into(),
        })?,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        hooks: spec.hooks().clone(),
        no_process: spec.process().is_none(),
        shared_mounts,
    };
    parent.send(&Message::Proceed)?;
    loop {
        match parent.recv()? {
            Some(Message::Ready) => break,
            Some(Message::Warning(warning)) => tracing::warn!(id = %opts.id, "{warning}"),
            Some(Message::RunCreateHooks) => {
                let state = record.oci_state(Status::Creating);
                hooks::run(spec.hooks().as_ref(), HookKind::Prestart, &state)?;
                hooks::run(spec.hooks().as_ref(), HookKind::CreateRuntime, &state)?;
                parent.send(&Message::HooksDone(Box::new(state)))?;
            }
            Some(Message::Failed(message)) => {
                return Err(Error::Init {
                    id: opts.id.clone(),
                    message,
                })
            }
            other => {
                return Err(Error::InitLost {
                    id: opts.id.clone(),
                    reason: format!("broke off setup ({other:?})"),
                })
            }
        }
    }

    let dir = rollback.dir.as_ref().expect("armed");
    dir.write(&record)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid.as_raw())?;
    }
    parent.send(&Message::Committed)?;
    let dir = rollback.disarm();
    tracing::info!(id = %opts.id, pid = pid.as_raw(), "created");
    Ok(Container { dir, record })
}

impl Container {
    /// A container from its parts, for other ways of making one (restore).
    pub(crate) fn from_parts(dir: ContainerDir, record: Record) -> Self {
        Container { dir, record }
    }
}

/// Write the pid atomically, so a reader never sees an empty file.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    berth_atomic_file::write(path, pid.to_string().as_bytes()).io("write pid file", path)
}

impl Container {
    /// Load the container `id` from the runtime root.
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        id::validate(id)?;
        let dir = ContainerDir::open(root, id)?;
        match dir.read()? {
            Some(record) => Ok(Container { dir, record }),
            None => Err(Error::WrongState {
                id: id.to_string(),
                action: "use",
                status: Status::Creating,
            }),
        }
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The runtime root the container's state is kept under.
    pub(crate) fn root(&self) -> &Path {
        self.dir.root()
    }

    /// Host pid of the init.
    pub fn pid(&self) -> i32 {
        self.record.pid
    }

    /// The persisted record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The live status.
    pub fn status(&self) -> Status {
        self.record.status(&self.dir)
    }

    /// The runtime-spec state document.
    pub fn state(&self) -> OciState {
        self.record.oci_state(self.status())
    }

    /// Refuse `action` unless `allowed(status)`.
    fn require(&self, action: &'static str, allowed: fn(Status) -> bool) -> Result<Status> {
        let status = self.status();
        if allowed(status) {
            Ok(status)
        } else {
            Err(Error::WrongState {
                id: self.id().to_string(),
                action,
                status,
            })
        }
    }

    /// Let the init exec the user program.
    pub fn start(&self) -> Result<()> {
        let _lock = self.dir.lock()?;
        self.require("start", Status::can_start)?;
        if self.record.no_process {
            // Refused before the FIFO is touched: the container stays created.
            return Err(Error::NoProcess(self.id().to_string()));
        }
        let fifo = self.dir.path().join(EXEC_FIFO);
        let fd = open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .sys("open", fifo.display())?;
        // The init opens the write end as soon as we have opened the read end; it may
        // also have died, which the FIFO cannot tell us (a FIFO never written to does
        // not report hang-up), hence the liveness checks between short polls.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(50u16)) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => break,
                Err(e) => return Err(Error::sys("poll", fifo.display(), e)),
            }
            if !process_info::is_alive(self.record.pid, self.record.pid_start_time) {
                return Err(Error::InitLost {
                    id: self.id().to_string(),
                    reason: "exited before start".into(),
                });
            }
            if Instant::now() > deadline {
                return Err(Error::InitLost {
                    id: self.id().to_string(),
                    reason: "did not answer start".into(),
                });
            }
        }
        let mut file = fs::File::from(fd);
        let mut byte = [0u8; 1];
        let n = file.read(&mut byte).io("read", &fifo)?;
        fs::remove_file(&fifo).io("remove", &fifo)?;
        if n == 0 {
            return Err(Error::InitLost {
                id: self.id().to_string(),
                reason: "closed its start FIFO without starting".into(),
            });
        }
        // The init's end closes at its exec; anything written before that is why the
        // exec did not happen (a failed startContainer hook).
        let rest = read_until_closed(&mut file, &fifo)?;
        if !rest.is_empty() {
            let _ = kill(Pid::from_raw(self.record.pid), Signal::SIGKILL);
            return Err(Error::Init {
                id: self.id().to_string(),
                message: rest,
            });
        }
        if let Err(e) = hooks::run(
            self.record.hooks.as_ref(),
            HookKind::Poststart,
            &self.state(),
        ) {
            let _ = kill(Pid::from_raw(self.record.pid), Signal::SIGKILL);
            return Err(e.into());
        }
        tracing::info!(id = %self.id(), "started");
        Ok(())
    }

    /// Send `signal` to the init, or with `all` to every process of the container.
    pub fn kill(&self, signal: Signal, all: bool) -> Result<()> {
        let status = self.status();
        if all {
            for pid in self.own_pids(status)? {
                match kill(Pid::from_raw(pid), signal) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => return Err(Error::sys("kill", format!("pid {pid}"), e)),
                }
            }
            return Ok(());
        }
        if !status.can_kill() {
            return Err(Error::WrongState {
                id: self.id().to_string(),
                action: "kill",
                status,
            });
        }
        kill(Pid::from_raw(self.record.pid), signal).sys("kill", format!("pid {}", self.record.pid))
    }

    /// Freeze every process of the container.
    pub fn pause(&self) -> Result<()> {
        let _lock = self.dir.lock()?;
        self.require("pause", Status::can_pause)?;
        self.record.cgroup.freeze()?;
        tracing::info!(id = %self.id(), "paused");
        Ok(())
    }

    /// Thaw a paused container.
    pub fn resume(&self) -> Result<()> {
        let _lock = self.dir.lock()?;
        self.require("resume", Status::can_resume)?;
        self.record.cgroup.thaw()?;
        tracing::info!(id = %self.id(), "resumed");
        Ok(())
    }

    /// Change the resources of a live container.
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let _lock = self.dir.lock()?;
        self.require("update", |s| s != Status::Stopped)?;
        self.record.cgroup.update(resources)?;
        tracing::info!(id = %self.id(), "updated");
        Ok(())
    }

    /// The cgroup statistics of the container.
    pub fn stats(&self) -> Result<crate::cgroups::Stats> {
        Ok(self.record.cgroup.stats()?)
    }

    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self.record.cgroup.pids()?)
    }

    /// Remove the container. One that is not stopped (created, running, paused) is
    /// refused, untouched, unless `force`, which kills it.
    pub fn delete(self, force: bool) -> Result<()> {
        let lock = self.dir.lock()?;
        // Another delete may have held the lock before us and removed the container.
        if !self.dir.path().exists() {
            return Err(Error::NotFound(self.id().to_string()));
        }
        let status = self.status();
        if !status.can_delete() && !force {
            return Err(Error::WrongState {
                id: self.id().to_string(),
                action: "delete",
                status,
            });
        }
        if status != Status::Stopped {
            let _ = kill(Pid::from_raw(self.record.pid), Signal::SIGKILL);
        }
        if status == Status::Paused {
            // Frozen tasks only die once thawed.
            self.record.cgroup.thaw()?;
        }
        // Processes that joined the container's pid namespace from outside, or a
        // container sharing the host's pid namespace, do not die with the init.
        self.kill_remaining()?;
        if !process_info::wait_gone(self.record.pid, self.record.pid_start_time, KILL_TIMEOUT) {
            return Err(Error::InitLost {
                id: self.id().to_string(),
                reason: "survived SIGKILL".into(),
            });
        }
        if let Some(keep) = &self.record.shared_mounts {
            crate::rootfs::unmount_below(&self.record.rootfs, keep)?;
        }
        self.record.cgroup.destroy()?;
        let state = self.record.oci_state(Status::Stopped);
        // Removed before the lock goes: a delete waiting for it then finds nothing.
        self.dir.remove()?;
        drop(lock);
        hooks::run_warn_only(self.record.hooks.as_ref(), HookKind::Poststop, &state);
        tracing::info!(id = %self.record.id, "deleted");
        Ok(())
    }

    /// The processes `kill --all` and `delete` may signal: all in the cgroup when the
    /// container made it; in one it joined (empty at create) others may have put
    /// processes since, so only its init, while it lives.
    fn own_pids(&self, status: Status) -> Result<Vec<i32>> {
        if self.record.cgroup.created() {
            Ok(self.record.cgroup.pids()?)
        } else if status == Status::Stopped {
            Ok(Vec::new())
        } else {
            Ok(vec![self.record.pid])
        }
    }

    /// SIGKILL whatever of the container is left in the cgroup and wait until it is gone.
    fn kill_remaining(&self) -> Result<()> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            let pids = self.own_pids(self.status())?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in &pids {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            if Instant::now() > deadline {
                return Err(Error::InitLost {
                    id: self.id().to_string(),
                    reason: format!("processes {pids:?} survived SIGKILL"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Read a non-blocking FIFO until every writer has closed it.
fn read_until_closed(file: &mut fs::File, path: &Path) -> Result<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&text).into_owned()),
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(Error::sys("poll", path.display(), e)),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
}

/// Every container under `root` that can be loaded, sorted by id.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    Ok(state::list_ids(root)?
        .into_iter()
        .filter_map(|id| Container::load(root, &id).ok())
        .collect())
}
