//! v2 `pids` controller: the maximum number of tasks. The files are the same as on v1,
//! so both use the one controller in [`crate::cgroups::pids`].

pub(crate) use crate::cgroups::pids::{stats, Pids};

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxResources;

    use super::*;
    use crate::cgroups::stats::PidsStats;
    use crate::cgroups::Controller;

    fn apply_json(json: &str) -> String {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.max"), "").unwrap();
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Pids::apply(tmp.path(), &resources).unwrap();
        std::fs::read_to_string(tmp.path().join("pids.max")).unwrap()
    }

    #[test]
    fn positive_limit_is_written() {
        assert_eq!(apply_json(r#"{"pids": {"limit": 1000}}"#), "1000");
    }

    #[test]
    fn zero_and_negative_mean_max() {
        assert_eq!(apply_json(r#"{"pids": {"limit": 0}}"#), "max");
        assert_eq!(apply_json(r#"{"pids": {"limit": -1}}"#), "max");
    }

    #[test]
    fn absent_writes_nothing() {
        assert_eq!(apply_json("{}"), "");
        assert!(!Pids::needed(&LinuxResources::default()));
    }

    #[test]
    fn stats_read_current_and_max() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.current"), "2\n").unwrap();
        std::fs::write(tmp.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(
            stats(tmp.path()).unwrap(),
            PidsStats {
                current: 2,
                limit: 0
            }
        );
    }
}
