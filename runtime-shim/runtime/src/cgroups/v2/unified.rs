//! v2 `unified` resources: raw `file: value` pairs written into the container's cgroup,
//! after (and so overriding) everything else, as runc does.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{fs, CgroupError};

/// The v2 controllers a unified key can belong to, so that it can be enabled for the
/// container (`cgroup.*` keys are core files, no controller).
const CONTROLLERS: &[&str] = &[
    "cpu", "cpuset", "dmem", "hugetlb", "io", "memory", "misc", "pids", "rdma",
];

/// The keys in a stable order.
fn sorted(resources: &LinuxResources) -> Vec<(&String, &String)> {
    let mut pairs: Vec<_> = resources.unified().iter().flatten().collect();
    pairs.sort();
    pairs
}

/// Whether `resources` has any unified key.
pub(crate) fn needed(resources: &LinuxResources) -> bool {
    resources.unified().as_ref().is_some_and(|u| !u.is_empty())
}

/// The controllers the unified keys need enabled for the container.
pub(crate) fn controllers(resources: &LinuxResources) -> Vec<&'static str> {
    let mut needed = Vec::new();
    for (key, _) in sorted(resources) {
        let prefix = key.split_once('.').map_or(key.as_str(), |(p, _)| p);
        if let Some(name) = CONTROLLERS.iter().find(|c| **c == prefix) {
            if !needed.contains(name) {
                needed.push(*name);
            }
        }
    }
    needed
}

/// Check every key names a file of the cgroup: `controller.parameter`, no path.
pub(crate) fn check(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
    for (key, _) in sorted(resources) {
        let reason = if key.contains('/') || key.contains('\0') {
            Some("must be a file name, without \"/\"")
        } else if !key.contains('.') || key.starts_with('.') || key.ends_with('.') {
            Some("must be of the form CONTROLLER.PARAMETER")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(CgroupError::InvalidResource {
                controller: "unified",
                path: dir.to_path_buf(),
                reason: format!("key {key:?} {reason}"),
            });
        }
    }
    Ok(())
}

/// Write each key's value, line by line (files like `io.max` take one entry per write).
/// A missing file whose controller is not enabled for the cgroup is reported as that.
pub(crate) fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
    check(dir, resources)?;
    for (key, value) in sorted(resources) {
        let lines: Vec<&str> = value.lines().filter(|l| !l.trim().is_empty()).collect();
        let lines = if lines.is_empty() { vec![""] } else { lines };
        for line in lines {
            let Err(err) = fs::write(dir, key, line) else {
                continue;
            };
            let missing = matches!(
                &err,
                CgroupError::Write { source, .. }
                    if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
            );
            let prefix = key.split_once('.').map_or(key.as_str(), |(p, _)| p);
            let controller = CONTROLLERS.iter().find(|c| **c == prefix);
            if let (true, Some(controller)) = (missing, controller) {
                let enabled = fs::read_optional(dir, "cgroup.controllers")?.unwrap_or_default();
                if !enabled.split_whitespace().any(|c| c == *controller) {
                    return Err(CgroupError::ControllerUnavailable {
                        controller,
                        path: dir.join("cgroup.controllers"),
                    });
                }
            }
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn writes_each_key() {
        let tmp = tempfile::tempdir().unwrap();
        for file in ["memory.high", "io.max", "cgroup.controllers"] {
            std::fs::write(tmp.path().join(file), "").unwrap();
        }
        let resources = resources(
            r#"{"unified": {"memory.high": "1048576", "io.max": "8:0 rbps=1\n8:16 wbps=2\n"}}"#,
        );
        assert!(needed(&resources));
        assert_eq!(controllers(&resources), ["io", "memory"]);
        apply(tmp.path(), &resources).unwrap();
        assert_eq!(fs::read(tmp.path(), "memory.high").unwrap(), "1048576");
        // One write per line; a plain file keeps the last.
        assert_eq!(fs::read(tmp.path(), "io.max").unwrap(), "8:16 wbps=2");
    }

    #[test]
    fn bad_keys_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for key in ["../memory.max", "memory", ".max", "a/b.c"] {
            let json = format!(r#"{{"unified": {{"{key}": "1"}}}}"#);
            let err = apply(tmp.path(), &resources(&json)).unwrap_err();
            assert!(
                matches!(
                    err,
                    CgroupError::InvalidResource {
                        controller: "unified",
                        ..
                    }
                ),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn missing_controller_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cgroup.controllers"), "cpu pids\n").unwrap();
        let err = apply(
            tmp.path(),
            &resources(r#"{"unified": {"memory.high": "1"}}"#),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::ControllerUnavailable {
                    controller: "memory",
                    ..
                }
            ),
            "{err}"
        );
        // With the controller enabled, a missing file is just a missing file.
        let err = apply(tmp.path(), &resources(r#"{"unified": {"cpu.nope": "1"}}"#)).unwrap_err();
        assert!(matches!(err, CgroupError::Write { .. }), "{err}");
        assert!(controllers(&resources(r#"{"unified": {"cgroup.max.depth": "3"}}"#)).is_empty());
    }
}
