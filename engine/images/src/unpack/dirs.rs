//! Paths inside the layer root: entry names normalized (and refused when they climb out),
//! and the directories entries land in, opened beneath the root with `openat2` so that
//! neither `..` nor a symlink leads out. A few recently used directories stay open: a
//! tar lists a directory's files together, so most entries need no lookup at all.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Directories kept open at once.
const CACHED: usize = 16;

/// An entry's path split into its directory and its name, both relative to the root.
#[derive(Debug, PartialEq, Eq)]
pub struct EntryPath {
    /// The parent directory, components joined with `/` ("" for the root).
    pub parent: Vec<u8>,
    /// The last component.
    pub name: Vec<u8>,
}

/// Normalizes a tar path: a leading `/` and `.` components are dropped, `..` pops a
/// component. `None` when `..` would climb above the root; `Some(None)` for the root
/// itself.
pub fn normalize(raw: &[u8]) -> Option<Option<EntryPath>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let Some(name) = parts.pop() else {
        return Some(None);
    };
    Some(Some(EntryPath {
        parent: parts.join(&b'/'),
        name: name.to_vec(),
    }))
}

/// The layer root and the directories beneath it opened lately.
pub struct Dirs {
    root: Rc<OwnedFd>,
    open: Vec<(Vec<u8>, Rc<OwnedFd>)>,
    next: usize,
}

/// Why a directory could not be reached.
pub enum DirError {
    /// Resolving it would leave the root.
    Escape,
    /// A syscall failed.
    Sys(&'static str, io::Error),
}

impl Dirs {
    /// Over the root directory `root` (an `O_PATH` descriptor).
    pub fn new(root: OwnedFd) -> Dirs {
        Dirs {
            root: Rc::new(root),
            open: Vec::with_capacity(CACHED),
            next: 0,
        }
    }

    /// Forgets every open directory: called whenever an entry removed something, which
    /// may have been (or led to) one of them.
    pub fn invalidate(&mut self) {
        self.open.clear();
        self.next = 0;
    }

    /// The directory `path` (relative to the root), created with its missing parents
    /// (mode 0755, as docker does) when `create` is set.
    pub fn get(&mut self, path: &[u8], create: bool) -> Result<Rc<OwnedFd>, DirError> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((_, fd)) = self.open.iter().find(|(p, _)| p == path) {
            return Ok(fd.clone());
        }
        let fd = match resolve(self.root.as_fd(), path) {
            Err(DirError::Sys(_, e)) if create && e.kind() == io::ErrorKind::NotFound => {
                self.create(path)?
            }
            other => other?,
        };
        let fd = Rc::new(fd);
        self.remember(path, fd.clone());
        Ok(fd)
    }

    fn remember(&mut self, path: &[u8], fd: Rc<OwnedFd>) {
        if self.open.len() < CACHED {
            self.open.push((path.to_vec(), fd));
        } else {
            self.open[self.next] = (path.to_vec(), fd);
            self.next = (self.next + 1) % CACHED;
        }
    }

    /// Creates the missing directories of `path` one component at a time, each resolved
    /// beneath the root before the next is made in it.
    fn create(&mut self, path: &[u8]) -> Result<OwnedFd, DirError> {
        let mut dir: Option<OwnedFd> = None;
        let mut end = 0;
        for part in path.split(|&b| b == b'/') {
            end += part.len();
            let prefix = &path[..end];
            end += 1;
            let at = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
            match rustix::fs::mkdirat(at, part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(DirError::Sys("mkdirat", e.into())),
            }
            dir = Some(resolve(self.root.as_fd(), prefix)?);
        }
        dir.ok_or(DirError::Sys("mkdirat", Errno::INVAL.into()))
    }
}

/// Opens the directory `path` beneath `root`: `..` and symlinks are followed only while
/// they stay inside (the kernel refuses the rest with EXDEV), magic links never.
pub fn resolve(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, DirError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    loop {
        match rustix::fs::openat2(root, path, flags, Mode::empty(), how) {
            Ok(fd) => return Ok(fd),
            // A rename elsewhere in the tree raced the lookup: the kernel asks to retry.
            Err(Errno::AGAIN) => continue,
            Err(Errno::XDEV) => return Err(DirError::Escape),
            Err(e) => return Err(DirError::Sys("openat2", e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Option<Option<(String, String)>> {
        normalize(raw.as_bytes()).map(|p| {
            p.map(|p| {
                let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
                (s(p.parent), s(p.name))
            })
        })
    }

    #[test]
    fn tar_paths_normalize_inside_the_root_or_not_at_all() {
        let some = |p: &str, n: &str| Some(Some((p.to_string(), n.to_string())));
        assert_eq!(norm("a/b/c"), some("a/b", "c"));
        assert_eq!(norm("./a//b/"), some("a", "b"));
        assert_eq!(norm("/abs/x"), some("abs", "x"));
        assert_eq!(norm("a/../b"), some("", "b"));
        assert_eq!(norm("./"), Some(None));
        assert_eq!(norm("a/.."), Some(None));
        assert_eq!(norm("../x"), None);
        assert_eq!(norm("/abs/../../x"), None);
        assert_eq!(norm("a/../../x"), None);
    }
}
