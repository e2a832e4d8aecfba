//! The files an exec with an output file of its own leaves in its shim's directory: the
//! output (capped and rotated once by the shim) and, once the process exited, its exit
//! record beside it ([`exec_exit_file`]), so the result outlives a daemon that missed the
//! event, for [`RESULT_KEEP`] ([`sweep_results`]) or until fetched ([`remove_output`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_shim_protocol::{exec_exit_file, ExitRecord};

/// An exec's output file (lossy UTF-8): the newest `max` bytes at most, and whether
/// older output was cut (the shim caps the file and rotates once into `<file>.1`).
pub fn read_output(path: &Path, max: u64) -> (String, bool) {
    let mut buf = Vec::new();
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    (
        String::from_utf8_lossy(&buf).into_owned(),
        rotated(path).exists() || len > max,
    )
}

/// How long the result of an exec that had an output file of its own is kept once the
/// process exited, unless fetched sooner: long enough for a daemon to be restarted and
/// a client to ask again, short enough that results nobody fetches (at most 2 MiB
/// each: the shim's cap and one rotated part) do not pile up in the state directory.
pub const RESULT_KEEP: Duration = Duration::from_secs(15 * 60);

/// The result of an exec that had an output file of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// Exit status, once the process exited (128 + signal when killed).
    pub exit_code: Option<i32>,
    /// Its output (stdout and stderr together), the newest `max` bytes at most.
    pub output: String,
    /// Whether older output was cut.
    pub truncated: bool,
}

/// The result of the exec whose output file is `path` (the exit the shim recorded
/// beside it, and the output so far); `None` if there is no such exec (never started,
/// fetched already or expired).
pub fn read_result(path: &Path, max: u64) -> Option<ExecResult> {
    if !path.exists() {
        return None;
    }
    let exit_code = std::fs::read(exec_exit_file(path))
        .ok()
        .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok())
        .map(|e| e.code);
    let (output, truncated) = read_output(path, max);
    Some(ExecResult {
        exit_code,
        output,
        truncated,
    })
}

/// Remove an exec's output file, its rotated part and its exit record.
pub fn remove_output(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(rotated(path));
    let _ = std::fs::remove_file(exec_exit_file(path));
}

/// Remove the results in shim directory `dir` kept longer than `keep`: those whose
/// process exited that long ago and, when no process of the container can still be
/// running (`live` false), those whose output file is that old. Returns how many went.
pub fn sweep_results(dir: &Path, keep: Duration, live: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= keep))
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("exec-") {
            continue;
        }
        // An exit record whose output went (fetched or swept before the shim wrote it).
        if name.ends_with(".exit") && !path.with_extension("out").exists() && old(&path) {
            let _ = std::fs::remove_file(&path);
            removed += 1;
            continue;
        }
        if !name.ends_with(".out") {
            continue;
        }
        let exit = exec_exit_file(&path);
        if old(&exit) || (!live && !exit.exists() && old(&path)) {
            remove_output(&path);
            removed += 1;
        }
    }
    removed
}

/// Where the shim moves older output.
fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_read_capped_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec.out");
        std::fs::write(&path, "hello\n").unwrap();
        assert_eq!(read_output(&path, 100), ("hello\n".into(), false));
        assert_eq!(read_output(&path, 3), ("hel".into(), true));
        std::fs::write(rotated(&path), "older").unwrap();
        assert!(read_output(&path, 100).1);
        remove_output(&path);
        assert!(!path.exists() && !rotated(&path).exists());
    }

    #[test]
    fn a_result_is_the_recorded_exit_and_the_output_and_old_ones_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec-a.out");
        assert_eq!(read_result(&path, 100), None);
        std::fs::write(&path, "out\n").unwrap();
        let running = read_result(&path, 100).unwrap();
        assert_eq!(
            (running.exit_code, running.output.as_str()),
            (None, "out\n")
        );
        std::fs::write(exec_exit_file(&path), r#"{"code":3,"at":"t"}"#).unwrap();
        assert_eq!(read_result(&path, 100).unwrap().exit_code, Some(3));
        let other = dir.path().join("exec-b.out");
        std::fs::write(&other, "").unwrap();
        // Kept while young; a running process's result is kept while the container lives.
        assert_eq!(sweep_results(dir.path(), RESULT_KEEP, true), 0);
        assert_eq!(sweep_results(dir.path(), Duration::ZERO, true), 1);
        assert!(!path.exists() && !exec_exit_file(&path).exists() && other.exists());
        assert_eq!(sweep_results(dir.path(), Duration::ZERO, false), 1);
        assert!(!other.exists());
    }

    #[test]
    fn an_exit_record_whose_output_went_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = exec_exit_file(&dir.path().join("exec-gone.out"));
        std::fs::write(&orphan, r#"{"code":0,"at":"t"}"#).unwrap();
        assert_eq!(sweep_results(dir.path(), RESULT_KEEP, true), 0);
        assert!(orphan.exists(), "kept while young");
        assert_eq!(sweep_results(dir.path(), Duration::ZERO, true), 1);
        assert!(!orphan.exists());
    }
}
