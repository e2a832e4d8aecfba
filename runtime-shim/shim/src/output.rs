//! The container's stdout and stderr: two pipes whose write ends become the container's
//! fds 1 and 2, read by the shim and appended to the log file (as is, with `terminal:
//! true`, what the shim reads from the pty master: see `console`).
//!
//! Size cap: when the log would grow past `max` bytes it is renamed to `<log>.1`
//! (replacing an older one) and a new log is started, so the newest output is always kept:
//! between `max` and `2 * max` bytes of it across the two files. `max` 0: no cap.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

/// The append-only, size-capped log file.
pub struct Log {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl Log {
    /// Open (append to) the log at `path`.
    pub fn open(path: &Path, max: u64) -> io::Result<Log> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Log {
            path: path.to_path_buf(),
            file,
            size,
            max,
        })
    }

    /// Append `data`, rotating at the cap.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.max > 0 && self.size >= self.max {
                self.rotate()?;
            }
            let room = if self.max > 0 {
                (self.max - self.size) as usize
            } else {
                data.len()
            };
            let n = room.min(data.len());
            self.file.write_all(&data[..n])?;
            self.size += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        fs::rename(&self.path, &old)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// The two pipes: read ends for the shim (non-blocking), write ends for the container.
pub struct Output {
    /// stdout and stderr read ends.
    pub read: [OwnedFd; 2],
    /// stdout and stderr write ends (kept for later `exec`s).
    pub write: [OwnedFd; 2],
    log: Log,
}

impl Output {
    /// Make the pipes and open the log.
    pub fn new(log: &Path, max: u64) -> io::Result<Output> {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
        for fd in [&out_r, &err_r] {
            nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        Ok(Output {
            read: [out_r, err_r],
            write: [out_w, err_w],
            log: Log::open(log, max)?,
        })
    }

    /// Move whatever `fd` (a read end) holds into the log, without waiting.
    pub fn drain(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        drain_into(fd, |data| self.log.write(data))
    }

    /// Append `data` (from elsewhere: the container's terminal) to the log.
    pub fn write_log(&mut self, data: &[u8]) -> io::Result<()> {
        self.log.write(data)
    }

    /// Drain both pipes.
    pub fn drain_all(&mut self) -> io::Result<()> {
        let [a, b] = &self.read;
        let (a, b) = (a.as_raw_fd(), b.as_raw_fd());
        // SAFETY: both descriptors are owned by `self.read` and stay open during the calls.
        unsafe {
            self.drain(BorrowedFd::borrow_raw(a))?;
            self.drain(BorrowedFd::borrow_raw(b))
        }
    }
}

/// Read what the non-blocking `fd` holds, handing it to `sink` chunk by chunk, up to
/// "nothing more for now": no data, end of file, or for a pty master EIO (no process
/// holds the terminal open).
pub fn drain_into(
    fd: BorrowedFd<'_>,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: `buf` is a writable buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            sink(&buf[..n as usize])?;
            continue;
        }
        if n == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN | libc::EIO) => return Ok(()),
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_rotates_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = Log::open(&path, 10).unwrap();
        log.write(b"0123456789ab").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ab");
        assert_eq!(fs::read(dir.path().join("log.1")).unwrap(), b"0123456789");
        log.write(b"cdefghijklmn").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"klmn");
        assert_eq!(fs::read(dir.path().join("log.1")).unwrap(), b"abcdefghij");
        let mut reopened = Log::open(&path, 0).unwrap();
        reopened.write(&[b'x'; 100]).unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), 104);
    }
}
