//! Resolve a path inside the container's root the way the container will see it: symlinks
//! are followed relative to the root, and `..` never climbs above it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Most symlinks followed while resolving one path, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

/// Join `unsafe_path` onto `root`, following symlinks as if `root` were `/`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: VecDeque<OsString> = components(unsafe_path);
    let mut followed = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        match fs::read_link(root.join(&candidate)) {
            Ok(target) => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(Error::sys(
                        "resolve",
                        root.join(unsafe_path.strip_prefix("/").unwrap_or(unsafe_path))
                            .display(),
                        nix::errno::Errno::ELOOP,
                    ));
                }
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in components(&target).into_iter().rev() {
                    pending.push_front(c);
                }
            }
            // Not a symlink, or not there yet: either way the name is taken literally.
            Err(_) => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// The normal and `..` components of a path; `/` and `.` are dropped.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stays_inside_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir(r.join("etc")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../etc", r.join("etc/up")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            secure_join(r, Path::new("/abs/passwd")).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(secure_join(r, Path::new("/etc/up")).unwrap(), r.join("etc"));
        assert_eq!(secure_join(r, Path::new("/../../x")).unwrap(), r.join("x"));
        assert_eq!(
            secure_join(r, Path::new("/new/dir")).unwrap(),
            r.join("new/dir")
        );
        assert!(secure_join(r, Path::new("/loop")).is_err());
    }
}
