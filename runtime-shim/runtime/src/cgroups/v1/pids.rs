//! v1 `pids` controller: the maximum number of tasks. The files are the same as on v2,
//! so both use the one controller in [`crate::cgroups::pids`].

pub(crate) use crate::cgroups::pids::{stats, Pids};

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxResources;

    use super::*;
    use crate::cgroups::stats::PidsStats;
    use crate::cgroups::{CgroupError, Controller};

    fn apply_json(json: &str) -> (tempfile::TempDir, Result<(), CgroupError>) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.max"), "").unwrap();
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        let result = Pids::apply(tmp.path(), &resources);
        (tmp, result)
    }

    fn pids_max(tmp: &tempfile::TempDir) -> String {
        std::fs::read_to_string(tmp.path().join("pids.max")).unwrap()
    }

    #[test]
    fn positive_limit_is_written() {
        let (tmp, result) = apply_json(r#"{"pids": {"limit": 10}}"#);
        result.unwrap();
        assert_eq!(pids_max(&tmp), "10");
    }

    #[test]
    fn zero_and_negative_mean_max() {
        for json in [r#"{"pids": {"limit": 0}}"#, r#"{"pids": {"limit": -1}}"#] {
            let (tmp, result) = apply_json(json);
            result.unwrap();
            assert_eq!(pids_max(&tmp), "max", "{json}");
        }
    }

    #[test]
    fn absent_writes_nothing() {
        let (tmp, result) = apply_json("{}");
        result.unwrap();
        assert_eq!(pids_max(&tmp), "");
        assert!(!Pids::needed(&LinuxResources::default()));
    }

    #[test]
    fn stats_read_current_and_max() {
        let (tmp, _) = apply_json(r#"{"pids": {"limit": 0}}"#);
        std::fs::write(tmp.path().join("pids.current"), "3\n").unwrap();
        assert_eq!(
            stats(tmp.path()).unwrap(),
            PidsStats {
                current: 3,
                limit: 0
            }
        );
        std::fs::write(tmp.path().join("pids.max"), "12\n").unwrap();
        assert_eq!(stats(tmp.path()).unwrap().limit, 12);
    }

    #[test]
    fn missing_file_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let resources: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 1}}"#).unwrap();
        let err = Pids::apply(tmp.path(), &resources).unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
    }
}
