//! What /proc says about a host process: whether it lives, and when it started.
//!
//! A pid alone does not name a process for long: once the init exits its pid can be handed
//! to anyone. The start time (field 22 of /proc/<pid>/stat) pins it down.

use std::fs;
use std::time::{Duration, Instant};

/// State letter and start time of `pid`, or `None` if there is no such process.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) come fields 4..; start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

/// The start time of `pid` in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// True if `pid` is the process that started at `start_time` and has not exited.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// Wait until the process is gone (or a zombie), polling /proc for at most `timeout`.
pub fn wait_gone(pid: i32, start_time: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    while is_alive(pid, start_time) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    true
}

/// The command line of `pid` with arguments separated by spaces.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    Some(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_recycled_pid_is_not() {
        let me = std::process::id() as i32;
        let start = start_time(me).expect("own stat");
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert!(!is_alive(i32::MAX, 0));
    }
}
