//! v2 `hugetlb` controller: hugepage limits per page size; usage statistics.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::hugetlb::{page_sizes, unsupported, valid_page_size};
use crate::cgroups::stats::HugetlbStats;
use crate::cgroups::{fs, CgroupError, Controller};

const MAX: &str = ".max";
const RSVD_MAX: &str = ".rsvd.max";

/// Writes `hugetlb.<size>.max`, and `hugetlb.<size>.rsvd.max` where the kernel has it,
/// as runc does. A negative limit means unlimited (`max`).
pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    const NAME: &'static str = "hugetlb";

    fn needed(resources: &LinuxResources) -> bool {
        resources
            .hugepage_limits()
            .as_ref()
            .is_some_and(|limits| !limits.is_empty())
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let limits = resources.hugepage_limits().as_deref().unwrap_or_default();
        let invalid = |reason: String| CgroupError::InvalidResource {
            controller: Self::NAME,
            path: dir.to_path_buf(),
            reason,
        };
        for limit in limits {
            let size = limit.page_size();
            if !valid_page_size(size) {
                return Err(invalid(format!(
                    "hugepage size {size:?} is not of the form 2MB, 1GB, …"
                )));
            }
            if !fs::exists(dir, &format!("hugetlb.{size}{MAX}")) {
                return Err(invalid(unsupported(dir, size, MAX)));
            }
        }
        for limit in limits {
            let prefix = format!("hugetlb.{}", limit.page_size());
            let value = if limit.limit() < 0 {
                "max".to_owned()
            } else {
                limit.limit().to_string()
            };
            fs::write(dir, &format!("{prefix}{MAX}"), &value)?;
            let rsvd = format!("{prefix}{RSVD_MAX}");
            if fs::exists(dir, &rsvd) {
                fs::write(dir, &rsvd, &value)?;
            }
        }
        Ok(())
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
