//! v1 `devices` controller: the device allow/deny list.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::devices::{self, Emulator};
use crate::cgroups::{fs, CgroupError, Controller};

const ALLOW: &str = "devices.allow";
const DENY: &str = "devices.deny";
const LIST: &str = "devices.list";

/// Writes `devices.deny`/`devices.allow`: the spec's rules plus the default allowed
/// devices (see [`crate::cgroups::devices`]), on top of "deny everything". With no rules
/// in the spec, the container gets the defaults only, as with runc.
pub(crate) struct Devices;

impl Controller for Devices {
    const NAME: &'static str = "devices";

    fn needed(resources: &LinuxResources) -> bool {
        devices::needed(resources)
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let target = devices::target(dir, resources)?;
        // An `update` repeating the current rules changes nothing; rewriting them would
        // deny the running container every device for a moment.
        if let Some(current) = fs::read_optional(dir, LIST)? {
            if Emulator::from_v1_list(&current).as_ref() == Some(&target) {
                return Ok(());
            }
        }
        // Consecutive rules for one file go through one open file.
        let writes = writes(&target);
        for run in writes.chunk_by(|a, b| a.0 == b.0) {
            fs::write_each(dir, run[0].0, run.iter().map(|(_, line)| line.as_str()))?;
        }
        Ok(())
    }
}

/// The writes that turn any list into `target`: reset to the default with `a`, then one
/// exception per line (each write to these files takes a single rule).
fn writes(target: &Emulator) -> Vec<(&'static str, String)> {
    let (reset, except) = if target.default_allow() {
        (ALLOW, DENY)
    } else {
        (DENY, ALLOW)
    };
    std::iter::once((reset, "a".to_owned()))
        .chain(
            target
                .exceptions()
                .map(|(matched, access)| (except, format!("{matched} {access}"))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn target(json: &str) -> Emulator {
        let resources = resources(json);
        Emulator::for_spec(resources.devices().as_deref().unwrap_or_default()).unwrap()
    }

    #[test]
    fn deny_all_then_each_allowed_device() {
        let writes = writes(&target(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}"#,
        ));
        assert_eq!(writes[0], (DENY, "a".to_owned()));
        assert!(
            writes.contains(&(ALLOW, "c 10:229 rw".to_owned())),
            "{writes:?}"
        );
        assert!(
            writes.contains(&(ALLOW, "c 1:3 rwm".to_owned())),
            "{writes:?}"
        );
        assert!(
            writes.contains(&(ALLOW, "c *:* m".to_owned())),
            "{writes:?}"
        );
        assert!(writes[1..].iter().all(|(file, _)| *file == ALLOW));
    }

    #[test]
    fn allow_all_then_each_denied_device() {
        let writes = writes(&target(
            r#"{"devices": [{"allow": true, "access": "rwm"},
                            {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "w"}]}"#,
        ));
        assert_eq!(
            writes,
            [(ALLOW, "a".to_owned()), (DENY, "b 8:0 w".to_owned())]
        );
    }

    #[test]
    fn apply_writes_and_skips_an_unchanged_list() {
        let tmp = tempfile::tempdir().unwrap();
        for file in [ALLOW, DENY] {
            std::fs::write(tmp.path().join(file), "").unwrap();
        }
        std::fs::write(tmp.path().join(LIST), "a *:* rwm\n").unwrap();
        let json = r#"{"devices": [{"allow": false, "access": "rwm"}]}"#;
        Devices::apply(tmp.path(), &resources(json)).unwrap();
        assert_eq!(fs::read(tmp.path(), DENY).unwrap(), "a");
        // A plain file keeps the last write: the last allowed device.
        assert!(!fs::read(tmp.path(), ALLOW).unwrap().is_empty());

        std::fs::write(tmp.path().join(DENY), "").unwrap();
        std::fs::write(tmp.path().join(LIST), target(json).v1_list().join("\n")).unwrap();
        Devices::apply(tmp.path(), &resources(json)).unwrap();
        assert_eq!(fs::read(tmp.path(), DENY).unwrap(), "", "nothing rewritten");
    }

    #[test]
    fn bad_rule_names_the_controller() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Devices::apply(
            tmp.path(),
            &resources(r#"{"devices": [{"allow": true, "type": "c", "access": "z"}]}"#),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::Refused {
                    controller: "devices",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!Devices::needed(&LinuxResources::default()));
    }
}
