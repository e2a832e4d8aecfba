//! The one host root filesystem builder of Berth: the host's own binaries and their
//! shared libraries, copied (never mounted), so a container runs real programs without an
//! image. The test kit and the loadtest both build their root filesystems here.
//!
//! Depends on nothing of Berth (floor 0).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a root filesystem could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system step failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`mkdir`, `copy`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `ldd` could not be run.
    #[error("running ldd {binary}: {source}")]
    Ldd {
        /// The binary whose libraries were asked for.
        binary: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The host has no binary of that name in `/usr/bin /bin /usr/sbin /sbin`.
    #[error("host binary {0:?} not found (needed for the root filesystem)")]
    NoBinary(String),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Where the host keeps binary `name`.
pub fn find_binary(name: &str) -> Result<PathBuf, Error> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::NoBinary(name.to_owned()))
}

/// Shared libraries (and the dynamic loader) a binary needs, as paths `ldd` prints.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, Error> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|source| Error::Ldd {
            binary: binary.to_owned(),
            source,
        })?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// The absolute paths in `ldd` output; none for a static binary.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Vec::new();
    }
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
    // "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)".
    text.lines()
        .filter_map(|line| match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        })
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// `mkdir -p` whose last directory gets exactly `mode` (umask or not).
pub fn mkdir_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io_err("mkdir", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))
}

/// Copies `src` (following symlinks) to `dest`, creating parent directories; a `dest`
/// already there is kept.
fn copy_file(src: &Path, dest: &Path) -> Result<(), Error> {
    if dest.exists() {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        mkdir_mode(parent, 0o755)?;
    }
    fs::copy(src, dest).map_err(io_err("copy", src))?;
    Ok(())
}

/// Builds a minimal root filesystem at `dest` from the host's own `binaries` (names, as
/// `sh`): the binaries in `/bin` (with `/usr/bin` a symlink to it), their shared libraries
/// and the dynamic loader at the paths `ldd` reports, empty
/// `proc sys dev tmp etc mnt root run`, and `/etc/hostname`.
pub fn build(dest: &Path, binaries: &[&str]) -> Result<(), Error> {
    mkdir_mode(dest, 0o755)?;
    for d in [
        "proc", "sys", "dev", "etc", "mnt", "root", "run", "bin", "usr",
    ] {
        mkdir_mode(&dest.join(d), 0o755)?;
    }
    mkdir_mode(&dest.join("tmp"), 0o1777)?;
    let usr_bin = dest.join("usr/bin");
    std::os::unix::fs::symlink("../bin", &usr_bin).map_err(io_err("symlink", &usr_bin))?;
    for name in binaries {
        let host = find_binary(name)?;
        copy_file(&host, &dest.join("bin").join(name))?;
        for lib in shared_libraries(&host)? {
            if let Ok(rel) = lib.strip_prefix("/") {
                copy_file(&lib, &dest.join(rel))?;
            }
        }
    }
    let hostname = dest.join("etc/hostname");
    fs::write(&hostname, "rootfs\n").map_err(io_err("write", &hostname))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_absolute_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn a_root_filesystem_runs_its_own_sh() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        build(&root, &["sh"]).unwrap();
        assert!(root.join("bin/sh").is_file());
        assert!(root.join("usr/bin/sh").is_file());
        assert_eq!(
            fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        // Chroot-free check: every library ldd names for sh is in the tree.
        for lib in shared_libraries(&find_binary("sh").unwrap()).unwrap() {
            assert!(
                root.join(lib.strip_prefix("/").unwrap()).exists(),
                "{lib:?}"
            );
        }
    }

    #[test]
    fn a_missing_binary_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&dir.path().join("rootfs"), &["no-such-binary-berth"]).unwrap_err();
        assert!(err.to_string().contains("no-such-binary-berth"), "{err}");
    }
}
