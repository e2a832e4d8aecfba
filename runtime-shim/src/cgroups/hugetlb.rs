//! What the v1 and v2 `hugetlb` controllers share: checking a spec's page size and
//! listing the sizes a cgroup directory offers.

use std::path::Path;

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
