//! v1 `memory` controller: memory limit, soft limit (reservation) and memory+swap limit.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::cgroups::{fs, CgroupError, Controller};

const LIMIT: &str = "memory.limit_in_bytes";
const SOFT_LIMIT: &str = "memory.soft_limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

/// Writes `memory.limit_in_bytes`, `memory.soft_limit_in_bytes` and
/// `memory.memsw.limit_in_bytes`. In the OCI values 0 means "leave alone" and -1 means
/// unlimited, which v1 accepts as written.
pub(crate) struct Memory;

impl Controller for Memory {
    const NAME: &'static str = "memory";

    fn needed(resources: &LinuxResources) -> bool {
        resources.memory().as_ref().is_some_and(|memory| {
            [memory.limit(), memory.reservation(), memory.swap()]
                .iter()
                .any(|value| set(*value).is_some())
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(memory) = resources.memory() else {
            return Ok(());
        };
        let limit = checked(dir, "limit", memory.limit())?;
        let reservation = checked(dir, "reservation", memory.reservation())?;
        let mut swap = checked(dir, "swap", memory.swap())?;
        check_swap(dir, memory)?;
        // "Unlimited memory" with swap unset means unlimited memory+swap too, where the
        // kernel accounts swap at all.
        if limit == Some(-1) && swap.is_none() && dir.join(MEMSW_LIMIT).exists() {
            swap = Some(-1);
        }
        match (limit, swap) {
            (Some(limit), Some(swap)) => {
                // The kernel keeps memsw >= memory at every step: raise memsw first when
                // the new memsw is above the current memory limit, else lower memory first.
                let current = fs::read(dir, LIMIT)?;
                let current: u64 = current.parse().map_err(|_| CgroupError::Parse {
                    path: dir.join(LIMIT),
                    content: current.clone(),
                })?;
                if swap == -1 || u64::try_from(swap).is_ok_and(|swap| current < swap) {
                    fs::write(dir, MEMSW_LIMIT, &swap.to_string())?;
                    fs::write(dir, LIMIT, &limit.to_string())?;
                } else {
                    fs::write(dir, LIMIT, &limit.to_string())?;
                    fs::write(dir, MEMSW_LIMIT, &swap.to_string())?;
                }
            }
            (Some(limit), None) => fs::write(dir, LIMIT, &limit.to_string())?,
            (None, Some(swap)) => fs::write(dir, MEMSW_LIMIT, &swap.to_string())?,
            (None, None) => {}
        }
        if let Some(reservation) = reservation {
            fs::write(dir, SOFT_LIMIT, &reservation.to_string())?;
        }
        Ok(())
    }
}

/// The value to write, if any: `None` and 0 mean "leave alone".
fn set(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v != 0)
}

/// [`set`], refusing negative values other than -1 (unlimited).
fn checked(dir: &Path, field: &str, value: Option<i64>) -> Result<Option<i64>, CgroupError> {
    match set(value) {
        Some(v) if v < -1 => Err(CgroupError::InvalidResource {
            controller: Memory::NAME,
            path: dir.to_path_buf(),
            reason: format!("memory.{field} is {v}; use a byte count, or -1 for unlimited"),
        }),
        value => Ok(value),
    }
}

/// The memory+swap limit cannot be below the memory limit.
fn check_swap(dir: &Path, memory: &LinuxMemory) -> Result<(), CgroupError> {
    if let (Some(limit), Some(swap)) = (set(memory.limit()), set(memory.swap())) {
        if limit > 0 && swap > 0 && swap < limit {
            return Err(CgroupError::InvalidResource {
                controller: Memory::NAME,
                path: dir.to_path_buf(),
                reason: format!(
                    "memory.swap ({swap}) is memory+swap and must be >= memory.limit ({limit})"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNLIMITED: &str = "9223372036854771712";

    fn cgroupfs(memsw: bool) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(LIMIT), UNLIMITED).unwrap();
        std::fs::write(tmp.path().join(SOFT_LIMIT), UNLIMITED).unwrap();
        if memsw {
            std::fs::write(tmp.path().join(MEMSW_LIMIT), UNLIMITED).unwrap();
        }
        tmp
    }

    fn apply_json(tmp: &tempfile::TempDir, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Memory::apply(tmp.path(), &resources)
    }

    fn value(tmp: &tempfile::TempDir, file: &str) -> String {
        fs::read(tmp.path(), file).unwrap()
    }

    #[test]
    fn limit_reservation_and_swap() {
        let tmp = cgroupfs(true);
        apply_json(
            &tmp,
            r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152}}"#,
        )
        .unwrap();
        assert_eq!(value(&tmp, LIMIT), "1048576");
        assert_eq!(value(&tmp, SOFT_LIMIT), "524288");
        assert_eq!(value(&tmp, MEMSW_LIMIT), "2097152");
    }

    #[test]
    fn minus_one_is_unlimited_and_implies_unlimited_swap() {
        let tmp = cgroupfs(true);
        apply_json(&tmp, r#"{"memory": {"limit": -1}}"#).unwrap();
        assert_eq!(value(&tmp, LIMIT), "-1");
        assert_eq!(value(&tmp, MEMSW_LIMIT), "-1");
    }

    #[test]
    fn minus_one_without_swap_accounting_leaves_swap_alone() {
        let tmp = cgroupfs(false);
        apply_json(&tmp, r#"{"memory": {"limit": -1}}"#).unwrap();
        assert_eq!(value(&tmp, LIMIT), "-1");
        assert!(!tmp.path().join(MEMSW_LIMIT).exists());
    }

    #[test]
    fn zero_and_absent_write_nothing() {
        let tmp = cgroupfs(true);
        for json in [
            "{}",
            r#"{"memory": {}}"#,
            r#"{"memory": {"limit": 0, "swap": 0}}"#,
        ] {
            apply_json(&tmp, json).unwrap();
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Memory::needed(&resources), "{json}");
        }
        assert_eq!(value(&tmp, LIMIT), UNLIMITED);
        assert_eq!(value(&tmp, MEMSW_LIMIT), UNLIMITED);
    }

    #[test]
    fn bad_values_are_refused() {
        let tmp = cgroupfs(true);
        for json in [
            r#"{"memory": {"limit": -2}}"#,
            r#"{"memory": {"limit": 2048, "swap": 1024}}"#,
        ] {
            let err = apply_json(&tmp, json).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidResource { .. }),
                "{json}: {err}"
            );
        }
        assert_eq!(value(&tmp, LIMIT), UNLIMITED, "nothing written");
    }
}
