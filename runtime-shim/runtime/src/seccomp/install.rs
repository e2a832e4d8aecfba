//! Loading a compiled program into the kernel for the calling thread (and, with TSYNC,
//! its process). Called in the container's init between fork and exec, so it neither
//! allocates nor logs on its way to success.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::bpf::Instruction;
use super::{Program, SeccompError};

// The kernel reads our instructions as `struct sock_filter`.
const _: () =
    assert!(std::mem::size_of::<Instruction>() == std::mem::size_of::<libc::sock_filter>());
const _: () =
    assert!(std::mem::align_of::<Instruction>() == std::mem::align_of::<libc::sock_filter>());

/// Install in the calling thread/process: `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`
/// with the spec's flags, or `prctl(PR_SET_SECCOMP)` when there are none. Needs
/// no_new_privs or CAP_SYS_ADMIN. When a rule uses SCMP_ACT_NOTIFY, returns the listener
/// fd (SECCOMP_FILTER_FLAG_NEW_LISTENER), close-on-exec.
pub fn install(program: &Program) -> Result<Option<OwnedFd>, SeccompError> {
    let len = u16::try_from(program.instructions.len()).map_err(|_| SeccompError::TooLarge {
        instructions: program.instructions.len(),
    })?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: program
            .instructions
            .as_ptr()
            .cast::<libc::sock_filter>()
            .cast_mut(),
    };

    if program.flags == 0 {
        // SAFETY: `prog` points to `len` instructions laid out as `sock_filter` (checked
        // above), alive for the call; the kernel copies them.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::c_ulong::from(libc::SECCOMP_MODE_FILTER),
                &prog as *const libc::sock_fprog as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc != 0 {
            return Err(SeccompError::Install {
                call: "prctl(PR_SET_SECCOMP)",
                errno: Errno::last(),
            });
        }
        return Ok(None);
    }

    // SAFETY: as above; seccomp(2) takes (operation, flags, struct sock_fprog *).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            program.flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(SeccompError::Install {
            call: "seccomp(SECCOMP_SET_MODE_FILTER)",
            errno: Errno::last(),
        });
    }
    if program.has_listener() {
        let fd = libc::c_int::try_from(rc).expect("seccomp returns an fd");
        // SAFETY: with NEW_LISTENER, a non-negative return is a new fd that we own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if rc > 0 {
        // With TSYNC (and no TSYNC_ESRCH), the id of a thread that could not follow.
        return Err(SeccompError::Tsync { tid: rc });
    }
    Ok(None)
}
