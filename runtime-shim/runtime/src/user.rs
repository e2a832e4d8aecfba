//! `process.user`: the identity the user program runs as.

use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::error::{Result, SysContext};

/// umask when the spec does not give one, as runc.
const DEFAULT_UMASK: u32 = 0o022;

/// Switch groups, then gid, then uid (the last step drops the right to do the others).
pub fn switch(user: &User) -> Result<()> {
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).sys(
        "setgroups",
        format!(
            "{:?}",
            user.additional_gids().as_deref().unwrap_or_default()
        ),
    )?;
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).sys("setresgid", user.gid())?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).sys("setresuid", user.uid())?;
    Ok(())
}

/// Set the umask of the user process.
pub fn set_umask(user: &User) {
    umask(Mode::from_bits_truncate(
        user.umask().unwrap_or(DEFAULT_UMASK),
    ));
}
