//! The last steps before exec, shared by a container's init and by `exec`: limits,
//! identity, working directory, and the program itself.

use nix::unistd::chdir;
use oci_spec::runtime::Process;

use crate::error::{Result, SysContext};
use crate::program::{self, Program};
use crate::{lsm, rlimits, user};

/// Apply `process`'s rlimits, user and cwd to the calling process, and find its program
/// (a missing program is an error here, before anything runs); the LSM labels are set
/// last, to take effect at the exec.
pub fn become_user_process(process: &Process) -> Result<Program> {
    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits)?;
    }
    user::switch(process.user())?;
    chdir(process.cwd()).sys("chdir", process.cwd().display())?;
    user::set_umask(process.user());
    let args = process.args().as_deref().unwrap_or_default();
    let env = process.env().as_deref().unwrap_or_default();
    let program = program::resolve(args, env)?;
    lsm::set_exec_labels(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    Ok(program)
}
