//! The runtime-spec "features" document (`berth-runc features`): what this runtime
//! implements, so callers such as containerd can adapt without trial and error. Every
//! list comes from the module that implements it.

use serde_json::{json, Value};

use crate::hooks::HookKind;
use crate::rootfs::mount_options;
use crate::state::OCI_VERSION;
use crate::{lsm, seccomp};

/// The features document.
pub fn features() -> Value {
    let hooks: Vec<&str> = HookKind::ALL.iter().map(|k| k.name()).collect();
    let capabilities: Vec<String> = caps::all()
        .into_iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": hooks,
        "mountOptions": mount_options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": true
            },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": seccomp::supported_architectures(),
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ]
            },
            "apparmor": { "enabled": lsm::apparmor_enabled() },
            "selinux": { "enabled": lsm::selinux_enabled() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "io.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_the_spec_features_type() {
        let doc = features();
        let parsed: oci_spec::runtime::Features =
            serde_json::from_value(doc.clone()).expect("features match the spec's schema");
        assert_eq!(parsed.oci_version_max(), OCI_VERSION);
        let archs = doc["linux"]["seccomp"]["archs"].as_array().unwrap();
        assert!(archs.iter().any(|a| a == "SCMP_ARCH_X86_64"), "{archs:?}");
        assert_eq!(doc["hooks"].as_array().unwrap().len(), 6);
    }
}
