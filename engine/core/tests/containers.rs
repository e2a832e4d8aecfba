//! The engine driving real shims and containers (as root): a burst of 200 starts through
//! 10 workers, a bad spec failing alone, a killed shim's container removed, nothing left
//! behind.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::{Config, ContainerSpec, Engine, ShimConfig, State};
use berth_shim_adapter::protocol::Request;
use berth_shim_adapter::ShimClient;

use berth_testkit as support;
use support::{bundle, shim_binary};

/// A scratch state directory; on drop (also when a test fails) every shim under it is
/// killed, every container removed, and the directory deleted.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        support::stop_everything_in(&self.0);
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An engine with real shims under `state`, and how many shims it found there again.
fn engine(state: &Path, workers: usize) -> (Arc<Engine>, usize, ShimConfig) {
    engine_with(state, workers, Duration::from_secs(60))
}

/// [`engine`] with starts failed after `start_timeout`.
fn engine_with(
    state: &Path,
    workers: usize,
    start_timeout: Duration,
) -> (Arc<Engine>, usize, ShimConfig) {
    let shim = ShimConfig {
        shim_binary: shim_binary(),
        state_dir: state.to_path_buf(),
        runtime: None,
        log_max: 1 << 20,
        start_timeout,
    };
    let config = Config {
        workers,
        state_dir: Some(state.join("records")),
        ..Config::default()
    };
    let (engine, found) =
        Engine::with_shims(config, shim.clone(), berth_engine::Services::default()).unwrap();
    (engine, found, shim)
}

/// Wait until `pred` holds for every id (bounded).
fn wait_all(engine: &Engine, ids: &[String], what: &str, pred: impl Fn(State) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending: Vec<(String, State)> = ids
            .iter()
            .filter_map(|id| engine.get(id).map(|r| (id.clone(), r.state)))
            .filter(|(_, s)| !pred(*s))
            .collect();
        if pending.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not all {what}: {pending:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ask the shim of `id` for `req` (ignoring a shim that is already gone).
fn tell(shim: &ShimConfig, id: &str, req: &Request) {
    if let Ok(mut c) = ShimClient::connect(&shim.shim_dir(id)) {
        let _ = c.request(req);
    }
}

/// Kill and delete every container, then check nothing is left.
fn clean_up(engine: &Engine, shim: &ShimConfig, ids: &[String]) {
    for id in ids {
        // A shim already gone (its container deleted) is no error here.
        tell(shim, id, &Request::Delete { force: true });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        let cg = Path::new("/sys/fs/cgroup/pids").join(id);
        while cg.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!cg.exists(), "{} left behind", cg.display());
        // The shim removes it right after its answer to the delete.
        let pid_file = shim.shim_dir(id).join("shim.pid");
        while pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_file.exists(), "shim of {id} still there");
        // The monitor reports the exit once the shim is gone; then the record can go.
        wait_all(engine, std::slice::from_ref(id), "stopped", |s| {
            matches!(s, State::Stopped | State::Failed)
        });
        engine.delete(id).unwrap();
        assert!(
            !shim.shim_dir(id).exists(),
            "{id}'s shim directory outlived delete"
        );
    }
    // The compiled seccomp profiles the runtime keeps there are a cache, not state.
    let runtime_left: Vec<_> = fs::read_dir(shim.runtime_root())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name != ".seccomp-cache")
        .collect();
    assert!(
        runtime_left.is_empty(),
        "runtime state left: {runtime_left:?}"
    );
}

#[test]
fn burst_of_200_through_10_workers_with_one_bad_spec() {
    let dir = std::env::temp_dir().join(format!("berth-engine-burst-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (engine, _, shim) = engine(&dir, 10);
    let mut ids = Vec::new();
    for n in 0..200 {
        let id = format!("eng-{}-{n}", std::process::id());
        let b = bundle(&dir, &id, &["sleep", "1000"]);
        ids.push(id.clone());
        let b = if n == 100 {
            // Valid to submit, fails in the shim: the program does not exist.
            bundle(&dir, &id, &["no-such-program"])
        } else {
            b
        };
        engine.submit(ContainerSpec::bundle(&id, b)).unwrap();
    }
    // Sample the in-flight count while the burst runs.
    let mut max_in_flight = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while ids.iter().any(|id| {
        engine
            .get(id)
            .is_some_and(|r| matches!(r.state, State::Queued | State::Creating))
    }) {
        max_in_flight = max_in_flight.max(engine.in_flight());
        assert!(Instant::now() < deadline, "burst did not finish");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        max_in_flight <= 10,
        "{max_in_flight} starts in flight with 10 workers"
    );
    let bad = &ids[100];
    let failed = engine.get(bad).unwrap();
    assert_eq!(failed.state, State::Failed, "{failed:?}");
    let good: Vec<String> = ids.iter().filter(|id| *id != bad).cloned().collect();
    wait_all(&engine, &good, "running", |s| s == State::Running);
    assert_eq!(engine.stats().live_shims, 199);
    let pids: HashSet<i32> = good
        .iter()
        .map(|id| engine.get(id).unwrap().pid.unwrap_or(0))
        .collect();
    assert_eq!(pids.len(), 199, "every container has its own init");

    for id in &good {
        tell(
            &shim,
            id,
            &Request::Kill {
                signal: 9,
                all: false,
            },
        );
    }
    wait_all(&engine, &good, "stopped", |s| s == State::Stopped);
    for id in &good {
        assert_eq!(engine.get(id).unwrap().exit_code, Some(137));
    }
    clean_up(&engine, &shim, &good);
}

#[test]
fn containers_that_exit_at_once_are_seen_stopped_with_their_codes() {
    // Their exits race the workers' own record of the start: none may be lost.
    let dir = std::env::temp_dir().join(format!("berth-engine-quick-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (engine, _, shim) = engine(&dir, 4);
    let ids: Vec<String> = (0..24)
        .map(|i| format!("eng-quick{i}-{}", std::process::id()))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let code = (i % 5).to_string();
        let b = bundle(&dir, id, &["sh", "-c", &format!("exit {code}")]);
        engine.submit(ContainerSpec::bundle(id, b)).unwrap();
    }
    wait_all(&engine, &ids, "stopped", |s| s == State::Stopped);
    for (i, id) in ids.iter().enumerate() {
        let r = engine.get(id).unwrap();
        assert_eq!(r.exit_code, Some((i % 5) as i32), "{r:?}");
        assert!(
            r.timestamps.started.is_some() && r.timestamps.exited.is_some(),
            "{r:?}"
        );
    }
    clean_up(&engine, &shim, &ids);
}

/// The pid of the shim of `id`, from its pid file.
fn shim_pid(shim: &ShimConfig, id: &str) -> i32 {
    fs::read_to_string(shim.shim_dir(id).join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// The cgroup directories of container `id` (its cgroupsPath is `/<id>`) still there.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(id))
        .filter(|d| d.exists())
        .collect()
}

/// What a lost shim of `id` (whose init was `pid`) must not leave: a process, a cgroup,
/// runtime state, a stale pid file; the record says failed, why, and what became of it.
fn assert_removed_after_lost_shim(engine: &Engine, shim: &ShimConfig, id: &str, pid: i32) {
    let record = engine.get(id).unwrap();
    assert_eq!(record.state, State::Failed, "{record:?}");
    assert!(
        !support::runc::process_alive(pid),
        "{id}'s init {pid} outlived its shim"
    );
    assert_eq!(
        cgroup_dirs(id),
        Vec::<PathBuf>::new(),
        "{id}'s cgroups left"
    );
    assert!(
        !shim.runtime_root().join(id).exists(),
        "{id}'s runtime state left"
    );
    assert!(!shim.shim_dir(id).join("shim.pid").exists());
    let reason = record.error.as_deref().unwrap_or("");
    assert!(
        reason.contains("shim") && reason.contains("processes were killed"),
        "{record:?}"
    );
}

#[test]
fn a_killed_shims_container_is_removed_and_its_id_freed() {
    lost_shim_while_running(None, "shimkill");
}

#[test]
fn a_killed_shims_container_of_an_external_runtime_is_removed_by_it() {
    let runc = PathBuf::from("/usr/sbin/runc");
    if !runc.is_file() {
        eprintln!("runc not installed: the external-runtime case is not checked");
        return;
    }
    lost_shim_while_running(Some(runc), "shimkill-runc");
}

/// Removes with `runc` what a failed test left under `root` (the scratch guard only
/// knows the built-in runtime's state).
struct RuncLeftovers(Option<PathBuf>, PathBuf, String);

impl Drop for RuncLeftovers {
    fn drop(&mut self) {
        if let Some(runc) = &self.0 {
            let _ = Command::new(runc)
                .arg("--root")
                .arg(&self.1)
                .args(["delete", "--force", &self.2])
                .output();
        }
    }
}

/// Kill the shim of a running container (made by `runtime`, `None`: the built-in one):
/// the engine removes what it left, the record says why, the id is free again.
fn lost_shim_while_running(runtime: Option<PathBuf>, tag: &str) {
    let dir = std::env::temp_dir().join(format!("berth-engine-{tag}-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (engine, _, shim) = engine(&dir, 2);
    let id = format!("eng-{tag}-{}", std::process::id());
    let _runc = RuncLeftovers(runtime.clone(), shim.runtime_root(), id.clone());
    let spec = || ContainerSpec {
        runtime: runtime.clone(),
        ..ContainerSpec::bundle(&id, bundle(&dir, &id, &["sleep", "1000"]))
    };
    engine.submit(spec()).unwrap();
    wait_all(&engine, std::slice::from_ref(&id), "running", |s| {
        s == State::Running
    });
    let init = engine.get(&id).unwrap().pid.unwrap();
    assert!(!cgroup_dirs(&id).is_empty());
    sigkill(shim_pid(&shim, &id));
    wait_all(&engine, std::slice::from_ref(&id), "failed", |s| {
        s == State::Failed
    });
    assert_removed_after_lost_shim(&engine, &shim, &id, init);

    // Removed like any failed container; then the id is free for a new one.
    engine.remove(&id, true, Duration::from_secs(30)).unwrap();
    assert!(engine.get(&id).is_none());
    assert!(!shim.shim_dir(&id).exists());
    // (Its bundle is made again: the test's bundles are where delete removes them.)
    engine.submit(spec()).unwrap();
    wait_all(&engine, std::slice::from_ref(&id), "running again", |s| {
        s == State::Running
    });
    clean_up(&engine, &shim, std::slice::from_ref(&id));
}

#[test]
fn a_start_that_hangs_is_failed_and_leaves_nothing() {
    let dir = std::env::temp_dir().join(format!("berth-engine-hang-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (engine, _, shim) = engine_with(&dir, 1, Duration::from_secs(1));
    let id = format!("eng-hang-{}", std::process::id());
    // The start hangs in a poststart hook (on the host) until the engine gives up.
    let b = bundle(&dir, &id, &["sleep", "1000"]);
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["hooks"] =
        serde_json::json!({"poststart": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]});
    fs::write(b.join("config.json"), spec.to_string()).unwrap();
    engine.submit(ContainerSpec::bundle(&id, b)).unwrap();
    wait_all(&engine, std::slice::from_ref(&id), "failed", |s| {
        s == State::Failed
    });
    let record = engine.get(&id).unwrap();
    assert!(
        record.error.as_deref().unwrap_or("").contains("in time"),
        "{record:?}"
    );
    assert_eq!(
        cgroup_dirs(&id),
        Vec::<PathBuf>::new(),
        "{id}'s cgroups left"
    );
    assert!(
        !shim.runtime_root().join(&id).exists(),
        "{id}'s runtime state left"
    );
    engine.remove(&id, false, Duration::from_secs(30)).unwrap();
}

#[test]
fn a_create_that_hangs_in_a_prestart_hook_is_failed_and_leaves_no_cgroup() {
    // The shim is killed while `create` runs a prestart hook: the cgroup exists but the
    // runtime has not yet recorded the container; the cleanup must still remove it.
    let dir = std::env::temp_dir().join(format!("berth-engine-prehang-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (engine, _, shim) = engine_with(&dir, 1, Duration::from_secs(1));
    let id = format!("eng-prehang-{}", std::process::id());
    let b = bundle(&dir, &id, &["sleep", "1000"]);
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["hooks"] =
        serde_json::json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]});
    fs::write(b.join("config.json"), spec.to_string()).unwrap();
    engine.submit(ContainerSpec::bundle(&id, b)).unwrap();
    wait_all(&engine, std::slice::from_ref(&id), "failed", |s| {
        s == State::Failed
    });
    // Directly under a hierarchy, or under a parent in it (the runtime's default one).
    let left: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .flat_map(|h| fs::read_dir(h.path()).into_iter().flatten().flatten())
        .map(|parent| parent.path().join(&id))
        .chain(cgroup_dirs(&id))
        .filter(|d| d.exists())
        .collect();
    // The hook outlives the shim; let it end so nothing of this test is left running.
    std::thread::sleep(Duration::from_secs(3));
    let _ = engine.remove(&id, false, Duration::from_secs(30));
    for d in left.iter().rev() {
        let _ = fs::remove_dir(d);
    }
    assert_eq!(left, Vec::<PathBuf>::new(), "{id}'s cgroups left");
    assert!(
        !shim.runtime_root().join(&id).exists(),
        "{id}'s runtime state left"
    );
}

#[test]
fn a_container_whose_exec_fails_after_create_is_failed_with_the_reason() {
    // Issue 12.1: the init failed between the start handshake and its exec, and the
    // container was recorded as started.
    let dir = std::env::temp_dir().join(format!("berth-engine-noexec-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (engine, _, shim) = engine(&dir, 1);
    let id = format!("eng-noexec-{}", std::process::id());
    let b = bundle(&dir, &id, &["true"]);
    let config = b.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    spec["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["execve", "execveat"], "action": "SCMP_ACT_ERRNO" }]
    });
    fs::write(&config, spec.to_string()).unwrap();
    engine.submit(ContainerSpec::bundle(&id, b)).unwrap();
    wait_all(&engine, std::slice::from_ref(&id), "final", |s| {
        s.is_final()
    });
    let record = engine.get(&id).unwrap();
    assert_eq!(record.state, State::Failed, "{record:?}");
    assert!(record.timestamps.started.is_none(), "{record:?}");
    assert!(
        record.error.as_deref().unwrap_or("").contains("execve"),
        "{record:?}"
    );
    clean_up(&engine, &shim, &[]);
    assert!(!Path::new("/sys/fs/cgroup/pids").join(&id).exists());
}

/// Env var that turns this test binary into the process hosting the engine of
/// [`engine_killed_and_restarted_finds_every_container`].
const HOST_ENV: &str = "BERTH_ENGINE_TEST_HOST";

/// Host mode: start containers through an engine, say so, and wait to be killed.
#[test]
fn recovery_host() {
    let Some(dir) = std::env::var_os(HOST_ENV) else {
        return; // Only meaningful when spawned by the recovery test.
    };
    let dir = PathBuf::from(dir);
    let (engine, _, _shim) = engine(&dir, 4);
    let ids: Vec<String> = (0..6)
        .map(|n| format!("rec-{n}-{}", dir.file_name().unwrap().to_string_lossy()))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        // Three sleep on, three exit with 7 while the engine is down.
        let args: &[&str] = if n < 3 {
            &["sleep", "1000"]
        } else {
            &["sh", "-c", "sleep 3; exit 7"]
        };
        engine
            .submit(ContainerSpec::bundle(id, bundle(&dir, id, args)))
            .unwrap();
    }
    wait_all(&engine, &ids, "running", |s| s == State::Running);
    // An exec still running when the engine is killed: its result must outlive it.
    let args = berth_engine::ExecArgs {
        args: vec![
            "sh".into(),
            "-c".into(),
            "sleep 2; echo late; exit 5".into(),
        ],
        ..Default::default()
    };
    let output = _shim.exec_output(&ids[0], "crash");
    engine
        .exec(&ids[0], args, Some(output), Duration::from_secs(30))
        .unwrap();
    println!("ready {}", ids.join(" "));
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn engine_killed_and_restarted_finds_every_container() {
    let dir = std::env::temp_dir().join(format!("berth-engine-rec{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("host.out");
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "recovery_host",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOST_ENV, &dir)
        .stdout(fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids: Vec<String> = loop {
        let text = fs::read_to_string(&out_path).unwrap_or_default();
        // libtest prints its own "test recovery_host ... " before our line.
        if let Some((_, ready)) = text.split_once("ready ") {
            if let Some(line) = ready.lines().next() {
                break line.split_whitespace().map(str::to_owned).collect();
            }
        }
        assert!(
            Instant::now() < deadline,
            "engine host never got ready: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SIGKILL: no shutdown, no last write.
    host.kill().unwrap();
    host.wait().unwrap();

    let shim_cfg = ShimConfig {
        shim_binary: shim_binary(),
        state_dir: dir.clone(),
        runtime: None,
        log_max: 1 << 20,
        start_timeout: Duration::from_secs(60),
    };
    // While the engine is down: one shim dies, three containers exit with 7.
    let lost = &ids[2];
    let records = berth_engine::persist::Store::new(dir.join("records"));
    let lost_init = records.load(lost).unwrap().pid.unwrap();
    sigkill(shim_pid(&shim_cfg, lost));
    for id in &ids[3..] {
        let exit = shim_cfg.shim_dir(id).join("exit.json");
        let until = Instant::now() + Duration::from_secs(30);
        while !exit.exists() {
            assert!(Instant::now() < until, "{id} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // And the shim of one that exited dies too, leaving its stopped container.
    let stopped_lost = &ids[5];
    sigkill(shim_pid(&shim_cfg, stopped_lost));

    let (engine, found, shim) = engine(&dir, 4);
    assert_eq!(found, 4, "every live shim answers again");
    for id in &ids[..2] {
        let r = engine.get(id).unwrap();
        assert_eq!(r.state, State::Running, "{r:?}");
        let pid = r.pid.unwrap();
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{id}'s init {pid} is gone"
        );
    }
    // The lost shim's container is gone with it; the record keeps why.
    assert_removed_after_lost_shim(&engine, &shim, lost, lost_init);
    for id in &ids[3..] {
        let r = engine.get(id).unwrap();
        assert_eq!((r.state, r.exit_code), (State::Stopped, Some(7)), "{r:?}");
    }
    assert!(!shim.runtime_root().join(stopped_lost).exists());
    assert_eq!(cgroup_dirs(stopped_lost), Vec::<PathBuf>::new());
    // The exec finished under its shim while the engine was down: its result is there.
    let output = shim.exec_output(&ids[0], "crash");
    let exit = berth_shim_adapter::protocol::exec_exit_file(&output);
    let until = Instant::now() + Duration::from_secs(30);
    while !exit.exists() {
        assert!(Instant::now() < until, "the exec's exit was not recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = berth_engine::exec::read_result(&output, 1 << 20).unwrap();
    assert_eq!(
        (result.exit_code, result.output.as_str()),
        (Some(5), "late\n")
    );
    // Kept for a while, not for ever.
    assert_eq!(
        berth_engine::exec::sweep_results(&shim.shim_dir(&ids[0]), Duration::ZERO, true),
        1
    );
    assert!(!output.exists() && !exit.exists());

    // Still manageable through their shims: kill one, the engine hears the exit.
    tell(
        &shim,
        &ids[0],
        &Request::Kill {
            signal: 9,
            all: false,
        },
    );
    wait_all(&engine, &ids[..1], "stopped", |s| s == State::Stopped);
    assert_eq!(engine.get(&ids[0]).unwrap().exit_code, Some(137));

    engine.remove(lost, true, Duration::from_secs(30)).unwrap();
    assert!(engine.get(lost).is_none());
    let rest: Vec<String> = ids.iter().filter(|id| *id != lost).cloned().collect();
    clean_up(&engine, &shim, &rest);
}
