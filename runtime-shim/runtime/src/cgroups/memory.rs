//! What the v1 and v2 `memory` controllers share: how the OCI values say "leave alone"
//! and "unlimited", and when a swappiness is set at all.

use oci_spec::runtime::LinuxMemory;

use super::ResourceError;

/// The byte value to write, if any: `None` and 0 mean "leave alone".
pub(crate) fn set(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v != 0)
}

/// [`set`], refusing negative values other than -1 (unlimited) of the spec's
/// `memory.<field>`.
pub(crate) fn checked(
    field: &'static str,
    value: Option<i64>,
) -> Result<Option<i64>, ResourceError> {
    match set(value) {
        Some(value) if value < -1 => Err(ResourceError::MemoryValue { field, value }),
        value => Ok(value),
    }
}

/// The swappiness the spec sets, if any. `u64::MAX` is how a `-1` ("unset") written by Go
/// tools as an unsigned number arrives.
pub(crate) fn swappiness(memory: &LinuxMemory) -> Option<u64> {
    memory.swappiness().filter(|s| *s != u64::MAX)
}
