//! The last steps before exec, shared by a container's init and by `exec`: limits,
//! identity, working directory, and the program itself.

use nix::unistd::chdir;
use oci_spec::runtime::Process;

use crate::error::{Result, SysContext};
use crate::program::{self, Program};
use crate::{capabilities, lsm, rlimits, user};

/// Apply `process`'s rlimits, capabilities, user, cwd and no_new_privileges to the
/// calling process, and find its program
/// (a missing program is an error here, before anything runs); the LSM labels are set
/// last, to take effect at the exec.
pub fn become_user_process(process: &Process) -> Result<Program> {
    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits)?;
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
    if process.no_new_privileges() == Some(true) {
        capabilities::set_no_new_privileges()?;
    }
    Ok(program)
}
