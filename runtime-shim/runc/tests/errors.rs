//! Bad input: each case fails with a non-zero exit and one line on stderr naming the
//! problem, and leaves nothing behind (no state, cgroup, mount or process).

use berth_testkit::runc::*;
use serde_json::json;

/// Words any "unknown container" message contains one of.
const UNKNOWN_ID_WORDS: &[&str] = &["does not exist", "not found", "no such", "unknown"];

fn create_fails(c: &TestContainer, any_of: &[&str], berth_any_of: &[&str]) -> String {
    let out = c.create();
    let line = out.assert_one_line_error(any_of, berth_any_of);
    assert!(
        c.state().is_err(),
        "state works for a container that failed to create"
    );
    c.assert_nothing_left();
    line
}

#[test]
fn missing_config_json() {
    let mut c = TestContainer::new("err-noconfig", &["true"]);
    c.config = Config::Missing;
    create_fails(&c, &["config.json"], &[]);
}

#[test]
fn missing_config_json_run() {
    let mut c = TestContainer::new("err-noconfig-run", &["true"]);
    c.config = Config::Missing;
    c.run().assert_one_line_error(&["config.json"], &[]);
    c.assert_nothing_left();
}

#[test]
fn invalid_json_config() {
    let mut c = TestContainer::new("err-badjson", &["true"]);
    c.config = Config::Raw("{ \"ociVersion\": \"1.0.2\", oops".into());
    // runc: "invalid character 'o' looking for beginning of object key string".
    create_fails(&c, &["config.json", "json", "invalid"], &["config.json"]);
}

#[test]
fn empty_config_json() {
    let mut c = TestContainer::new("err-emptyjson", &["true"]);
    c.config = Config::Raw(String::new());
    let out = c.create();
    out.assert_one_line_error_berth(&["config.json"]);
    c.assert_nothing_left();
}

#[test]
fn config_field_of_wrong_type() {
    let mut c = TestContainer::new("err-wrongtype", &["true"]);
    c.spec["process"] = json!(5);
    // runc: "json: cannot unmarshal number into Go struct field Spec.process ...".
    create_fails(&c, &["process"], &[]);
}

// A spec without `process` is created and refused at start: see lifecycle.rs,
// process_is_optional_at_create_and_required_at_start.

#[test]
fn empty_args() {
    let c = TestContainer::new("err-noargs", &[]);
    create_fails(&c, &["args"], &[]);
}

#[test]
fn relative_cwd() {
    let mut c = TestContainer::new("err-relcwd", &["true"]);
    c.spec["process"]["cwd"] = json!("tmp");
    create_fails(&c, &["cwd"], &[]);
}

#[test]
fn missing_rootfs_dir() {
    let mut c = TestContainer::new("err-norootfs", &["true"]);
    let missing = c.tmp_path().join("no-such-rootfs");
    c.spec["root"]["path"] = json!(missing);
    // runc: "invalid rootfs: stat <path>: no such file or directory".
    create_fails(&c, &["rootfs"], &["no-such-rootfs"]);
}

#[test]
fn missing_relative_rootfs_dir() {
    let mut c = TestContainer::new("err-norootfs-rel", &["true"]);
    c.spec["root"]["path"] = json!("rootfs");
    create_fails(&c, &["rootfs"], &[]);
}

#[test]
fn rootfs_is_a_file() {
    let mut c = TestContainer::new("err-rootfs-file", &["true"]);
    let file = c.tmp_path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    c.spec["root"]["path"] = json!(file);
    // runc fails late here ("fork/exec /proc/self/exe: not a directory").
    c.create().assert_one_line_error_berth(&["rootfs"]);
    c.assert_nothing_left();
}

#[test]
fn missing_bundle_dir() {
    let c = TestContainer::new("err-nobundle", &["true"]);
    let missing = c.tmp_path().join("no-such-bundle");
    let out = c.cmd(&["create", "--bundle", missing.to_str().unwrap(), &c.id]);
    out.assert_one_line_error(&["no-such-bundle"], &[]);
    c.assert_nothing_left();
}

#[test]
fn unknown_namespace_type() {
    let mut c = TestContainer::new("err-badns", &["true"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "foo" }));
    // runc: `namespace {"foo" ""} does not exist`.
    create_fails(&c, &["namespace"], &["foo"]);
}

#[test]
fn duplicate_namespace_type() {
    let mut c = TestContainer::new("err-dupns", &["true"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "pid" }));
    create_fails(&c, &["namespace", "ns"], &["pid"]);
}

#[test]
fn namespace_path_missing() {
    let mut c = TestContainer::new("err-nspath", &["true"]);
    c.spec["linux"]["namespaces"] = json!([
        { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" },
        { "type": "network", "path": "/proc/99999999/ns/net" }
    ]);
    create_fails(&c, &["/proc/99999999/ns/net"], &[]);
}

#[test]
fn namespace_path_of_wrong_type() {
    let mut c = TestContainer::new("err-nspath-type", &["true"]);
    c.spec["linux"]["namespaces"] = json!([
        { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" },
        { "type": "network", "path": "/proc/self/ns/ipc" }
    ]);
    // runc prints three lines from its C init here.
    c.create().assert_one_line_error_berth(&["namespace"]);
    c.assert_nothing_left();
}

#[test]
fn sysctl_not_namespaced() {
    let mut c = TestContainer::new("err-sysctl", &["true"]);
    c.spec["linux"]["sysctl"] = json!({ "kernel.panic": "1" });
    create_fails(&c, &["kernel.panic"], &[]);
}

#[test]
fn executable_not_found() {
    let c = TestContainer::new("err-noexe", &["no-such-program"]);
    // runc looks the program up before create returns: the failure comes after the
    // cgroup and namespaces were made, and must still leave nothing.
    create_fails(&c, &["no-such-program"], &[]);
}

#[test]
fn executable_not_found_run() {
    let c = TestContainer::new("err-noexe-run", &["no-such-program"]);
    let out = c.run();
    out.assert_one_line_error(&["no-such-program"], &[]);
    c.assert_nothing_left();
}

#[test]
fn terminal_without_console_socket() {
    let mut c = TestContainer::new("err-noconsole", &["true"]);
    c.spec["process"]["terminal"] = json!(true);
    create_fails(&c, &["console"], &[]);
}

#[test]
fn invalid_container_ids() {
    for bad in ["a/b", "..", "../escape", "", "x/../../y"] {
        let c = TestContainer::new("err-badid", &["true"]);
        c.write_config();
        let out = c.cmd(&["create", "--bundle", c.bundle.to_str().unwrap(), bad]);
        out.assert_one_line_error(&["id"], &[]);
        assert_eq!(
            std::fs::read_dir(&c.root).map(|d| d.count()).unwrap_or(0),
            0,
            "state left for id {bad:?}"
        );
        assert!(!c.tmp_path().parent().unwrap().join("escape").exists());
        c.assert_nothing_left();
    }
}

#[test]
fn ids_that_read_as_options_are_refused() {
    // Issue 12.6: docker's rule, an id starts with a letter or digit.
    if skip_under_runc("runc takes ids that start with '-'") {
        return;
    }
    for bad in ["-rf", "--help", "-", "_x", ".x"] {
        let c = TestContainer::new("err-dashid", &["true"]);
        c.write_config();
        let out = c.cmd(&["create", "--bundle", c.bundle.to_str().unwrap(), "--", bad]);
        out.assert_one_line_error(&["letter or digit"], &[]);
        let out = c.cmd(&["delete", "--", bad]);
        out.assert_one_line_error(&["letter or digit"], &[]);
        assert_eq!(
            std::fs::read_dir(&c.root).map(|d| d.count()).unwrap_or(0),
            0,
            "state left for id {bad:?}"
        );
        c.assert_nothing_left();
    }
}

#[test]
fn overlong_container_id() {
    if skip_under_runc("runc accepts ids of any length") {
        return;
    }
    let c = TestContainer::new("err-longid", &["true"]);
    c.write_config();
    let long = "x".repeat(1024);
    let out = c.cmd(&["create", "--bundle", c.bundle.to_str().unwrap(), &long]);
    out.assert_one_line_error(&["id"], &[]);
    assert_eq!(
        std::fs::read_dir(&c.root).map(|d| d.count()).unwrap_or(0),
        0
    );
}

fn unknown_id(verb: &[&str]) {
    let c = TestContainer::new("err-unknown", &["true"]);
    let mut args: Vec<&str> = verb.to_vec();
    args.push(&c.id);
    if verb[0] == "kill" {
        args.push("KILL");
    }
    let out = c.cmd(&args);
    out.assert_one_line_error(UNKNOWN_ID_WORDS, &[&c.id]);
    c.assert_nothing_left();
}

#[test]
fn start_unknown_id() {
    unknown_id(&["start"]);
}

#[test]
fn kill_unknown_id() {
    unknown_id(&["kill"]);
}

#[test]
fn delete_unknown_id() {
    unknown_id(&["delete"]);
}

#[test]
fn state_unknown_id() {
    unknown_id(&["state"]);
}

#[test]
fn ps_unknown_id() {
    unknown_id(&["ps"]);
}

#[test]
fn delete_force_unknown_id_succeeds() {
    // runc: `delete --force` of a container that does not exist is not an error.
    let c = TestContainer::new("err-unknown-force", &["true"]);
    let out = c.delete_force();
    out.assert_success();
    c.assert_nothing_left();
}

#[test]
fn duplicate_id_refused_first_unharmed() {
    let c = TestContainer::new("err-dup", &["sh", "-c", "echo first-ran"]);
    let first = c.create();
    first.assert_success();
    let pid = c.pid();

    let second = c.create();
    second.assert_one_line_error(&["exist", "in use", "duplicate"], &[&c.id]);

    // The first container is untouched and still works.
    let st = c.state().unwrap_or_else(|o| panic!("{o}"));
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid as i64), "{st}");
    assert!(process_alive(pid));
    c.start().assert_success();
    wait_for_file(&first.stdout_path, "first-ran", |t| t.contains("first-ran"));
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn duplicate_id_refused_while_running() {
    let c = TestContainer::new("err-dup-running", &["sleep", "1000"]);
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("running");
    let pid = c.pid();
    c.run()
        .assert_one_line_error(&["exist", "in use", "duplicate"], &[&c.id]);
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn delete_running_refused_without_force() {
    let c = TestContainer::new("err-del-running", &["sleep", "1000"]);
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("running");
    let pid = c.pid();

    let out = c.delete();
    // runc: "cannot delete container <id> that is not stopped: running".
    out.assert_one_line_error(&["running", "not stopped", "force"], &[&c.id]);
    assert_eq!(
        c.status(),
        "running",
        "delete without --force changed the container"
    );
    assert!(
        process_alive(pid),
        "delete without --force killed the container"
    );
    assert_eq!(cmdline_of(pid), "sleep 1000");

    c.delete_force().assert_success();
    assert!(c.state().is_err());
    wait_until_dead(pid);
    c.assert_nothing_left();
}

#[test]
fn delete_created_without_force_is_refused_and_changes_nothing() {
    // Issue 12.3: the runtime spec says deleting a container that is not stopped MUST
    // fail; runc kills and removes a created one.
    if skip_under_runc("runc deletes a created container without --force") {
        return;
    }
    let c = TestContainer::new("err-del-created", &["echo", "ran"]);
    let created = c.create();
    created.assert_success();
    let pid = c.pid();
    c.delete().assert_one_line_error(&["created"], &["delete"]);
    // Untouched: still created, same init, and it still starts.
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
    c.start().assert_success();
    c.wait_for_status("stopped");
    assert_eq!(created.stdout_now().trim(), "ran");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn delete_created_with_force_kills_it() {
    let c = TestContainer::new("err-del-created-force", &["sleep", "1000"]);
    c.create().assert_success();
    let pid = c.pid();
    c.delete_force().assert_success();
    assert!(c.state().is_err());
    wait_until_dead(pid);
    c.assert_nothing_left();
}

#[test]
fn start_twice_refused() {
    let c = TestContainer::new("err-start-twice", &["sleep", "1000"]);
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("running");
    // runc: "cannot start an already running container".
    c.start().assert_one_line_error(&["running"], &[]);
    assert_eq!(c.status(), "running");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn start_stopped_refused() {
    let c = TestContainer::new("err-start-stopped", &["true"]);
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    // runc: "cannot start a container that has stopped".
    c.start().assert_one_line_error(&["stopped"], &[]);
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn kill_stopped_refused() {
    let c = TestContainer::new("err-kill-stopped", &["true"]);
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("stopped");
    // runc: "container not running".
    c.kill("KILL")
        .assert_one_line_error(&["not running", "stopped"], &[]);
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn kill_unknown_signal() {
    let c = TestContainer::new("err-badsig", &["sleep", "1000"]);
    c.create().assert_success();
    // runc: `unknown signal "FOO"`.
    c.kill("FOO").assert_one_line_error(&["signal"], &["FOO"]);
    c.kill("SIGFOO").assert_one_line_error(&["signal"], &[]);
    c.kill("99999").assert_failure();
    assert_eq!(c.status(), "created");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn missing_id_argument() {
    let c = TestContainer::new("err-noid", &["true"]);
    for verb in ["start", "state", "kill", "delete"] {
        let out = c.cmd(&[verb]);
        out.assert_failure();
        assert!(!out.stderr.trim().is_empty(), "no message: {out}");
    }
}

#[test]
fn unknown_command() {
    let c = TestContainer::new("err-unknown-cmd", &["true"]);
    let out = c.cmd(&["frobnicate"]);
    out.assert_failure();
    assert!(
        !out.stderr.trim().is_empty() || !out.stdout.trim().is_empty(),
        "{out}"
    );
}

#[test]
fn force_delete_removes_what_a_killed_create_left() {
    if skip_under_runc("runc keeps no directory for a create it did not finish") {
        return;
    }
    // A create killed before it recorded the container leaves only its directory.
    let c = TestContainer::new("err-abandoned", &["true"]);
    std::fs::create_dir_all(c.root.join(&c.id)).unwrap();
    c.cmd(&["state", &c.id])
        .assert_one_line_error(&["creating"], &[]);
    c.delete().assert_failure();
    c.delete_force().assert_success();
    assert!(!c.root.join(&c.id).exists());
    c.assert_nothing_left();
}

#[test]
fn detached_terminal_without_console_socket() {
    let mut c = TestContainer::new("err-detach-tty", &["true"]);
    c.spec["process"]["terminal"] = json!(true);
    c.run_with(&["-d"])
        .assert_one_line_error(&["console", "tty"], &["terminal"]);
    c.assert_nothing_left();
}
