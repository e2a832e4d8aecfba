//! `linux.sysctl`: kernel parameters written under the container's own /proc/sys.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Error, IoContext, Result, SpecError};

/// System V IPC keys that belong to the ipc namespace (besides `fs.mqueue.*`).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a sysctl key belongs to, or `None` if it is global to the host.
fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Refuse keys that would change the host: a sysctl is only written when the container
/// has its own instance of the namespace the key lives in, as runc checks.
pub fn validate(
    sysctl: &HashMap<String, String>,
    namespaces: &[LinuxNamespaceType],
) -> std::result::Result<(), SpecError> {
    for key in sysctl.keys() {
        if !key_is_valid(key) {
            return Err(SpecError::SysctlKey(key.clone()));
        }
        match namespace_of(key) {
            Some(ns) if namespaces.contains(&ns) => {}
            Some(ns) => {
                return Err(SpecError::SysctlNeedsNamespace {
                    key: key.clone(),
                    ns,
                })
            }
            None => return Err(SpecError::SysctlHostGlobal(key.clone())),
        }
    }
    Ok(())
}

/// The /proc/sys file of a dotted key, refusing keys that would escape /proc/sys.
fn path_of(key: &str) -> Result<PathBuf> {
    if !key_is_valid(key) {
        return Err(Error::sys(
            "sysctl",
            format!("invalid key {key:?}"),
            nix::errno::Errno::EINVAL,
        ));
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

/// Whether `key` names a file below /proc/sys: no empty part, no `..`.
fn key_is_valid(key: &str) -> bool {
    !key.is_empty()
        && !key
            .split(['.', '/'])
            .any(|part| part.is_empty() || part == "..")
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

    #[test]
    fn only_namespaced_keys_pass() {
        let set = |k: &str| HashMap::from([(k.to_string(), "1".to_string())]);
        let net = [LinuxNamespaceType::Network];
        assert!(validate(&set("net.ipv4.ip_forward"), &net).is_ok());
        assert!(validate(&set("net.ipv4.ip_forward"), &[]).is_err());
        assert!(validate(&set("kernel.shmmax"), &net).is_err());
        assert!(validate(&set("kernel.panic"), &net).is_err());
    }
}
