//! The `rdma` controller, the same file and format on v1 and v2: per-device limits on
//! RDMA/IB handles and objects.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{fs, CgroupError, Controller};

const MAX: &str = "rdma.max";

/// Writes one `<device> hca_handle=N hca_object=M` line to `rdma.max` per device in
/// `resources.rdma` (unset values are left out, leaving them as they are).
pub(crate) struct Rdma;

impl Controller for Rdma {
    const NAME: &'static str = "rdma";

    fn needed(resources: &LinuxResources) -> bool {
        resources
            .rdma()
            .as_ref()
            .is_some_and(|rdma| !rdma.is_empty())
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(rdma) = resources.rdma() else {
            return Ok(());
        };
        let mut devices: Vec<_> = rdma.iter().collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (device, _) in &devices {
            if device.is_empty() || device.contains(char::is_whitespace) {
                return Err(CgroupError::InvalidResource {
                    controller: Self::NAME,
                    path: dir.to_path_buf(),
                    reason: format!("rdma device {device:?}: not a device name"),
                });
            }
        }
        for (device, limits) in devices {
            let mut line = device.clone();
            if let Some(handles) = limits.hca_handles() {
                line.push_str(&format!(" hca_handle={handles}"));
            }
            if let Some(objects) = limits.hca_objects() {
                line.push_str(&format!(" hca_object={objects}"));
            }
            fs::write(dir, MAX, &line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_each_device() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(MAX), "").unwrap();
        let resources: LinuxResources = serde_json::from_str(
            r#"{"rdma": {"mlx5_1": {"hcaHandles": 3},
                         "mlx5_0": {"hcaHandles": 2, "hcaObjects": 2000}}}"#,
        )
        .unwrap();
        assert!(Rdma::needed(&resources));
        Rdma::apply(tmp.path(), &resources).unwrap();
        // Sorted by device; a plain file keeps the last write.
        assert_eq!(fs::read(tmp.path(), MAX).unwrap(), "mlx5_1 hca_handle=3");
    }

    #[test]
    fn bad_device_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let resources: LinuxResources =
            serde_json::from_str(r#"{"rdma": {"a b": {"hcaHandles": 3}}}"#).unwrap();
        assert!(Rdma::apply(tmp.path(), &resources).is_err());
        assert!(!Rdma::needed(&LinuxResources::default()));
    }
}
