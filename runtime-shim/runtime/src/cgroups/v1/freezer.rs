//! v1 `freezer` controller: pause (`FROZEN`) and resume (`THAWED`) every task in the
//! cgroup.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroups::{fs, CgroupError};

const STATE: &str = "freezer.state";
const SELF_FREEZING: &str = "freezer.self_freezing";
/// How long [`freeze`] keeps trying before it gives up and thaws the cgroup again.
const PATIENCE: Duration = Duration::from_secs(5);

/// Freeze the cgroup at `dir` and wait until every task is frozen. The v1 freezer can
/// stay in `FREEZING` while tasks keep forking, so the request is repeated (with an
/// occasional thaw to let stragglers settle, as runc does) until `FROZEN` or
/// [`PATIENCE`] runs out. A cgroup that does not freeze is thawed back, never left
/// half-frozen.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    let result = try_freeze(dir);
    if result.is_err() {
        if let Err(err) = fs::write(dir, STATE, "THAWED") {
            tracing::warn!(error = %err, "thawing after a failed freeze");
        }
    }
    result
}

fn try_freeze(dir: &Path) -> Result<(), CgroupError> {
    let mut attempt = 0u32;
    let frozen = fs::poll(PATIENCE, || {
        attempt += 1;
        if attempt.is_multiple_of(50) {
            fs::write(dir, STATE, "THAWED")?;
            std::thread::sleep(Duration::from_millis(10));
        }
        fs::write(dir, STATE, "FROZEN")?;
        // Reading the state is what lets the kernel notice that every task has stopped.
        match fs::read(dir, STATE)?.as_str() {
            "FROZEN" => Ok(true),
            "FREEZING" => Ok(false),
            other => Err(CgroupError::Freeze {
                path: dir.to_path_buf(),
                reason: format!("unexpected {STATE} {other:?} while freezing"),
            }),
        }
    })?;
    if frozen {
        if attempt > 1 {
            tracing::debug!(attempt, "cgroup frozen");
        }
        return Ok(());
    }
    Err(CgroupError::Freeze {
        path: dir.to_path_buf(),
        reason: format!("still FREEZING after {PATIENCE:?}; thawed it again"),
    })
}

/// Thaw the cgroup at `dir`.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fs::write(dir, STATE, "THAWED")
}

/// Whether the cgroup at `dir` is frozen by itself (not merely because an ancestor is).
/// A freeze in progress is waited for briefly, then counts as not frozen.
pub(crate) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match fs::read(dir, STATE)?.as_str() {
            "THAWED" => return Ok(false),
            "FROZEN" => {
                // Kernels before 3.10 have no self_freezing: frozen is frozen.
                return Ok(fs::read_optional(dir, SELF_FREEZING)?.is_none_or(|own| own == "1"));
            }
            "FREEZING" if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            "FREEZING" => return Ok(false),
            other => {
                return Err(CgroupError::Parse {
                    path: dir.join(STATE),
                    content: other.to_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroupfs(state: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(STATE), state).unwrap();
        tmp
    }

    #[test]
    fn freeze_and_thaw_write_the_state() {
        // A plain file reads back what was written, like a freezer that freezes at once.
        let tmp = cgroupfs("THAWED\n");
        assert!(!is_frozen(tmp.path()).unwrap());
        freeze(tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), STATE).unwrap(), "FROZEN");
        assert!(is_frozen(tmp.path()).unwrap());
        thaw(tmp.path()).unwrap();
        assert!(!is_frozen(tmp.path()).unwrap());
    }

    #[test]
    fn frozen_by_an_ancestor_is_not_frozen_itself() {
        let tmp = cgroupfs("FROZEN\n");
        std::fs::write(tmp.path().join(SELF_FREEZING), "0\n").unwrap();
        assert!(!is_frozen(tmp.path()).unwrap());
        std::fs::write(tmp.path().join(SELF_FREEZING), "1\n").unwrap();
        assert!(is_frozen(tmp.path()).unwrap());
    }

    #[test]
    fn garbage_state_is_an_error() {
        let tmp = cgroupfs("MELTED\n");
        assert!(matches!(
            is_frozen(tmp.path()),
            Err(CgroupError::Parse { .. })
        ));
    }

    #[test]
    fn missing_freezer_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let err = freeze(tmp.path()).unwrap_err();
        assert!(err.to_string().contains(STATE), "{err}");
    }
}
