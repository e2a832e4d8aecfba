//! Closing every descriptor in a range, or marking it close-on-exec: close_range(2), or
//! one by one from /proc/self/fd on kernels without it (before 5.9).

use nix::errno::Errno;

/// Close this process's descriptors `from..=to`. Only for descriptors nothing in the
/// process uses any more (a freshly forked or cloned child's inheritance).
pub fn close_range(from: u32, to: u32) {
    // SAFETY: close_range on this process's own descriptors, as the caller guarantees
    // none of them is in use.
    if unsafe { libc::syscall(libc::SYS_close_range, from, to, 0u32) } == 0 {
        return;
    }
    for fd in listed(from, to) {
        // SAFETY: as above; a descriptor that is not open (the listing's own, now
        // closed) gives EBADF, which changes nothing.
        unsafe { libc::close(fd as libc::c_int) };
    }
}

/// Mark every descriptor from `from` on close-on-exec, so that an exec hands none of
/// them to the program.
pub fn cloexec_from(from: u32) -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes the flags of this
    // process's descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    match Errno::last() {
        // Before 5.9 (no close_range) or 5.11 (no CLOSE_RANGE_CLOEXEC).
        Errno::ENOSYS | Errno::EINVAL => {}
        errno => return Err(errno),
    }
    for fd in listed(from, u32::MAX) {
        // SAFETY: F_SETFD only changes a descriptor's flags; one that is not open (the
        // listing's own, closed by now) gives EBADF, which changes nothing.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// The open descriptors in `from..=to`, listed before anything is done to them: the
/// listing's own descriptor must not be touched while it is read. Without /proc, the
/// first 4096 numbers of the range.
fn listed(from: u32, to: u32) -> Vec<u32> {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| (from..=to).contains(fd))
            .collect(),
        Err(_) => (from..=to.min(from.saturating_add(4096))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_range_is_closed_and_what_lies_outside_stays() {
        // High numbers: other tests' threads open files at the lowest free ones.
        let file = std::fs::File::open("/dev/null").unwrap();
        let open = |fd| {
            // SAFETY: fcntl F_GETFD on a descriptor number, open or not.
            unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
        };
        for fd in [900, 901, 903] {
            // SAFETY: dup2 of our open file onto an unused high number.
            assert_eq!(unsafe { libc::dup2(file.as_raw_fd(), fd) }, fd);
        }
        close_range(900, 902);
        assert!(!open(900) && !open(901));
        assert!(open(903));
        close_range(903, 903);
        assert!(!open(903));
    }

    #[test]
    fn descriptors_from_a_number_on_are_marked_close_on_exec() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: dup2 of our open file onto an unused high number.
        assert_eq!(unsafe { libc::dup2(file.as_raw_fd(), 950) }, 950);
        // SAFETY: fcntl F_GETFD on a descriptor number, open or not.
        let flags = || unsafe { libc::fcntl(950, libc::F_GETFD) };
        assert_eq!(flags() & libc::FD_CLOEXEC, 0);
        cloexec_from(950).unwrap();
        assert_eq!(flags() & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        close_range(950, 950);
    }
}
