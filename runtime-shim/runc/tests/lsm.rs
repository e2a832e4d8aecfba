//! AppArmor and SELinux: labels are applied where the LSM is on; requested on a host
//! where it is off, they are a clear error and nothing is made (this host has neither).

use berth_testkit::runc::*;
use serde_json::json;

fn lsm_enabled(name: &str) -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|l| l.split(',').any(|m| m.trim() == name))
        .unwrap_or(false)
}

#[test]
fn apparmor_profile_without_apparmor_is_refused() {
    if lsm_enabled("apparmor") {
        eprintln!("skipped: AppArmor is enabled on this host; this test covers the refusal");
        return;
    }
    let mut c = TestContainer::new("lsm-apparmor", &["true"]);
    c.spec["process"]["apparmorProfile"] = json!("berth-test-profile");
    c.create()
        .assert_one_line_error(&["apparmor"], &["berth-test-profile"]);
    c.assert_nothing_left();
}

#[test]
fn selinux_labels_without_selinux_are_refused() {
    if lsm_enabled("selinux") {
        eprintln!("skipped: SELinux is enabled on this host; this test covers the refusal");
        return;
    }
    if skip_under_runc("runc ignores SELinux labels when SELinux is off") {
        return;
    }
    let mut c = TestContainer::new("lsm-selinux", &["true"]);
    c.spec["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    c.create()
        .assert_one_line_error(&["SELinux"], &["selinuxLabel"]);
    c.assert_nothing_left();

    let mut c = TestContainer::new("lsm-mountlabel", &["true"]);
    c.spec["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    c.create()
        .assert_one_line_error(&["SELinux"], &["mountLabel"]);
    c.assert_nothing_left();
}
