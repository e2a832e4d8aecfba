//! Container ids: the rule of [`berth_runtime_types::id`], as the runtime's error.

use crate::error::{Error, Result};

pub use berth_runtime_types::id::MAX_ID_LEN;

/// Check `id` against the rule every container id follows.
pub fn validate(id: &str) -> Result<()> {
    berth_runtime_types::id::check(id).map_err(|reason| Error::InvalidId {
        id: id.chars().take(80).collect(),
        reason,
    })
}
