//! The one atomic write of Berth: write a temporary file beside the target, then rename it
//! over the target, so a concurrent reader sees the old content, the new, or (for a new
//! file) none — never a part. No fsync: Berth's state must survive a crash of a process,
//! not of the machine.
//!
//! Depends on nothing of Berth (floor 0); the runtime, the shim and the engine use it.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of a file written by [`write`] (before the umask), as `File::create` gives.
const DEFAULT_MODE: u32 = 0o666;

/// Write `data` to `path` atomically, with the default file mode.
///
/// The directory must exist; an error comes back unchanged (its kind tells `NotFound`
/// apart), for the caller to give it the context of what it was writing.
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with_mode(path, data, DEFAULT_MODE)
}

/// Write `data` to `path` atomically; a file this makes gets `mode` (before the umask).
/// On failure the temporary file is removed and `path` is left as it was.
pub fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(data)?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A temporary name beside `path` that no other writer uses: hidden, and unique per
/// process and per call, so concurrent writers (threads or processes) never share one.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Names left in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_then_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"first").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(entries(dir.path()), ["state.json"]);
    }

    #[test]
    fn gives_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_with_mode(&path, b"x", 0o600).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_directory_is_not_found_and_nothing_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("state.json");
        let err = write(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_rename_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: rename over it fails.
        let path = dir.path().join("busy");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"old").unwrap();
        assert!(write(&path, b"new").is_err());
        assert_eq!(entries(dir.path()), ["busy"]);
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"old");
    }

    #[test]
    fn temporary_names_differ_per_call() {
        let path = Path::new("/run/berth/x/state.json");
        let (a, b) = (temp_path(path), temp_path(path));
        assert_ne!(a, b);
        assert_eq!(a.parent(), path.parent());
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".state.json."));
    }
}
