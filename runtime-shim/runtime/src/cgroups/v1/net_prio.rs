//! v1 `net_prio` controller: per-interface priorities of the container's traffic.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError, Controller};

const IFPRIOMAP: &str = "net_prio.ifpriomap";

/// Writes one `<interface> <priority>` line to `net_prio.ifpriomap` per entry of
/// `network.priorities` (the file takes one interface per write).
pub(crate) struct NetPrio;

impl Controller for NetPrio {
    const NAME: &'static str = "net_prio";

    fn needed(resources: &LinuxResources) -> bool {
        resources
            .network()
            .as_ref()
            .and_then(|network| network.priorities().as_ref())
            .is_some_and(|priorities| !priorities.is_empty())
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(priorities) = resources
            .network()
            .as_ref()
            .and_then(|n| n.priorities().as_ref())
        else {
            return Ok(());
        };
        for priority in priorities {
            let name = priority.name();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(CgroupError::InvalidResource {
                    controller: Self::NAME,
                    path: dir.to_path_buf(),
                    reason: format!(
                        "network priority for interface {name:?}: not an interface name"
                    ),
                });
            }
        }
        for priority in priorities {
            let line = format!("{} {}", priority.name(), priority.priority());
            fs::write(dir, IFPRIOMAP, &line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_json(json: &str) -> (tempfile::TempDir, Result<(), CgroupError>) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(IFPRIOMAP), "").unwrap();
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        let result = NetPrio::apply(tmp.path(), &resources);
        (tmp, result)
    }

    #[test]
    fn writes_each_interface() {
        let (tmp, result) = apply_json(
            r#"{"network": {"priorities": [{"name": "lo", "priority": 2},
                                           {"name": "eth0", "priority": 5}]}}"#,
        );
        result.unwrap();
        // A plain file keeps the last write.
        assert_eq!(fs::read(tmp.path(), IFPRIOMAP).unwrap(), "eth0 5");
    }

    #[test]
    fn bad_interface_names_are_refused() {
        let (tmp, result) = apply_json(
            r#"{"network": {"priorities": [{"name": "lo", "priority": 2},
                                           {"name": "eth0 7", "priority": 5}]}}"#,
        );
        assert!(matches!(result, Err(CgroupError::InvalidResource { .. })));
        assert_eq!(
            fs::read(tmp.path(), IFPRIOMAP).unwrap(),
            "",
            "nothing written"
        );
    }

    #[test]
    fn empty_is_not_needed() {
        for json in [
            "{}",
            r#"{"network": {}}"#,
            r#"{"network": {"priorities": []}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!NetPrio::needed(&resources), "{json}");
        }
    }
}
