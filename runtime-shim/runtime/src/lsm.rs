//! Linux security modules: the AppArmor profile and SELinux labels of the spec. Labels
//! take effect at exec (the kernel reads /proc/self/attr at execve), so they are written
//! last. A label requested on a host whose LSM is off is an error, found before anything
//! is created: silently running unconfined would betray the spec.

use std::fs;
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{IoContext, Result, SpecError};

/// True if AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|v| v.trim() == "Y")
        .unwrap_or(false)
}

/// True if SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuse labels the host cannot apply.
pub fn validate(spec: &Spec) -> std::result::Result<(), SpecError> {
    let process = spec.process().as_ref();
    if let Some(profile) = process.and_then(|p| p.apparmor_profile().as_deref()) {
        if !profile.is_empty() && !apparmor_enabled() {
            return Err(SpecError::LsmDisabled {
                field: "process.apparmorProfile",
                value: profile.to_owned(),
                lsm: "AppArmor",
            });
        }
    }
    let label = process.and_then(|p| p.selinux_label().as_deref());
    let mount_label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    for (what, value) in [
        ("process.selinuxLabel", label),
        ("linux.mountLabel", mount_label),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            if !selinux_enabled() {
                return Err(SpecError::LsmDisabled {
                    field: what,
                    value: v.to_owned(),
                    lsm: "SELinux",
                });
            }
        }
    }
    Ok(())
}

/// The mount data with the SELinux mount label added, for filesystems mounted afresh.
pub fn with_mount_label(data: &str, mount_label: Option<&str>) -> String {
    match mount_label.filter(|l| !l.is_empty()) {
        Some(label) if data.is_empty() => format!("context=\"{label}\""),
        Some(label) => format!("{data},context=\"{label}\""),
        None => data.to_string(),
    }
}

/// Arrange for the next execve to run under the spec's AppArmor profile and SELinux
/// label. Called as the very last step before exec.
pub fn set_exec_labels(apparmor_profile: Option<&str>, selinux_label: Option<&str>) -> Result<()> {
    if let Some(profile) = apparmor_profile.filter(|p| !p.is_empty()) {
        let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        fs::write(attr, format!("exec {profile}")).io("set AppArmor profile via", attr)?;
    }
    if let Some(label) = selinux_label.filter(|l| !l.is_empty()) {
        let attr = "/proc/self/attr/exec";
        fs::write(attr, label).io("set SELinux label via", attr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_joins_data() {
        assert_eq!(with_mount_label("", Some("s0")), "context=\"s0\"");
        assert_eq!(
            with_mount_label("mode=755", Some("s0")),
            "mode=755,context=\"s0\""
        );
        assert_eq!(with_mount_label("mode=755", None), "mode=755");
    }

    #[test]
    fn requested_labels_need_their_lsm() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
                "apparmorProfile":"berth-test"}}"#,
        )
        .unwrap();
        assert_eq!(validate(&spec).is_ok(), apparmor_enabled());
    }
}
