//! v2 `hugetlb` controller: hugepage limits per page size; usage statistics.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::hugetlb::{self, page_sizes, LimitFiles};
use crate::cgroups::stats::HugetlbStats;
use crate::cgroups::{fs, CgroupError, Controller};

const MAX: &str = ".max";
const RSVD_MAX: &str = ".rsvd.max";
const FILES: LimitFiles = LimitFiles {
    limit: MAX,
    rsvd: RSVD_MAX,
    unlimited: "max",
};

/// Writes `hugetlb.<size>.max`, and `hugetlb.<size>.rsvd.max` where the kernel has it,
/// as runc does (see [`hugetlb::apply`]). A negative limit means unlimited (`max`).
pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    const NAME: &'static str = "hugetlb";

    fn needed(resources: &LinuxResources) -> bool {
        hugetlb::needed(resources)
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        hugetlb::apply(dir, resources, &FILES)
    }
}

/// Usage and limit hits (`max` in `hugetlb.<size>.events`) per page size.
pub(crate) fn stats(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut stats = BTreeMap::new();
    for size in page_sizes(dir, MAX) {
        let entry = HugetlbStats {
            usage: fs::read_u64(dir, &format!("hugetlb.{size}.current"))?.unwrap_or(0),
            max: 0,
            failcnt: fs::read_keyed(dir, &format!("hugetlb.{size}.events"))?
                .get("max")
                .copied()
                .unwrap_or(0),
        };
        stats.insert(size, entry);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroupfs() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for file in ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"] {
            std::fs::write(tmp.path().join(file), "max").unwrap();
        }
        tmp
    }

    fn apply_json(tmp: &tempfile::TempDir, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Hugetlb::apply(tmp.path(), &resources)
    }

    #[test]
    fn limits_and_reservations() {
        let tmp = cgroupfs();
        apply_json(
            &tmp,
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 8388608},
                                   {"pageSize": "1GB", "limit": 0}]}"#,
        )
        .unwrap();
        let read = |f: &str| fs::read(tmp.path(), f).unwrap();
        assert_eq!(read("hugetlb.2MB.max"), "8388608");
        assert_eq!(read("hugetlb.2MB.rsvd.max"), "8388608");
        assert_eq!(read("hugetlb.1GB.max"), "0");
        apply_json(
            &tmp,
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]}"#,
        )
        .unwrap();
        assert_eq!(read("hugetlb.2MB.max"), "max");
    }

    #[test]
    fn unsupported_size_lists_the_available_ones() {
        let tmp = cgroupfs();
        let err = apply_json(
            &tmp,
            r#"{"hugepageLimits": [{"pageSize": "64KB", "limit": 1}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("available: 1GB, 2MB"), "{err}");
    }

    #[test]
    fn stats_per_size() {
        let tmp = cgroupfs();
        std::fs::write(tmp.path().join("hugetlb.2MB.current"), "4194304").unwrap();
        std::fs::write(tmp.path().join("hugetlb.2MB.events"), "max 2\n").unwrap();
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats["2MB"].usage, 4_194_304);
        assert_eq!(stats["2MB"].failcnt, 2);
        assert_eq!(stats.len(), 2);
    }
}
