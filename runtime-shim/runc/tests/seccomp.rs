//! Seccomp: the spec's filter, compiled in pure Rust, is in force inside the container
//! (and for exec'd processes); a Docker-like default profile runs a shell fine.

use berth_testkit::runc::*;
use serde_json::{json, Value};

/// The Docker-like default profile kept with the tests.
fn default_profile() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../runtime/fixtures/seccomp-default.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Allow everything but mkdir/mkdirat, which fail with ENOMSG (42).
fn deny_mkdir() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }]
    })
}

#[test]
fn denied_syscall_fails_with_the_configured_errno() {
    let mut c = TestContainer::new(
        "seccomp-errno",
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /dev/shm/x 2>&1; echo rc=$?",
        ],
    );
    c.spec["linux"]["seccomp"] = deny_mkdir();
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"],
        "{out}"
    );
    assert!(lines[1].contains("No message of desired type"), "{out}");
    assert_eq!(lines[2], "rc=1", "{out}");
    c.assert_nothing_left();
}

#[test]
fn filter_applies_with_and_without_no_new_privileges() {
    for nnp in [true, false] {
        let mut c =
            TestContainer::new("seccomp-nnp", &["sh", "-c", "mkdir /dev/shm/x; echo rc=$?"]);
        c.spec["linux"]["seccomp"] = deny_mkdir();
        c.spec["process"]["noNewPrivileges"] = json!(nnp);
        let out = c.run_ok();
        assert!(out.trim_end().ends_with("rc=1"), "nnp={nnp}: {out}");
        c.assert_nothing_left();
    }
}

#[test]
fn docker_like_default_profile_runs_a_shell() {
    let mut c = TestContainer::new(
        "seccomp-default",
        &[
            "sh",
            "-c",
            "echo hello; ls / >/dev/null && echo ls-ok; id -u; grep Seccomp: /proc/self/status",
        ],
    );
    c.spec["linux"]["seccomp"] = default_profile();
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["hello", "ls-ok", "0"], "{out}");
    assert!(lines[3].ends_with('2'), "{out}");
    c.assert_nothing_left();
}

#[test]
fn exec_gets_the_containers_filter() {
    let mut c = TestContainer::new("seccomp-exec", &["sleep", "1000"]);
    c.spec["linux"]["seccomp"] = deny_mkdir();
    c.run_with(&["-d"]).assert_success();
    let out = c.cmd(&["exec", &c.id, "sh", "-c", "mkdir /dev/shm/y; echo rc=$?"]);
    out.assert_success();
    assert!(
        out.stdout_now().trim_end().ends_with("rc=1"),
        "{}",
        out.stdout_now()
    );
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn malformed_rule_is_refused_and_unknown_names_are_skipped() {
    if skip_under_runc("berth names the rule at fault") {
        return;
    }
    let mut c = TestContainer::new("seccomp-bad", &["true"]);
    c.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }]
    });
    c.create()
        .assert_one_line_error(&["errnoRet"], &["syscalls[0]"]);
    c.assert_nothing_left();

    let mut c = TestContainer::new("seccomp-unknown", &["sh", "-c", "echo fine"]);
    c.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO" }]
    });
    assert_eq!(c.run_ok().trim(), "fine");
    c.assert_nothing_left();
}

/// Allow everything but `names`, which fail with EPERM.
fn deny(names: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    })
}

/// `create`, then `start`, which must succeed; the container's output once it stopped.
fn create_start_output(c: &TestContainer) -> String {
    let created = c.create();
    created.assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    created.stdout_now()
}

#[test]
fn a_profile_without_close_range_runs_its_program() {
    // Issue 12.1: installed before the capabilities are dropped, the filter was in force
    // when the init marked its descriptors close-on-exec, and the container never ran.
    let mut c = TestContainer::new("seccomp-close-range", &["echo", "hello"]);
    c.spec["process"]["noNewPrivileges"] = json!(false);
    c.spec["linux"]["seccomp"] = deny(&["close_range"]);
    assert_eq!(create_start_output(&c).trim(), "hello");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn the_runtime_needs_no_more_than_read_write_open_and_exec_under_the_filter() {
    if skip_under_runc("runc uses prctl and fcntl after the filter") {
        return;
    }
    for nnp in [false, true] {
        let mut c = TestContainer::new("seccomp-own", &["echo", "hello"]);
        c.spec["process"]["noNewPrivileges"] = json!(nnp);
        c.spec["linux"]["seccomp"] = deny(&[
            "close_range",
            "fcntl",
            "prctl",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
        ]);
        assert_eq!(create_start_output(&c).trim(), "hello", "nnp={nnp}");
        c.delete().assert_success();
        c.assert_nothing_left();
    }
}

#[test]
fn a_bounding_set_that_cannot_be_read_under_the_filter_is_an_error() {
    // Without noNewPrivileges the filter comes before the capability drop: a profile
    // that denies prctl must not leave the full bounding set behind silently.
    let mut c = TestContainer::new("seccomp-capbset", &["grep", "CapBnd", "/proc/self/status"]);
    c.spec["process"]["noNewPrivileges"] = json!(false);
    c.spec["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"]});
    c.spec["linux"]["seccomp"] = deny(&["prctl"]);
    let created = c.create();
    if created.success() {
        // Whatever the order, what runs must have exactly the asked-for bounding set.
        c.start().assert_success();
        c.wait_for_status("stopped");
        let out = created.stdout_now();
        assert!(out.contains("0000000000000020"), "CapBnd: {out}");
    } else {
        created.assert_one_line_error(&["not permitted"], &["PR_CAPBSET_READ"]);
    }
    let _ = c.delete_force();
    c.assert_nothing_left();
}

#[test]
fn an_exec_that_fails_after_create_fails_start_with_the_reason() {
    if skip_under_runc("runc's start does not see a failed exec") {
        return;
    }
    for nnp in [false, true] {
        let mut c = TestContainer::new("seccomp-no-exec", &["echo", "hello"]);
        c.spec["process"]["noNewPrivileges"] = json!(nnp);
        c.spec["linux"]["seccomp"] = deny(&["execve", "execveat"]);
        c.create().assert_success();
        let start = c.start();
        assert_eq!(start.code(), Some(1), "nnp={nnp}: {start}");
        start.assert_one_line_error(&["execve"], &["not permitted"]);
        c.wait_for_status("stopped");
        c.delete().assert_success();
        c.assert_nothing_left();
    }
}

/// A profile is compiled once per runtime root: the second container finds the program in
/// the cache, which `list` does not take for a container; a damaged entry is recompiled,
/// never installed.
#[test]
fn compiled_profiles_are_cached_under_the_root_and_a_damaged_entry_is_recompiled() {
    if skip_under_runc("berth's seccomp cache") {
        return;
    }
    let script = "mkdir /dev/shm/x 2>/dev/null; echo rc=$?";
    let mut first = TestContainer::new("seccomp-cache", &["sh", "-c", script]);
    first.spec["linux"]["seccomp"] = deny_mkdir();
    assert_eq!(first.run_ok().trim_end(), "rc=1");
    let cache = first.root.join(".seccomp-cache");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{}: {e}", cache.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let list = first.cmd(&["list", "-q"]);
    list.assert_success();
    assert_eq!(list.stdout_now().trim(), "", "the cache is not a container");

    std::fs::write(&entries[0], b"BERTHBPF not a program").unwrap();
    let mut second = TestContainer::with_root("seccomp-cache", &["sh", "-c", script], &first.root);
    second.spec["linux"]["seccomp"] = deny_mkdir();
    assert_eq!(second.run_ok().trim_end(), "rc=1");
    assert!(
        std::fs::read(&entries[0]).unwrap().len() > 100,
        "the damaged entry was written again"
    );
    first.assert_nothing_left();
    second.assert_nothing_left();
}
