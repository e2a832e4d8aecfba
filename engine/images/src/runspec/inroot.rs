//! File operations inside a container's root filesystem, which is untrusted: every path
//! is resolved as if the rootfs were `/` (`openat2` with `RESOLVE_IN_ROOT`), so a symlink
//! in the image (`/etc/passwd -> /etc/shadow`, `-> ../../../../etc/passwd`) never leads
//! out of it.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};

use super::RunspecError;

/// The largest /etc/passwd or /etc/group read (a real one is a few KiB).
pub const MAX_ID_FILE: u64 = 4 << 20;

fn open_root(rootfs: &Path) -> nix::Result<OwnedFd> {
    open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `rel` (relative, may be `.`) resolved inside `root`, opened with `flags | O_PATH`.
fn resolve(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// Whether `dir` (absolute) is a directory inside `rootfs`, resolved as the container
/// would resolve it.
pub fn dir_exists(rootfs: &Path, dir: &Path) -> bool {
    let Ok(root) = open_root(rootfs) else {
        return false;
    };
    let rel = Path::new(".").join(dir.strip_prefix("/").unwrap_or(dir));
    resolve(&root, &rel, OFlag::O_DIRECTORY).is_ok()
}

/// Make the working directory `dir` (absolute, clean) inside `rootfs` if it is missing,
/// as docker does: each missing component is made (mode 0755, owned by root) in its
/// parent as resolved inside the rootfs.
pub fn ensure_dir(rootfs: &Path, dir: &Path) -> Result<(), RunspecError> {
    let fail = |source: Errno| RunspecError::Workdir {
        path: dir.display().to_string(),
        source: source.into(),
    };
    let root = open_root(rootfs).map_err(fail)?;
    let mut done = PathBuf::from(".");
    for part in dir.components() {
        let Component::Normal(name) = part else {
            continue;
        };
        let next = done.join(name);
        match resolve(&root, &next, OFlag::O_DIRECTORY) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let parent = resolve(&root, &done, OFlag::O_DIRECTORY).map_err(fail)?;
                match mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fail(e)),
                }
                // A dangling symlink in the way stays in the way: refused here.
                resolve(&root, &next, OFlag::O_DIRECTORY).map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
        }
        done = next;
    }
    Ok(())
}

/// The text of `rel` inside `rootfs`, every symlink resolved as if `rootfs` were `/`
/// (`openat2` with `RESOLVE_IN_ROOT`: an image's `/etc/passwd -> /etc/shadow` or
/// `-> ../../../etc/passwd` stays inside it). `None` when it does not exist. Only a
/// regular file is read (a FIFO would block, a device node could do anything), and at
/// most [`MAX_ID_FILE`] bytes of it.
pub(crate) fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>, RunspecError> {
    let path_err = |source| RunspecError::IdFile {
        rootfs: rootfs.into(),
        file: rel.into(),
        source,
    };
    let root = open_root(rootfs).map_err(|e| path_err(e.into()))?;
    let found = match resolve(&root, Path::new(rel), OFlag::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(path_err(e.into())),
    };
    let st = fstat(&found).map_err(|e| path_err(e.into()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(path_err(std::io::Error::other("not a regular file")));
    }
    // Reopened for reading through the descriptor: the very file checked above.
    let readable = open(
        format!("/proc/self/fd/{}", found.as_raw_fd()).as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| path_err(e.into()))?;
    let mut bytes = Vec::new();
    File::from(readable)
        .take(MAX_ID_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(path_err)?;
    if bytes.len() as u64 > MAX_ID_FILE {
        return Err(path_err(std::io::Error::other(format!(
            "larger than {MAX_ID_FILE} bytes"
        ))));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}
