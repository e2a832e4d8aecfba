//! mount_setattr(2): give a whole mount tree the flags of a remount in one call, where
//! remounting would take one call — and the global mount lock — per mount in it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;

/// `struct mount_attr` of linux/mount.h.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The access-time mode is one field: these are its values, not bits.
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

/// The mount attributes `flags` (of mount(2)) ask for: what to set, and what to clear
/// first — every attribute a remount sets, so the result is exactly `flags`, as a
/// remount's would be.
fn attrs_of(flags: MsFlags) -> (u64, u64) {
    let mut set = 0;
    for (flag, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(flag) {
            set |= attr;
        }
    }
    // As a remount does: no atime flag means relatime (the zero value of the field).
    if flags.contains(MsFlags::MS_NOATIME) {
        set |= MOUNT_ATTR_NOATIME;
    } else if flags.contains(MsFlags::MS_STRICTATIME) {
        set |= MOUNT_ATTR_STRICTATIME;
    }
    let all = MOUNT_ATTR_RDONLY
        | MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | MOUNT_ATTR_NOEXEC
        | MOUNT_ATTR_NODIRATIME
        | MOUNT_ATTR_ATIME_MASK;
    (set, all)
}

/// Apply `flags` to the mount at `path` and every mount below it. `ENOSYS` on kernels
/// before 5.12.
pub fn set_recursive(path: &Path, flags: MsFlags) -> Result<(), Errno> {
    let (attr_set, attr_clr) = attrs_of(flags);
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: mount_setattr with a NUL-terminated path and a mount_attr of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            (libc::AT_RECURSIVE | libc::AT_SYMLINK_NOFOLLOW) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_attributes() {
        let (set, clr) = attrs_of(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        );
        assert_eq!(set, 0xf);
        assert_eq!(clr, 0xff);
        assert_eq!(attrs_of(MsFlags::MS_NOATIME).0, MOUNT_ATTR_NOATIME);
        assert_eq!(
            attrs_of(MsFlags::MS_STRICTATIME | MsFlags::MS_NODIRATIME).0,
            MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_NODIRATIME
        );
        assert_eq!(attrs_of(MsFlags::MS_RELATIME).0, 0);
    }
}
