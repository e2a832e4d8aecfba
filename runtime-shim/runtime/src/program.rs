//! The user program: found on the container's PATH before the init reports ready, so a
//! missing binary fails `create` (as in runc) instead of a silent exit after `start`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// PATH used when the process environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A program ready to exec: resolved path, argv and envp as C strings.
#[derive(Debug)]
pub struct Program {
    /// The resolved executable.
    pub path: CString,
    /// Arguments, argv[0] included.
    pub args: Vec<CString>,
    /// The environment.
    pub env: Vec<CString>,
}

/// Encode strings for execve, refusing interior NUL bytes.
fn c_strings(items: &[String], what: &str) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| {
                Error::sys(
                    "exec",
                    format!("{what} {s:?} contains a NUL byte"),
                    nix::errno::Errno::EINVAL,
                )
            })
        })
        .collect()
}

/// Resolve `args[0]` against the PATH in `env` (relative to the current root) and encode
/// everything for execve.
pub fn resolve(args: &[String], env: &[String]) -> Result<Program> {
    let name = args.first().map(String::as_str).unwrap_or_default();
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        let search = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        search
            .split(':')
            .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                Error::sys(
                    "exec",
                    format!("{name:?}: executable file not found in $PATH"),
                    nix::errno::Errno::ENOENT,
                )
            })?
    };
    if !is_executable(&path) {
        let errno = if path.exists() {
            nix::errno::Errno::EACCES
        } else {
            nix::errno::Errno::ENOENT
        };
        return Err(Error::sys("exec", format!("{:?}", path.display()), errno));
    }
    Ok(Program {
        path: CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            Error::sys(
                "exec",
                "program path contains a NUL byte",
                nix::errno::Errno::EINVAL,
            )
        })?,
        args: c_strings(args, "argument")?,
        env: c_strings(env, "environment entry")?,
    })
}

/// A regular file with an execute bit.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
