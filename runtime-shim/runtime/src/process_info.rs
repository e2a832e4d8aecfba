//! What /proc says about a host process: whether it lives, and when it started.
//!
//! A pid alone does not name a process for long: once the init exits its pid can be handed
//! to anyone. The start time (field 22 of /proc/<pid>/stat) pins it down.

use std::time::{Duration, Instant};

use berth_procfs::Stat;

/// The start time of `pid` in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    Stat::read(pid).ok()?.start_time()
}

/// True if `pid` is the process that started at `start_time` and has not exited.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    Stat::read(pid).is_ok_and(|s| s.start_time() == Some(start_time) && !s.exited())
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
