//! Closing every descriptor in a range: close_range(2), or one by one from
//! /proc/self/fd on kernels without it (before 5.9).

/// Close this process's descriptors `from..=to`. Only for descriptors nothing in the
/// process uses any more (a freshly forked or cloned child's inheritance).
pub fn close_range(from: u32, to: u32) {
    // SAFETY: close_range on this process's own descriptors, as the caller guarantees
    // none of them is in use.
    if unsafe { libc::syscall(libc::SYS_close_range, from, to, 0u32) } == 0 {
        return;
    }
    // Listed first, closed after: the listing's own descriptor must not be closed
    // while it is read.
    let open: Vec<u32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| (from..=to).contains(fd))
            .collect(),
        Err(_) => (from..=to.min(from.saturating_add(4096))).collect(),
    };
    for fd in open {
        // SAFETY: as above; a descriptor that is not open (the listing's own, now
        // closed) gives EBADF, which changes nothing.
        unsafe { libc::close(fd as libc::c_int) };
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
}
