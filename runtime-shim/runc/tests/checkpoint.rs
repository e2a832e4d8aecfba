//! checkpoint/restore through criu. Where criu is missing or `criu check` fails on this
//! kernel, the commands must say so in one line and leave the container untouched; the
//! dump/restore round trip then skips, printing why.

use std::process::Command;

use berth_testkit::runc::*;

/// Why criu cannot run here, or `None` if it can.
fn criu_unavailable() -> Option<String> {
    match Command::new("criu").arg("check").output() {
        Err(e) => Some(format!("criu cannot be run: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "`criu check` fails: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}

#[test]
fn checkpoint_without_working_criu_is_a_clear_error() {
    let Some(reason) = criu_unavailable() else {
        eprintln!("skipped: criu works on this host; the round trip test covers it");
        return;
    };
    if skip_under_runc("runc's criu errors are multi-line") {
        return;
    }
    let c = TestContainer::new("ckpt-nocriu", &["sleep", "1000"]);
    c.run_with(&["-d"]).assert_success();
    let images = c.tmp_path().join("images");
    let out = c.cmd(&[
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        &c.id,
    ]);
    out.assert_one_line_error(&["criu"], &[]);
    eprintln!(
        "checkpoint refused as expected ({reason}): {}",
        out.stderr_now().trim()
    );
    assert_eq!(
        c.status(),
        "running",
        "a refused checkpoint disturbed the container"
    );
    assert!(
        !images.exists(),
        "a refused checkpoint left an image directory"
    );

    let restore = c.cmd(&[
        "restore",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        c.bundle.to_str().unwrap(),
        "restored-twin",
    ]);
    restore.assert_one_line_error(&["criu"], &[]);
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn checkpoint_and_restore_round_trip() {
    if let Some(reason) = criu_unavailable() {
        eprintln!("skipped: {reason}");
        return;
    }
    let c = TestContainer::new(
        "ckpt-trip",
        &["sh", "-c", "i=0; while :; do i=$((i+1)); sleep 0.1; done"],
    );
    c.run_with(&["-d"]).assert_success();
    let images = c.tmp_path().join("images");
    c.cmd(&[
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        &c.id,
    ])
    .assert_success();
    assert!(
        c.state().is_err(),
        "checkpoint without --leave-running keeps the container"
    );
    c.cmd(&[
        "restore",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        c.bundle.to_str().unwrap(),
        &c.id,
    ])
    .assert_success();
    assert_eq!(c.status(), "running");
    c.delete_force().assert_success();
    c.assert_nothing_left();
}
