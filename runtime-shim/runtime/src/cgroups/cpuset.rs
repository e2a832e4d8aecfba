//! The `cpuset` controller's resources, the same files on v1 and v2: the CPUs and memory
//! nodes a container may use. (Only v1 needs more: see `v1::cpuset`.)

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{fs, CgroupError, Controller};

pub(crate) const CPUS: &str = "cpuset.cpus";
pub(crate) const MEMS: &str = "cpuset.mems";

/// Writes `cpuset.cpus` and `cpuset.mems` from `resources.cpu.{cpus,mems}`.
pub(crate) struct Cpuset;

impl Controller for Cpuset {
    const NAME: &'static str = "cpuset";

    fn needed(resources: &LinuxResources) -> bool {
        resources.cpu().as_ref().is_some_and(|cpu| {
            non_empty(cpu.cpus().as_deref()).is_some() || non_empty(cpu.mems().as_deref()).is_some()
        })
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = resources.cpu() else {
            return Ok(());
        };
        if let Some(cpus) = non_empty(cpu.cpus().as_deref()) {
            fs::write(dir, CPUS, cpus)?;
        }
        if let Some(mems) = non_empty(cpu.mems().as_deref()) {
            fs::write(dir, MEMS, mems)?;
        }
        Ok(())
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}
