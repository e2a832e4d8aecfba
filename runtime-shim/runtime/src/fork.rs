//! Creating the container's init: one clone(2) with the new namespaces.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// clone(2) with fork semantics (the child continues on a copy of the caller's stack)
/// and the given namespace flags; the child runs `child`, which should not return.
///
/// Only call this from a single-threaded process (berth-runc, or berth-shim before it
/// starts threads): the child inherits every lock as it was, and a lock held by another
/// thread at the moment of the clone would never be released in the child.
pub fn clone_init(flags: CloneFlags, child: impl FnOnce()) -> Result<Pid> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a raw clone without CLONE_VM and with a null stack behaves like fork: the
    // child gets a private copy of the address space. The caller guarantees the process
    // is single-threaded, so no lock is held by a thread missing from the child.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Error::sys("clone", format!("{flags:?}"), Errno::last())),
        0 => {
            child();
            // SAFETY: _exit is always safe; `child` is not meant to return.
            unsafe { libc::_exit(127) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}
