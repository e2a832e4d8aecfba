//! What the v1 and v2 `cpu` controllers share: which resources concern them, the idle
//! policy and shares (a weight on v2), writing the burst around a new quota, and the
//! throttling counters of `cpu.stat`.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxResources};

use super::stats::Throttling;
use super::{fs, CgroupError, ResourceError};

/// Whether `resources` asks anything of the `cpu` controller (realtime included: v1
/// applies it, v2 refuses it). 0 means "leave alone".
pub(crate) fn needed(resources: &LinuxResources) -> bool {
    resources.cpu().as_ref().is_some_and(|cpu| {
        cpu.shares().unwrap_or(0) != 0
            || cpu.quota().unwrap_or(0) != 0
            || cpu.period().unwrap_or(0) != 0
            || cpu.burst().is_some()
            || cpu.idle().is_some()
            || cpu.realtime_runtime().unwrap_or(0) != 0
            || cpu.realtime_period().unwrap_or(0) != 0
    })
}

pub(crate) const IDLE: &str = "cpu.idle";

/// Refuse an idle policy other than 0 or 1, before anything is written.
pub(crate) fn check_idle(cpu: &LinuxCpu) -> Result<(), ResourceError> {
    match cpu.idle().filter(|i| !matches!(i, 0 | 1)) {
        Some(idle) => Err(ResourceError::CpuIdle(idle)),
        None => Ok(()),
    }
}

/// Write `cpu.idle`, then the shares to `file` as `to_value` turns them into that
/// file's unit (v1 `cpu.shares` as is, v2 `cpu.weight` converted).
pub(crate) fn apply_idle_and_shares(
    dir: &Path,
    cpu: &LinuxCpu,
    file: &str,
    to_value: fn(u64) -> u64,
) -> Result<(), CgroupError> {
    if let Some(idle) = cpu.idle() {
        fs::write(dir, IDLE, &idle.to_string())?;
    }
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        if cpu.idle() == Some(1) {
            // The kernel refuses shares (or a weight) for an idle group, which has the
            // lowest anyway.
            tracing::warn!("cpu.shares ignored: the cgroup is idle (cpu.idle 1)");
        } else {
            fs::write(dir, file, &to_value(shares).to_string())?;
        }
    }
    Ok(())
}

/// Write the burst to `file` before the new quota, unless it does not fit the current
/// one (`EINVAL`) while a quota follows: then its value is returned, for the caller to
/// write after the quota. A kernel without the file only earns a warning.
pub(crate) fn write_burst_early(
    dir: &Path,
    file: &str,
    cpu: &LinuxCpu,
    quota_follows: bool,
) -> Result<Option<String>, CgroupError> {
    let Some(burst) = cpu.burst() else {
        return Ok(None);
    };
    let value = burst.to_string();
    match fs::write_raw(&dir.join(file), &value) {
        Ok(()) => Ok(None),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            tracing::warn!("cpu.burst ignored: this kernel has no {file}");
            Ok(None)
        }
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) && quota_follows => Ok(Some(value)),
        Err(source) => Err(CgroupError::Write {
            path: dir.join(file),
            value,
            source,
        }),
    }
}

/// The CFS throttling counters of a parsed `cpu.stat`, whose throttled time is under
/// `time_key` in units of `nanos_per_unit` nanoseconds.
pub(crate) fn throttling(
    stat: &BTreeMap<String, u64>,
    time_key: &str,
    nanos_per_unit: u64,
) -> Throttling {
    let get = |key: &str| stat.get(key).copied().unwrap_or(0);
    Throttling {
        periods: get("nr_periods"),
        throttled_periods: get("nr_throttled"),
        throttled_time: get(time_key).saturating_mul(nanos_per_unit),
    }
}
