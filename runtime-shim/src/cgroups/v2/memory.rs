//! v2 `memory` controller: hard limit, protection (reservation) and swap.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::cgroups::{fs, CgroupError, Controller};

const MAX: &str = "memory.max";
const LOW: &str = "memory.low";
const SWAP_MAX: &str = "memory.swap.max";

/// Writes `memory.max`, `memory.low` and `memory.swap.max`. In the OCI values 0 means
/// "leave alone" and -1 means unlimited (`max`).
pub(crate) struct Memory;

impl Controller for Memory {
    const NAME: &'static str = "memory";

    fn needed(resources: &LinuxResources) -> bool {
        resources.memory().as_ref().is_some_and(|memory| {
            [memory.limit(), memory.reservation(), memory.swap()]
                .iter()
                .any(|value| value.is_some_and(|v| v != 0))
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(memory) = resources.memory() else {
            return Ok(());
        };
        let invalid = |reason: String| CgroupError::InvalidResource {
            controller: Self::NAME,
            path: dir.to_path_buf(),
            reason,
        };
        let limit = memory.limit().unwrap_or(0);
        let reservation = memory.reservation().unwrap_or(0);
        for (field, value) in [("limit", limit), ("reservation", reservation)] {
            if value < -1 {
                return Err(invalid(format!(
                    "memory.{field} is {value}; use a byte count, or -1 for unlimited"
                )));
            }
        }
        // Swap first: memory.swap.max does not depend on memory.max in v2.
        if let Some(swap) = swap_max(memory).map_err(invalid)? {
            let value = limit_value(swap);
            match fs::write(dir, SWAP_MAX, &value) {
                // Without swap accounting there is no swap to allow or forbid.
                Err(CgroupError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && (value == "max" || value == "0") => {}
                result => result?,
            }
        }
        if limit != 0 {
            fs::write(dir, MAX, &limit_value(limit))?;
        }
        if reservation != 0 {
            fs::write(dir, LOW, &limit_value(reservation))?;
        }
        Ok(())
    }
}

fn limit_value(value: i64) -> String {
    if value == -1 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

/// The `memory.swap.max` value (-1 for `max`) for the OCI memory+swap limit, or `None`
/// to leave it alone. The OCI `swap` counts memory plus swap; v2 limits swap alone.
fn swap_max(memory: &LinuxMemory) -> Result<Option<i64>, String> {
    let limit = memory.limit().unwrap_or(0);
    let swap = memory.swap().unwrap_or(0);
    match (limit, swap) {
        // Unlimited memory with swap unset: unlimited swap too, as on v1.
        (-1, 0) => Ok(Some(-1)),
        (_, 0) => Ok(None),
        (_, -1) => Ok(Some(-1)),
        (_, swap) if swap < -1 => Err(format!(
            "memory.swap is {swap}; use a byte count, or -1 for unlimited"
        )),
        (0 | -1, _) => Err("memory.swap needs memory.limit to be set".to_owned()),
        (limit, swap) if swap < limit => Err(format!(
            "memory.swap ({swap}) is memory+swap and must be >= memory.limit ({limit})"
        )),
        (limit, swap) => Ok(Some(swap - limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroupfs(swap: bool) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(MAX), "max").unwrap();
        std::fs::write(tmp.path().join(LOW), "0").unwrap();
        if swap {
            std::fs::write(tmp.path().join(SWAP_MAX), "max").unwrap();
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
            r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728}}"#,
        )
        .unwrap();
        assert_eq!(value(&tmp, MAX), "1048576");
        assert_eq!(value(&tmp, LOW), "524288");
        assert_eq!(value(&tmp, SWAP_MAX), "2097152");
    }

    #[test]
    fn swap_equal_to_limit_disables_swap() {
        let tmp = cgroupfs(true);
        apply_json(&tmp, r#"{"memory": {"limit": 4096, "swap": 4096}}"#).unwrap();
        assert_eq!(value(&tmp, SWAP_MAX), "0");
    }

    #[test]
    fn minus_one_is_max() {
        let tmp = cgroupfs(true);
        std::fs::write(tmp.path().join(SWAP_MAX), "0").unwrap();
        apply_json(&tmp, r#"{"memory": {"limit": -1, "reservation": -1}}"#).unwrap();
        assert_eq!(value(&tmp, MAX), "max");
        assert_eq!(value(&tmp, LOW), "max");
        assert_eq!(value(&tmp, SWAP_MAX), "max");
    }

    #[test]
    fn unlimited_swap_without_swap_accounting_is_fine() {
        let tmp = cgroupfs(false);
        apply_json(&tmp, r#"{"memory": {"limit": -1}}"#).unwrap();
        assert_eq!(value(&tmp, MAX), "max");
        let err = apply_json(&tmp, r#"{"memory": {"limit": 4096, "swap": 8192}}"#).unwrap_err();
        assert!(err.to_string().contains(SWAP_MAX), "{err}");
    }

    #[test]
    fn zero_and_absent_write_nothing() {
        let tmp = cgroupfs(true);
        for json in [
            "{}",
            r#"{"memory": {"limit": 0, "reservation": 0, "swap": 0}}"#,
        ] {
            apply_json(&tmp, json).unwrap();
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Memory::needed(&resources), "{json}");
        }
        assert_eq!(value(&tmp, MAX), "max");
        assert_eq!(value(&tmp, SWAP_MAX), "max");
    }

    #[test]
    fn bad_values_are_refused() {
        let tmp = cgroupfs(true);
        for json in [
            r#"{"memory": {"limit": -3}}"#,
            r#"{"memory": {"swap": 4096}}"#,
            r#"{"memory": {"limit": 8192, "swap": 4096}}"#,
            r#"{"memory": {"limit": 8192, "swap": -7}}"#,
        ] {
            let err = apply_json(&tmp, json).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidResource { .. }),
                "{json}: {err}"
            );
        }
        assert_eq!(value(&tmp, MAX), "max", "nothing written");
    }
}
