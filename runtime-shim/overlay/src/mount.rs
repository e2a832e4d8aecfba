//! One overlayfs mount: the new mount API (`fsopen`, one `fsconfig` per `lowerdir+`,
//! `fsmount`, `move_mount`), which has no limit on the number of layers, and `mount(2)`
//! with a `lowerdir=` string (at most one page of options) where the kernel lacks it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

/// The longest option string `mount(2)` takes (one page, with its NUL).
const PAGE_OPTIONS: usize = 4095;

/// A failed mount step: the syscall and its error (with the kernel's own message from
/// the filesystem context, when it left one).
#[derive(Debug)]
pub struct MountFailure {
    /// The call that failed.
    pub syscall: &'static str,
    /// Its error.
    pub source: io::Error,
}

fn fail(syscall: &'static str, e: impl Into<io::Error>) -> MountFailure {
    MountFailure {
        syscall,
        source: e.into(),
    }
}

/// Mounts an overlay of `lowers` (top first) with `upper` and `work` on `target`.
pub fn mount(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), MountFailure> {
    match new_api(lowers, upper, work) {
        Err(Legacy) => legacy(lowers, upper, work, target),
        Ok(Err(f)) => Err(f),
        Ok(Ok(mnt)) => attach(&mnt, target),
    }
}

/// An overlay of `lowers` (top first) with `upper` and `work`, mounted nowhere: the fd
/// of its detached root (`/proc/self/fd/<fd>` reaches it), gone when the fd closes.
/// `None` on kernels without the new mount API's `lowerdir+`. Its volatile mark stays
/// in `work`: a later mount needs a fresh work dir.
pub fn mount_detached(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Option<Result<OwnedFd, MountFailure>> {
    new_api(lowers, upper, work).ok()
}

/// The new API says it cannot do this (no fsopen, or no `lowerdir+`).
struct Legacy;

/// Whether the kernel's overlayfs takes `lowerdir+` (6.8 and later). Asked once: older
/// kernels between 5.2 and 6.4 accept any key through the legacy context and only fail
/// at create, too late to tell "no lowerdir+" from a real error.
fn has_lowerdir_plus() -> bool {
    kernel() >= (6, 8)
}

/// The running kernel's (major, minor), read once.
fn kernel() -> (u32, u32) {
    static KNOWN: OnceLock<(u32, u32)> = OnceLock::new();
    *KNOWN.get_or_init(|| {
        let uname = rustix::system::uname();
        let release = uname.release().to_string_lossy();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let mut next = || {
            parts
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(0)
        };
        (next(), next())
    })
}

/// A read-only overlay of `lowers` alone (top first, at least two: overlayfs wants two
/// lowers when there is no upper), not attached anywhere: a view of an image's files
/// through the returned descriptor (`/proc/self/fd/N`). `None` where the kernel lacks the
/// new mount API's `lowerdir+`.
pub fn mount_view(lowers: &[PathBuf]) -> Option<Result<OwnedFd, MountFailure>> {
    if !has_lowerdir_plus() {
        return None;
    }
    let fs = match rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => return Some(Err(fail("fsopen", e))),
    };
    let view = || -> Result<OwnedFd, MountFailure> {
        for lower in lowers {
            rustix::mount::fsconfig_set_string(&fs, "lowerdir+", lower)
                .map_err(|e| with_log(&fs, "fsconfig(lowerdir+)", e))?;
        }
        rustix::mount::fsconfig_create(&fs).map_err(|e| with_log(&fs, "fsconfig(create)", e))?;
        rustix::mount::fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_RDONLY,
        )
        .map_err(|e| with_log(&fs, "fsmount", e))
    };
    Some(view())
}

fn new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<Result<OwnedFd, MountFailure>, Legacy> {
    if !has_lowerdir_plus() {
        return Err(Legacy);
    }
    let fs = match rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) | Err(Errno::PERM) => return Err(Legacy),
        Err(e) => return Ok(Err(fail("fsopen", e))),
    };
    for (i, lower) in lowers.iter().enumerate() {
        match rustix::mount::fsconfig_set_string(&fs, "lowerdir+", lower) {
            Ok(()) => {}
            // Kernels before 6.8 know no `lowerdir+`: they say so at the first one.
            Err(Errno::INVAL) if i == 0 => return Err(Legacy),
            Err(e) => return Ok(Err(with_log(&fs, "fsconfig(lowerdir+)", e))),
        }
    }
    Ok(finish_new(fs, upper, work))
}

fn finish_new(fs: OwnedFd, upper: &Path, work: &Path) -> Result<OwnedFd, MountFailure> {
    let set = |key: &str, value: &Path| rustix::mount::fsconfig_set_string(&fs, key, value);
    set("upperdir", upper).map_err(|e| with_log(&fs, "fsconfig(upperdir)", e))?;
    set("workdir", work).map_err(|e| with_log(&fs, "fsconfig(workdir)", e))?;
    // The inodes index ties an upper to its lowers' file handles: layers are shared and
    // removed independently, so it stays off (as containerd keeps it).
    let _ = rustix::mount::fsconfig_set_string(&fs, "index", "off");
    // Volatile: no sync of the upper's whole filesystem at unmount (overlayfs otherwise
    // syncs all of it: every container's and everyone's dirty data on a shared root
    // disk) and fsync in the container's rootfs is not made durable. Berth keeps no
    // container over a reboot, so its upper never needed to survive a crash; volumes
    // are other mounts, untouched by this.
    rustix::mount::fsconfig_set_flag(&fs, "volatile")
        .map_err(|e| with_log(&fs, "fsconfig(volatile)", e))?;
    rustix::mount::fsconfig_create(&fs).map_err(|e| with_log(&fs, "fsconfig(create)", e))?;
    rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| with_log(&fs, "fsmount", e))
}

/// Attaches the detached mount `mnt` on `target`.
fn attach(mnt: &OwnedFd, target: &Path) -> Result<(), MountFailure> {
    let cwd = rustix::fs::CWD;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        cwd,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("move_mount", e))
}

/// The error, with what the kernel wrote to the filesystem context's log (e.g.
/// "overlayfs: failed to resolve '...': -2"), which says far more than EINVAL.
fn with_log(fs: &OwnedFd, syscall: &'static str, e: Errno) -> MountFailure {
    let mut buf = [0u8; 512];
    let mut log = String::new();
    // Nonblocking in effect: the log returns ENODATA once empty.
    while let Ok(n @ 1..) = rustix::io::read(fs, &mut buf) {
        log.push_str(&String::from_utf8_lossy(&buf[..n]));
        log.push(';');
    }
    let msg = if log.is_empty() {
        io::Error::from(e).to_string()
    } else {
        format!("{} ({})", io::Error::from(e), log.trim_end_matches(';'))
    };
    fail(syscall, io::Error::new(io::Error::from(e).kind(), msg))
}

fn legacy(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), MountFailure> {
    let mut data = b"lowerdir=".to_vec();
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend_from_slice(&escape(l));
    }
    for (key, path) in [(&b",upperdir="[..], upper), (b",workdir=", work)] {
        data.extend_from_slice(key);
        data.extend_from_slice(&escape(path));
    }
    data.extend_from_slice(b",index=off");
    if kernel() >= (5, 10) {
        data.extend_from_slice(b",volatile");
    }
    if data.len() > PAGE_OPTIONS {
        let msg = format!(
            "{} layers need {} bytes of options, mount(2) takes {PAGE_OPTIONS}",
            lowers.len(),
            data.len()
        );
        return Err(fail(
            "mount",
            io::Error::new(io::ErrorKind::InvalidInput, msg),
        ));
    }
    let data = CString::new(data)
        .map_err(|e| fail("mount", io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(|e| fail("mount", e))
}

/// overlayfs's option escapes: `\`, `:` and `,` are special in the option string.
fn escape(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in p.as_os_str().as_bytes() {
        if matches!(b, b'\\' | b':' | b',') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Unmounts `target` until nothing is mounted there (a mount stacked on another goes
/// too). A busy mount is detached: it goes once its last user does.
pub fn unmount(target: &Path) -> Result<(), MountFailure> {
    loop {
        match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::BUSY) => {
                let flags = UnmountFlags::NOFOLLOW | UnmountFlags::DETACH;
                rustix::mount::unmount(target, flags).map_err(|e| fail("umount2(MNT_DETACH)", e))?
            }
            Err(e) => return Err(fail("umount2", e)),
        }
    }
}
