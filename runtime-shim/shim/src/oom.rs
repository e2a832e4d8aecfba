//! OOM notification without polling, on the container's memory cgroup (which the shim's
//! backend finds, whichever runtime made the container):
//! - v1: an eventfd registered through `cgroup.event_control` on `memory.oom_control`;
//! - v2: inotify on `memory.events`, whose modification the kernel notifies.
//!
//! A wake-up is only a hint: the `oom_kill` count in the same file is compared with the
//! last one seen, and only a rise is an OOM kill.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A watch on one memory cgroup.
pub struct OomWatch {
    fd: OwnedFd,
    counter: PathBuf,
    seen: u64,
}

impl OomWatch {
    /// Watch the memory cgroup directory `dir` (cgroup v2 if `v2`); `Ok(None)` when it
    /// has no OOM counter to watch.
    pub fn for_dir(dir: &Path, v2: bool) -> io::Result<Option<OomWatch>> {
        if v2 {
            let counter = dir.join("memory.events");
            if !counter.exists() {
                return Ok(None);
            }
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by inotify_init1 and is owned from here on.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let cpath = std::ffi::CString::new(counter.as_os_str().as_encoded_bytes())
                .map_err(io::Error::other)?;
            // SAFETY: `cpath` is a NUL-terminated path; `fd` is an inotify instance.
            if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cpath.as_ptr(), libc::IN_MODIFY) }
                < 0
            {
                return Err(io::Error::last_os_error());
            }
            let seen = read_count(&counter).unwrap_or(0);
            return Ok(Some(OomWatch { fd, counter, seen }));
        }
        let counter = dir.join("memory.oom_control");
        let control = File::open(&counter)?;
        // SAFETY: plain syscall; the result is checked.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` was just returned by eventfd and is owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(efd) };
        fs::write(
            dir.join("cgroup.event_control"),
            format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )?;
        let seen = read_count(&counter).unwrap_or(0);
        Ok(Some(OomWatch { fd, counter, seen }))
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// After a wake-up: consume it and tell whether the OOM killer struck since last
    /// time. `Err` when the cgroup is gone (stop watching).
    pub fn check(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 512];
        // SAFETY: `buf` is writable for its length; the fd is non-blocking.
        while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        let now = read_count(&self.counter)?;
        let rose = now > self.seen;
        self.seen = now;
        Ok(rose)
    }
}

/// The `oom_kill` line of `memory.oom_control` (v1) or `memory.events` (v2).
fn read_count(path: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.oom_control");
        fs::write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n").unwrap();
        assert_eq!(read_count(&f).unwrap(), 4);
    }
}
