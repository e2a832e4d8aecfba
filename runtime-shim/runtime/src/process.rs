//! The last steps before exec, shared by a container's init and by `exec`: limits,
//! identity, working directory, seccomp, and the program itself.

use std::ffi::CString;

use nix::unistd::{chdir, execve};
use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};
use crate::program::{self, Program};
use crate::{capabilities, lsm, rlimits, seccomp, user};

/// The user process, one exec away.
pub struct Ready<'a> {
    program: Program,
    /// The seccomp filter still to install right before the exec.
    late_filter: Option<&'a seccomp::Program>,
}

/// Where compiled seccomp programs are kept under the runtime root: not a valid container
/// id (ids start with a letter or digit), so no container's directory can take it.
pub const SECCOMP_CACHE_DIR: &str = ".seccomp-cache";

/// Compile the seccomp filter of a spec, in the runtime before any process is made (it
/// allocates and logs; installing it later does neither), through the cache under the
/// runtime `root`: most containers share one profile (docker's default, an image's), and
/// a hit skips the compilation. Notify rules are refused: the listener hand-over is not
/// built yet.
pub fn compile_seccomp(
    linux: Option<&oci_spec::runtime::Linux>,
    root: &std::path::Path,
) -> Result<Option<seccomp::Program>> {
    let Some(spec) = linux.and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let program = seccomp::compile_cached(spec, &root.join(SECCOMP_CACHE_DIR))?;
    if program.has_listener() {
        return Err(Error::Unsupported(
            "seccomp SCMP_ACT_NOTIFY (listener hand-over)",
        ));
    }
    Ok(Some(program))
}

/// Apply `process`'s rlimits, capabilities, user, cwd and no_new_privileges to the
/// calling process, and find its program (a missing program is an error here, before
/// anything runs); the LSM labels are set last, to take effect at the exec. Descriptors
/// 3 .. 3+`preserve_fds` go to the program, every other one past stdio is closed at the
/// exec.
///
/// The seccomp `filter` goes in as late as possible: right before the exec when
/// no_new_privileges is set; otherwise (installing needs CAP_SYS_ADMIN then) before the
/// capabilities are dropped, as runc does. The runtime's own housekeeping is done before
/// either: the profile is the user's, and may deny what the runtime would use (a profile
/// without close_range made every container fail at its exec). After the filter the
/// runtime itself only reads and writes its channel, opens and writes its exec FIFO,
/// and execs (runc does as much).
pub fn become_user_process<'a>(
    process: &Process,
    filter: Option<&'a seccomp::Program>,
    preserve_fds: u32,
) -> Result<Ready<'a>> {
    pass_fds(preserve_fds)?;
    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits)?;
    }
    let no_new_privileges = process.no_new_privileges() == Some(true);
    let mut late_filter = filter;
    if !no_new_privileges {
        if let Some(f) = late_filter.take() {
            seccomp::install(f)?;
        }
    }
    // The bounding set is dropped while still root; keepcaps carries the permitted set
    // across the uid switch, after which the sets are made exactly what the spec says.
    capabilities::before_user_switch(process)?;
    user::switch(process.user())?;
    capabilities::after_user_switch(process)?;
    chdir(process.cwd()).sys("chdir", process.cwd().display())?;
    user::set_umask(process.user());
    let args = process.args().as_deref().unwrap_or_default();
    let env = process.env().as_deref().unwrap_or_default();
    let program = program::resolve(args, env)?;
    lsm::set_exec_labels(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    if no_new_privileges {
        capabilities::set_no_new_privileges()?;
    }
    Ok(Ready {
        program,
        late_filter,
    })
}

/// Hand descriptors 3 .. 3+`n` to the program (runc's --preserve-fds) and mark every
/// later one close-on-exec, so nothing of the runtime's (or its caller's) leaks into the
/// container. Descriptors the runtime opens from here on are close-on-exec already.
fn pass_fds(n: u32) -> Result<()> {
    let keep_until = 3 + n;
    for fd in 3..keep_until {
        // SAFETY: F_SETFD on a descriptor number only changes its flags; one that is
        // not open just fails with EBADF.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, 0) };
    }
    crate::close_fds::cloexec_from(keep_until).sys("close_range", "CLOSE_RANGE_CLOEXEC")
}

impl Ready<'_> {
    /// Install the late seccomp filter and exec; returns only on failure.
    pub fn exec(&self) -> Result<()> {
        if let Some(filter) = self.late_filter {
            seccomp::install(filter)?;
        }
        let p = &self.program;
        let env: &[CString] = &p.env;
        execve(&p.path, &p.args, env).sys("execve", format!("{:?}", p.path))?;
        Ok(())
    }
}
