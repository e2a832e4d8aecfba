//! The harness keeps a passing test's output free of berthd's log (it goes to a file)
//! and shows that log when a test fails. Checked by running this test binary's own
//! ignored tests as a child and reading what it printed.

use berth_testkit::daemon as harness;

use std::process::Command;

use harness::{Daemon, Scratch};

#[test]
#[ignore = "a child of a_passing_test_shows_no_daemon_log_and_a_failing_one_does, which runs it in its own process and reads its output; it is not a test alone"]
fn child_daemon_test_that_passes() {
    let scratch = Scratch::new("quiet-pass");
    let d = Daemon::start(&scratch, &[], &[]);
    assert_eq!(d.call("GET", "/healthz", None).status, 200);
    // An expected failure that berthd logs as a warning.
    assert_eq!(d.call("GET", "/v1/containers/nope", None).status, 404);
}

#[test]
#[ignore = "a child of a_passing_test_shows_no_daemon_log_and_a_failing_one_does; it fails on purpose, so that test can see the log a failure shows"]
fn child_daemon_test_that_fails() {
    let scratch = Scratch::new("quiet-fail");
    let d = Daemon::start(&scratch, &[], &[]);
    assert_eq!(
        d.call("GET", "/healthz", None).status,
        500,
        "failing on purpose"
    );
}

/// Run one of this binary's ignored tests in a child; whether it passed, and its
/// stdout and stderr together.
fn run_child(name: &str) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--test-threads=1"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_passing_test_shows_no_daemon_log_and_a_failing_one_does() {
    let (passed, text) = run_child("child_daemon_test_that_passes");
    assert!(passed, "{text}");
    assert!(
        !text.contains("berthd") && !text.contains("INFO") && !text.contains("WARN"),
        "the daemon's log reached a passing test's output:\n{text}"
    );
    let (passed, text) = run_child("child_daemon_test_that_fails");
    assert!(!passed, "{text}");
    assert!(
        text.contains("---- berthd log") && text.contains("berthd: listening on"),
        "a failing test does not show the daemon's log:\n{text}"
    );
}
