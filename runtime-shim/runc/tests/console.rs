//! Terminal containers: `terminal: true` with `--console-socket`, the pty master sent
//! over SCM_RIGHTS as runc does.

use std::io::Write;

use berth_testkit::runc::*;
use serde_json::json;

const TTY_SCRIPT: &str = "test -t 0 && test -t 1 && test -t 2 && echo stdio-is-tty; \
                          tty; test -c /dev/console && echo console-ok; echo done-marker";

fn check_tty_output(text: &str) {
    // The pty turns "\n" into "\r\n".
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.contains(&"stdio-is-tty"),
        "stdio is not the pty: {text:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "tty does not name a /dev/pts device: {text:?}"
    );
    assert!(lines.contains(&"console-ok"), "no /dev/console: {text:?}");
    assert!(lines.contains(&"done-marker"), "{text:?}");
}

#[test]
fn create_with_console_socket() {
    let mut c = TestContainer::new("con-create", &["sh", "-c", TTY_SCRIPT]);
    c.spec["process"]["terminal"] = json!(true);
    c.spec["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    let sock = ConsoleSocket::new(&c.io);
    let out = c.create_with(&["--console-socket", &sock.path_str()]);
    out.assert_success();
    let master = sock.master().expect("no pty master received");
    // The pty has the spec's size (master and slave share it).
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&master),
            libc::TIOCGWINSZ,
            &mut size,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!((size.ws_row, size.ws_col), (30, 100));
    c.start().assert_success();
    let text = read_pty_to_end(master);
    check_tty_output(&text);
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn run_detached_with_console_socket() {
    let mut c = TestContainer::new("con-run-d", &["sh", "-c", TTY_SCRIPT]);
    c.spec["process"]["terminal"] = json!(true);
    let sock = ConsoleSocket::new(&c.io);
    let out = c.run_with(&["-d", "--console-socket", &sock.path_str()]);
    out.assert_success();
    let master = sock.master().expect("no pty master received");
    let text = read_pty_to_end(master);
    check_tty_output(&text);
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn console_input_reaches_container() {
    let mut c = TestContainer::new(
        "con-input",
        &["sh", "-c", "echo ready; read line; echo got:$line"],
    );
    c.spec["process"]["terminal"] = json!(true);
    let sock = ConsoleSocket::new(&c.io);
    c.create_with(&["--console-socket", &sock.path_str()])
        .assert_success();
    let master = sock.master().expect("no pty master received");
    let mut writer = master.try_clone().unwrap();
    c.start().assert_success();
    // Typed input waits in the pty's buffer until the shell reads it.
    writer.write_all(b"hello-pty\n").unwrap();
    let text = read_pty_to_end(master);
    assert!(text.contains("got:hello-pty"), "{text:?}");
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn console_process_has_controlling_terminal() {
    // The container's process is a session leader with the pty as controlling terminal.
    let mut c = TestContainer::new(
        "con-ctty",
        &["sh", "-c", "cat /proc/self/stat; readlink /proc/self/fd/0"],
    );
    c.spec["process"]["terminal"] = json!(true);
    let sock = ConsoleSocket::new(&c.io);
    c.create_with(&["--console-socket", &sock.path_str()])
        .assert_success();
    let master = sock.master().expect("no pty master received");
    c.start().assert_success();
    let text = read_pty_to_end(master);
    let stat_line = text
        .lines()
        .find(|l| l.contains("(cat)"))
        .unwrap_or_else(|| panic!("{text:?}"));
    // Field 7 (tty_nr) after the ")" : state ppid pgrp session tty_nr
    let fields: Vec<&str> = stat_line
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let tty_nr: i64 = fields[4].parse().unwrap();
    assert_ne!(tty_nr, 0, "no controlling terminal: {stat_line}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}
