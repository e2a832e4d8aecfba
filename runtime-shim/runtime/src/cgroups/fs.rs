//! The cgroupfs primitives every controller uses: read and write one file, create the
//! directories down to a cgroup, list its processes, remove it.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CgroupError, Hierarchy};

/// Write `value` to `dir/file` in a single `write(2)`, as cgroupfs wants. The file is not
/// created: a missing file means the controller (or feature) is missing.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_owned(),
        source,
    })
}

/// Write each of `values` to `dir/file` in a `write(2)` of its own, through one open
/// file: for files that take one entry per write (v1 `devices.allow`), without an open
/// and a close per entry.
pub(crate) fn write_each<'a>(
    dir: &Path,
    file: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let mut values = values.into_iter().peekable();
    let Some(first) = values.peek().copied() else {
        return Ok(());
    };
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|source| CgroupError::Write {
            path: path.clone(),
            value: first.to_owned(),
            source,
        })?;
    for value in values {
        f.write_all(value.as_bytes())
            .map_err(|source| CgroupError::Write {
                path: path.clone(),
                value: value.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// [`write`] with the bare I/O error, for callers that react to a particular errno.
pub(crate) fn write_raw(path: &Path, value: &str) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// The content of `dir/file`, without surrounding whitespace.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok(content.trim().to_owned()),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// The content of `dir/file` without surrounding whitespace, or `None` if the file does
/// not exist (a controller or feature this kernel or cgroup lacks).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok(Some(content.trim().to_owned())),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// A number as cgroupfs writes it; `max` reads as `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let text = text.trim();
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.to_owned(),
    })
}

/// `dir/file` as a number (see [`parse_u64`]), or `None` if the file does not exist.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_optional(dir, file)? {
        Some(text) => parse_u64(&dir.join(file), &text).map(Some),
        None => Ok(None),
    }
}

/// A "flat keyed" file (`key value` per line, as `memory.stat` or `cpu.stat`), or an
/// empty map if the file does not exist.
pub(crate) fn read_keyed(
    dir: &Path,
    file: &str,
) -> Result<std::collections::BTreeMap<String, u64>, CgroupError> {
    let mut map = std::collections::BTreeMap::new();
    let Some(content) = read_optional(dir, file)? else {
        return Ok(map);
    };
    let path = dir.join(file);
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(CgroupError::Parse {
                path,
                content: line.to_owned(),
            });
        };
        map.insert(key.to_owned(), parse_u64(&path, value)?);
    }
    Ok(map)
}

/// Whether `dir/file` exists.
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// The directories from just below the hierarchy's mount point down to the container's
/// cgroup, top first.
pub(crate) fn levels(hierarchy: &Hierarchy) -> Result<Vec<PathBuf>, CgroupError> {
    let below = hierarchy
        .path()
        .strip_prefix(hierarchy.mount())
        .map_err(|_| CgroupError::InvalidPath {
            path: hierarchy.path().to_path_buf(),
            reason: "not below its hierarchy's mount point",
        })?;
    let mut level = hierarchy.mount().to_path_buf();
    Ok(below
        .components()
        .map(|component| {
            level.push(component);
            level.clone()
        })
        .collect())
}

/// Make the container's cgroup in `hierarchy` and any missing level above it; existing
/// ones are fine. The container's own level is tried first: its parents nearly always
/// exist already, and a mkdir that finds its directory existing still takes the lock
/// of the directory above, which every starting container contends for.
pub(crate) fn create_all(hierarchy: &Hierarchy) -> Result<(), CgroupError> {
    match std::fs::create_dir(hierarchy.path()) {
        Ok(()) => return Ok(()),
        Err(source) if source.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(source) if source.kind() == ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CgroupError::Create {
                path: hierarchy.path().to_path_buf(),
                source,
            })
        }
    }
    for level in levels(hierarchy)? {
        create_dir(&level)?;
    }
    Ok(())
}

/// `mkdir` one cgroup; an existing one is fine.
pub(crate) fn create_dir(path: &Path) -> Result<(), CgroupError> {
    create_dir_new(path).map(drop)
}

/// [`create_dir`], telling whether this call made it (`false`: it existed).
pub(crate) fn create_dir_new(path: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(source) if source.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Append the pids in `dir`'s `cgroup.procs` and in all its sub-cgroups to `pids`. A
/// cgroup that does not exist (any more) holds none.
pub(crate) fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    let content = match std::fs::read_to_string(&path) {
        Ok(content) => content,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path, source }),
    };
    for line in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line.parse().map_err(|_| CgroupError::Parse {
            path: path.clone(),
            content: line.to_owned(),
        })?;
        pids.push(pid);
    }
    for child in sub_cgroups(dir)? {
        collect_pids(&child, pids)?;
    }
    Ok(())
}

/// Ask `done` (which reads a cgroup file, say) until it answers yes or `patience` runs
/// out, sleeping between asks from 100µs doubling up to 10ms. Whether it answered yes.
pub(crate) fn poll(
    patience: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_micros(100);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() + pause > deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Remove the cgroup `dir` and its sub-cgroups, deepest first. A missing directory is
/// fine; `EBUSY` (tasks still exiting) is retried with short sleeps until `deadline`.
pub(crate) fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    for child in sub_cgroups(dir)? {
        remove_tree(&child, deadline)?;
    }
    let mut pause = Duration::from_millis(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            Err(err)
                if err.raw_os_error() == Some(libc::EBUSY)
                    && Instant::now() + pause <= deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// The sub-cgroups (sub-directories) of `dir`; none if `dir` is gone.
fn sub_cgroups(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let read_error = |source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(read_error(source)),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => children.push(entry.path()),
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {} // removed meanwhile
            Err(source) => return Err(read_error(source)),
        }
    }
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_does_not_create_files() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), "pids.max", "10").unwrap_err();
        assert!(matches!(err, CgroupError::Write { .. }));
        assert!(err.to_string().contains("pids.max"), "{err}");
        std::fs::write(tmp.path().join("pids.max"), "max\n").unwrap();
        write(tmp.path(), "pids.max", "10").unwrap();
        assert_eq!(read(tmp.path(), "pids.max").unwrap(), "10");
    }

    #[test]
    fn optional_numbers_and_keyed_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_optional(tmp.path(), "nope").unwrap(), None);
        assert_eq!(read_u64(tmp.path(), "nope").unwrap(), None);
        std::fs::write(tmp.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(read_u64(tmp.path(), "pids.max").unwrap(), Some(u64::MAX));
        std::fs::write(tmp.path().join("cpu.stat"), "usage_usec 12\nnr_periods 0\n").unwrap();
        let stat = read_keyed(tmp.path(), "cpu.stat").unwrap();
        assert_eq!(stat["usage_usec"], 12);
        assert_eq!(stat.len(), 2);
        assert!(read_keyed(tmp.path(), "nope").unwrap().is_empty());
        std::fs::write(tmp.path().join("bad"), "a 1 2\n").unwrap();
        assert!(matches!(
            read_keyed(tmp.path(), "bad"),
            Err(CgroupError::Parse { .. })
        ));
        std::fs::write(tmp.path().join("bad"), "a x\n").unwrap();
        assert!(read_keyed(tmp.path(), "bad").is_err());
    }

    #[test]
    fn levels_walk_down_from_the_mount() {
        let hierarchy = Hierarchy {
            mount: PathBuf::from("/sys/fs/cgroup/pids"),
            path: PathBuf::from("/sys/fs/cgroup/pids/berth/c1"),
        };
        assert_eq!(
            levels(&hierarchy).unwrap(),
            [
                PathBuf::from("/sys/fs/cgroup/pids/berth"),
                PathBuf::from("/sys/fs/cgroup/pids/berth/c1")
            ]
        );
        let outside = Hierarchy {
            mount: PathBuf::from("/sys/fs/cgroup/pids"),
            path: PathBuf::from("/etc"),
        };
        assert!(levels(&outside).is_err());
    }

    #[test]
    fn create_all_makes_missing_parents_and_accepts_existing_levels() {
        let tmp = tempfile::tempdir().unwrap();
        let hierarchy = Hierarchy {
            mount: tmp.path().to_path_buf(),
            path: tmp.path().join("berth/c1"),
        };
        create_all(&hierarchy).unwrap();
        assert!(hierarchy.path().is_dir());
        create_all(&hierarchy).unwrap();
        let sibling = Hierarchy {
            mount: tmp.path().to_path_buf(),
            path: tmp.path().join("berth/c2"),
        };
        create_all(&sibling).unwrap();
        assert!(sibling.path().is_dir());
        // A file where a level should be is an error naming the path.
        std::fs::write(tmp.path().join("file"), "").unwrap();
        let blocked = Hierarchy {
            mount: tmp.path().to_path_buf(),
            path: tmp.path().join("file/c3"),
        };
        let err = create_all(&blocked).unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }

    #[test]
    fn collects_pids_recursively() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cgroup.procs"), "12\n7\n").unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::write(tmp.path().join("sub/cgroup.procs"), "7\n30\n").unwrap();
        let mut pids = Vec::new();
        collect_pids(tmp.path(), &mut pids).unwrap();
        pids.sort_unstable();
        assert_eq!(pids, [7, 7, 12, 30]);

        std::fs::write(tmp.path().join("cgroup.procs"), "x\n").unwrap();
        let err = collect_pids(tmp.path(), &mut pids).unwrap_err();
        assert!(matches!(err, CgroupError::Parse { .. }), "{err}");
    }

    #[test]
    fn remove_tree_goes_deepest_first_and_tolerates_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("c1");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir_all(top.join("c")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        remove_tree(&top, deadline).unwrap();
        assert!(!top.exists());
        remove_tree(&top, deadline).unwrap();
    }
}
