//! The rootfs overlay annotation (`dev.berth.rootfs.overlay`): the init mounts an overlay
//! of the given lowers on root.path inside the container's own mount namespace, so the
//! host's mount table never holds it; bad annotations are refused before anything runs.

use std::fs;
use std::path::{Path, PathBuf};

use berth_testkit::runc::*;
use serde_json::json;

const ANNOTATION: &str = "dev.berth.rootfs.overlay";

/// A container whose root is an overlay of `tops` (top first) over the shared rootfs,
/// with its own upper and work dirs in its temporary directory; returns the upper dir.
fn overlay_container(prefix: &str, args: &[&str], tops: &[PathBuf]) -> (TestContainer, PathBuf) {
    let mut c = TestContainer::new(prefix, args);
    let (upper, work) = (c.tmp_path().join("upper"), c.tmp_path().join("work"));
    fs::create_dir(&upper).unwrap();
    fs::create_dir(&work).unwrap();
    fs::create_dir(c.bundle.join("rootfs")).unwrap();
    let mut lower: Vec<PathBuf> = tops.to_vec();
    lower.push(shared_rootfs().to_path_buf());
    let plan = json!({ "lower": lower, "upper": upper, "work": work });
    c.spec["root"] = json!({ "path": "rootfs", "readonly": false });
    c.spec["annotations"] = json!({ ANNOTATION: plan.to_string() });
    (c, upper)
}

/// Host mounts of type overlay whose mount point or options name `under`.
fn host_overlays(under: &Path) -> Vec<String> {
    let under = under.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - overlay ") && l.contains(&under))
        .map(str::to_string)
        .collect()
}

/// A lower dir with `files` (name, text) in it, under `dir`.
fn lower_with(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let lower = dir.join(name);
    fs::create_dir_all(&lower).unwrap();
    for (f, text) in files {
        fs::write(lower.join(f), format!("{text}\n")).unwrap();
    }
    lower
}

#[test]
fn overlay_root_merges_lowers_and_stays_out_of_the_host_mount_table() {
    if skip_under_runc("the overlay annotation is berth's") {
        return;
    }
    let layers = tempfile::tempdir().unwrap();
    let top = lower_with(
        layers.path(),
        "top",
        &[("top-file", "from top"), ("shared", "top wins")],
    );
    let mid = lower_with(
        layers.path(),
        "mid",
        &[("mid-file", "from mid"), ("shared", "mid loses")],
    );
    let (c, upper) = overlay_container("ovl-merge", &["sleep", "1000"], &[top, mid]);
    c.run_with(&["-d"]).assert_success();
    c.wait_for_status("running");
    assert!(
        host_overlays(c.tmp_path()).is_empty(),
        "the container's overlay is in the host's mount table: {:?}",
        host_overlays(c.tmp_path())
    );
    assert!(
        fs::read_dir(c.bundle.join("rootfs"))
            .unwrap()
            .next()
            .is_none(),
        "the host sees the overlay's content at root.path"
    );
    // exec joins the container's mount namespace: it sees the merged tree.
    let out = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "cat /top-file /mid-file /shared; echo written > /new-file; ls /bin/sh",
    ]);
    out.assert_success();
    assert_eq!(
        out.stdout_lines(),
        ["from top", "from mid", "top wins", "/bin/sh"],
        "{out}"
    );
    assert_eq!(read_trim(&upper.join("new-file")), "written");
    assert!(!shared_rootfs().join("new-file").exists());
    c.kill("KILL").assert_success();
    c.wait_for_status("stopped");
    c.delete().assert_success();
    c.assert_nothing_left();
}

#[test]
fn overlay_root_of_150_lowers() {
    if skip_under_runc("the overlay annotation is berth's") {
        return;
    }
    let layers = tempfile::tempdir().unwrap();
    let tops: Vec<PathBuf> = (0..149)
        .map(|i| lower_with(layers.path(), &format!("l{i}"), &[(&format!("f{i}"), "x")]))
        .collect();
    let (c, _upper) = overlay_container("ovl-150", &["sh", "-c", "ls / | grep -c '^f'"], &tops);
    assert_eq!(c.run_ok().trim(), "149");
    c.assert_nothing_left();
}

#[test]
fn bad_overlay_annotations_are_refused_with_nothing_left() {
    if skip_under_runc("the overlay annotation is berth's") {
        return;
    }
    let layers = tempfile::tempdir().unwrap();
    let lower = lower_with(layers.path(), "l", &[]);
    let dir = layers.path().join("d");
    fs::create_dir(&dir).unwrap();
    let good = json!({ "lower": [&lower], "upper": &dir, "work": &dir });
    let with = |key: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[key] = value;
        v.to_string()
    };
    let cases = [
        ("not json".to_string(), "expected"),
        (with("lower", json!([])), "no lower"),
        (with("upper", json!("relative/upper")), "not absolute"),
        (with("work", json!("/no/such/work-dir")), "not a directory"),
        (with("extra", json!(1)), "unknown field"),
    ];
    for (value, want) in cases {
        let mut c = TestContainer::new("ovl-bad", &["true"]);
        c.spec["annotations"] = json!({ ANNOTATION: value });
        let out = c.run();
        out.assert_one_line_error(&[ANNOTATION], &[want]);
        c.assert_nothing_left();
    }
    // No mount namespace of its own: never mounted in the runtime's.
    let mut c = TestContainer::new("ovl-nomnt", &["true"]);
    c.spec["annotations"] = json!({ ANNOTATION: good.to_string() });
    c.spec["linux"]["namespaces"] = json!([{ "type": "pid" }, { "type": "uts" }]);
    c.spec["linux"]["maskedPaths"] = json!([]);
    c.spec["linux"]["readonlyPaths"] = json!([]);
    c.spec["root"]["readonly"] = json!(false);
    c.run()
        .assert_one_line_error(&[ANNOTATION], &["mount namespace"]);
    c.assert_nothing_left();
    // A user namespace: refused too.
    let mut c = TestContainer::new("ovl-userns", &["true"]);
    c.spec["annotations"] = json!({ ANNOTATION: good.to_string() });
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "user" }));
    c.spec["linux"]["uidMappings"] = map.clone();
    c.spec["linux"]["gidMappings"] = map;
    c.run()
        .assert_one_line_error(&[ANNOTATION], &["user namespace"]);
    c.assert_nothing_left();
    assert!(host_overlays(layers.path()).is_empty());
}
