//! v1 `net_cls` controller: the class id the container's packets are tagged with.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError, Controller};

const CLASSID: &str = "net_cls.classid";

/// Writes `net_cls.classid` from `network.classID`.
pub(crate) struct NetCls;

impl Controller for NetCls {
    const NAME: &'static str = "net_cls";

    fn needed(resources: &LinuxResources) -> bool {
        resources
            .network()
            .as_ref()
            .is_some_and(|network| network.class_id().is_some())
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        match resources.network().as_ref().and_then(|n| n.class_id()) {
            Some(class_id) => fs::write(dir, CLASSID, &class_id.to_string()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_class_id() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CLASSID), "0").unwrap();
        let resources: LinuxResources =
            serde_json::from_str(r#"{"network": {"classID": 1048577}}"#).unwrap();
        assert!(NetCls::needed(&resources));
        NetCls::apply(tmp.path(), &resources).unwrap();
        assert_eq!(fs::read(tmp.path(), CLASSID).unwrap(), "1048577");
    }

    #[test]
    fn priorities_alone_do_not_need_it() {
        let resources: LinuxResources = serde_json::from_str(
            r#"{"network": {"priorities": [{"name": "eth0", "priority": 1}]}}"#,
        )
        .unwrap();
        assert!(!NetCls::needed(&resources));
    }
}
