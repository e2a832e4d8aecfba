//! `terminal: true`: the init makes a pty inside the container and hands the master to
//! whoever listens on `--console-socket`, as runc does (SCM_RIGHTS over a unix socket).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};

use crate::error::{Error, IoContext, Result, SysContext};

/// Connect to the console socket. Done by the runtime before the init changes root, so
/// the socket path is resolved on the host.
pub fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).io("connect to console socket", path)
}

/// The console stream a caller handed over, or else a connection to the console socket
/// path, if either was given.
pub fn stream_or_connect(
    stream: Option<UnixStream>,
    path: Option<&Path>,
) -> Result<Option<UnixStream>> {
    match stream {
        Some(stream) => Ok(Some(stream)),
        None => path.map(connect).transpose(),
    }
}

/// Make a pty in the container's devpts, send its master over `socket`, and return the
/// slave to become the process's terminal.
pub fn create_and_send(socket: &UnixStream) -> Result<OwnedFd> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .sys("posix_openpt", "/dev/ptmx")?;
    grantpt(&master).sys("grantpt", "/dev/ptmx")?;
    unlockpt(&master).sys("unlockpt", "/dev/ptmx")?;
    let name = ptsname_r(&master).sys("ptsname", "/dev/ptmx")?;
    let slave = open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys("open", &name)?;

    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    // runc sends the pty's name as the payload; consumers such as containerd read it.
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::sys("sendmsg", "console socket", e))?;
    Ok(slave)
}

/// Receive the pty master the init sends over `socket` (the other end of
/// [`create_and_send`]).
pub fn receive_master(socket: &UnixStream) -> Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("recvmsg", "console socket", e))?;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| Error::sys("recvmsg", "console socket", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS installed this descriptor in our table just now;
                // nothing else owns it.
                return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::sys(
        "recvmsg",
        "console socket: no pty master received",
        nix::errno::Errno::EPROTO,
    ))
}

/// Make a pty of the spec's `consoleSize` (if given), hand the master to the console
/// socket and make the slave our terminal and stdio; for a container's init
/// (`bind_console`) also bind it to /dev/console, as runc does.
pub fn attach_terminal(
    socket: &UnixStream,
    size: Option<&oci_spec::runtime::Box>,
    bind_console: bool,
) -> Result<()> {
    let slave = create_and_send(socket)?;
    if let Some(size) = size {
        let winsize = libc::winsize {
            ws_row: clamp_u16(size.height()),
            ws_col: clamp_u16(size.width()),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize through a valid pointer.
        if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &winsize) } < 0 {
            return Err(Error::sys("ioctl", "TIOCSWINSZ", nix::errno::Errno::last()));
        }
    }
    // SAFETY: TIOCSCTTY on a terminal fd we own, with an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys("ioctl", "TIOCSCTTY", nix::errno::Errno::last()));
    }
    dup2_stdin(&slave).sys("dup2", "stdin")?;
    dup2_stdout(&slave).sys("dup2", "stdout")?;
    dup2_stderr(&slave).sys("dup2", "stderr")?;
    let console = Path::new("/dev/console");
    if bind_console && Path::new("/dev").is_dir() {
        if !console.exists() {
            std::fs::File::create(console).io("create", console)?;
        }
        let pts = format!("/proc/self/fd/{}", slave.as_raw_fd());
        mount(
            Some(pts.as_str()),
            console,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .sys("mount", "pty on /dev/console")?;
    }
    Ok(())
}

/// A terminal dimension as the kernel stores it (a larger one is the largest there is).
fn clamp_u16(n: u64) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
