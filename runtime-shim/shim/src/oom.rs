//! OOM notification without polling. The container's memory cgroup is the one the
//! built-in runtime made, or else found from its init's `/proc/<pid>/cgroup` (so it works
//! whichever runtime made the container):
//! - v1: an eventfd registered through `cgroup.event_control` on `memory.oom_control`;
//! - v2: inotify on `memory.events`, whose modification the kernel notifies.
//!
//! A wake-up is only a hint: the `oom_kill` count in the same file is compared with the
//! last one seen, and only a rise is an OOM kill.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_runtime::cgroups::{CgroupMounts, ProcessCgroups};

/// A watch on one memory cgroup.
pub struct OomWatch {
    fd: OwnedFd,
    counter: PathBuf,
    seen: u64,
}

impl OomWatch {
    /// Watch the memory cgroup of `pid`; `Ok(None)` when it has none (no memory
    /// controller, e.g. a hybrid host's empty cgroup2).
    pub fn for_pid(pid: i32) -> io::Result<Option<OomWatch>> {
        let dirs = CgroupMounts::read()?.of_process(pid)?;
        match memory_dir(dirs) {
            Some((dir, v2)) => OomWatch::for_dir(&dir, v2),
            None => Ok(None),
        }
    }

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

/// The memory cgroup directory among a process's, and whether it is cgroup v2: the v1
/// memory controller's where there is one (a hybrid host's cgroup2 has no controllers).
fn memory_dir(mut dirs: ProcessCgroups) -> Option<(PathBuf, bool)> {
    match dirs.v1.remove("memory") {
        Some(dir) => Some((dir, false)),
        None if dirs.v1.is_empty() => dirs.v2.map(|dir| (dir, true)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
34 25 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
35 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn v1_memory_wins_on_hybrid() {
        let dirs = CgroupMounts::parse(MOUNTS)
            .dirs_in("5:memory:/berth/c1\n4:cpu,cpuacct:/berth/c1\n0::/berth/c1\n");
        assert_eq!(
            memory_dir(dirs),
            Some((PathBuf::from("/sys/fs/cgroup/memory/berth/c1"), false))
        );
        // v1 without a memory controller: no OOM watch, not the empty cgroup2.
        let dirs = CgroupMounts::parse(MOUNTS).dirs_in("4:cpu,cpuacct:/c\n0::/c\n");
        assert_eq!(memory_dir(dirs), None);
    }

    #[test]
    fn v2_when_no_v1_memory() {
        let mounts = CgroupMounts::parse("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            memory_dir(mounts.dirs_in("0::/a/b\n")),
            Some((PathBuf::from("/sys/fs/cgroup/a/b"), true))
        );
        assert_eq!(
            memory_dir(CgroupMounts::parse("").dirs_in("0::/a/b\n")),
            None
        );
    }

    #[test]
    fn counts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.oom_control");
        fs::write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n").unwrap();
        assert_eq!(read_count(&f).unwrap(), 4);
    }
}
