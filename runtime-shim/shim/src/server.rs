//! The shim's life: set up, create (and start) the container, then one poll loop over the
//! listening socket, the clients, the SIGCHLD signalfd, the output pipes and the OOM
//! watch. Requests are answered in order, one at a time; events go to every client.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::state::now_rfc3339;
use berth_shim_protocol::wire::{self, Received};
use berth_shim_protocol::{
    exec_exit_file, ExitRecord, Message, Request, ShimState, EXIT_FILE, PID_FILE, SOCKET_FILE,
};
use berth_shim_protocol::{CgroupDirs, Status};
use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::backend::{Backend, Stdio2};
use crate::console::Console;
use crate::error::{Result, ShimError};
use crate::oom::OomWatch;
use crate::output::Output;
use crate::Cli;

/// The shim's own diagnostics, in its state directory.
pub const SHIM_LOG: &str = "shim.log";
/// Pending connections the socket holds before the loop accepts them.
const BACKLOG: i32 = 64;
/// How long a SIGKILLed init may take to be gone.
const KILL_PATIENCE: Duration = Duration::from_secs(10);
/// Most output kept of an exec'd process that has a file of its own (the newest; older
/// output rotates once into `<file>.1`): a process cannot fill the state directory.
const EXEC_OUTPUT_MAX: u64 = 1 << 20;

/// Set up, create, serve; the process's exit status.
pub fn run(cli: Cli) -> u8 {
    let mut shim = match Shim::setup(&cli) {
        Ok(shim) => shim,
        Err(e) => {
            // Before the shim log exists this reaches whoever spawned us (or nobody).
            eprintln!("berth-shim {}: {e}", cli.id);
            return 1;
        }
    };
    if let Err(e) = shim.boot(&cli) {
        return shim.fail(e.to_string());
    }
    trim_heap();
    shim.serve()
}

/// What happens after a request is answered.
enum After {
    Continue,
    Exit(u8),
}

struct Shim {
    id: String,
    state_dir: PathBuf,
    listener: OwnedFd,
    sigchld: SignalFd,
    shim_log: OwnedFd,
    devnull: OwnedFd,
    output: Option<Output>,
    /// The container's terminal (`terminal: true`), read into the log like the pipes;
    /// held until the init exits, as closing it hangs up the container.
    console: Option<Console>,
    backend: Backend,
    oom: Option<OomWatch>,
    clients: Vec<OwnedFd>,
    buf: Vec<u8>,
    status: Status,
    pid: i32,
    /// Where the container's cgroup is, once created.
    cgroups: Option<CgroupDirs>,
    exit: Option<ExitRecord>,
    created: bool,
    /// Exec'd processes not yet reaped (their exits are reported), with the capped
    /// output file of those given one and where their exit is recorded.
    execs: Vec<(i32, Option<Output>, Option<PathBuf>)>,
}

impl Shim {
    /// Detach, redirect our own stdio, write the pid file, watch SIGCHLD, listen.
    fn setup(cli: &Cli) -> io::Result<Shim> {
        // Our own session: the daemon's death (or its terminal's) does not reach us.
        // EPERM only if we already lead a group, which is as detached.
        let _ = nix::unistd::setsid();
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cli.state_dir)?;
        let shim_log: OwnedFd = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(cli.state_dir.join(SHIM_LOG))?
            .into();
        // The spawner's end of a socket pair on stdin: our first client. Moved off fd 0
        // (CLOEXEC: the container's processes must not inherit it) before fd 0 becomes
        // /dev/null.
        let control = if cli.control_stdin {
            // SAFETY: fcntl F_DUPFD_CLOEXEC on fd 0 returns a new descriptor or -1.
            let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a descriptor just made by fcntl that nothing else owns.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        } else {
            None
        };
        log_warnings(&shim_log);
        let devnull: OwnedFd = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into();
        // SAFETY: dup2 onto the standard descriptors of this process.
        unsafe {
            libc::dup2(devnull.as_raw_fd(), 0);
            libc::dup2(devnull.as_raw_fd(), 1);
            libc::dup2(shim_log.as_raw_fd(), 2);
        }
        berth_atomic_file::write(
            &cli.state_dir.join(PID_FILE),
            std::process::id().to_string().as_bytes(),
        )?;
        let _ = fs::remove_file(cli.state_dir.join(EXIT_FILE));

        // SIGCHLD only through the signalfd. Children reset their mask (the library's
        // init and std's Command both do).
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let sigchld = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;

        let listener = listen_on(&cli.state_dir.join(SOCKET_FILE))?;
        let output = match &cli.log {
            Some(path) => Some(Output::new(path, cli.log_max)?),
            None => None,
        };
        let backend = match &cli.runtime {
            None => Backend::Builtin {
                root: cli.runtime_root.clone(),
                id: cli.id.clone(),
                container: None,
            },
            Some(runtime) => {
                // For a cleanup after this shim is lost (see crate::cleanup).
                berth_atomic_file::write(
                    &cli.state_dir.join(crate::cleanup::RUNTIME_FILE),
                    runtime.as_os_str().as_encoded_bytes(),
                )?;
                Backend::External {
                    runtime: runtime.clone(),
                    root: cli.runtime_root.clone(),
                    id: cli.id.clone(),
                    log: cli.state_dir.join("runtime.log"),
                    state_dir: cli.state_dir.clone(),
                }
            }
        };
        Ok(Shim {
            id: cli.id.clone(),
            state_dir: cli.state_dir.clone(),
            listener,
            sigchld,
            shim_log,
            devnull,
            output,
            console: None,
            backend,
            oom: None,
            clients: control.into_iter().collect(),
            buf: Vec::new(),
            status: Status::Creating,
            pid: 0,
            cgroups: None,
            exit: None,
            created: false,
            execs: Vec::new(),
        })
    }

    fn stdio(&self) -> Stdio2<'_> {
        Stdio2 {
            out: self.output.as_ref().map(|o| &o.write),
            shim_log: &self.shim_log,
            devnull: &self.devnull,
        }
    }

    /// Create the container and, unless `--no-start`, start it; report both.
    fn boot(&mut self, cli: &Cli) -> Result<()> {
        let stdio = Stdio2 {
            out: self.output.as_ref().map(|o| &o.write),
            shim_log: &self.shim_log,
            devnull: &self.devnull,
        };
        let (pid, handover) = self.backend.create(&cli.bundle, &stdio)?;
        // From here a failure deletes the container (and kills its init).
        self.created = true;
        self.pid = pid;
        if let Some(master) = handover.take()? {
            self.console = Some(Console::new(master).map_err(ShimError::sys("terminal"))?);
        }
        self.status = Status::Created;
        log(&self.id, format_args!("created, init pid {pid}"));
        let cgroups = self.backend.cgroup_dirs(pid);
        match cgroups.as_ref().and_then(|dirs| dirs.memory()) {
            Some((dir, v2)) => match OomWatch::for_dir(&dir, v2) {
                Ok(watch) => self.oom = watch,
                Err(e) => log(&self.id, format_args!("no OOM notifications: {e}")),
            },
            None => log(
                &self.id,
                format_args!("no OOM notifications: no memory cgroup"),
            ),
        }
        self.cgroups = cgroups.clone();
        self.broadcast(&Message::Created { pid, cgroups });
        if !cli.no_start {
            self.start()?;
        }
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        self.backend.start()?;
        self.status = self.status.started();
        log(&self.id, format_args!("started"));
        self.broadcast(&Message::Started);
        Ok(())
    }

    /// Creating or starting failed: say so, clean up, exit 1.
    fn fail(&mut self, message: String) -> u8 {
        log(&self.id, format_args!("failed: {message}"));
        self.broadcast(&Message::Failed {
            message: message.clone(),
        });
        if self.created {
            if let Err(e) = self.force_delete() {
                log(&self.id, format_args!("cleanup after failure: {e}"));
            }
        }
        self.remove_own_files();
        1
    }

    /// The poll loop.
    fn serve(&mut self) -> u8 {
        // An init that exited before the loop left only a pending signal: look now.
        self.reap();
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8);
        let mut ready: Vec<RawFd> = Vec::with_capacity(8);
        loop {
            fds.clear();
            let mut watch = |fd: RawFd| {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
            };
            watch(self.listener.as_raw_fd());
            watch(self.sigchld.as_raw_fd());
            if let Some(out) = &self.output {
                watch(out.read[0].as_raw_fd());
                watch(out.read[1].as_raw_fd());
            }
            if let Some(console) = &self.console {
                watch(console.fd().as_raw_fd());
            }
            if let Some(oom) = &self.oom {
                watch(oom.fd().as_raw_fd());
            }
            for out in self.execs.iter().filter_map(|(_, o, _)| o.as_ref()) {
                watch(out.read[0].as_raw_fd());
                watch(out.read[1].as_raw_fd());
            }
            for c in &self.clients {
                watch(c.as_raw_fd());
            }
            // SAFETY: `fds` is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log(&self.id, format_args!("poll: {err}"));
                return 1;
            }
            ready.clear();
            ready.extend(fds.iter().filter(|p| p.revents != 0).map(|p| p.fd));
            for &fd in &ready {
                if let After::Exit(code) = self.on_ready(fd) {
                    self.remove_own_files();
                    return code;
                }
            }
        }
    }

    fn on_ready(&mut self, fd: RawFd) -> After {
        if fd == self.listener.as_raw_fd() {
            self.accept();
        } else if fd == self.sigchld.as_raw_fd() {
            while let Ok(Some(_)) = self.sigchld.read_signal() {}
            self.reap();
        } else if let Some(out) = self
            .output
            .as_mut()
            .filter(|o| o.read[0].as_raw_fd() == fd || o.read[1].as_raw_fd() == fd)
        {
            // SAFETY: `fd` is one of `out.read`, open for as long as `out` lives.
            if let Err(e) = out.drain(unsafe { BorrowedFd::borrow_raw(fd) }) {
                log(&self.id, format_args!("container output: {e}"));
                self.output = None;
            }
        } else if self.console.as_ref().map(|c| c.fd().as_raw_fd()) == Some(fd) {
            self.on_console();
        } else if self.oom.as_ref().map(|o| o.fd().as_raw_fd()) == Some(fd) {
            self.on_oom();
        } else if let Some(slot) = self.execs.iter_mut().map(|(_, o, _)| o).find(|o| {
            o.as_ref()
                .is_some_and(|o| o.read[0].as_raw_fd() == fd || o.read[1].as_raw_fd() == fd)
        }) {
            if let Some(out) = slot.as_mut() {
                // SAFETY: `fd` is one of `out.read`, open for as long as `out` lives.
                if let Err(e) = out.drain(unsafe { BorrowedFd::borrow_raw(fd) }) {
                    log(&self.id, format_args!("exec output: {e}"));
                    *slot = None;
                }
            }
        } else if let Some(i) = self.clients.iter().position(|c| c.as_raw_fd() == fd) {
            return self.on_client(i);
        }
        After::Continue
    }

    /// Move the terminal's output into the log (or nowhere, without one). A log that
    /// fails is given up, not the terminal: closing it would hang up the container.
    fn on_console(&mut self) {
        let Some(console) = self.console.as_mut() else {
            return;
        };
        let output = &mut self.output;
        let mut log_error = None;
        let read = console.drain(|data| {
            if let Some(out) = output.as_mut() {
                if let Err(e) = out.write_log(data) {
                    log_error = Some(e);
                    *output = None;
                }
            }
            Ok(())
        });
        if let Some(e) = log_error {
            log(&self.id, format_args!("container output: {e}"));
        }
        if let Err(e) = read {
            log(&self.id, format_args!("container terminal: {e}"));
            self.console = None;
        }
    }

    fn on_oom(&mut self) {
        let Some(watch) = self.oom.as_mut() else {
            return;
        };
        match watch.check() {
            Ok(true) => {
                log(&self.id, format_args!("OOM kill"));
                self.broadcast(&Message::Oom);
            }
            Ok(false) => {}
            Err(_) => self.oom = None, // the cgroup is gone
        }
    }

    fn accept(&mut self) {
        loop {
            // SAFETY: accept4 on our listening socket; the result is checked.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return; // EAGAIN: none left (or a client that gave up already)
            }
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            self.clients.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }

    fn on_client(&mut self, i: usize) -> After {
        let req = match wire::recv::<Request>(self.clients[i].as_fd(), &mut self.buf, true) {
            Ok(Received::Message(req)) => req,
            Ok(Received::Empty) => return After::Continue,
            Ok(Received::Closed) => {
                self.clients.swap_remove(i);
                return After::Continue;
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let reply = Message::Error {
                    message: e.to_string(),
                };
                self.reply(i, &reply);
                return After::Continue;
            }
            Err(_) => {
                self.clients.swap_remove(i);
                return After::Continue;
            }
        };
        let fd = self.clients[i].as_raw_fd();
        let (reply, after) = self.handle(req);
        // The client may have been dropped by a broadcast meanwhile: find it again.
        if let Some(i) = self.clients.iter().position(|c| c.as_raw_fd() == fd) {
            self.reply(i, &reply);
        }
        after
    }

    fn reply(&mut self, i: usize, msg: &Message) {
        if wire::send(self.clients[i].as_fd(), msg, true).is_err() {
            self.clients.swap_remove(i);
        }
    }

    fn handle(&mut self, req: Request) -> (Message, After) {
        let done = |r: Result<()>| match r {
            Ok(()) => Message::Ok,
            Err(e) => error(e.to_string()),
        };
        match req {
            Request::State => (Message::State(self.state()), After::Continue),
            Request::Start => {
                if !self.status.can_start() {
                    return (
                        error(format!("cannot start a {} container", self.status)),
                        After::Continue,
                    );
                }
                match self.start() {
                    Ok(()) => (Message::Ok, After::Continue),
                    Err(e) => {
                        self.fail(e.to_string());
                        (error(e.to_string()), After::Exit(1))
                    }
                }
            }
            Request::Kill { signal, all } => {
                (done(self.backend.kill(signal, all)), After::Continue)
            }
            Request::Exec { process, output } => {
                let reply = match self.exec(*process, output.as_deref()) {
                    Ok((pid, out)) => {
                        let exit = output.as_deref().map(exec_exit_file);
                        self.execs.push((pid, out, exit));
                        Message::Exec { pid }
                    }
                    Err(e) => error(e.to_string()),
                };
                (reply, After::Continue)
            }
            Request::Pause | Request::Resume => {
                let pause = matches!(req, Request::Pause);
                let result = self.backend.pause(pause);
                if result.is_ok() && self.exit.is_none() {
                    self.status = self.status.paused(pause);
                }
                (done(result), After::Continue)
            }
            Request::Stats => match self.backend.stats() {
                Ok(stats) => (Message::Stats(Box::new(stats)), After::Continue),
                Err(e) => (error(e.to_string()), After::Continue),
            },
            Request::Delete { force } => {
                // A created container is deletable without force, but its init must
                // still be killed and reaped here (see force_delete).
                let result = if force || self.status.delete_kills_init() {
                    self.force_delete()
                } else {
                    self.backend.delete(false)
                };
                match result {
                    Ok(()) => {
                        self.reap();
                        log(&self.id, format_args!("deleted"));
                        (Message::Ok, After::Exit(0))
                    }
                    Err(e) => (error(e.to_string()), After::Continue),
                }
            }
            Request::Shutdown => {
                if self.backend.exists() {
                    (
                        error("the container still exists: delete it first".into()),
                        After::Continue,
                    )
                } else {
                    (Message::Ok, After::Exit(0))
                }
            }
        }
    }

    /// Run one more process in the container, its stdout and stderr to `output` (a
    /// new file in our state directory, capped, read through pipes) or the container's
    /// log. Its pid, and the pipes' reader for a file of its own.
    fn exec(
        &self,
        process: oci_spec::runtime::Process,
        output: Option<&Path>,
    ) -> Result<(i32, Option<Output>)> {
        let Some(path) = output else {
            return Ok((self.backend.exec(process, &self.stdio())?, None));
        };
        if path.parent() != Some(self.state_dir.as_path()) {
            return Err(ShimError::Refused(format!(
                "exec output {} must be a file in {}",
                path.display(),
                self.state_dir.display()
            )));
        }
        if path.exists() || exec_exit_file(path) == path {
            return Err(ShimError::Refused(format!(
                "exec output {} exists already",
                path.display()
            )));
        }
        let out = Output::new(path, EXEC_OUTPUT_MAX).map_err(ShimError::io("exec output", path))?;
        let stdio = Stdio2 {
            out: Some(&out.write),
            shim_log: &self.shim_log,
            devnull: &self.devnull,
        };
        match self.backend.exec(process, &stdio) {
            Ok(pid) => Ok((pid, Some(out))),
            Err(e) => {
                let _ = fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Kill the container (thawing it first) and reap its init here before the runtime
    /// deletes it: a pid namespace's init only finishes dying once every process of the
    /// namespace is reaped, and `exec`'d ones are our children — a runtime waiting for
    /// the init while we wait for the runtime would never return.
    fn force_delete(&mut self) -> Result<()> {
        if self.exit.is_none() && self.pid > 0 {
            // A frozen init acts on SIGKILL only once thawed.
            if self.status.can_resume() {
                let _ = self.backend.pause(false);
            }
            let _ = self.backend.kill(libc::SIGKILL, true);
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            self.wait_init();
        }
        self.backend.delete(true)
    }

    /// Reap children until the init is among them (it was just SIGKILLed), for at most
    /// [`KILL_PATIENCE`].
    fn wait_init(&mut self) {
        let deadline = Instant::now() + KILL_PATIENCE;
        while self.exit.is_none() && Instant::now() < deadline {
            self.reap();
            if self.exit.is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Reap every child that has exited (we are the subreaper: orphans of the container
    /// land here too); the init's status is recorded and reported.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.pid => {
                    self.init_exited(code)
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.pid => {
                    self.init_exited(128 + sig as i32)
                }
                Ok(WaitStatus::Exited(pid, code)) => self.exec_exited(pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.exec_exited(pid.as_raw(), 128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) | Ok(_) => continue,
                Err(e) => {
                    log(&self.id, format_args!("waitpid: {e}"));
                    return;
                }
            }
        }
    }

    /// A child other than the init is gone: report it if it was exec'd (else it was an
    /// orphan of the container, reaped as subreaper).
    fn exec_exited(&mut self, pid: i32, code: i32) {
        if let Some(i) = self.execs.iter().position(|(p, _, _)| *p == pid) {
            // Its last output is in the file, and its exit recorded, before it is told.
            let (_, out, exit) = self.execs.swap_remove(i);
            if let Some(mut out) = out {
                let _ = out.drain_all();
            }
            if let Some(path) = exit {
                let record = ExitRecord {
                    code,
                    at: now_rfc3339(),
                };
                let json = serde_json::to_vec(&record).unwrap_or_default();
                if let Err(e) = berth_atomic_file::write(&path, &json) {
                    log(&self.id, format_args!("recording exec {pid}'s exit: {e}"));
                }
            }
            self.broadcast(&Message::ExecExited { pid, code });
        }
    }

    /// The init is gone: keep its last output, write the exit record, then say so.
    fn init_exited(&mut self, code: i32) {
        if self.exit.is_some() {
            return;
        }
        if let Some(out) = self.output.as_mut() {
            let _ = out.drain_all();
        }
        self.on_console();
        self.console = None;
        // An OOM kill that took the init is told before its exit.
        if self.oom.is_some() {
            self.on_oom();
        }
        let record = ExitRecord {
            code,
            at: now_rfc3339(),
        };
        let json = serde_json::to_vec(&record).unwrap_or_default();
        if let Err(e) = berth_atomic_file::write(&self.state_dir.join(EXIT_FILE), &json) {
            log(&self.id, format_args!("writing the exit record: {e}"));
        }
        log(&self.id, format_args!("init exited with {code}"));
        self.status = Status::Stopped;
        self.exit = Some(record.clone());
        self.broadcast(&Message::Exited(record));
    }

    fn state(&self) -> ShimState {
        ShimState {
            id: self.id.clone(),
            status: self.status,
            pid: if self.exit.is_some() { 0 } else { self.pid },
            exit_code: self.exit.as_ref().map(|e| e.code),
            exited_at: self.exit.as_ref().map(|e| e.at.clone()),
            cgroups: self.cgroups.clone(),
        }
    }

    /// Send an event to every client, taking in those still waiting to be accepted first
    /// (a daemon that connected during create hears `created`). A client that cannot take
    /// it (gone, or not reading) is dropped.
    fn broadcast(&mut self, msg: &Message) {
        self.accept();
        self.clients
            .retain(|c| wire::send(c.as_fd(), msg, true).is_ok());
    }

    fn remove_own_files(&self) {
        let _ = fs::remove_file(self.state_dir.join(SOCKET_FILE));
        let _ = fs::remove_file(self.state_dir.join(PID_FILE));
    }
}

fn error(message: String) -> Message {
    Message::Error { message }
}

/// The runtime library's warnings (a capability the init could not grant, say) go to
/// the shim log: through a descriptor of its own, since fds 1 and 2 are the container's
/// while it is made.
fn log_warnings(shim_log: &OwnedFd) {
    let Ok(file) = shim_log.try_clone() else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(File::from(file)))
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// One line in the shim log (our stderr).
fn log(id: &str, args: std::fmt::Arguments<'_>) {
    eprintln!("{} berth-shim {id}: {args}", now_rfc3339());
}

/// Bind the control socket: SOCK_SEQPACKET, mode 0600, non-blocking accepts.
/// True when a shim serves the control socket in `state_dir`: a connect succeeds only
/// while its listener is open.
pub fn answers(state_dir: &Path) -> bool {
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    UnixAddr::new(&state_dir.join(SOCKET_FILE))
        .and_then(|addr| connect(fd.as_raw_fd(), &addr))
        .is_ok()
}

fn listen_on(path: &Path) -> io::Result<OwnedFd> {
    let _ = fs::remove_file(path);
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = bind(fd.as_raw_fd(), &addr);
    umask(old);
    bound?;
    listen(&fd, Backlog::new(BACKLOG)?)?;
    Ok(fd)
}

/// Give freed setup memory (spec parsing, the clone) back to the kernel: an idle shim
/// should hold next to nothing.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
