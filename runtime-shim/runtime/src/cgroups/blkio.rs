//! What the v1 `blkio` and v2 `io` controllers share: which `blockIO` resources concern
//! them, leaf weights (CFQ's, which only some v1 kernels have) and device numbers.

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::ResourceError;

/// Whether `resources` asks anything of the block I/O controller.
pub(crate) fn needed(resources: &LinuxResources) -> bool {
    resources.block_io().as_ref().is_some_and(|io| {
        io.weight().unwrap_or(0) != 0
            || io.leaf_weight().unwrap_or(0) != 0
            || io.weight_device().as_ref().is_some_and(|d| !d.is_empty())
            || throttles(io).iter().any(|devices| !devices.is_empty())
    })
}

/// The spec's throttled devices in the order read bps, write bps, read IOPS, write IOPS.
pub(crate) fn throttles(io: &LinuxBlockIo) -> [&[LinuxThrottleDevice]; 4] {
    [
        io.throttle_read_bps_device(),
        io.throttle_write_bps_device(),
        io.throttle_read_iops_device(),
        io.throttle_write_iops_device(),
    ]
    .map(|devices| devices.as_deref().unwrap_or_default())
}

/// Whether `io` sets a leaf weight, for the whole cgroup or a device.
pub(crate) fn wants_leaf_weight(io: &LinuxBlockIo) -> bool {
    io.leaf_weight().unwrap_or(0) != 0
        || io
            .weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().unwrap_or(0) != 0)
}

/// `MAJ:MIN`, refusing negative numbers.
pub(crate) fn device_numbers(major: i64, minor: i64) -> Result<String, ResourceError> {
    if major < 0 || minor < 0 {
        return Err(ResourceError::DeviceNumber { major, minor });
    }
    Ok(format!("{major}:{minor}"))
}
