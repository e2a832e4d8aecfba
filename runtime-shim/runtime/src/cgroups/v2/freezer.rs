//! v2 freezing: `cgroup.freeze` (a core file of every non-root cgroup since Linux 5.2,
//! no controller needed) and the `frozen` flag in `cgroup.events`.

use std::path::Path;
use std::time::Duration;

use crate::cgroups::{fs, CgroupError};

const FREEZE: &str = "cgroup.freeze";
const EVENTS: &str = "cgroup.events";
/// How long [`freeze`] waits for every task to stop before it thaws and gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Freeze the cgroup at `dir` and wait until `cgroup.events` says `frozen 1`. On
/// timeout the cgroup is thawed again.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    if !fs::exists(dir, FREEZE) {
        return Err(CgroupError::ControllerUnavailable {
            controller: "freezer",
            path: dir.join(FREEZE),
        });
    }
    fs::write(dir, FREEZE, "1")?;
    if fs::poll(PATIENCE, || events_frozen(dir))? {
        return Ok(());
    }
    if let Err(err) = fs::write(dir, FREEZE, "0") {
        tracing::warn!(error = %err, "thawing after a failed freeze");
    }
    Err(CgroupError::Freeze {
        path: dir.to_path_buf(),
        reason: format!("{EVENTS} did not show \"frozen 1\" within {PATIENCE:?}; thawed it again"),
    })
}

/// Thaw the cgroup at `dir`. Without `cgroup.freeze` nothing can be frozen: fine.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    if !fs::exists(dir, FREEZE) {
        return Ok(());
    }
    fs::write(dir, FREEZE, "0")
}

/// Whether the cgroup at `dir` was asked to freeze and every task in it has stopped.
pub(crate) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    match fs::read_optional(dir, FREEZE)?.as_deref() {
        None | Some("0") => Ok(false),
        Some("1") => events_frozen(dir),
        Some(other) => Err(CgroupError::Parse {
            path: dir.join(FREEZE),
            content: other.to_owned(),
        }),
    }
}

fn events_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let events = fs::read_keyed(dir, EVENTS)?;
    Ok(events.get("frozen") == Some(&1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroupfs(freeze: &str, events: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(FREEZE), freeze).unwrap();
        std::fs::write(tmp.path().join(EVENTS), events).unwrap();
        tmp
    }

    #[test]
    fn frozen_needs_both_files() {
        let tmp = cgroupfs("1\n", "populated 1\nfrozen 1\n");
        assert!(is_frozen(tmp.path()).unwrap());
        let freezing = cgroupfs("1\n", "populated 1\nfrozen 0\n");
        assert!(!is_frozen(freezing.path()).unwrap());
        let thawed = cgroupfs("0\n", "populated 1\nfrozen 0\n");
        assert!(!is_frozen(thawed.path()).unwrap());
    }

    #[test]
    fn freeze_returns_once_events_say_frozen() {
        let tmp = cgroupfs("0\n", "populated 1\nfrozen 1\n");
        freeze(tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), FREEZE).unwrap(), "1");
        thaw(tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), FREEZE).unwrap(), "0");
    }

    #[test]
    fn without_cgroup_freeze() {
        let tmp = tempfile::tempdir().unwrap();
        let err = freeze(tmp.path()).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::ControllerUnavailable {
                    controller: "freezer",
                    ..
                }
            ),
            "{err}"
        );
        thaw(tmp.path()).unwrap();
        assert!(!is_frozen(tmp.path()).unwrap());
    }
}
