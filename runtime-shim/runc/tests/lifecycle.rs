//! Lifecycle: create / start / state / kill / delete / run / list / ps / spec.

use std::fs;

use berth_testkit::runc::*;
use serde_json::{json, Value};

#[test]
fn create_start_stopped_delete_states() {
    let c = TestContainer::new("lc-states", &["sh", "-c", "echo started-marker; echo done"]);
    let created = c.create();
    created.assert_success();

    // After create: status created, init exists, the user program has not run.
    let st = c.state().unwrap_or_else(|o| panic!("state: {o}"));
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    assert!(st["ociVersion"].is_string(), "state lacks ociVersion: {st}");
    let bundle = fs::canonicalize(&c.bundle).unwrap();
    assert_eq!(
        st["bundle"].as_str().map(std::path::PathBuf::from),
        Some(bundle),
        "{st}"
    );
    let pid = st["pid"].as_i64().expect("pid in state") as i32;
    assert!(pid > 0, "{st}");
    assert!(process_alive(pid), "init {pid} is not alive after create");
    let cmdline = cmdline_of(pid);
    assert!(
        !cmdline.contains("started-marker"),
        "init already exec'd the user program after create: {cmdline:?}"
    );
    assert!(
        !created.stdout_now().contains("started-marker"),
        "the user program ran before start"
    );
    // The init is already in the container's cgroup and namespaces.
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.lines().any(|l| l.ends_with(&c.cgroups_path)),
        "init is not in cgroup {} before start:\n{cg}",
        c.cgroups_path
    );
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let inside = fs::read_link(format!("/proc/{pid}/ns/{ns}"))
            .unwrap()
            .display()
            .to_string();
        assert_ne!(inside, host_ns(ns), "init shares the host's {ns} namespace");
    }

    c.start().assert_success();
    created_output_has(&created, "started-marker");
    let st = c.wait_for_status("stopped");
    assert_eq!(st["id"], c.id.as_str());
    assert!(created.stdout_now().contains("done"));

    c.delete().assert_success();
    let gone = c.state();
    assert!(gone.is_err(), "state still works after delete: {gone:?}");
    c.assert_nothing_left();
}

fn created_output_has(created: &CmdOutput, what: &str) {
    wait_for_file(&created.stdout_path, what, |t| t.contains(what));
}

#[test]
fn running_state_and_ps() {
    let c = TestContainer::new("lc-running", &["sh", "-c", "echo up; exec sleep 1000"]);
    let created = c.create();
    created.assert_success();
    let pid = c.pid();
    c.start().assert_success();
    created_output_has(&created, "up");
    let st = c.wait_for_status("running");
    assert_eq!(
        st["pid"].as_i64(),
        Some(pid as i64),
        "pid changed on start: {st}"
    );
    // The user program replaced the init (same pid).
    wait_for_cmdline(pid, "sleep 1000");

    let ps = c.cmd(&["ps", "--format", "json", &c.id]);
    ps.assert_success();
    let pids: Value = serde_json::from_str(&ps.stdout).unwrap_or_else(|e| panic!("{e}: {ps}"));
    let pids: Vec<i64> = pids
        .as_array()
        .unwrap_or_else(|| panic!("ps json is not an array: {ps}"))
        .iter()
        .map(|v| v.as_i64().expect("pid number"))
        .collect();
    assert_eq!(pids, vec![pid as i64], "{ps}");

    let ps = c.cmd(&["ps", &c.id]);
    ps.assert_success();
    assert!(
        ps.stdout
            .split_whitespace()
            .any(|w| w == pid.to_string().as_str()),
        "ps table lacks pid {pid}: {ps}"
    );

    c.kill("KILL").assert_success();
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

fn wait_for_cmdline(pid: i32, want: &str) {
    let path = std::path::PathBuf::from(format!("/proc/{pid}/cmdline"));
    wait_for_file(&path, want, |t| t.replace('\0', " ").trim() == want);
}

#[test]
fn ps_lists_all_processes() {
    let c = TestContainer::new(
        "lc-psall",
        &["sh", "-c", "sleep 1000 & sleep 1001 & echo forked; wait"],
    );
    let created = c.create();
    created.assert_success();
    c.start().assert_success();
    created_output_has(&created, "forked");
    let ps = c.cmd(&["ps", "--format", "json", &c.id]);
    ps.assert_success();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap_or_else(|e| panic!("{e}: {ps}"));
    assert_eq!(pids.len(), 3, "expected sh + 2 sleeps: {ps}");
    for p in &pids {
        assert!(
            process_alive(*p as i32),
            "ps listed {p} which is not a live process"
        );
    }
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn annotations_in_state() {
    let mut c = TestContainer::new("lc-annot", &["true"]);
    c.spec["annotations"] = json!({ "org.berth.test": "yes", "other": "1" });
    c.create().assert_success();
    let st = c.state().unwrap_or_else(|o| panic!("{o}"));
    assert_eq!(st["annotations"]["org.berth.test"], "yes", "{st}");
    assert_eq!(st["annotations"]["other"], "1", "{st}");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn pid_file_matches_state() {
    let c = TestContainer::new("lc-pidfile", &["true"]);
    let pid_file = c.io.join("init.pid");
    c.create_with(&["--pid-file", pid_file.to_str().unwrap()])
        .assert_success();
    let written = read_trim(&pid_file);
    assert_eq!(written, c.pid().to_string(), "pid file vs state");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn run_exits_with_container_exit_code_and_removes_it() {
    let c = TestContainer::new("lc-exit7", &["sh", "-c", "echo out-marker; exit 7"]);
    let out = c.run();
    assert_eq!(out.code(), Some(7), "{out}");
    assert!(out.stdout.contains("out-marker"), "{out}");
    assert!(c.state().is_err(), "run left the container behind");
    c.assert_nothing_left();
}

#[test]
fn run_exit_code_zero_and_stderr() {
    let c = TestContainer::new(
        "lc-exit0",
        &["sh", "-c", "echo to-stderr >&2; echo to-stdout"],
    );
    let out = c.run();
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout.trim(), "to-stdout", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    c.assert_nothing_left();
}

#[test]
fn run_exit_code_of_signal_death() {
    // A process killed by SIGKILL: the shell reports 128+9.
    let c = TestContainer::new(
        "lc-exitsig",
        &["sh", "-c", "sleep 1000 & kill -9 $!; wait $!"],
    );
    let out = c.run();
    assert_eq!(out.code(), Some(137), "{out}");
    c.assert_nothing_left();
}

#[test]
fn run_keep_keeps_stopped_container() {
    let c = TestContainer::new("lc-keep", &["sh", "-c", "exit 3"]);
    let out = c.run_with(&["--keep"]);
    assert_eq!(out.code(), Some(3), "{out}");
    assert_eq!(c.status(), "stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn run_detached_with_pid_file() {
    let c = TestContainer::new("lc-detach", &["sleep", "1000"]);
    let pid_file = c.io.join("run.pid");
    let out = c.run_with(&["-d", "--pid-file", pid_file.to_str().unwrap()]);
    out.assert_success();
    let st = c.wait_for_status("running");
    assert_eq!(read_trim(&pid_file), st["pid"].to_string());
    wait_for_cmdline(st["pid"].as_i64().unwrap() as i32, "sleep 1000");
    c.kill("9").assert_success();
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn run_no_pivot() {
    let c = TestContainer::new(
        "lc-nopivot",
        &["sh", "-c", "echo pid=$$; cat /etc/hostname"],
    );
    let out = c.run_with(&["--no-pivot"]);
    out.assert_success();
    assert_eq!(out.stdout_lines(), vec!["pid=1", "rootfs"], "{out}");
    c.assert_nothing_left();
}

/// A shell as pid 1 that exits with 3 after printing which signal arrived.
const TRAP_SCRIPT: &str = "trap 'echo got-term; exit 3' TERM; trap 'echo got-usr1; exit 4' USR1; \
                           echo ready; sleep 1000 & wait";

fn kill_with(name: &str, signal: &str, expect: &str) {
    let c = TestContainer::new(name, &["sh", "-c", TRAP_SCRIPT]);
    let created = c.create();
    created.assert_success();
    c.start().assert_success();
    created_output_has(&created, "ready");
    c.kill(signal).assert_success();
    c.wait_for_status("stopped");
    assert!(
        created.stdout_now().contains(expect),
        "signal {signal} not delivered as {expect}: {}",
        created.stdout_now()
    );
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn kill_sigterm_by_full_name() {
    kill_with("lc-kill-sigterm", "SIGTERM", "got-term");
}

#[test]
fn kill_term_by_short_name() {
    kill_with("lc-kill-term", "TERM", "got-term");
}

#[test]
fn kill_15_by_number() {
    kill_with("lc-kill-15", "15", "got-term");
}

#[test]
fn kill_usr1() {
    kill_with("lc-kill-usr1", "SIGUSR1", "got-usr1");
}

#[test]
fn kill_default_signal_is_term() {
    let c = TestContainer::new("lc-kill-default", &["sh", "-c", TRAP_SCRIPT]);
    let created = c.create();
    created.assert_success();
    c.start().assert_success();
    created_output_has(&created, "ready");
    c.cmd(&["kill", &c.id]).assert_success();
    c.wait_for_status("stopped");
    assert!(created.stdout_now().contains("got-term"));
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn kill_kill_names() {
    for sig in ["SIGKILL", "KILL", "9"] {
        let c = TestContainer::new("lc-kill-kill", &["sleep", "1000"]);
        c.create().assert_success();
        c.start().assert_success();
        c.wait_for_status("running");
        c.kill(sig).assert_success();
        c.wait_for_status("stopped");
        c.delete().assert_success();
        c.assert_nothing_left();
    }
}

#[test]
fn kill_created_container() {
    // A container that was never started can be killed, then deleted.
    let c = TestContainer::new("lc-kill-created", &["sleep", "1000"]);
    c.create().assert_success();
    let pid = c.pid();
    c.kill("KILL").assert_success();
    c.wait_for_status("stopped");
    wait_until_dead(pid);
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn kill_all_kills_every_process() {
    let c = TestContainer::new(
        "lc-kill-all",
        &[
            "sh",
            "-c",
            "trap '' TERM; sleep 1000 & sleep 1001 & echo ready; wait",
        ],
    );
    let created = c.create();
    created.assert_success();
    c.start().assert_success();
    created_output_has(&created, "ready");
    let out = c.cmd(&["kill", "--all", &c.id, "KILL"]);
    out.assert_success();
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn delete_stopped_without_force() {
    let c = TestContainer::new("lc-del-stopped", &["true"]);
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn delete_created_with_force() {
    let c = TestContainer::new("lc-del-created", &["sleep", "1000"]);
    c.create().assert_success();
    let pid = c.pid();
    c.delete_force().assert_success();
    assert!(c.state().is_err());
    c.assert_nothing_left();
    wait_until_dead(pid);
}

#[test]
fn list_table_and_json() {
    let a = TestContainer::new("lc-list-a", &["sleep", "1000"]);
    let b = TestContainer::with_root("lc-list-b", &["sleep", "1000"], &a.root);
    a.create().assert_success();
    b.create().assert_success();
    b.start().assert_success();
    b.wait_for_status("running");

    let table = a.cmd(&["list"]);
    table.assert_success();
    let header = table.stdout.lines().next().unwrap_or_default().to_string();
    for col in ["ID", "PID", "STATUS", "BUNDLE"] {
        assert!(header.contains(col), "list header lacks {col}: {table}");
    }
    for (c, status) in [(&a, "created"), (&b, "running")] {
        let line = table
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
            .unwrap_or_else(|| panic!("list lacks {}: {table}", c.id));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], c.pid().to_string(), "{line}");
        assert_eq!(cols[2], status, "{line}");
    }

    let js = a.cmd(&["list", "--format", "json"]);
    js.assert_success();
    let v: Value = serde_json::from_str(&js.stdout).unwrap_or_else(|e| panic!("{e}: {js}"));
    let arr = v.as_array().unwrap_or_else(|| panic!("not an array: {js}"));
    assert_eq!(arr.len(), 2, "{js}");
    for (c, status) in [(&a, "created"), (&b, "running")] {
        let e = arr
            .iter()
            .find(|e| e["id"] == c.id.as_str())
            .unwrap_or_else(|| panic!("list json lacks {}: {js}", c.id));
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["pid"].as_i64(), Some(c.pid() as i64), "{e}");
        assert_eq!(
            e["bundle"].as_str().map(std::path::PathBuf::from),
            Some(fs::canonicalize(&c.bundle).unwrap()),
            "{e}"
        );
    }

    b.delete_force().assert_success();
    a.delete_force().assert_success();
    let js = a.cmd(&["list", "--format", "json"]);
    js.assert_success();
    let v: Value = serde_json::from_str(&js.stdout).unwrap_or_else(|e| panic!("{e}: {js}"));
    // runc prints `null` for an empty list; `[]` is accepted too.
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "list after delete is not empty: {js}"
    );
    a.assert_nothing_left();
    b.assert_nothing_left();
}

#[test]
fn list_empty_root() {
    let c = TestContainer::new("lc-list-empty", &["true"]);
    let table = c.cmd(&["list"]);
    table.assert_success();
    assert_eq!(table.stdout.lines().count(), 1, "only the header: {table}");
    let quiet = c.cmd(&["list", "-q"]);
    quiet.assert_success();
    assert_eq!(quiet.stdout.trim(), "", "{quiet}");
}

#[test]
fn list_quiet_prints_ids() {
    let c = TestContainer::new("lc-list-q", &["true"]);
    c.create().assert_success();
    let quiet = c.cmd(&["list", "-q"]);
    quiet.assert_success();
    assert_eq!(quiet.stdout_lines(), vec![c.id.clone()], "{quiet}");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn spec_writes_default_config() {
    let c = TestContainer::new("lc-spec", &["true"]);
    let out = c.cmd(&["spec", "--bundle", c.bundle.to_str().unwrap()]);
    out.assert_success();
    let text = fs::read_to_string(c.bundle.join("config.json")).expect("spec wrote no config.json");
    let v: Value = serde_json::from_str(&text).expect("spec's config.json is not JSON");
    assert!(
        v["ociVersion"].as_str().is_some_and(|s| s.starts_with('1')),
        "{v}"
    );
    assert_eq!(v["root"]["path"], "rootfs", "{v}");
    assert!(v["process"]["args"].is_array(), "{v}");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(
            ns.contains(&want),
            "default spec lacks {want} namespace: {ns:?}"
        );
    }
    // A second spec refuses to overwrite it.
    let again = c.cmd(&["spec", "--bundle", c.bundle.to_str().unwrap()]);
    again.assert_one_line_error(&["config.json", "exist"], &[]);
}

#[test]
fn spec_in_current_directory() {
    let c = TestContainer::new("lc-spec-cwd", &["true"]);
    let out = spawn_cmd(&runtime(), &["spec"], &c.io, Some(&c.bundle)).wait();
    out.assert_success();
    let v: Value =
        serde_json::from_slice(&fs::read(c.bundle.join("config.json")).unwrap()).unwrap();
    assert!(v["ociVersion"].is_string());
}

#[test]
fn spec_rootless() {
    let c = TestContainer::new("lc-spec-rootless", &["true"]);
    let out = c.cmd(&["spec", "--rootless", "--bundle", c.bundle.to_str().unwrap()]);
    out.assert_success();
    let v: Value =
        serde_json::from_slice(&fs::read(c.bundle.join("config.json")).unwrap()).unwrap();
    let ns = v["linux"]["namespaces"].as_array().expect("namespaces");
    assert!(
        ns.iter().any(|n| n["type"] == "user"),
        "no user namespace: {v}"
    );
    assert!(v["linux"]["uidMappings"].is_array(), "{v}");
    assert!(v["linux"]["gidMappings"].is_array(), "{v}");
}

#[test]
fn spec_output_runs() {
    // The default spec, pointed at our rootfs, is a working container.
    let mut c = TestContainer::new("lc-spec-run", &["true"]);
    c.cmd(&["spec", "--bundle", c.bundle.to_str().unwrap()])
        .assert_success();
    let mut v: Value =
        serde_json::from_slice(&fs::read(c.bundle.join("config.json")).unwrap()).unwrap();
    v["root"]["path"] = json!(shared_rootfs());
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["sh", "-c", "echo from-spec; echo pid=$$"]);
    v["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("{MARK_ENV}={}", c.id)));
    v["linux"]["cgroupsPath"] = json!(c.cgroups_path);
    c.spec = v;
    let out = c.run();
    out.assert_success();
    assert_eq!(out.stdout_lines(), vec!["from-spec", "pid=1"], "{out}");
    c.assert_nothing_left();
}

#[test]
fn relative_root_path_and_writable_rootfs() {
    let mut c = TestContainer::new(
        "lc-relroot",
        &["sh", "-c", "echo data > /written && echo ok"],
    );
    let rootfs = c.use_private_rootfs();
    let out = c.run();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "ok");
    assert_eq!(read_trim(&rootfs.join("written")), "data");
    c.assert_nothing_left();
}

#[test]
fn log_file_json_on_error() {
    // --log/--log-format json: errors land in the log file as JSON lines with a level
    // and a message (containerd reads them this way).
    let mut c = TestContainer::new("lc-logjson", &["true"]);
    c.config = Config::Missing;
    let log = c.io.join("runtime.log");
    c.write_config();
    let out = c.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        c.bundle.to_str().unwrap(),
        &c.id,
    ]);
    out.assert_failure();
    let text = fs::read_to_string(&log).expect("no log file written");
    let errors: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .filter(|v: &Value| v["level"] == "error")
        .collect();
    assert!(!errors.is_empty(), "no error in the log: {text}");
    assert!(
        errors
            .iter()
            .any(|e| e["msg"].as_str().is_some_and(|m| m.contains("config.json"))),
        "no error names config.json: {text}"
    );
    c.assert_nothing_left();
}

#[test]
fn version_flag() {
    let c = TestContainer::new("lc-version", &["true"]);
    let out = spawn_cmd(&runtime(), &["--version"], &c.io, None).wait();
    out.assert_success();
    // runc prints "runc version 1.1.5+ds1" then commit/spec/go lines; any first line
    // carrying a dotted version number is accepted.
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first
            .split(|c: char| c.is_whitespace() || c == '+')
            .any(|w| w.split('.').count() >= 2
                && w.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))),
        "no version number on the first line: {out}"
    );
}

#[test]
fn preserve_fds_passes_exactly_the_given_descriptors() {
    // fd 3 and 4 are open in the caller; with --preserve-fds 1 only fd 3 reaches the
    // container (read through it), and nothing beyond it leaks.
    let c = TestContainer::new(
        "lc-preserve-fds",
        &["sh", "-c", "cat <&3; ls /proc/self/fd | tr '\\n' ' '"],
    );
    c.write_config();
    let secret = c.tmp_path().join("fd3.txt");
    fs::write(&secret, "through-fd-3\n").unwrap();
    let script = format!(
        "exec 3<{} 4</dev/null; exec {} --root {} run --preserve-fds 1 --bundle {} {}",
        secret.display(),
        runtime().display(),
        c.root.display(),
        c.bundle.display(),
        c.id
    );
    let out = spawn_cmd(
        std::path::Path::new("/bin/sh"),
        &["-c", &script],
        &c.io,
        None,
    )
    .wait();
    out.assert_success();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "through-fd-3", "{out}");
    // ls itself opens one more descriptor (3 is ours, the next is ls's directory).
    let fds: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(fds[..4], ["0", "1", "2", "3"], "{out}");
    assert!(
        fds.len() <= 5,
        "descriptors leaked into the container: {fds:?}"
    );
    c.assert_nothing_left();
}

#[test]
fn a_runtime_root_it_makes_is_root_only() {
    // Others must not reach a container's exec FIFO: holding its write end open would
    // keep `start` waiting for ever.
    use std::os::unix::fs::PermissionsExt;
    let c = TestContainer::new("lc-root-mode", &["true"]);
    c.write_config();
    let root = c.tmp_path().join("fresh-root");
    let bundle = c.bundle.to_str().unwrap();
    runtime_cmd(&root, &c.io, &["create", "--bundle", bundle, &c.id]).assert_success();
    let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    runtime_cmd(&root, &c.io, &["delete", "--force", &c.id]).assert_success();
    assert_eq!(mode, 0o700, "runtime root mode {mode:o}");
}

#[test]
fn preserve_fds_beyond_what_the_caller_holds_is_refused() {
    // With only stdio open, fds 3..5 would be the runtime's own (its log, its state
    // directory handle): handing those to the container would open the host to it.
    if skip_under_runc("runc passes whatever sits at 3..3+N") {
        return;
    }
    let c = TestContainer::new("lc-preserve-none", &["ls", "/proc/self/fd"]);
    c.write_config();
    let log = c.tmp_path().join("runtime.log");
    let script = format!(
        "exec {} --root {} --log {} run --preserve-fds 3 --bundle {} {}",
        runtime().display(),
        c.root.display(),
        log.display(),
        c.bundle.display(),
        c.id
    );
    let out = spawn_cmd(
        std::path::Path::new("/bin/sh"),
        &["-c", &script],
        &c.io,
        None,
    )
    .wait();
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("descriptor 3 is not open"), "{out}");
    c.assert_nothing_left();
}

#[test]
fn process_is_optional_at_create_and_required_at_start() {
    // Issue 12.3 (runtime-spec: `process` is REQUIRED when start is called).
    if skip_under_runc("runc requires process at create") {
        return;
    }
    let mut c = TestContainer::new("lc-noprocess", &["true"]);
    c.spec.as_object_mut().unwrap().remove("process");
    c.create().assert_success();
    assert_eq!(c.status(), "created");
    let pid = c.pid();
    c.start().assert_one_line_error(&["no process"], &[]);
    // Refused without effect: still created, same init.
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
    c.delete_force().assert_success();
    wait_until_dead(pid);
    c.assert_nothing_left();
}
