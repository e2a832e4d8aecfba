//! v2 `cpuset` controller: the CPUs and memory nodes a container may use, written as on
//! v1 ([`crate::cgroups::cpuset`]). Unlike v1, an empty v2 cpuset uses its parent's, so
//! nothing needs copying.

pub(crate) use crate::cgroups::cpuset::Cpuset;

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxResources;

    use super::*;
    use crate::cgroups::cpuset::{CPUS, MEMS};
    use crate::cgroups::{fs, Controller};

    #[test]
    fn writes_cpus_and_mems() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CPUS), "").unwrap();
        std::fs::write(tmp.path().join(MEMS), "").unwrap();
        let resources: LinuxResources =
            serde_json::from_str(r#"{"cpu": {"cpus": "0-1", "mems": "0"}}"#).unwrap();
        assert!(Cpuset::needed(&resources));
        Cpuset::apply(tmp.path(), &resources).unwrap();
        assert_eq!(fs::read(tmp.path(), CPUS).unwrap(), "0-1");
        assert_eq!(fs::read(tmp.path(), MEMS).unwrap(), "0");
    }

    #[test]
    fn absent_or_empty_is_not_needed() {
        for json in [
            "{}",
            r#"{"cpu": {"quota": 1000}}"#,
            r#"{"cpu": {"mems": " "}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Cpuset::needed(&resources), "{json}");
        }
    }
}
