//! v2 `memory` controller: hard limit, protection (reservation) and swap; usage
//! statistics and the OOM kill count.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::cgroups::memory::{checked, set, swappiness};
use crate::cgroups::stats::{MemoryEntry, MemoryStats};
use crate::cgroups::{fs, CgroupError, Controller, ResourceError};

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
                .any(|value| set(*value).is_some())
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(memory) = resources.memory() else {
            return Ok(());
        };
        let invalid = CgroupError::refused(Self::NAME, dir);
        let limit = checked("limit", memory.limit()).map_err(invalid)?;
        let reservation = checked("reservation", memory.reservation()).map_err(invalid)?;
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
        if let Some(limit) = limit {
            fs::write(dir, MAX, &limit_value(limit))?;
        }
        if let Some(reservation) = reservation {
            fs::write(dir, LOW, &limit_value(reservation))?;
        }
        Ok(())
    }
}

/// Log the memory settings v2 has no file for, which are ignored (as runc ignores them):
/// swappiness, the OOM killer switch and the kernel memory limits.
pub(crate) fn warn_ignored(resources: &LinuxResources) {
    let Some(memory) = resources.memory() else {
        return;
    };
    if swappiness(memory).is_some() {
        tracing::warn!("memory.swappiness ignored: cgroup v2 has no per-cgroup swappiness");
    }
    if memory.disable_oom_killer() == Some(true) {
        tracing::warn!("memory.disableOOMKiller ignored: cgroup v2 cannot disable the OOM killer");
    }
    if memory.kernel().unwrap_or(0) != 0 || memory.kernel_tcp().unwrap_or(0) != 0 {
        tracing::warn!(
            "memory.kernel/kernelTCP ignored: cgroup v2 counts kernel memory in memory.max"
        );
    }
}

/// Usage, limits and `memory.stat`, shaped as on v1: `swap` is memory plus swap, as v1
/// counts it. Files the cgroup lacks (no memory controller, no swap) read as zero.
pub(crate) fn stats(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
        let events = fs::read_keyed(dir, &format!("{prefix}.events"))?;
        Ok(MemoryEntry {
            limit: fs::read_u64(dir, &format!("{prefix}.max"))?.unwrap_or(0),
            usage: fs::read_u64(dir, &format!("{prefix}.current"))?.unwrap_or(0),
            max: fs::read_u64(dir, &format!("{prefix}.peak"))?.unwrap_or(0),
            failcnt: events.get("max").copied().unwrap_or(0),
        })
    };
    let usage = entry("memory")?;
    let mut swap = entry("memory.swap")?;
    swap.usage = swap.usage.saturating_add(usage.usage);
    if swap.limit != u64::MAX {
        swap.limit = swap.limit.saturating_add(usage.limit);
    }
    let raw = fs::read_keyed(dir, "memory.stat")?;
    Ok(MemoryStats {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..MemoryStats::default()
    })
}

/// How many processes the OOM killer has killed in the cgroup (`oom_kill` in
/// `memory.events`).
pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64, CgroupError> {
    const EVENTS: &str = "memory.events";
    if !fs::exists(dir, EVENTS) {
        return Err(CgroupError::ControllerUnavailable {
            controller: Memory::NAME,
            path: dir.join(EVENTS),
        });
    }
    Ok(fs::read_keyed(dir, EVENTS)?
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
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
fn swap_max(memory: &LinuxMemory) -> Result<Option<i64>, ResourceError> {
    let limit = memory.limit().unwrap_or(0);
    let swap = checked("swap", memory.swap())?.unwrap_or(0);
    match (limit, swap) {
        // Unlimited memory with swap unset: unlimited swap too, as on v1.
        (-1, 0) => Ok(Some(-1)),
        (_, 0) => Ok(None),
        (_, -1) => Ok(Some(-1)),
        (0 | -1, _) => Err(ResourceError::SwapWithoutLimit),
        (limit, swap) if swap < limit => Err(ResourceError::SwapBelowLimit { swap, limit }),
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
    fn stats_count_swap_as_v1_does() {
        let tmp = cgroupfs(true);
        for (file, content) in [
            (MAX, "1048576"),
            ("memory.current", "4096"),
            ("memory.peak", "8192"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("memory.swap.current", "1024"),
            ("memory.stat", "anon 2048\nfile 1024\n"),
        ] {
            std::fs::write(tmp.path().join(file), content).unwrap();
        }
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(
            stats.usage,
            MemoryEntry {
                limit: 1_048_576,
                usage: 4096,
                max: 8192,
                failcnt: 3
            }
        );
        assert_eq!(stats.swap.usage, 5120);
        assert_eq!(stats.swap.limit, u64::MAX, "swap.max is max");
        assert_eq!(stats.cache, 1024);
        assert_eq!(stats.raw["anon"], 2048);
        assert_eq!(oom_kill_count(tmp.path()).unwrap(), 1);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            oom_kill_count(empty.path()),
            Err(CgroupError::ControllerUnavailable { .. })
        ));
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
            assert!(matches!(err, CgroupError::Refused { .. }), "{json}: {err}");
        }
        assert_eq!(value(&tmp, MAX), "max", "nothing written");
    }
}
