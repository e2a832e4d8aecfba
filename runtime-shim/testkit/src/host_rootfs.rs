//! The one root filesystem of the tests: the host's own binaries and their libraries,
//! copied (never mounted), so a container runs real programs without an image.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Binaries copied (with their shared libraries) into the test root filesystem.
const ROOTFS_BINARIES: &[&str] = &[
    "sh", "cat", "ls", "id", "hostname", "sleep", "head", "tail", "true", "false", "touch", "echo",
    "readlink", "stat", "mkdir", "env", "pwd", "wc", "grep", "rm", "tr", "tty", "dd", "uname",
];

/// Where the host keeps binary `name`.
fn find_binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("host binary {name:?} not found (needed for the test rootfs)");
}

/// Shared libraries (and the dynamic loader) a binary needs, as paths `ldd` prints.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("running ldd {}: {e}", binary.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Vec::new();
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)".
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path {
            if p.starts_with('/') {
                libs.push(PathBuf::from(p));
            }
        }
    }
    libs
}

/// `mkdir -p` whose last directory gets exactly `mode` (umask or not).
pub(crate) fn mkdir_mode(path: &Path, mode: u32) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies `src` (following symlinks) to `dest`, creating parent directories.
fn copy_file(src: &Path, dest: &Path) {
    if dest.exists() {
        return;
    }
    if let Some(parent) = dest.parent() {
        mkdir_mode(parent, 0o755);
    }
    fs::copy(src, dest)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dest.display()));
}

/// Builds a minimal root filesystem at `dest` from the host's own binaries: the binaries
/// in `/bin` (with `/usr/bin` a symlink to it), their shared libraries and the dynamic
/// loader at the paths `ldd` reports, and empty `proc sys dev tmp etc mnt root run`.
pub fn build_rootfs(dest: &Path) {
    mkdir_mode(dest, 0o755);
    for d in [
        "proc", "sys", "dev", "etc", "mnt", "root", "run", "bin", "usr",
    ] {
        mkdir_mode(&dest.join(d), 0o755);
    }
    mkdir_mode(&dest.join("tmp"), 0o1777);
    std::os::unix::fs::symlink("../bin", dest.join("usr/bin")).unwrap();
    for name in ROOTFS_BINARIES {
        let host = find_binary(name);
        copy_file(&host, &dest.join("bin").join(name));
        for lib in shared_libraries(&host) {
            copy_file(&lib, &dest.join(lib.strip_prefix("/").unwrap()));
        }
    }
    fs::write(dest.join("etc/hostname"), "rootfs\n").unwrap();
}
