//! User namespaces: root in the container mapped to an unprivileged host id, with the
//! usual mounts working under the mapping and devices bind-mounted where mknod is refused.

use std::fs;

use berth_testkit::runc::*;
use serde_json::{json, Value};

const HOST_BASE: u32 = 100000;

fn with_userns(c: &mut TestContainer) {
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "user" }));
    let map = json!([{ "containerID": 0, "hostID": HOST_BASE, "size": 65536 }]);
    c.spec["linux"]["uidMappings"] = map.clone();
    c.spec["linux"]["gidMappings"] = map;
}

#[test]
fn root_inside_is_unprivileged_outside() {
    let mut c = TestContainer::new("userns-map", &["sleep", "1000"]);
    with_userns(&mut c);
    c.create().assert_success();
    let status = fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == HOST_BASE.to_string()),
        "the init is not host uid {HOST_BASE}: {uid_line}"
    );
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn mappings_and_mounts_work_inside() {
    let mut c = TestContainer::new(
        "userns-inside",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
             echo data > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; \
             test -d /proc/self/fd && echo proc-ok; echo x > /dev/shm/f && echo tmpfs-ok; \
             test -d /sys/class/net && echo sysfs-ok",
        ],
    );
    with_userns(&mut c);
    let out = c.run_ok();
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "0 100000 65536",
            "0 100000 65536",
            "0",
            "0",
            "null-ok",
            "4",
            "proc-ok",
            "tmpfs-ok",
            "sysfs-ok"
        ],
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn rootless_spec_runs() {
    // `spec --rootless`, pointed at our rootfs, is a working container.
    let mut c = TestContainer::new("userns-rootless", &["true"]);
    c.cmd(&["spec", "--rootless", "--bundle", c.bundle.to_str().unwrap()])
        .assert_success();
    let mut v: Value =
        serde_json::from_slice(&fs::read(c.bundle.join("config.json")).unwrap()).unwrap();
    v["root"]["path"] = json!(shared_rootfs());
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    v["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("{MARK_ENV}={}", c.id)));
    v["linux"]["cgroupsPath"] = json!(c.cgroups_path);
    c.spec = v;
    let out = c.run();
    out.assert_success();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", &nix::unistd::getuid().to_string(), "1"],
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn bad_mappings_are_refused() {
    if skip_under_runc("berth's mapping checks name the problem") {
        return;
    }
    // Mappings without a user namespace.
    let mut c = TestContainer::new("userns-nons", &["true"]);
    c.spec["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 1000, "size": 1 }]);
    c.create().assert_one_line_error(&["user namespace"], &[]);
    c.assert_nothing_left();

    // A user namespace without mappings.
    let mut c = TestContainer::new("userns-nomap", &["true"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "user" }));
    c.create().assert_one_line_error(&["uidMappings"], &[]);
    c.assert_nothing_left();

    // Overlapping ranges.
    let mut c = TestContainer::new("userns-overlap", &["true"]);
    with_userns(&mut c);
    c.spec["linux"]["uidMappings"] = json!([
        { "containerID": 0, "hostID": 100000, "size": 100 },
        { "containerID": 50, "hostID": 200000, "size": 100 }
    ]);
    c.create().assert_one_line_error(&["overlap"], &[]);
    c.assert_nothing_left();
}
