//! `berth-shim` against real containers: the shim binary is spawned by exec (through
//! `spawn_shim`) or forked by a spawner as the engine does (through `Spawner`), and
//! driven through `ShimClient`, with the built-in runtime library and with `berth-runc`
//! as the external runtime.
//!
//! Every test owns a [`TestContainer`] (unique id, root, bundle, cgroup; deleted with
//! `berth-runc delete --force` and force-cleaned on drop) and a [`Shim`] guard declared
//! after it, so on failure the shim is SIGKILLed first and the container removed next.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use berth_shim_adapter::protocol::{
    read_exit_file, CgroupDirs, ExitRecord, Message, Request, ShimState, SpawnOptions, Status,
    EXIT_FILE, PID_FILE, SOCKET_FILE,
};
use berth_shim_adapter::{spawn_shim, ClientError, ShimClient, SpawnError, Spawner};
use berth_testkit::procfs::Stat;
use berth_testkit::runc::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(20);

fn shim_binary() -> PathBuf {
    berth_testkit::binary("berth-shim")
}

fn berth_runc() -> PathBuf {
    berth_testkit::binary("berth-runc")
}

/// A running shim: its process (a child, or just a pid when spawned through an
/// intermediate) and state directory. Dropping it SIGKILLs a shim still alive.
struct Shim {
    child: Option<Child>,
    pid: i32,
    state_dir: PathBuf,
    log: PathBuf,
}

impl Shim {
    fn options(c: &TestContainer, runtime: Option<PathBuf>, no_start: bool) -> SpawnOptions {
        SpawnOptions {
            binary: shim_binary(),
            id: c.id.clone(),
            bundle: c.bundle.clone(),
            state_dir: c.tmp_path().join("shim"),
            runtime_root: c.root.clone(),
            runtime,
            log: Some(c.io.join("container.log")),
            log_max: None,
            no_start,
        }
    }

    fn spawn(opts: &SpawnOptions) -> Shim {
        let child = spawn_shim(opts).expect("spawn berth-shim");
        Shim {
            pid: child.id() as i32,
            child: Some(child),
            state_dir: opts.state_dir.clone(),
            log: opts.log.clone().unwrap(),
        }
    }

    fn connect(&self) -> ShimClient {
        let client =
            ShimClient::connect_timeout(&self.state_dir, TIMEOUT).expect("connect to the shim");
        // A shim that never answers fails the test instead of hanging it.
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client
    }

    /// Wait for the shim (our child) to exit; its exit code.
    fn wait(&mut self) -> i32 {
        let child = self.child.as_mut().expect("a child shim");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the shim did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if process_alive(self.pid) {
            // SAFETY: kill(2) with a pid and a signal number.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

fn state(client: &mut ShimClient) -> ShimState {
    match client.request(&Request::State).expect("state request") {
        Message::State(s) => s,
        other => panic!("state: unexpected reply {other:?}"),
    }
}

#[track_caller]
fn ok(client: &mut ShimClient, req: Request) {
    match client.request(&req).expect("request") {
        Message::Ok => {}
        other => panic!("{req:?}: expected ok, got {other:?}"),
    }
}

/// Ask State until `status` (events that arrive meanwhile stay queued in the client).
fn wait_status(client: &mut ShimClient, status: Status) -> ShimState {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let s = state(client);
        if s.status == status {
            return s;
        }
        assert!(Instant::now() < deadline, "never reached {status}: {s:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Events until (and including) `Exited`.
fn events_until_exit(client: &mut ShimClient) -> (Vec<Message>, ExitRecord) {
    let mut seen = Vec::new();
    loop {
        let ev = client.recv_event().expect("an event");
        if let Message::Exited(rec) = &ev {
            let rec = rec.clone();
            seen.push(ev);
            return (seen, rec);
        }
        seen.push(ev);
    }
}

/// Events until the shim closes its socket (it exited or was killed).
fn events_until_closed(client: &mut ShimClient) -> Vec<Message> {
    let mut seen = Vec::new();
    loop {
        match client.recv_event() {
            Ok(ev) => seen.push(ev),
            Err(ClientError::Closed) => return seen,
            Err(e) => panic!("expected end of file, got {e}"),
        }
    }
}

fn names(events: &[Message]) -> Vec<&'static str> {
    events
        .iter()
        .map(|m| match m {
            Message::Created { .. } => "created",
            Message::Started => "started",
            Message::Exited(_) => "exited",
            Message::Oom => "oom",
            Message::Failed { .. } => "failed",
            _ => "reply",
        })
        .collect()
}

/// Delete through the shim; it replies, exits 0, closes the socket; nothing is left.
fn delete_and_check(c: &TestContainer, shim: &mut Shim, mut client: ShimClient, force: bool) {
    // Forget what was heard so far (created, started …).
    client.take_events();
    ok(&mut client, Request::Delete { force });
    // Then only exits not yet heard (a force delete kills the init and any exec'd
    // process), and the end.
    loop {
        match client.recv_event() {
            Ok(Message::Exited(_) | Message::ExecExited { .. }) => {}
            Err(ClientError::Closed) => break,
            other => panic!("after delete: {other:?}"),
        }
    }
    assert_eq!(shim.wait(), 0, "the shim exits 0 after delete");
    assert!(!shim.state_dir.join(SOCKET_FILE).exists());
    assert!(!shim.state_dir.join(PID_FILE).exists());
    c.assert_nothing_left();
}

fn process(args: &[&str]) -> Box<oci_spec::runtime::Process> {
    Box::new(
        serde_json::from_value(json!({
            "args": args,
            "cwd": "/",
            "user": { "uid": 0, "gid": 0 },
            "env": ["PATH=/bin:/usr/bin"],
        }))
        .unwrap(),
    )
}

/// The cgroup directories a shim reported are the container's own: every one ends in
/// its `cgroupsPath` and exists.
fn assert_cgroups_are_the_containers(c: &TestContainer, dirs: Option<&CgroupDirs>) {
    let dirs = dirs.expect("the shim reported no cgroup directories");
    let all: Vec<&PathBuf> = dirs.v1.values().chain(dirs.v2.iter()).collect();
    assert!(!all.is_empty(), "{dirs:?}");
    let own = c.cgroups_path.trim_start_matches('/');
    for dir in all {
        assert!(dir.ends_with(own) && dir.is_dir(), "{dir:?} for {own}");
    }
}

#[test]
fn builtin_reports_created_started_exited_and_writes_exit_file_and_log() {
    let c = TestContainer::new(
        "shim-exit",
        &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
    );
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, true));
    let mut client = shim.connect();
    let s = wait_status(&mut client, Status::Created);
    assert!(s.pid > 0 && s.exit_code.is_none(), "{s:?}");
    assert_cgroups_are_the_containers(&c, s.cgroups.as_ref());
    ok(&mut client, Request::Start);
    let (events, rec) = events_until_exit(&mut client);
    // Connected before create finished, the client also heard `created`.
    let n = names(&events);
    assert!(
        n == ["created", "started", "exited"] || n == ["started", "exited"],
        "events {n:?}"
    );
    if let Some(Message::Created { pid, cgroups }) = events.first() {
        assert_eq!(*pid, s.pid);
        assert_eq!(cgroups, &s.cgroups);
    }
    assert_eq!(rec.code, 3);
    // Written before the event was sent.
    assert_eq!(read_exit_file(&shim.state_dir).unwrap(), Some(rec.clone()));
    let s = state(&mut client);
    assert_eq!(s.status, Status::Stopped);
    assert_eq!((s.pid, s.exit_code), (0, Some(3)));
    assert_eq!(s.exited_at.as_deref(), Some(rec.at.as_str()));
    let log = shim.log_text();
    assert!(
        log.contains("hello\n") && log.contains("oops\n"),
        "log: {log:?}"
    );
    delete_and_check(&c, &mut shim, client, false);
    // The exit record outlives the shim, for a daemon that comes back later.
    assert!(shim.state_dir.join(EXIT_FILE).exists());
}

#[test]
fn builtin_starts_by_itself_and_kill_through_the_protocol() {
    let c = TestContainer::new("shim-kill", &["sleep", "1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, false));
    let mut client = shim.connect();
    let s = wait_status(&mut client, Status::Running);
    assert!(process_alive(s.pid));
    assert_eq!(
        fs::read_to_string(shim.state_dir.join(PID_FILE)).unwrap(),
        shim.pid.to_string()
    );
    // Own session: the shim leads it.
    let stat = Stat::read(shim.pid).unwrap();
    assert_eq!(
        stat.field(6),
        Some(shim.pid as u64),
        "session id of the shim"
    );
    // A second client, and one that goes away, cost nothing.
    let mut other = shim.connect();
    drop(shim.connect());
    ok(
        &mut client,
        Request::Kill {
            signal: 9,
            all: false,
        },
    );
    let (_, rec) = events_until_exit(&mut client);
    assert_eq!(rec.code, 137);
    let (_, rec2) = events_until_exit(&mut other);
    assert_eq!(rec2, rec);
    // Signalling a stopped container is an error, not a crash.
    assert!(matches!(
        client
            .request(&Request::Kill {
                signal: 15,
                all: false
            })
            .unwrap(),
        Message::Error { .. }
    ));
    // Shutdown is refused while the container exists.
    assert!(matches!(
        client.request(&Request::Shutdown).unwrap(),
        Message::Error { .. }
    ));
    delete_and_check(&c, &mut shim, client, false);
}

#[test]
fn builtin_pause_resume_stats_exec_and_force_delete() {
    let c = TestContainer::new("shim-ops", &["sleep", "1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, false));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Running);

    ok(&mut client, Request::Pause);
    assert_eq!(state(&mut client).status, Status::Paused);
    let freezer = cgroup_file("freezer", &c.cgroups_path, "freezer.state");
    assert_eq!(read_trim(&freezer), "FROZEN");
    ok(&mut client, Request::Resume);
    assert_eq!(state(&mut client).status, Status::Running);
    assert_eq!(read_trim(&freezer), "THAWED");

    let pid = match client
        .request(&Request::Exec {
            output: None,
            process: process(&["sh", "-c", "echo from-exec; sleep 1000"]),
        })
        .unwrap()
    {
        Message::Exec { pid } => pid,
        other => panic!("exec: {other:?}"),
    };
    assert!(process_alive(pid));
    wait_for_file(&shim.log, "exec output", |t| t.contains("from-exec\n"));

    match client.request(&Request::Stats).unwrap() {
        Message::Stats(stats) => assert!(stats.pids.current >= 3, "{stats:?}"),
        other => panic!("stats: {other:?}"),
    }
    // A running container is only deleted with force.
    assert!(matches!(
        client.request(&Request::Delete { force: false }).unwrap(),
        Message::Error { .. }
    ));
    delete_and_check(&c, &mut shim, client, true);
    assert!(!process_exists(pid) || !process_alive(pid));
    assert_eq!(read_exit_file(&shim.state_dir).unwrap().unwrap().code, 137);
}

#[test]
fn external_runtime_berth_runc() {
    let c = TestContainer::new("shim-ext", &["sh", "-c", "echo ext-out; exec sleep 1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, Some(berth_runc()), false));
    let mut client = shim.connect();
    let s = wait_status(&mut client, Status::Running);
    // Found through the init, not the runtime's own records.
    assert_cgroups_are_the_containers(&c, s.cgroups.as_ref());
    // The init reparented to the shim, the subreaper.
    assert_eq!(parent_of(s.pid), shim.pid);
    wait_for_file(&shim.log, "container output", |t| t.contains("ext-out\n"));

    ok(&mut client, Request::Pause);
    assert_eq!(state(&mut client).status, Status::Paused);
    ok(&mut client, Request::Resume);
    match client.request(&Request::Stats).unwrap() {
        Message::Stats(stats) => assert!(stats.pids.current >= 1, "{stats:?}"),
        other => panic!("stats: {other:?}"),
    }
    match client
        .request(&Request::Exec {
            output: None,
            process: process(&["sh", "-c", "echo ext-exec"]),
        })
        .unwrap()
    {
        Message::Exec { pid } => assert!(pid > 0),
        other => panic!("exec: {other:?}"),
    }
    wait_for_file(&shim.log, "exec output", |t| t.contains("ext-exec\n"));
    // With an output file of its own, and its exit reported.
    let out = shim.state_dir.join("exec-1.out");
    let pid = match client
        .request(&Request::Exec {
            output: Some(out.clone()),
            process: process(&["sh", "-c", "echo to-file; exit 4"]),
        })
        .unwrap()
    {
        Message::Exec { pid } => pid,
        other => panic!("exec: {other:?}"),
    };
    loop {
        match client.recv_event() {
            Ok(Message::ExecExited { pid: p, code }) if p == pid => {
                assert_eq!(code, 4);
                break;
            }
            Ok(_) => {}
            other => panic!("waiting for the exec's exit: {other:?}"),
        }
    }
    assert_eq!(fs::read_to_string(&out).unwrap(), "to-file\n");
    // Outside the shim's directory: refused.
    assert!(matches!(
        client
            .request(&Request::Exec {
                output: Some("/tmp/elsewhere.out".into()),
                process: process(&["true"]),
            })
            .unwrap(),
        Message::Error { .. }
    ));
    // SIGTERM would be ignored by a pid 1 without a handler: SIGKILL, to all.
    ok(
        &mut client,
        Request::Kill {
            signal: 9,
            all: true,
        },
    );
    let (_, rec) = events_until_exit(&mut client);
    assert_eq!(rec.code, 137);
    delete_and_check(&c, &mut shim, client, false);
}

#[test]
fn external_runtime_exit_code_and_force_delete_of_a_running_container() {
    let c = TestContainer::new("shim-ext2", &["sh", "-c", "exit 3"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, Some(berth_runc()), true));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Created);
    ok(&mut client, Request::Start);
    let (_, rec) = events_until_exit(&mut client);
    assert_eq!(rec.code, 3);
    delete_and_check(&c, &mut shim, client, false);

    let c = TestContainer::new("shim-ext3", &["sleep", "1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, Some(berth_runc()), false));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Running);
    ok(&mut client, Request::Pause);
    delete_and_check(&c, &mut shim, client, true);
    assert_eq!(read_exit_file(&shim.state_dir).unwrap().unwrap().code, 137);
}

/// `terminal: true`: the runtime hands the pty master to the shim (over a socket pair
/// from the built-in runtime, `--console-socket` for an external one), which copies the
/// terminal's output into the log and keeps the master open while the container runs,
/// also while no process holds the terminal (a closed master would hang it up).
#[test]
fn terminal_output_goes_to_the_log() {
    let mut runtimes = vec![None, Some(berth_runc())];
    let runc = PathBuf::from("/usr/sbin/runc");
    if runc.is_file() {
        runtimes.push(Some(runc));
    } else {
        eprintln!("runc not installed: its console socket is not checked");
    }
    for runtime in runtimes {
        let mut c = TestContainer::new(
            "shim-tty",
            &[
                "sh",
                "-c",
                // Its stdio closed, nothing holds the terminal for a while (the
                // master reads EIO); the shim keeps it, so it can be opened again.
                "test -t 0 && test -t 1 && echo on-a-tty; exec 0<&- 1>&- 2>&-; \
                 sleep 0.3; echo still > /dev/console; exit 5",
            ],
        );
        c.spec["process"]["terminal"] = json!(true);
        c.write_config();
        let mut shim = Shim::spawn(&Shim::options(&c, runtime.clone(), false));
        let mut client = shim.connect();
        let (_, rec) = events_until_exit(&mut client);
        assert_eq!(rec.code, 5, "{runtime:?}: {}", shim.log_text());
        let log = shim.log_text();
        assert!(
            log.contains("on-a-tty\r\n") && log.contains("still\r\n"),
            "{runtime:?}: {log:?}"
        );
        assert!(!shim.state_dir.join("tty.sock").exists());
        delete_and_check(&c, &mut shim, client, false);
    }
}

#[test]
fn shim_survives_the_death_of_its_parent() {
    let c = TestContainer::new("shim-orphan", &["sleep", "1000"]);
    c.write_config();
    let opts = Shim::options(&c, None, false);
    // An intermediate process starts the shim in the background and exits at once.
    let cmd = berth_shim_adapter::shim_command(&opts);
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" </dev/null >/dev/null 2>&1 & echo $!"#)
        .arg(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let mut shim = Shim {
        child: None,
        pid,
        state_dir: opts.state_dir.clone(),
        log: opts.log.clone().unwrap(),
    };
    let mut client = shim.connect();
    wait_status(&mut client, Status::Running);
    thread::sleep(Duration::from_millis(100));
    assert!(process_alive(pid), "the shim died with its parent");
    let s = state(&mut client);
    assert_eq!(s.status, Status::Running);
    ok(&mut client, Request::Delete { force: true });
    client.take_events();
    loop {
        match client.recv_event() {
            Ok(Message::Exited(rec)) => assert_eq!(rec.code, 137),
            Err(ClientError::Closed) => break,
            other => panic!("after delete: {other:?}"),
        }
    }
    wait_until_dead(pid);
    shim.pid = 0;
    c.assert_nothing_left();
}

#[test]
fn killed_shim_is_seen_as_end_of_file() {
    let c = TestContainer::new("shim-sigkill", &["sleep", "1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, false));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Running);
    // SAFETY: kill(2) with our child's pid.
    unsafe { libc::kill(shim.pid, libc::SIGKILL) };
    let events = events_until_closed(&mut client);
    // A killed shim reports nothing, least of all an exit.
    assert!(
        !events.iter().any(|e| matches!(e, Message::Exited(_))),
        "{events:?}"
    );
    assert_eq!(shim.wait(), -1);
    // A daemon coming back finds no socket to talk to and no exit record.
    assert!(ShimClient::connect(&shim.state_dir).is_err());
    assert_eq!(read_exit_file(&shim.state_dir).unwrap(), None);
    // (The container itself is removed by TestContainer's drop.)
}

#[test]
fn killed_shim_of_a_created_container_is_seen_as_end_of_file() {
    // The init, waiting to be started, must not hold the shim's sockets open.
    let c = TestContainer::new("shim-sigkill-created", &["sleep", "1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, true));
    let mut client = shim.connect();
    let s = wait_status(&mut client, Status::Created);
    let fds = fs::read_dir(format!("/proc/{}/fd", s.pid)).unwrap().count();
    assert!(fds <= 6, "the created init holds {fds} descriptors");
    // SAFETY: kill(2) with our child's pid.
    unsafe { libc::kill(shim.pid, libc::SIGKILL) };
    events_until_closed(&mut client);
    assert_eq!(shim.wait(), -1);
    // (The created container is removed by TestContainer's drop.)
}

#[test]
fn failed_create_is_reported_and_leaves_nothing() {
    let c = TestContainer::new("shim-fail", &["/no/such/binary"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, false));
    // The client may or may not be in time to hear `failed`; the exit status says it.
    if let Ok(mut client) = ShimClient::connect_timeout(&shim.state_dir, TIMEOUT) {
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        loop {
            match client.recv_event() {
                Ok(Message::Failed { message }) => {
                    assert!(message.contains("/no/such/binary"), "{message}");
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => break,
            }
        }
    }
    assert_eq!(shim.wait(), 1);
    let shim_log = fs::read_to_string(shim.state_dir.join("shim.log")).unwrap();
    assert!(
        shim_log.lines().last().unwrap().contains("failed"),
        "{shim_log}"
    );
    assert!(!shim.state_dir.join(SOCKET_FILE).exists());
    c.assert_nothing_left();
}

#[test]
fn log_is_capped_and_keeps_the_newest_output() {
    let c = TestContainer::new(
        "shim-logcap",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
        ],
    );
    c.write_config();
    let mut opts = Shim::options(&c, None, true);
    opts.log_max = Some(1000);
    let mut shim = Shim::spawn(&opts);
    let mut client = shim.connect();
    wait_status(&mut client, Status::Created);
    ok(&mut client, Request::Start);
    let (_, rec) = events_until_exit(&mut client);
    assert_eq!(rec.code, 0);
    let log = shim.log_text();
    let mut old = shim.log.clone().into_os_string();
    old.push(".1");
    let old = fs::read_to_string(Path::new(&old)).unwrap();
    assert!(
        log.len() <= 1000 && old.len() == 1000,
        "{} {}",
        log.len(),
        old.len()
    );
    assert!(format!("{old}{log}").ends_with("line-299-xxxxxxxxxxxxxxxxxxxxxxxx\n"));
    delete_and_check(&c, &mut shim, client, false);
}

#[test]
fn oom_kill_is_reported() {
    let mut c = TestContainer::new("shim-oom", &["sh", "-c", "tail /dev/zero"]);
    c.spec["linux"]["resources"]["memory"] = json!({ "limit": 16 << 20, "swap": 16 << 20 });
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, true));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Created);
    ok(&mut client, Request::Start);
    let (events, rec) = events_until_exit(&mut client);
    assert!(
        names(&events).contains(&"oom"),
        "events {:?}",
        names(&events)
    );
    // tail (or sh, if it exec'd tail) died of SIGKILL: either way 128 + 9.
    assert_eq!(rec.code, 137);
    delete_and_check(&c, &mut shim, client, false);
}

#[test]
fn created_container_with_an_exec_is_deleted_without_force() {
    let c = TestContainer::new("shim-created", &["sleep", "1000"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, true));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Created);
    // The exec'd process is the shim's child in the container's pid namespace: the
    // init cannot finish dying until the shim reaps it.
    match client
        .request(&Request::Exec {
            output: None,
            process: process(&["sleep", "1000"]),
        })
        .unwrap()
    {
        Message::Exec { pid } => assert!(process_alive(pid)),
        other => panic!("exec: {other:?}"),
    }
    delete_and_check(&c, &mut shim, client, false);
}

#[test]
fn a_reconnecting_client_asks_state_and_reads_the_exit_file_when_the_shim_is_gone() {
    let c = TestContainer::new("shim-reconnect", &["sh", "-c", "exit 7"]);
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, true));
    let mut first = shim.connect();
    wait_status(&mut first, Status::Created);
    // The "daemon" goes away; the container starts and ends meanwhile.
    ok(&mut first, Request::Start);
    drop(first);
    let deadline = Instant::now() + TIMEOUT;
    while read_exit_file(&shim.state_dir).unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit record");
        thread::sleep(Duration::from_millis(10));
    }
    // A "restarted daemon" connects again: State is the truth, events are not replayed.
    let mut again = shim.connect();
    let s = state(&mut again);
    assert_eq!(
        (s.status, s.exit_code, s.pid),
        (Status::Stopped, Some(7), 0)
    );
    assert!(again.take_events().is_empty());
    delete_and_check(&c, &mut shim, again, false);
    assert!(ShimClient::connect(&shim.state_dir).is_err());
    assert_eq!(read_exit_file(&shim.state_dir).unwrap().unwrap().code, 7);
}

/// The parent pid of `pid`, from /proc/PID/stat.
fn parent_of(pid: i32) -> i32 {
    Stat::read(pid).unwrap().ppid().unwrap()
}

#[test]
fn spawner_forks_shims_that_run_containers_and_outlive_it() {
    let c = TestContainer::new("shim-spawned", &["sleep", "1000"]);
    c.write_config();
    let opts = Shim::options(&c, None, false);
    let mut spawner = Spawner::start(&shim_binary()).expect("start the spawner");
    let spawned = spawner.spawn(&opts).expect("spawn a shim");
    let mut shim = Shim {
        child: None,
        pid: spawned.pid,
        state_dir: opts.state_dir.clone(),
        log: opts.log.clone().unwrap(),
    };
    let mut client = spawned.client;
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let s = wait_status(&mut client, Status::Running);
    assert!(s.pid > 0);
    // A child of the spawner, showing the command line an exec'd shim would have.
    assert_eq!(parent_of(shim.pid), spawner.pid() as i32);
    let cmdline = cmdline_of(shim.pid);
    assert!(
        cmdline.contains(&format!("--id {}", c.id)) && cmdline.contains("--control-stdin"),
        "{cmdline}"
    );
    // The spawner goes; the shim and its container stay, and still answer.
    drop(spawner);
    thread::sleep(Duration::from_millis(100));
    assert!(process_alive(shim.pid), "the shim died with its spawner");
    assert_eq!(state(&mut client).status, Status::Running);
    ok(&mut client, Request::Delete { force: true });
    client.take_events();
    loop {
        match client.recv_event() {
            Ok(Message::Exited(rec)) => assert_eq!(rec.code, 137),
            Err(ClientError::Closed) => break,
            other => panic!("after delete: {other:?}"),
        }
    }
    wait_until_dead(shim.pid);
    shim.pid = 0;
    c.assert_nothing_left();
}

#[test]
fn spawner_refuses_bad_requests_reaps_killed_shims_and_is_seen_gone() {
    use berth_shim_adapter::protocol::wire::{self, Received};
    use berth_shim_adapter::protocol::{SpawnReply, SPAWNER_ARG};
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::{AsFd, AsRawFd};

    // Spoken to directly: a request without its control socket, and one that is not
    // JSON, are answered with errors, and the spawner carries on.
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let mut raw = Command::new(shim_binary())
        .arg(SPAWNER_ARG)
        .stdin(Stdio::from(theirs))
        .spawn()
        .unwrap();
    wire::set_read_timeout(ours.as_fd(), Some(TIMEOUT)).unwrap();
    let mut buf = Vec::new();
    let mut answer = || match wire::recv::<SpawnReply>(ours.as_fd(), &mut buf, false).unwrap() {
        Received::Message(SpawnReply::Error { message }) => message,
        other => panic!("expected an error, got {other:?}"),
    };
    let opts = SpawnOptions {
        id: "no-socket".into(),
        ..SpawnOptions::default()
    };
    wire::send(ours.as_fd(), &opts, false).unwrap();
    assert!(answer().contains("without a control socket"));
    // SAFETY: send of a live buffer on our socket.
    unsafe { libc::send(ours.as_raw_fd(), b"{oops".as_ptr().cast(), 5, 0) };
    assert!(answer().contains("bad message"));
    // End of file ends it, with status 0.
    drop(ours);
    assert!(raw.wait().unwrap().success());

    // A shim killed through its pidfd is reaped by the spawner (no zombie stays).
    let c = TestContainer::new("shim-spawn-kill", &["sleep", "1000"]);
    c.write_config();
    let opts = Shim::options(&c, None, false);
    let mut spawner = Spawner::start(&shim_binary()).unwrap();
    let mut spawned = spawner.spawn(&opts).unwrap();
    let _guard = Shim {
        child: None,
        pid: spawned.pid,
        state_dir: opts.state_dir.clone(),
        log: opts.log.clone().unwrap(),
    };
    spawned.client.set_read_timeout(Some(TIMEOUT)).unwrap();
    wait_status(&mut spawned.client, Status::Running);
    spawned.kill().unwrap();
    events_until_closed(&mut spawned.client);
    let deadline = Instant::now() + TIMEOUT;
    while Path::new(&format!("/proc/{}", spawned.pid)).exists() {
        assert!(Instant::now() < deadline, "the killed shim was not reaped");
        thread::sleep(Duration::from_millis(10));
    }
    // Killing it again is harmless: the pidfd names no other process.
    spawned.kill().unwrap();

    // A spawner that died is reported gone, before anything is asked of it.
    // SAFETY: kill(2) with the spawner's pid, our child.
    unsafe { libc::kill(spawner.pid() as i32, libc::SIGKILL) };
    wait_until_dead(spawner.pid() as i32);
    match spawner.spawn(&opts) {
        Err(SpawnError::Gone) => {}
        other => panic!("expected Gone, got {other:?}"),
    }
}

#[test]
fn a_stopped_spawner_is_reported_lost_not_waited_for() {
    let c = TestContainer::new("shim-spawn-lost", &["sleep", "1000"]);
    c.write_config();
    let opts = Shim::options(&c, None, false);
    let mut spawner = Spawner::start(&shim_binary()).unwrap();
    // SAFETY: kill(2) with the spawner's pid, our child.
    unsafe { libc::kill(spawner.pid() as i32, libc::SIGSTOP) };
    // The answer never comes: the request is lost after the spawner's timeout.
    match spawner.spawn(&opts) {
        Err(SpawnError::Lost(_)) => {}
        other => panic!("expected Lost, got {other:?}"),
    }
    // Dropping it kills it, stopped as it is, before it could fork anything.
    let pid = spawner.pid() as i32;
    drop(spawner);
    assert!(!process_alive(pid));
    assert!(!opts.state_dir.join(PID_FILE).exists());
}

#[test]
fn a_start_that_fails_at_the_exec_is_reported_failed_never_started() {
    // Issue 12.1: the init failed after the start handshake and the shim said started.
    for runtime in [None, Some(berth_runc())] {
        let mut c = TestContainer::new("shim-noexec", &["echo", "hello"]);
        c.spec["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["execve", "execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
        });
        c.write_config();
        let external = runtime.is_some();
        let mut shim = Shim::spawn(&Shim::options(&c, runtime, true));
        let mut client = shim.connect();
        wait_status(&mut client, Status::Created);
        match client.request(&Request::Start).expect("start request") {
            Message::Error { message } => {
                assert!(message.contains("execve"), "external={external}: {message}")
            }
            other => panic!("external={external}: start answered {other:?}"),
        }
        let mut events = client.take_events();
        events.extend(events_until_closed(&mut client));
        let n = names(&events);
        assert!(!n.contains(&"started"), "external={external}: {n:?}");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Message::Failed { message } if message.contains("execve"))),
            "external={external}: {events:?}"
        );
        assert_eq!(shim.wait(), 1, "external={external}");
        c.assert_nothing_left();
    }
}

#[test]
fn an_external_runtime_reads_an_id_that_looks_like_an_option_as_the_id() {
    // Issue 12.6: the shim put the id where runc reads options (`-rf`: unknown flag).
    // The engine and berth-runc refuse such ids; the shim still must not pass them on
    // as options, to runc least of all.
    let runc = PathBuf::from("/usr/sbin/runc");
    if !runc.exists() {
        eprintln!("SKIPPED: no {}", runc.display());
        return;
    }
    let mut c = TestContainer::new("shim-dash", &["echo", "hello"]);
    c.id = format!("-rf{}", c.id);
    c.spec["process"]["env"][2] = json!(format!("{MARK_ENV}={}", c.id));
    c.write_config();
    // Forked by a spawner, as the engine does: the options never pass a command line.
    let opts = Shim::options(&c, Some(runc), true);
    let mut spawner = Spawner::start(&shim_binary()).expect("start the spawner");
    let spawned = spawner.spawn(&opts).expect("spawn a shim");
    let shim = Shim {
        child: None,
        pid: spawned.pid,
        state_dir: opts.state_dir.clone(),
        log: opts.log.clone().unwrap(),
    };
    let mut client = spawned.client;
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    wait_status(&mut client, Status::Created);
    ok(&mut client, Request::Start);
    let (_, rec) = events_until_exit(&mut client);
    assert_eq!(rec.code, 0);
    assert_eq!(shim.log_text(), "hello\n");
    ok(&mut client, Request::Delete { force: false });
    events_until_closed(&mut client);
    let deadline = Instant::now() + TIMEOUT;
    while process_alive(shim.pid) {
        assert!(Instant::now() < deadline, "the shim did not exit");
        thread::sleep(Duration::from_millis(10));
    }
    c.assert_nothing_left();
    drop(spawner);
}

#[test]
fn a_warning_of_the_init_lands_in_the_shim_log() {
    // Issue 12.2, for the built-in runtime: the warnings reach the shim's log.
    let mut c = TestContainer::new("shim-warn", &["true"]);
    c.spec["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN"]
    });
    c.write_config();
    let mut shim = Shim::spawn(&Shim::options(&c, None, true));
    let mut client = shim.connect();
    wait_status(&mut client, Status::Created);
    let shim_log = fs::read_to_string(shim.state_dir.join("shim.log")).unwrap();
    assert!(
        shim_log
            .lines()
            .any(|l| l.contains("WARN") && l.contains("CAP_KILL")),
        "{shim_log}"
    );
    // Not in the container's own output.
    assert!(!shim.log_text().contains("CAP_KILL"), "{}", shim.log_text());
    delete_and_check(&c, &mut shim, client, false);
}
