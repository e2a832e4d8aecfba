//! The harness of tests that drive an OCI runtime binary (`berth-runc`, or runc).
//!
//! Every test drives the runtime *binary* (never the library: cargo's test harness is
//! multithreaded and the runtime clones), against real containers whose root filesystem
//! is built on the fly from the host's own binaries.
//!
//! The binary under test is `$BERTH_TEST_RUNTIME` if set (e.g. `/usr/sbin/runc`, to
//! validate the tests themselves against the reference runtime), else the `berth-runc`
//! binary of this workspace.
//!
//! Each test owns a [`TestContainer`]: a unique id, a unique `--root` state directory, a
//! unique bundle directory and a unique `cgroupsPath`. Dropping it (also on panic) runs
//! `delete --force`, then cleans up, best effort, anything the runtime left behind
//! (processes, mounts, cgroups), so one failing test does not poison the machine. Tests
//! call [`TestContainer::assert_nothing_left`] themselves to *check* the runtime cleaned up.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::host_rootfs::mkdir_mode;

/// How long a single runtime command may take before the harness kills it and fails the
/// test. Generous: it only exists so that a hung runtime fails a test instead of hanging
/// the whole suite.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for a container to reach a state (polling `state`).
pub const STATE_TIMEOUT: Duration = Duration::from_secs(20);

/// Name of the environment variable put into every test container's process env, so
/// leftover processes of a container can be found by scanning `/proc/*/environ`.
pub const MARK_ENV: &str = "BERTH_TEST_ID";

// ---------------------------------------------------------------------------------------
// The runtime under test
// ---------------------------------------------------------------------------------------

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::binary("berth-runc"),
    }
}

/// True when the runtime under test is the reference runc (used to skip or relax the few
/// checks that are berth-specific).
pub fn runtime_is_runc() -> bool {
    runtime()
        .file_name()
        .and_then(OsStr::to_str)
        .map(|n| n == "runc" || n.starts_with("runc."))
        .unwrap_or(false)
}

/// Returns true (and prints why) when a berth-specific check must be skipped because the
/// runtime under test is runc.
pub fn skip_under_runc(what: &str) -> bool {
    if runtime_is_runc() {
        eprintln!("SKIPPED under runc: {what}");
        true
    } else {
        false
    }
}

/// A unique container id: `<prefix>-<pid>-<counter>`.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// Running commands with a timeout
// ---------------------------------------------------------------------------------------

/// Result of one runtime invocation. Stdout and stderr went to files (never pipes: a
/// detached container inherits them and would hold a pipe open forever).
#[derive(Debug)]
pub struct CmdOutput {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "command unexpectedly succeeded: {self}");
        self
    }

    /// Re-reads the stdout file (a created/started container writes to it later).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Re-reads the stderr file.
    pub fn stderr_now(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Non-empty lines of stdout, trimmed.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Asserts the command failed with exactly one non-empty line on stderr, that the
    /// line contains at least one of `any_of` (case-insensitive), and — unless the runtime
    /// is runc, whose messages are terser — at least one of `berth_any_of` too (if given).
    #[track_caller]
    pub fn assert_one_line_error(&self, any_of: &[&str], berth_any_of: &[&str]) -> String {
        self.assert_failure();
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr, got {}: {self}",
            lines.len()
        );
        let line = lines[0].to_string();
        let lower = line.to_lowercase();
        assert!(
            any_of.iter().any(|k| lower.contains(&k.to_lowercase())),
            "error line {line:?} names none of {any_of:?}"
        );
        let names_berth_word = berth_any_of
            .iter()
            .any(|k| lower.contains(&k.to_lowercase()));
        if !berth_any_of.is_empty() && !names_berth_word {
            if runtime_is_runc() {
                eprintln!(
                    "relaxed under runc: error line {line:?} need not name any of {berth_any_of:?}"
                );
            } else {
                panic!("error line {line:?} names none of {berth_any_of:?}");
            }
        }
        line
    }

    /// Like [`CmdOutput::assert_one_line_error`], for cases where runc itself gives no
    /// clear one-line message (berth must do better): under runc only the failure is
    /// checked.
    #[track_caller]
    pub fn assert_one_line_error_berth(&self, any_of: &[&str]) {
        if runtime_is_runc() {
            self.assert_failure();
            eprintln!(
                "relaxed under runc (message not checked): {}",
                self.stderr.trim()
            );
        } else {
            self.assert_one_line_error(any_of, &[]);
        }
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }
}

/// A spawned runtime command, to be waited for later (used to launch many at once).
pub struct RunningCmd {
    cmdline: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    deadline: Instant,
}

impl RunningCmd {
    /// The file the command's stdout goes to, readable while it runs.
    #[allow(dead_code)] // not every test binary follows a running command's output
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// Waits (bounded by [`COMMAND_TIMEOUT`]) for the command and collects its output.
    pub fn wait(mut self) -> CmdOutput {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() >= self.deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "`{}` did not finish within {:?}; killed it. stderr so far:\n{}",
                        self.cmdline,
                        COMMAND_TIMEOUT,
                        fs::read_to_string(&self.stderr_path).unwrap_or_default()
                    );
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for `{}`: {e}", self.cmdline),
            }
        };
        CmdOutput {
            cmdline: self.cmdline,
            status,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stdout_path: self.stdout_path,
            stderr_path: self.stderr_path,
        }
    }
}

/// Spawns `program args...` with stdin from /dev/null and stdout/stderr into fresh files
/// in `io_dir`, optionally in `cwd`.
pub fn spawn_cmd<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    io_dir: &Path,
    cwd: Option<&Path>,
) -> RunningCmd {
    static IO_COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = IO_COUNTER.fetch_add(1, Ordering::SeqCst);
    let stdout_path = io_dir.join(format!("cmd-{n}.stdout"));
    let stderr_path = io_dir.join(format!("cmd-{n}.stderr"));
    let stdout = File::create(&stdout_path).expect("create stdout file");
    let stderr = File::create(&stderr_path).expect("create stderr file");
    let cmdline = std::iter::once(program.as_os_str())
        .chain(args.iter().map(AsRef::as_ref))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning `{cmdline}`: {e}"));
    RunningCmd {
        cmdline,
        child,
        stdout_path,
        stderr_path,
        deadline: Instant::now() + COMMAND_TIMEOUT,
    }
}

/// Runs the runtime with `--root root` and `args`, outputs into files in `io_dir`.
pub fn runtime_cmd<S: AsRef<OsStr>>(root: &Path, io_dir: &Path, args: &[S]) -> CmdOutput {
    spawn_runtime(root, io_dir, args).wait()
}

/// Spawns the runtime with `--root root` and `args` without waiting.
pub fn spawn_runtime<S: AsRef<OsStr>>(root: &Path, io_dir: &Path, args: &[S]) -> RunningCmd {
    let mut full: Vec<&OsStr> = vec![OsStr::new("--root"), root.as_os_str()];
    full.extend(args.iter().map(AsRef::as_ref));
    spawn_cmd(&runtime(), &full, io_dir, None)
}

// ---------------------------------------------------------------------------------------
// Root filesystem
// ---------------------------------------------------------------------------------------

pub use crate::host_rootfs::build_rootfs;

struct SharedRootfs {
    top: PathBuf,
    rootfs: PathBuf,
}

static SHARED_ROOTFS: OnceLock<SharedRootfs> = OnceLock::new();

extern "C" fn remove_shared_rootfs() {
    if let Some(shared) = SHARED_ROOTFS.get() {
        let _ = fs::remove_dir_all(&shared.top);
    }
}

/// A root filesystem shared by all tests of this test binary (built once, removed at
/// exit). Containers use it with `root.readonly: true`; a test that writes to its root
/// filesystem uses [`TestContainer::use_private_rootfs`] instead.
pub fn shared_rootfs() -> &'static Path {
    &SHARED_ROOTFS
        .get_or_init(|| {
            let top = tempfile::Builder::new()
                .prefix("berth-test-rootfs-")
                .tempdir()
                .expect("tempdir for the shared rootfs")
                .keep();
            let rootfs = top.join("rootfs");
            build_rootfs(&rootfs);
            // SAFETY: registering a plain extern "C" fn with no captured state.
            unsafe {
                libc::atexit(remove_shared_rootfs);
            }
            SharedRootfs { top, rootfs }
        })
        .rootfs
}

// ---------------------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------------------

/// The default spec, like `runc spec`'s (minus terminal and capabilities), for container
/// `id` running `args`, with root.path `rootfs` and cgroupsPath `cgroups_path`.
pub fn default_spec(id: &str, args: &[&str], rootfs: &Path, cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/bin:/usr/bin",
                "TERM=xterm",
                format!("{MARK_ENV}={id}"),
            ],
            "cwd": "/",
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs, "readonly": true },
        "hostname": "berth-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [ { "allow": false, "access": "rwm" } ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// What `config.json` the bundle gets when the container is created or run.
pub enum Config {
    /// Serialize [`TestContainer::spec`].
    FromSpec,
    /// Write these exact bytes.
    Raw(String),
    /// Write no config.json at all.
    Missing,
}

// ---------------------------------------------------------------------------------------
// The test container guard
// ---------------------------------------------------------------------------------------

/// One test container: unique id, state root, bundle and cgroupsPath; cleans up on drop.
pub struct TestContainer {
    pub id: String,
    pub spec: Value,
    pub config: Config,
    pub cgroups_path: String,
    /// `--root` of the runtime.
    pub root: PathBuf,
    /// The bundle directory (holds config.json).
    pub bundle: PathBuf,
    /// Where command outputs go; also free for test files (outside the rootfs).
    pub io: PathBuf,
    /// Owns everything above (root may be shared, see [`TestContainer::with_root`]).
    tmp: tempfile::TempDir,
}

impl TestContainer {
    /// A container running `args` in the shared read-only rootfs, with its own `--root`.
    pub fn new(prefix: &str, args: &[&str]) -> Self {
        Self::build(prefix, args, None)
    }

    /// Like [`TestContainer::new`] but with a given `--root` (shared by several
    /// containers; the caller keeps the directory alive longer than the containers).
    pub fn with_root(prefix: &str, args: &[&str], root: &Path) -> Self {
        Self::build(prefix, args, Some(root))
    }

    fn build(prefix: &str, args: &[&str], root: Option<&Path>) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the berth-runc integration tests start real containers and must run as root"
        );
        let id = unique_id(prefix);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("berth-test-{id}-"))
            .tempdir()
            .expect("tempdir");
        let own_root = tmp.path().join("root");
        mkdir_mode(&own_root, 0o700);
        let root = root.map(Path::to_path_buf).unwrap_or(own_root);
        let bundle = tmp.path().join("bundle");
        let io = tmp.path().join("io");
        mkdir_mode(&bundle, 0o755);
        mkdir_mode(&io, 0o755);
        let cgroups_path = format!("/berth-test-{id}");
        let spec = default_spec(&id, args, shared_rootfs(), &cgroups_path);
        TestContainer {
            id,
            spec,
            config: Config::FromSpec,
            cgroups_path,
            root,
            bundle,
            io,
            tmp,
        }
    }

    /// The test's temporary directory (bundle, io and, unless shared, root live in it).
    pub fn tmp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Gives this container its own writable copy of the rootfs at `<bundle>/rootfs`
    /// (root.path set to the relative "rootfs", root.readonly false).
    pub fn use_private_rootfs(&mut self) -> PathBuf {
        let rootfs = self.bundle.join("rootfs");
        copy_tree(shared_rootfs(), &rootfs);
        self.spec["root"] = json!({ "path": "rootfs", "readonly": false });
        rootfs
    }

    /// Sets the cgroupsPath in the spec too.
    pub fn set_cgroups_path(&mut self, path: &str) {
        self.cgroups_path = path.to_string();
        self.spec["linux"]["cgroupsPath"] = json!(path);
    }

    /// Writes config.json into the bundle according to [`TestContainer::config`].
    pub fn write_config(&self) {
        let path = self.bundle.join("config.json");
        match &self.config {
            Config::FromSpec => {
                fs::write(&path, serde_json::to_vec_pretty(&self.spec).unwrap()).unwrap()
            }
            Config::Raw(text) => fs::write(&path, text).unwrap(),
            Config::Missing => {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Runs the runtime with this container's `--root` and `args`.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> CmdOutput {
        runtime_cmd(&self.root, &self.io, args)
    }

    /// Spawns the runtime with this container's `--root` and `args` without waiting.
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S]) -> RunningCmd {
        spawn_runtime(&self.root, &self.io, args)
    }

    fn lifecycle_args(&self, verb: &str, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            verb.to_string(),
            "--bundle".to_string(),
            self.bundle.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(self.id.clone());
        v
    }

    /// `create --bundle B [extra] ID` (writes config.json first). The container's stdio
    /// is the command's: read its output later with [`CmdOutput::stdout_now`].
    pub fn create(&self) -> CmdOutput {
        self.create_with(&[])
    }

    pub fn create_with(&self, extra: &[&str]) -> CmdOutput {
        self.write_config();
        self.cmd(&self.lifecycle_args("create", extra))
    }

    /// Spawns `create` without waiting (config.json must already be written).
    pub fn spawn_create(&self) -> RunningCmd {
        self.spawn(&self.lifecycle_args("create", &[]))
    }

    /// `run --bundle B [extra] ID` (writes config.json first).
    pub fn run(&self) -> CmdOutput {
        self.run_with(&[])
    }

    pub fn run_with(&self, extra: &[&str]) -> CmdOutput {
        self.write_config();
        self.cmd(&self.lifecycle_args("run", extra))
    }

    /// `run` that must succeed; returns its stdout (the container's output).
    #[track_caller]
    pub fn run_ok(&self) -> String {
        let out = self.run();
        assert!(out.success(), "run failed: {out}");
        out.stdout
    }

    pub fn start(&self) -> CmdOutput {
        self.cmd(&["start", &self.id])
    }

    pub fn kill(&self, signal: &str) -> CmdOutput {
        self.cmd(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> CmdOutput {
        self.cmd(&["delete", &self.id])
    }

    pub fn delete_force(&self) -> CmdOutput {
        self.cmd(&["delete", "--force", &self.id])
    }

    /// `state ID` parsed, or the failed command.
    pub fn state(&self) -> Result<Value, Box<CmdOutput>> {
        let out = self.cmd(&["state", &self.id]);
        if !out.success() {
            return Err(Box::new(out));
        }
        match serde_json::from_str(&out.stdout) {
            Ok(v) => Ok(v),
            Err(e) => panic!("state printed invalid JSON ({e}): {out}"),
        }
    }

    /// The state's status, panicking if `state` fails.
    #[track_caller]
    pub fn status(&self) -> String {
        match self.state() {
            Ok(v) => v["status"].as_str().unwrap_or_default().to_string(),
            Err(out) => panic!("state failed: {out}"),
        }
    }

    /// The init pid from `state`.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let st = self.state().unwrap_or_else(|o| panic!("state failed: {o}"));
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state has no pid: {st}")) as i32
    }

    /// Polls `state` until its status is `want` (bounded by [`STATE_TIMEOUT`]).
    #[track_caller]
    pub fn wait_for_status(&self, want: &str) -> Value {
        let deadline = Instant::now() + STATE_TIMEOUT;
        loop {
            let st = self.state().unwrap_or_else(|o| panic!("state failed: {o}"));
            if st["status"] == want {
                return st;
            }
            if Instant::now() >= deadline {
                panic!(
                    "container {} never reached {want:?}; last state: {st}",
                    self.id
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until `f(file contents)` holds for the file at `path` (bounded).
    #[track_caller]
    pub fn wait_for_file(&self, path: &Path, what: &str, f: impl Fn(&str) -> bool) -> String {
        wait_for_file(path, what, f)
    }

    /// Panics if anything of this container is left: state, cgroup, mount, process.
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        assert_nothing_left(&self.id, &self.root, &self.cgroups_path, &[self.tmp.path()]);
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        // Ask the runtime first; it is the thing under test, but never let its failure
        // (or a hang) turn into a panic inside drop.
        if let Ok(mut child) = Command::new(runtime())
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        force_cleanup(&self.id, &self.cgroups_path, &[self.tmp.path()]);
        // If the root is shared, remove this id's state entry if the runtime left one.
        if !self.root.starts_with(self.tmp.path()) {
            if let Ok(entries) = fs::read_dir(&self.root) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy() == self.id {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        // The TempDir field then removes bundle, io and (own) root.
    }
}

/// Polls until `f(contents of path)` is true, for at most [`STATE_TIMEOUT`].
#[track_caller]
pub fn wait_for_file(path: &Path, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if f(&text) {
            return text;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out waiting for {what} in {}; it holds:\n{text}",
                path.display()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Recursively copies a directory tree (files, dirs, symlinks), preserving modes.
pub fn copy_tree(src: &Path, dest: &Path) {
    let meta = fs::symlink_metadata(src).unwrap();
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src).unwrap(), dest).unwrap();
    } else if meta.is_dir() {
        mkdir_mode(dest, meta.permissions().mode() & 0o7777);
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &dest.join(e.file_name()));
        }
    } else {
        fs::copy(src, dest).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Leftover detection and cleanup
// ---------------------------------------------------------------------------------------

/// Mount points of every cgroup hierarchy (v1 and v2) mounted on the host.
pub fn cgroup_mountpoints() -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| m.mountpoint)
        .collect()
}

/// True on a cgroup v2 only ("unified") host.
pub fn cgroup_v2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub use berth_runtime::mountinfo::{parse as parse_mountinfo, MountInfo};

/// The host's (this process's) mounts.
pub fn mountinfo() -> Vec<MountInfo> {
    berth_runtime::mountinfo::read_self().unwrap_or_default()
}

/// Pids of processes that belong to container `id`: `BERTH_TEST_ID=<id>` in their
/// environment, or a cgroup path equal to (or under) `cgroups_path`.
pub fn container_processes(id: &str, cgroups_path: &str) -> Vec<i32> {
    let marker = format!("{MARK_ENV}={id}");
    let cg = cgroups_path.trim_end_matches('/');
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !process_alive(pid) {
            continue;
        }
        let environ = fs::read(e.path().join("environ")).unwrap_or_default();
        let marked = environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes());
        let in_cgroup = !cg.is_empty()
            && fs::read_to_string(e.path().join("cgroup"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.splitn(3, ':').nth(2))
                .any(|p| p == cg || p.starts_with(&format!("{cg}/")));
        if marked || in_cgroup {
            pids.push(pid);
        }
    }
    pids
}

/// What is left of container `id` (empty if nothing): state entries under `root`,
/// cgroup directories for `cgroups_path`, mounts under `paths`, processes.
pub fn leftovers(id: &str, root: &Path, cgroups_path: &str, paths: &[&Path]) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(entries) = fs::read_dir(root) {
        for e in entries.flatten() {
            // `<id>` itself or `<id>.<anything>` (a lock or json file), not `<id>0`.
            let name = e.file_name().to_string_lossy().into_owned();
            if name == id || name.starts_with(&format!("{id}.")) {
                left.push(format!("state entry {}", e.path().display()));
            }
        }
    }
    let rel = cgroups_path.trim_start_matches('/');
    if !rel.is_empty() {
        for mp in cgroup_mountpoints() {
            let dir = mp.join(rel);
            if dir.exists() {
                left.push(format!("cgroup {}", dir.display()));
            }
        }
    }
    let mut watched: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    watched.push(shared_rootfs().to_path_buf());
    for m in mountinfo() {
        if watched.iter().any(|p| m.mountpoint.starts_with(p)) {
            left.push(format!("mount {}", m.mountpoint.display()));
        }
    }
    for pid in container_processes(id, cgroups_path) {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        left.push(format!("process {pid} ({})", cmdline.trim()));
    }
    left
}

/// Panics if anything of container `id` is left. Processes get a bounded grace period
/// to finish exiting (a killed process may take a moment to disappear from /proc).
#[track_caller]
pub fn assert_nothing_left(id: &str, root: &Path, cgroups_path: &str, paths: &[&Path]) {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let left = leftovers(id, root, cgroups_path, paths);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "container {id} left things behind:\n  {}",
                left.join("\n  ")
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Best effort removal of whatever container `id` left: kills its processes, detaches
/// mounts under `paths`, removes its cgroup directories. Reports what it had to do.
pub fn force_cleanup(id: &str, cgroups_path: &str, paths: &[&Path]) {
    let mut cleaned = Vec::new();
    for _ in 0..50 {
        let pids = container_processes(id, cgroups_path);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid and a signal number.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            cleaned.push(format!("killed process {pid}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut mounts: Vec<PathBuf> = mountinfo()
        .into_iter()
        .map(|m| m.mountpoint)
        .filter(|mp| paths.iter().any(|p| mp.starts_with(p)))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for mp in mounts {
        let _ = nix::mount::umount2(&mp, nix::mount::MntFlags::MNT_DETACH);
        cleaned.push(format!("unmounted {}", mp.display()));
    }
    let rel = cgroups_path.trim_start_matches('/');
    if !rel.is_empty() {
        for mp in cgroup_mountpoints() {
            let dir = mp.join(rel);
            if dir.exists() {
                remove_cgroup_tree(&dir);
                cleaned.push(format!("removed cgroup {}", dir.display()));
            }
        }
    }
    if !cleaned.is_empty() {
        eprintln!(
            "cleanup of container {id} had to clean up after the runtime: {}",
            cleaned.join(", ")
        );
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// Console socket
// ---------------------------------------------------------------------------------------

/// A `--console-socket`: a listening Unix socket; a background thread accepts one
/// connection and receives the pty master over SCM_RIGHTS.
pub struct ConsoleSocket {
    pub path: PathBuf,
    received: std::sync::mpsc::Receiver<std::io::Result<File>>,
}

impl ConsoleSocket {
    /// Listens at `dir/console.sock`.
    pub fn new(dir: &Path) -> Self {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener.set_nonblocking(true).unwrap();
        let (tx, received) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(receive_pty_master(listener));
        });
        ConsoleSocket { path, received }
    }

    pub fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    /// The pty master the runtime sent. Call it after `create` (or `run -d`) returned:
    /// by then the runtime has sent it, so this waits only a bounded moment.
    pub fn master(self) -> std::io::Result<File> {
        self.received
            .recv_timeout(STATE_TIMEOUT)
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the runtime sent no pty master over the console socket",
                ))
            })
    }
}

fn receive_pty_master(listener: UnixListener) -> std::io::Result<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "nobody connected to the console socket",
                    ));
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(v) = c {
            fds.extend(v);
        }
    }
    let mut files: Vec<File> = fds
        .into_iter()
        // SAFETY: the fds were just received over SCM_RIGHTS and are owned by nobody else.
        .map(|fd| unsafe { File::from_raw_fd(fd) })
        .collect();
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no fd received over the console socket",
        ));
    }
    Ok(files.swap_remove(0))
}

/// Reads a pty master until the slave side is closed everywhere (EIO) or EOF; bounded
/// by [`COMMAND_TIMEOUT`] (reads happen in a thread).
pub fn read_pty_to_end(master: File) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut master = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break, // EIO: no slave open any more
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
    });
    rx.recv_timeout(COMMAND_TIMEOUT)
        .expect("reading the pty master timed out")
}

// ---------------------------------------------------------------------------------------
// Misc helpers
// ---------------------------------------------------------------------------------------

/// `readlink /proc/self/ns/<ns>` of this (host) process, e.g. "net:[4026531840]".
pub fn host_ns(ns: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// Reads a file under a cgroup hierarchy: `/sys/fs/cgroup/<controller>/<path>/<file>`
/// (v1) or `/sys/fs/cgroup/<path>/<file>` (v2 unified, controller ignored).
pub fn cgroup_file(controller: &str, cgroups_path: &str, file: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if cgroup_v2_unified() {
        Path::new("/sys/fs/cgroup").join(rel).join(file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(rel)
            .join(file)
    }
}

/// Reads and trims a file, panicking with its path on error.
#[track_caller]
pub fn read_trim(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Whether a process exists.
pub fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    berth_procfs::Stat::read(pid).is_ok_and(|s| !s.exited())
}

/// Polls (bounded by [`STATE_TIMEOUT`]) until `pid` is dead (gone or a zombie).
#[track_caller]
pub fn wait_until_dead(pid: i32) {
    let deadline = Instant::now() + STATE_TIMEOUT;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            panic!("process {pid} ({}) is still alive", cmdline_of(pid));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `/proc/<pid>/cmdline` with NULs as spaces.
pub fn cmdline_of(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
        .trim()
        .to_string()
}
