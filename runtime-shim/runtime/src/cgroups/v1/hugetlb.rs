//! v1 `hugetlb` controller: hugepage limits per page size; usage statistics.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::hugetlb::{self, page_sizes, LimitFiles};
use crate::cgroups::stats::HugetlbStats;
use crate::cgroups::{fs, CgroupError, Controller};

const LIMIT: &str = ".limit_in_bytes";
const RSVD_LIMIT: &str = ".rsvd.limit_in_bytes";
const FILES: LimitFiles = LimitFiles {
    limit: LIMIT,
    rsvd: RSVD_LIMIT,
    unlimited: "-1",
};

/// Writes `hugetlb.<size>.limit_in_bytes`, and the reservation limit
/// `hugetlb.<size>.rsvd.limit_in_bytes` where the kernel has it (5.7+), as runc does
/// (see [`hugetlb::apply`]). A negative limit means unlimited (`-1`).
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

/// Usage, peak and failures per page size.
pub(crate) fn stats(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut stats = BTreeMap::new();
    for size in page_sizes(dir, LIMIT) {
        let read = |what: &str| fs::read_u64(dir, &format!("hugetlb.{size}.{what}"));
        let entry = HugetlbStats {
            usage: read("usage_in_bytes")?.unwrap_or(0),
            max: read("max_usage_in_bytes")?.unwrap_or(0),
            failcnt: read("failcnt")?.unwrap_or(0),
        };
        stats.insert(size, entry);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroupfs(rsvd: bool) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for size in ["2MB", "1GB"] {
            std::fs::write(tmp.path().join(format!("hugetlb.{size}{LIMIT}")), "").unwrap();
            if rsvd {
                std::fs::write(tmp.path().join(format!("hugetlb.{size}{RSVD_LIMIT}")), "").unwrap();
            }
        }
        tmp
    }

    fn apply_json(tmp: &tempfile::TempDir, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Hugetlb::apply(tmp.path(), &resources)
    }

    #[test]
    fn limits_and_reservations() {
        let tmp = cgroupfs(true);
        apply_json(
            &tmp,
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304},
                                   {"pageSize": "1GB", "limit": -1}]}"#,
        )
        .unwrap();
        let read = |f: &str| fs::read(tmp.path(), f).unwrap();
        assert_eq!(read("hugetlb.2MB.limit_in_bytes"), "4194304");
        assert_eq!(read("hugetlb.2MB.rsvd.limit_in_bytes"), "4194304");
        assert_eq!(read("hugetlb.1GB.limit_in_bytes"), "-1");
    }

    #[test]
    fn without_reservation_files() {
        let tmp = cgroupfs(false);
        apply_json(
            &tmp,
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}"#,
        )
        .unwrap();
        assert_eq!(
            fs::read(tmp.path(), "hugetlb.2MB.limit_in_bytes").unwrap(),
            "2097152"
        );
    }

    #[test]
    fn unknown_or_malformed_sizes_are_refused_before_writing() {
        let tmp = cgroupfs(false);
        for (json, want) in [
            (
                r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "4MB", "limit": 1}]}"#,
                "available: 1GB, 2MB",
            ),
            (
                r#"{"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]}"#,
                "not of the form",
            ),
        ] {
            let err = apply_json(&tmp, json).unwrap_err();
            assert!(err.to_string().contains(want), "{json}: {err}");
        }
        assert_eq!(
            fs::read(tmp.path(), "hugetlb.2MB.limit_in_bytes").unwrap(),
            ""
        );
    }

    #[test]
    fn stats_per_size() {
        let tmp = cgroupfs(false);
        std::fs::write(tmp.path().join("hugetlb.2MB.usage_in_bytes"), "2097152").unwrap();
        std::fs::write(tmp.path().join("hugetlb.2MB.failcnt"), "1").unwrap();
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats["2MB"].usage, 2_097_152);
        assert_eq!(stats["2MB"].failcnt, 1);
        assert_eq!(stats["1GB"], HugetlbStats::default());
    }
}
