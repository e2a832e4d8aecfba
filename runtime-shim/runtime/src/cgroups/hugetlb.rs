//! What the v1 and v2 `hugetlb` controllers share: writing the limits (the versions
//! differ only in the file names and how "unlimited" is spelled), checking a spec's page
//! size and listing the sizes a cgroup directory offers.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{fs, CgroupError};

/// One cgroup version's spelling of the hugetlb limits.
pub(crate) struct LimitFiles {
    /// The limit file's suffix after `hugetlb.<size>` (`.limit_in_bytes`, `.max`).
    pub(crate) limit: &'static str,
    /// The reservation limit's suffix (`.rsvd.limit_in_bytes`, `.rsvd.max`).
    pub(crate) rsvd: &'static str,
    /// What a negative (unlimited) OCI limit is written as (`-1`, `max`).
    pub(crate) unlimited: &'static str,
}

/// Whether `resources` has any hugepage limit.
pub(crate) fn needed(resources: &LinuxResources) -> bool {
    resources
        .hugepage_limits()
        .as_ref()
        .is_some_and(|limits| !limits.is_empty())
}

/// Write `hugetlb.<size><limit>` for every hugepage limit in `resources`, and the
/// reservation limit `hugetlb.<size><rsvd>` where the kernel has it (5.7+), as runc does.
/// Every size is checked before anything is written.
pub(crate) fn apply(
    dir: &Path,
    resources: &LinuxResources,
    files: &LimitFiles,
) -> Result<(), CgroupError> {
    let limits = resources.hugepage_limits().as_deref().unwrap_or_default();
    let invalid = CgroupError::invalid("hugetlb", dir);
    for limit in limits {
        let size = limit.page_size();
        if !valid_page_size(size) {
            return Err(invalid(format!(
                "hugepage size {size:?} is not of the form 2MB, 1GB, …"
            )));
        }
        if !fs::exists(dir, &format!("hugetlb.{size}{}", files.limit)) {
            return Err(invalid(unsupported(dir, size, files.limit)));
        }
    }
    for limit in limits {
        let prefix = format!("hugetlb.{}", limit.page_size());
        let value = if limit.limit() < 0 {
            files.unlimited.to_owned()
        } else {
            limit.limit().to_string()
        };
        fs::write(dir, &format!("{prefix}{}", files.limit), &value)?;
        let rsvd = format!("{prefix}{}", files.rsvd);
        if fs::exists(dir, &rsvd) {
            fs::write(dir, &rsvd, &value)?;
        }
    }
    Ok(())
}

/// Whether `size` looks like a hugetlb page size as the kernel names it (`2MB`, `1GB`,
/// `64KB`): digits, then `KB`, `MB` or `GB`. Anything else could name another file.
pub(crate) fn valid_page_size(size: &str) -> bool {
    let digits = size
        .strip_suffix("KB")
        .or_else(|| size.strip_suffix("MB"))
        .or_else(|| size.strip_suffix("GB"));
    digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The page sizes with a `hugetlb.<size>.<suffix>` file in `dir`, sorted.
pub(crate) fn page_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            valid_page_size(size).then(|| size.to_owned())
        })
        .collect();
    sizes.sort();
    sizes
}

/// The error text for a page size the cgroup has no file for.
pub(crate) fn unsupported(dir: &Path, size: &str, suffix: &str) -> String {
    let sizes = page_sizes(dir, suffix);
    if sizes.is_empty() {
        format!("hugepage size {size:?} is not supported: this cgroup offers no hugepage sizes")
    } else {
        format!(
            "hugepage size {size:?} is not supported here; available: {}",
            sizes.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_syntax() {
        for good in ["2MB", "1GB", "64KB", "16GB"] {
            assert!(valid_page_size(good), "{good}");
        }
        for bad in ["", "MB", "2mb", "2M", "../x", "2MB.rsvd", "1.5GB"] {
            assert!(!valid_page_size(bad), "{bad}");
        }
    }

    #[test]
    fn lists_offered_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        for file in [
            "hugetlb.2MB.max",
            "hugetlb.1GB.max",
            "hugetlb.2MB.rsvd.max",
            "hugetlb.2MB.current",
        ] {
            std::fs::write(tmp.path().join(file), "").unwrap();
        }
        assert_eq!(page_sizes(tmp.path(), ".max"), ["1GB", "2MB"]);
        let text = unsupported(tmp.path(), "4MB", ".max");
        assert!(text.contains("available: 1GB, 2MB"), "{text}");
    }
}
