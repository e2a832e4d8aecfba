//! The one root filesystem of the tests: the host's own binaries and their libraries,
//! copied (never mounted), so a container runs real programs without an image. The
//! builder is berth-host-rootfs's; the tests' list of binaries is here.

use std::path::Path;

/// Binaries copied (with their shared libraries) into the test root filesystem.
const ROOTFS_BINARIES: &[&str] = &[
    "sh", "cat", "ls", "id", "hostname", "sleep", "head", "tail", "true", "false", "touch", "echo",
    "readlink", "stat", "mkdir", "env", "pwd", "wc", "grep", "rm", "tr", "tty", "dd", "uname",
];

/// `mkdir -p` whose last directory gets exactly `mode` (umask or not).
pub(crate) fn mkdir_mode(path: &Path, mode: u32) {
    berth_host_rootfs::mkdir_mode(path, mode).unwrap_or_else(|e| panic!("{e}"));
}

/// Builds a minimal root filesystem at `dest` from the host's own binaries: the binaries
/// in `/bin` (with `/usr/bin` a symlink to it), their shared libraries and the dynamic
/// loader at the paths `ldd` reports, and empty `proc sys dev tmp etc mnt root run`.
pub fn build_rootfs(dest: &Path) {
    berth_host_rootfs::build(dest, ROOTFS_BINARIES).unwrap_or_else(|e| panic!("{e}"));
}
