//! `exec`: a further process inside a running container joins its namespaces and
//! cgroup, takes the container's settings unless told otherwise, and reports its status.

use berth_testkit::runc::*;
use serde_json::json;

/// A running container whose init sleeps; `exec` goes into it.
fn running(prefix: &str) -> TestContainer {
    let c = TestContainer::new(prefix, &["sleep", "1000"]);
    c.run_with(&["-d"]).assert_success();
    c.wait_for_status("running");
    c
}

fn exec(c: &TestContainer, extra: &[&str], command: &[&str]) -> CmdOutput {
    let mut args = vec!["exec"];
    args.extend_from_slice(extra);
    args.push(&c.id);
    args.extend_from_slice(command);
    c.cmd(&args)
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let c = running("exec-ns");
    let pid = c.pid();
    let out = exec(
        &c,
        &[],
        &["sh", "-c", "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup"],
    );
    out.assert_success();
    let inside = out.stdout_lines();
    for (i, ns) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .enumerate()
    {
        let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(
            inside[i],
            init_ns.to_string_lossy(),
            "{ns} namespace differs from the init's"
        );
    }
    // In the container's cgroup namespace, its own cgroup is the root.
    assert!(
        inside[6..].iter().all(|l| l.ends_with(":/")),
        "exec process is not in the container's cgroup: {inside:?}"
    );
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn exec_exit_status_env_cwd_user() {
    let c = running("exec-opts");
    let out = exec(&c, &[], &["sh", "-c", "exit 9"]);
    assert_eq!(out.code(), Some(9));
    let out = exec(
        &c,
        &["-e", "GREETING=hi", "--cwd", "/tmp", "-u", "1234:4321"],
        &[
            "sh",
            "-c",
            "echo $GREETING; pwd; id -u; id -g; echo $BERTH_TEST_ID",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout_lines()[..4], ["hi", "/tmp", "1234", "4321"]);
    // Everything not overridden comes from the container's own process.
    assert_eq!(out.stdout_lines()[4], c.id);
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn exec_detached_writes_pid_file_and_dies_with_the_container() {
    let c = running("exec-detach");
    let pid_file = c.tmp_path().join("exec.pid");
    exec(
        &c,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "500"],
    )
    .assert_success();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The program runs when `exec -d` returns: the process is no longer the runtime.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "sleep", "{}", exe.display());
    // `exec -d` returns once the exec closed the runtime's close-on-exec channel (as
    // runc's does); the kernel fills in the new program's arguments a moment after that,
    // so a read in between sees an empty cmdline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let cmdline = loop {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        if !cmdline.is_empty() || std::time::Instant::now() > deadline {
            break cmdline;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(cmdline.starts_with("sleep\u{0}500"), "{cmdline:?}");
    let ps = c.cmd(&["ps", "--format", "json", &c.id]);
    ps.assert_success();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout_now()).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks the exec'd {pid}");
    c.delete_force().assert_success();
    // Gone, or at most a zombie waiting for its new parent to reap it.
    assert!(!process_alive(pid), "exec'd process {pid} survived delete");
    c.assert_nothing_left();
}

#[test]
fn a_detached_exec_whose_program_cannot_be_executed_fails_with_the_reason() {
    let c = running("exec-noexec");
    // An executable file that is no program: found and allowed, then refused by execve
    // itself (ENOEXEC), after the runtime's setup is done.
    let rootfs = std::path::PathBuf::from(c.spec["root"]["path"].as_str().unwrap());
    let name = format!("not-a-program-{}", c.id);
    let file = rootfs.join(&name);
    std::fs::write(&file, b"just text\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = exec(&c, &["-d"], &[&format!("/{name}")]);
    let _ = std::fs::remove_file(&file);
    out.assert_failure();
    assert!(out.stderr.contains(&name), "{out:?}");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn exec_with_console_socket() {
    let c = running("exec-tty");
    let sock = ConsoleSocket::new(&c.io);
    let out = exec(
        &c,
        &["-t", "-d", "--console-socket", &sock.path_str()],
        &["sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty"],
    );
    out.assert_success();
    let text = read_pty_to_end(sock.master().expect("no pty master"));
    assert!(text.contains("is-a-tty"), "{text:?}");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn exec_errors() {
    let c = running("exec-err");
    // A missing program fails before anything runs, naming it.
    exec(&c, &[], &["no-such-program"]).assert_one_line_error(&["no-such-program"], &[]);
    // No command at all.
    exec(&c, &[], &[]).assert_failure();
    // An unknown container.
    let out = c.cmd(&["exec", "no-such-container-xyz", "true"]);
    out.assert_one_line_error(&["no-such-container-xyz", "does not exist"], &[]);
    // A stopped container.
    c.kill("KILL").assert_success();
    c.wait_for_status("stopped");
    exec(&c, &[], &["true"]).assert_one_line_error(&["stopped"], &[]);
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn exec_process_json() {
    let c = running("exec-procjson");
    let file = c.tmp_path().join("process.json");
    let process = json!({
        "args": ["sh", "-c", "echo from-json $X"],
        "env": ["PATH=/bin:/usr/bin", "X=42"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    });
    std::fs::write(&file, process.to_string()).unwrap();
    let out = exec(&c, &["--process", file.to_str().unwrap()], &[]);
    out.assert_success();
    assert_eq!(out.stdout_lines(), ["from-json 42"]);
    c.delete_force().assert_success();
    c.assert_nothing_left();
}
