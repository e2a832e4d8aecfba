//! Cgroups shared between containers, runtime roots and host processes: the runtime's
//! default parent made and removed by many processes at once, a cgroup that holds
//! processes already, two runtime roots with the same container id.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use berth_runtime::cgroups::{default_parent, Cgroup};
use berth_testkit::runc::*;

/// Set in the environment of the worker processes of
/// [`default_parent_made_and_removed_by_many_processes`]: `<root> <worker number>`.
const WORKER_ENV: &str = "BERTH_TEST_CGROUP_WORKER";
const WORKERS: usize = 4;
const CYCLES: usize = 400;

/// Every cgroup hierarchy's directory for `rel` (relative to the hierarchy's root).
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    cgroup_mountpoints()
        .into_iter()
        .map(|mp| mp.join(rel.trim_start_matches('/')))
        .collect()
}

/// Places `c` in the runtime's default cgroup (no cgroupsPath), keeping the kit's idea of
/// its cgroup (for cleanup and leftovers) right.
fn use_default_cgroup(c: &mut TestContainer) {
    c.spec["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    c.cgroups_path = format!("/{}/{}", default_parent(&c.root), c.id);
}

/// Removes the default parent of `root` if the test failed with it still there.
struct ParentGuard(String);

impl Drop for ParentGuard {
    fn drop(&mut self) {
        for dir in cgroup_dirs(&self.0) {
            if dir.exists() {
                // Deepest first: leftovers of a failed worker, then the parent.
                let _ = Command::new("find")
                    .arg(&dir)
                    .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                    .status();
            }
        }
    }
}

fn assert_parent_gone(parent: &str) {
    for dir in cgroup_dirs(parent) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

/// The worker's part of the test below; does nothing in a normal test run.
#[test]
fn cgroup_worker() {
    let Ok(args) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (root, worker) = args.split_once(' ').unwrap();
    for cycle in 0..CYCLES {
        let id = format!("w{worker}-{cycle}");
        let mut cgroup = Cgroup::new(None, &id, Path::new(root)).unwrap();
        if let Err(err) = cgroup.create(None) {
            panic!("worker {worker} cycle {cycle}: create: {err}");
        }
        if let Err(err) = cgroup.destroy() {
            panic!("worker {worker} cycle {cycle}: destroy: {err}");
        }
    }
}

/// Several processes make and remove cgroups under one runtime root's default parent at
/// once, so that the parent is removed with its last cgroup while others are making
/// theirs in it: no create may fail, and the parent is gone at the end.
#[test]
fn default_parent_made_and_removed_by_many_processes() {
    let root = tempfile::tempdir().unwrap();
    let parent = default_parent(root.path());
    let _guard = ParentGuard(parent.clone());
    let me = std::env::current_exe().unwrap();
    let workers: Vec<Child> = (0..WORKERS)
        .map(|n| {
            Command::new(&me)
                .args(["--exact", "cgroup_worker", "--test-threads=1"])
                .env(WORKER_ENV, format!("{} {n}", root.path().display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failures = Vec::new();
    for worker in workers {
        let out = worker.wait_with_output().unwrap();
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let panicked = text
                .lines()
                .filter(|l| l.contains("cycle"))
                .collect::<Vec<_>>();
            failures.push(panicked.join(" | "));
        }
    }
    assert!(failures.is_empty(), "workers failed: {failures:?}");
    assert_parent_gone(&parent);
}

/// Many short containers, a few at a time, under one root's default cgroup parent (as
/// scripts and engines run a runc-compatible runtime): every run succeeds and nothing is
/// left. (runtime-shim/scripts/parallel-runs.sh is the long version of this.)
#[test]
fn parallel_runs_in_the_default_cgroup() {
    if skip_under_runc("the runtime's default cgroup placement") {
        return;
    }
    const RUNS: usize = 60;
    const PARALLEL: usize = 3;
    let root = tempfile::tempdir().unwrap();
    let parent = default_parent(root.path());
    let _guard = ParentGuard(parent.clone());
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..PARALLEL)
            .map(|_| {
                s.spawn(|| {
                    let mut failures = Vec::new();
                    for _ in 0..RUNS / PARALLEL {
                        let mut c = TestContainer::with_root("cg-par", &["true"], root.path());
                        use_default_cgroup(&mut c);
                        let out = c.run();
                        if !out.success() {
                            failures.push(out.stderr.clone());
                        }
                        c.assert_nothing_left();
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "runs failed: {failures:?}");
    assert_parent_gone(&parent);
}

/// A host process the test started, killed (and its cgroup dirs removed) on drop.
struct HostProcess {
    child: Child,
    cgroup_dirs: Vec<PathBuf>,
}

impl HostProcess {
    /// `sleep` moved into the cgroup `rel` of every hierarchy (made here).
    fn sleep_in(rel: &str) -> Self {
        let child = Command::new("sleep").arg("1000").spawn().unwrap();
        let dirs = cgroup_dirs(rel);
        let me = Self {
            child,
            cgroup_dirs: dirs,
        };
        me.make_cgroup();
        me.join();
        me
    }

    fn make_cgroup(&self) {
        for dir in &self.cgroup_dirs {
            fs::create_dir_all(dir).unwrap();
            // A v1 cpuset starts empty, and nobody can join an empty one.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(own) = fs::read_to_string(dir.join(file)) {
                    if own.trim().is_empty() {
                        let parent = fs::read_to_string(dir.parent().unwrap().join(file));
                        fs::write(dir.join(file), parent.unwrap().trim()).unwrap();
                    }
                }
            }
        }
    }

    /// Move the process into its cgroup (every hierarchy).
    fn join(&self) {
        for dir in &self.cgroup_dirs {
            fs::write(dir.join("cgroup.procs"), self.child.id().to_string()).unwrap();
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in &self.cgroup_dirs {
            for _ in 0..100 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A cgroupsPath naming a cgroup that holds someone else's process is refused with a
/// clear error; that process is not touched, nor its cgroup.
#[test]
fn a_cgroup_with_processes_is_not_joined() {
    if skip_under_runc("refusing a cgroup that holds processes (runc 1.1 joins it)") {
        return;
    }
    let mut c = TestContainer::new("cg-busy", &["sleep", "1000"]);
    let rel = format!("/berth-test-{}-host", c.id);
    c.set_cgroups_path(&rel);
    let mut host = HostProcess::sleep_in(&rel);
    let out = c.create();
    out.assert_one_line_error_berth(&["is not ours and not empty: 1 process(es) in it"]);
    c.delete_force();
    assert!(host.alive(), "the host process was killed");
    for dir in &host.cgroup_dirs {
        assert!(dir.is_dir(), "{} was removed", dir.display());
    }
    drop(host);
    c.assert_nothing_left();
}

/// A container joins an empty cgroup that exists; a host process put there later is
/// not the container's: `kill --all` and a forced delete leave it alone.
#[test]
fn a_joined_cgroup_keeps_processes_the_container_did_not_start() {
    if skip_under_runc("sparing processes put into a joined cgroup (runc kills them)") {
        return;
    }
    let mut c = TestContainer::new("cg-join", &["sleep", "1000"]);
    let rel = format!("/berth-test-{}-joined", c.id);
    c.set_cgroups_path(&rel);
    let child = Command::new("sleep").arg("1000").spawn().unwrap();
    let mut host = HostProcess {
        child,
        cgroup_dirs: cgroup_dirs(&rel),
    };
    host.make_cgroup();
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("running");
    host.join();
    c.cmd(&["kill", "--all", &c.id, "KILL"]).assert_success();
    c.wait_for_status("stopped");
    assert!(host.alive(), "kill --all killed a host process");
    c.delete_force().assert_success();
    assert!(host.alive(), "delete --force killed a host process");
    drop(host);
    c.assert_nothing_left();
}

/// Two runtime roots (two daemons, two `--root`s) with a container of the same id in
/// the default cgroup: each has its own cgroup, and force-deleting one leaves the other
/// running.
#[test]
fn the_default_cgroup_is_per_runtime_root() {
    if skip_under_runc("the runtime's default cgroup placement") {
        return;
    }
    let mut a = TestContainer::new("cg-same", &["sleep", "1000"]);
    let mut b = TestContainer::new("cg-same", &["sleep", "1000"]);
    b.id = a.id.clone();
    use_default_cgroup(&mut a);
    use_default_cgroup(&mut b);
    let _guards = [
        ParentGuard(default_parent(&a.root)),
        ParentGuard(default_parent(&b.root)),
    ];
    assert_ne!(a.cgroups_path, b.cgroups_path);
    a.create().assert_success();
    b.create().assert_success();
    a.start().assert_success();
    b.start().assert_success();
    b.wait_for_status("running");
    let b_pid = b.pid();
    let own_cgroup = fs::read_to_string(format!("/proc/{b_pid}/cgroup")).unwrap();
    assert!(own_cgroup.contains(&b.cgroups_path), "{own_cgroup}");
    a.delete_force().assert_success();
    assert_eq!(b.status(), "running", "deleting a's container killed b's");
    a.assert_nothing_left();
    b.delete_force().assert_success();
    b.assert_nothing_left();
    assert_parent_gone(&default_parent(&a.root));
    assert_parent_gone(&default_parent(&b.root));
}
