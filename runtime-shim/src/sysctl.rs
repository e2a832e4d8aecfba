//! `linux.sysctl`: kernel parameters written under the container's own /proc/sys.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::{Error, IoContext, Result};

/// The /proc/sys file of a dotted key, refusing keys that would escape /proc/sys.
fn path_of(key: &str) -> Result<PathBuf> {
    if key.is_empty()
        || key
            .split(['.', '/'])
            .any(|part| part.is_empty() || part == "..")
    {
        return Err(Error::sys(
            "sysctl",
            format!("invalid key {key:?}"),
            nix::errno::Errno::EINVAL,
        ));
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

/// Write every sysctl. Runs after pivot_root, so /proc is the container's.
pub fn apply(sysctl: &HashMap<String, String>) -> Result<()> {
    for (key, value) in sysctl {
        let path = path_of(key)?;
        std::fs::write(&path, value.as_bytes()).io("write sysctl", &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_sys() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert!(path_of("net..x").is_err());
        assert!(path_of("../etc").is_err());
    }
}
