//! What the v1 and v2 `memory` controllers share: how the OCI values say "leave alone"
//! and "unlimited", and when a swappiness is set at all.

use oci_spec::runtime::LinuxMemory;

/// The byte value to write, if any: `None` and 0 mean "leave alone".
pub(crate) fn set(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v != 0)
}

/// [`set`], refusing negative values other than -1 (unlimited) of the spec's
/// `memory.<field>`.
pub(crate) fn checked(field: &str, value: Option<i64>) -> Result<Option<i64>, String> {
    match set(value) {
        Some(v) if v < -1 => Err(format!(
            "memory.{field} is {v}; use a byte count, or -1 for unlimited"
        )),
        value => Ok(value),
    }
}

/// The swappiness the spec sets, if any. `u64::MAX` is how a `-1` ("unset") written by Go
/// tools as an unsigned number arrives.
pub(crate) fn swappiness(memory: &LinuxMemory) -> Option<u64> {
    memory.swappiness().filter(|s| *s != u64::MAX)
}
