//! v1 `memory` controller: memory limit, soft limit (reservation), memory+swap limit,
//! swappiness, the OOM killer switch and the kernel TCP buffer limit; usage statistics
//! and the OOM kill count.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::cgroups::memory::{checked, set, swappiness};
use crate::cgroups::stats::{MemoryEntry, MemoryStats};
use crate::cgroups::{fs, CgroupError, Controller};

const LIMIT: &str = "memory.limit_in_bytes";
const SOFT_LIMIT: &str = "memory.soft_limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const SWAPPINESS: &str = "memory.swappiness";
const OOM_CONTROL: &str = "memory.oom_control";
const KMEM_TCP_LIMIT: &str = "memory.kmem.tcp.limit_in_bytes";

/// Writes `memory.limit_in_bytes`, `memory.soft_limit_in_bytes`,
/// `memory.memsw.limit_in_bytes`, `memory.swappiness`, `memory.oom_control` and
/// `memory.kmem.tcp.limit_in_bytes`. In the OCI byte values 0 means "leave alone" and -1
/// means unlimited, which v1 accepts as written. `kernel` (kmem) is ignored with a
/// warning, as runc does: kernels since 5.16 do not enforce it.
pub(crate) struct Memory;

impl Controller for Memory {
    const NAME: &'static str = "memory";

    fn needed(resources: &LinuxResources) -> bool {
        resources.memory().as_ref().is_some_and(|memory| {
            [
                memory.limit(),
                memory.reservation(),
                memory.swap(),
                memory.kernel_tcp(),
            ]
            .iter()
            .any(|value| set(*value).is_some())
                || swappiness(memory).is_some()
                || memory.disable_oom_killer() == Some(true)
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(memory) = resources.memory() else {
            return Ok(());
        };
        let invalid = CgroupError::invalid(Self::NAME, dir);
        let refused = CgroupError::refused(Self::NAME, dir);
        let limit = checked("limit", memory.limit()).map_err(refused)?;
        let reservation = checked("reservation", memory.reservation()).map_err(refused)?;
        let mut swap = checked("swap", memory.swap()).map_err(refused)?;
        check_swap(dir, memory)?;
        let kernel_tcp = checked("kernelTCP", memory.kernel_tcp()).map_err(refused)?;
        let swappiness = swappiness(memory);
        if let Some(swappiness) = swappiness.filter(|s| *s > 100) {
            return Err(invalid(format!(
                "memory.swappiness is {swappiness}; the range is 0-100"
            )));
        }
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
        if let Some(swappiness) = swappiness {
            fs::write(dir, SWAPPINESS, &swappiness.to_string())?;
        }
        if memory.disable_oom_killer() == Some(true) {
            fs::write(dir, OOM_CONTROL, "1")?;
        }
        apply_kernel(dir, memory, kernel_tcp)
    }
}

/// Kernel memory: the TCP buffer limit where the kernel still has it; the general kmem
/// limit is only warned about.
fn apply_kernel(dir: &Path, memory: &LinuxMemory, tcp: Option<i64>) -> Result<(), CgroupError> {
    if let Some(tcp) = tcp {
        if fs::exists(dir, KMEM_TCP_LIMIT) {
            fs::write(dir, KMEM_TCP_LIMIT, &tcp.to_string())?;
        } else {
            tracing::warn!(path = %dir.display(), "memory.kernelTCP ignored: this kernel has no {KMEM_TCP_LIMIT}");
        }
    }
    if set(memory.kernel()).is_some() {
        tracing::warn!(
            "memory.kernel ignored: kernel memory limits are not enforced by Linux since 5.16"
        );
    }
    Ok(())
}

/// Usage, limits and `memory.stat` of the cgroup at `dir`. Files this kernel lacks
/// (e.g. `memsw` without swap accounting) read as zero.
pub(crate) fn stats(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
        let file = |name: &str| format!("{prefix}.{name}");
        Ok(MemoryEntry {
            limit: fs::read_u64(dir, &file("limit_in_bytes"))?.unwrap_or(0),
            usage: fs::read_u64(dir, &file("usage_in_bytes"))?.unwrap_or(0),
            max: fs::read_u64(dir, &file("max_usage_in_bytes"))?.unwrap_or(0),
            failcnt: fs::read_u64(dir, &file("failcnt"))?.unwrap_or(0),
        })
    };
    let raw = fs::read_keyed(dir, "memory.stat")?;
    Ok(MemoryStats {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: entry("memory")?,
        swap: entry("memory.memsw")?,
        kernel: entry("memory.kmem")?,
        kernel_tcp: entry("memory.kmem.tcp")?,
        raw,
    })
}

/// How many processes the OOM killer has killed in the cgroup (`oom_kill` in
/// `memory.oom_control`, kernel 4.13 and later).
pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64, CgroupError> {
    let control = fs::read_keyed(dir, OOM_CONTROL)?;
    match control.get("oom_kill") {
        Some(count) => Ok(*count),
        None if fs::exists(dir, OOM_CONTROL) => Err(CgroupError::Parse {
            path: dir.join(OOM_CONTROL),
            content: "no oom_kill line (kernel older than 4.13)".to_owned(),
        }),
        None => Err(CgroupError::Read {
            path: dir.join(OOM_CONTROL),
            source: std::io::ErrorKind::NotFound.into(),
        }),
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
    fn swappiness_oom_killer_and_kernel_tcp() {
        let tmp = cgroupfs(true);
        std::fs::write(tmp.path().join(SWAPPINESS), "60").unwrap();
        std::fs::write(tmp.path().join(OOM_CONTROL), "oom_kill_disable 0").unwrap();
        std::fs::write(tmp.path().join(KMEM_TCP_LIMIT), UNLIMITED).unwrap();
        let json = r#"{"memory": {"swappiness": 10, "disableOOMKiller": true,
                                  "kernelTCP": 1048576, "kernel": 4096}}"#;
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        assert!(Memory::needed(&resources));
        apply_json(&tmp, json).unwrap();
        assert_eq!(value(&tmp, SWAPPINESS), "10");
        assert_eq!(value(&tmp, OOM_CONTROL), "1");
        assert_eq!(value(&tmp, KMEM_TCP_LIMIT), "1048576");
        assert_eq!(value(&tmp, LIMIT), UNLIMITED, "limits left alone");
    }

    #[test]
    fn oom_killer_false_and_unset_swappiness_write_nothing() {
        let tmp = cgroupfs(true);
        for json in [
            r#"{"memory": {"disableOOMKiller": false}}"#,
            r#"{"memory": {"swappiness": 18446744073709551615}}"#,
            r#"{"memory": {"kernel": 4096}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Memory::needed(&resources), "{json}");
            apply_json(&tmp, json).unwrap();
        }
        assert!(!tmp.path().join(OOM_CONTROL).exists());
        assert!(!tmp.path().join(SWAPPINESS).exists());
    }

    #[test]
    fn kernel_tcp_without_the_file_is_ignored() {
        let tmp = cgroupfs(true);
        apply_json(&tmp, r#"{"memory": {"kernelTCP": 4096}}"#).unwrap();
        assert!(!tmp.path().join(KMEM_TCP_LIMIT).exists());
    }

    #[test]
    fn swappiness_above_100_is_refused() {
        let tmp = cgroupfs(true);
        std::fs::write(tmp.path().join(SWAPPINESS), "60").unwrap();
        let err = apply_json(&tmp, r#"{"memory": {"swappiness": 101}}"#).unwrap_err();
        assert!(err.to_string().contains("0-100"), "{err}");
        assert_eq!(value(&tmp, SWAPPINESS), "60");
    }

    #[test]
    fn stats_and_oom_kills() {
        let tmp = cgroupfs(false);
        for (file, content) in [
            ("memory.usage_in_bytes", "8192"),
            ("memory.max_usage_in_bytes", "16384"),
            ("memory.failcnt", "2"),
            ("memory.stat", "cache 4096\nrss 8192\n"),
            (OOM_CONTROL, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
        ] {
            std::fs::write(tmp.path().join(file), content).unwrap();
        }
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats.usage.usage, 8192);
        assert_eq!(stats.usage.max, 16384);
        assert_eq!(stats.usage.failcnt, 2);
        assert_eq!(stats.usage.limit, 9_223_372_036_854_771_712);
        assert_eq!(stats.cache, 4096);
        assert_eq!(stats.raw["rss"], 8192);
        assert_eq!(stats.swap, MemoryEntry::default(), "no swap accounting");
        assert_eq!(oom_kill_count(tmp.path()).unwrap(), 3);
        std::fs::write(tmp.path().join(OOM_CONTROL), "oom_kill_disable 0\n").unwrap();
        assert!(oom_kill_count(tmp.path()).is_err());
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
                matches!(
                    err,
                    CgroupError::InvalidResource { .. } | CgroupError::Refused { .. }
                ),
                "{json}: {err}"
            );
        }
        assert_eq!(value(&tmp, LIMIT), UNLIMITED, "nothing written");
    }
}
