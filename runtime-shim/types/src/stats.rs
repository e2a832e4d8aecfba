//! A container's resource usage, shaped like the `data` of runc's `events --stats` JSON
//! (runc's `types.Stats`), so tools that read runc's output read ours.
//!
//! Zero counters are left out of the JSON as runc's `omitempty` does, except where runc
//! always writes them (`limit`, `failcnt`, `kernel`, `user`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Usage of every controller the host offers; a controller that is missing (or a file
/// this kernel lacks) leaves its part at zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// CPU time and CFS throttling.
    pub cpu: CpuStats,
    /// Memory, swap and kernel memory usage and limits.
    pub memory: MemoryStats,
    /// Task count and limit.
    pub pids: PidsStats,
    /// Block I/O by device.
    pub blkio: BlkioStats,
    /// Hugepage usage by page size (`2MB`, `1GB`, …).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// `cpu` in runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// CPU time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
}

/// CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// Total CPU time.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Total CPU time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Time in kernel mode per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Time in user mode per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Time in kernel mode.
    pub kernel: u64,
    /// Time in user mode.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// `memory` in runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Page cache (`cache` on v1, `file` on v2).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap (as v1 counts it; v2's swap is added to its memory for this).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat`, every key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter family, in bytes. An unlimited `limit` is `u64::MAX` on v2 and the
/// kernel's page-rounded maximum on v1, as the files say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    /// The limit.
    pub limit: u64,
    /// Current usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

/// `pids` in runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    /// Tasks in the cgroup.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit; 0 when there is none (`max`).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// `blkio` in runc's stats: per device and operation, recursive over sub-cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BlkioStats {
    /// Bytes transferred.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations completed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One `MAJ:MIN Op value` line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    /// Device major number.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor number.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// Bytes or operations.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Hugepage usage for one page size, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HugetlbStats {
    /// Current usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage (v1 only).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_runc() {
        let mut stats = Stats::default();
        stats.cpu.usage.total = 5;
        stats.cpu.usage.percpu = vec![2, 3];
        stats.memory.usage.limit = 100;
        stats.memory.raw.insert("cache".into(), 7);
        stats.pids.current = 1;
        stats.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 254,
            minor: 0,
            op: "Read".into(),
            value: 4096,
        });
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json["cpu"],
            serde_json::json!({"usage": {"total": 5, "percpu": [2, 3], "kernel": 0, "user": 0},
                               "throttling": {}})
        );
        assert_eq!(
            json["memory"]["usage"],
            serde_json::json!({"limit": 100, "failcnt": 0})
        );
        assert_eq!(json["memory"]["raw"]["cache"], 7);
        assert!(json["memory"].get("kernelTCP").is_some());
        assert_eq!(json["pids"], serde_json::json!({"current": 1}));
        assert_eq!(
            json["blkio"]["ioServiceBytesRecursive"][0],
            serde_json::json!({"major": 254, "op": "Read", "value": 4096})
        );
        assert_eq!(json["hugetlb"], serde_json::json!({}));
        let back: Stats = serde_json::from_value(json).unwrap();
        assert_eq!(back, stats);
    }
}
