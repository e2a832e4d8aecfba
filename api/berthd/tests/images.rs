//! Images through berthd's API against a real registry on loopback (Debian's
//! docker-registry, started by the test kit): pull with progress, list, inspect, run a
//! container from the image (its own overlay, gone with it), removal refused while in
//! use, events, a restart that keeps the images, save and import, and the bad inputs.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testkit::daemon::{wait_state, Daemon, Resp, Scratch};
use berth_testkit::image::ImageBuilder;
use berth_testkit::registry::{Mode, Registry};
use serde_json::{json, Value};

/// `POST /v1/images/pull` of `reference`: the answer and its progress lines.
fn pull(d: &Daemon, reference: &str) -> (Resp, Vec<Value>) {
    let body = json!({ "reference": reference }).to_string();
    let r = d.call("POST", "/v1/images/pull", Some(&body));
    let lines = r
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (r, lines)
}

/// Pull `reference` and check the stream ends with `done`; the image id.
fn pulled(d: &Daemon, reference: &str) -> String {
    let (r, lines) = pull(d, reference);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("application/x-ndjson"),
        "{r:?}"
    );
    assert_eq!(lines[0]["status"], "resolved", "{lines:?}");
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "done", "{lines:?}");
    last["id"].as_str().unwrap().to_owned()
}

/// Run `args` in a container of `image` until it stops; its record and output.
fn run(d: &Daemon, id: &str, image: &str, args: &[&str]) -> (Value, String) {
    run_body(d, id, json!({ "id": id, "image": image, "args": args }))
}

/// Create the container `body` describes and wait until it stops; record and output.
fn run_body(d: &Daemon, id: &str, body: Value) -> (Value, String) {
    let body = body.to_string();
    let r = d.call("POST", "/v1/containers", Some(&body));
    assert_eq!(r.status, 202, "{r:?}");
    let record = wait_state(d, id, "stopped");
    let logs = d.call("GET", &format!("/v1/containers/{id}/logs"), None);
    assert_eq!(logs.status, 200, "{logs:?}");
    (record, logs.text)
}

/// Host mounts of type overlay whose line names `dir` (mount point or options).
fn host_overlays(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - overlay ") && l.contains(&dir))
        .map(str::to_owned)
        .collect()
}

/// Whether something is mounted at `point`.
fn mounted(point: &Path) -> bool {
    berth_testkit::runc::mountinfo()
        .iter()
        .any(|m| m.mountpoint == point)
}

/// Where berthd keeps container `id`'s root filesystem: on its state directory (a tmpfs),
/// beside the container's writable layer.
fn rootfs_of(scratch: &Scratch, id: &str) -> std::path::PathBuf {
    scratch.state().join("rootfs").join(id).join("rootfs")
}

#[test]
fn an_image_pulled_from_a_registry_runs_in_its_own_overlay() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox()
        .cmd(&["echo", "the image's own command"])
        .env(&["GREETING=hello"])
        .push(&reg, "test/busybox:1");
    let name = format!("{}/test/busybox:1", reg.host());
    let scratch = Scratch::new("images-run");
    let d = Daemon::start(&scratch, &[], &[]);
    let mut events = d.open("GET", "/v1/events?type=image", &[], None);

    let id = pulled(&d, &name);
    assert!(id.starts_with("sha256:"), "{id}");
    let event: Value = serde_json::from_str(&events.next_line().unwrap()).unwrap();
    assert_eq!(
        (&event["item"], &event["action"], &event["name"]),
        (&json!("image"), &json!("pulled"), &json!(name))
    );

    let metrics = d.call("GET", "/metrics", None).text;
    for series in ["berth_image_pulls_total 1", "berth_images 1"] {
        assert!(
            metrics.lines().any(|l| l == series),
            "no {series:?} in\n{metrics}"
        );
    }
    let stored = metrics
        .lines()
        .find_map(|l| l.strip_prefix("berth_image_store_bytes "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(stored.is_some_and(|b| b > 100_000.0), "{stored:?}");
    assert!(
        metrics.contains("berth_image_pull_bytes_total"),
        "{metrics}"
    );

    let list = d.call("GET", "/v1/images", None);
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json[0]["name"], name, "{list:?}");
    assert_eq!(list.json[0]["id"], id, "{list:?}");
    // The name's slashes need no escaping; the id works as well.
    let one = d.call("GET", &format!("/v1/images/{name}"), None);
    assert_eq!(one.status, 200, "{one:?}");
    assert_eq!(
        one.json["image_config"]["config"]["Cmd"],
        json!(["echo", "the image's own command"])
    );
    assert_eq!(d.call("GET", &format!("/v1/images/{id}"), None).status, 200);

    // The image's command and environment, as docker runs them.
    let (record, out) = run(&d, "img-default", &name, &[]);
    assert_eq!(record["exit_code"], 0, "{record}");
    assert!(out.contains("the image's own command"), "{out:?}");
    let (_, out) = run(
        &d,
        "img-args",
        &name,
        &[
            "sh",
            "-c",
            "echo $GREETING from $(hostname); echo x > /written; cat /etc/hostname",
        ],
    );
    assert!(out.contains("hello from img-args"), "{out:?}");

    // Each container writes into its own overlay, which goes with the container. The
    // built-in runtime mounts it inside the container's mount namespace: the host's
    // mount table never holds it, the writes are in the container's upper dir.
    let rootfs = rootfs_of(&scratch, "img-args");
    let dir = rootfs.parent().unwrap();
    assert!(
        !mounted(&rootfs),
        "{} mounted on the host",
        rootfs.display()
    );
    assert_eq!(host_overlays(dir), Vec::<String>::new());
    assert!(dir.join("upper/written").exists());
    assert!(!rootfs_of(&scratch, "img-default")
        .parent()
        .unwrap()
        .join("upper/written")
        .exists());
    d.call("DELETE", &format!("/v1/images/{name}"), None)
        .expect_error(409, "image_in_use");
    for c in ["img-default", "img-args"] {
        let r = d.call("DELETE", &format!("/v1/containers/{c}"), None);
        assert_eq!(r.status, 204, "{r:?}");
    }
    assert!(!mounted(&rootfs), "{} still mounted", rootfs.display());
    assert!(!rootfs.parent().unwrap().exists());

    let r = d.call("DELETE", &format!("/v1/images/{name}"), None);
    assert_eq!(r.status, 200, "{r:?}");
    let event: Value = serde_json::from_str(&events.next_line().unwrap()).unwrap();
    assert_eq!(event["action"], "deleted", "{event}");
    d.call("GET", &format!("/v1/images/{name}"), None)
        .expect_error(404, "image_not_found");
    let pruned = d.call("POST", "/v1/images/prune", None);
    assert_eq!(pruned.status, 200, "{pruned:?}");
    assert!(
        pruned.json["bytes_freed"].as_u64().unwrap() > 0,
        "{pruned:?}"
    );
    let layers = scratch.images().join("snapshots/layers");
    let left: Vec<_> = std::fs::read_dir(&layers).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_external_runtime_gets_the_overlay_mounted_on_the_host() {
    // runc knows no overlay annotation: berth mounts the overlay for it.
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/busybox:ext");
    let name = format!("{}/test/busybox:ext", reg.host());
    let scratch = Scratch::new("images-ext");
    let d = Daemon::start(&scratch, &[], &[]);
    pulled(&d, &name);
    let body = json!({ "id": "img-runc", "image": name, "runtime": "/usr/sbin/runc",
                       "args": ["sh", "-c", "echo x > /written; echo ran"] });
    let (record, out) = run_body(&d, "img-runc", body);
    assert_eq!(record["exit_code"], 0, "{record} {out:?}");
    assert!(out.contains("ran"), "{out:?}");
    let rootfs = rootfs_of(&scratch, "img-runc");
    assert!(mounted(&rootfs), "{} not mounted", rootfs.display());
    assert!(rootfs.join("written").exists());
    let r = d.call("DELETE", "/v1/containers/img-runc", None);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(!mounted(&rootfs), "{} still mounted", rootfs.display());
    assert!(!rootfs.parent().unwrap().exists());
}

#[test]
fn a_container_pulls_its_image_first_unless_told_never() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/first-use:latest");
    let scratch = Scratch::new("images-first-use");
    let d = Daemon::start(&scratch, &[], &[]);
    // A short name as docker reads it: the registry's host, repository, `latest`.
    let name = format!("{}/test/first-use", reg.host());

    let never = json!({"id": "never", "image": name, "pull": "never"}).to_string();
    d.call("POST", "/v1/containers", Some(&never))
        .expect_error(404, "image_not_found");
    assert_eq!(d.call("GET", "/v1/containers/never", None).status, 404);

    let mut events = d.open("GET", "/v1/events?type=image", &[], None);
    let (record, out) = run(&d, "first-use", &name, &["echo", "pulled on first use"]);
    // The start worker's pull is announced as an API pull is.
    let event: Value = serde_json::from_str(&events.next_line().unwrap()).unwrap();
    assert_eq!(event["action"], "pulled", "{event}");
    assert_eq!(record["exit_code"], 0, "{record}");
    assert!(out.contains("pulled on first use"), "{out:?}");
    let list = d.call("GET", "/v1/images", None);
    assert_eq!(list.json[0]["name"], format!("{name}:latest"), "{list:?}");
    let r = d.call("DELETE", "/v1/containers/first-use", None);
    assert_eq!(r.status, 204, "{r:?}");
}

#[test]
fn images_survive_a_restart_and_an_archive_round_trip() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/keep:2");
    let name = format!("{}/test/keep:2", reg.host());
    let scratch = Scratch::new("images-keep");
    let mut d = Daemon::start(&scratch, &[], &[]);
    let id = pulled(&d, &name);
    assert_eq!(d.stop(), Some(0));

    let d = Daemon::start(&scratch, &[], &[]);
    let list = d.call("GET", "/v1/images", None);
    assert_eq!(list.json[0]["id"], id, "{list:?}");
    let saved = d.call(
        "POST",
        "/v1/images/save",
        Some(&json!({ "names": [name] }).to_string()),
    );
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(saved.header("content-type"), Some("application/x-tar"));
    assert!(saved.body.len() > 100_000, "{} bytes", saved.body.len());

    let r = d.call("DELETE", &format!("/v1/images/{name}"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(d.call("POST", "/v1/images/prune", None).status, 200);
    let imported = d.call_with(
        "POST",
        "/v1/images/import",
        &["Content-Type: application/x-tar"],
        Some(&saved.body),
    );
    assert_eq!(imported.status, 200, "{imported:?}");
    assert_eq!(imported.json["images"][0]["name"], name, "{imported:?}");
    assert_eq!(imported.json["images"][0]["id"], id, "{imported:?}");
    let (record, out) = run(&d, "imported", &name, &["echo", "from the archive"]);
    assert_eq!(record["exit_code"], 0, "{record}");
    assert!(out.contains("from the archive"), "{out:?}");
    let r = d.call("DELETE", "/v1/containers/imported", None);
    assert_eq!(r.status, 204, "{r:?}");

    // What is not an image archive is refused, and nothing is recorded.
    let junk = d.call_with("POST", "/v1/images/import", &[], Some(b"not a tar at all"));
    junk.expect_error(400, "invalid_archive");
    assert_eq!(
        d.call("GET", "/v1/images", None)
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_image_requests_are_clear_errors() {
    let reg = Registry::start(Mode::Basic);
    ImageBuilder::busybox().push(&reg, "test/locked:1");
    let scratch = Scratch::new("images-bad");
    let d = Daemon::start(&scratch, &[], &[]);
    let host = reg.host();

    pull(&d, "Not A Name")
        .0
        .expect_error(400, "invalid_reference");
    pull(&d, &format!("{host}/test/locked:1"))
        .0
        .expect_error(422, "registry_unauthorized");
    let wrong = json!({"reference": format!("{host}/test/locked:1"),
                       "username": berth_testkit::registry::USER, "password": "wrong"});
    d.call("POST", "/v1/images/pull", Some(&wrong.to_string()))
        .expect_error(422, "registry_unauthorized");
    let right = json!({"reference": format!("{host}/test/locked:1"),
                       "username": berth_testkit::registry::USER,
                       "password": berth_testkit::registry::PASSWORD});
    let r = d.call("POST", "/v1/images/pull", Some(&right.to_string()));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text.contains("\"done\""), "{r:?}");
    let half = json!({"reference": "busybox", "username": "u"}).to_string();
    d.call("POST", "/v1/images/pull", Some(&half))
        .expect_error(400, "invalid_body");

    // A registry nobody serves.
    let down = format!("127.0.0.1:{}/x/y:1", berth_testkit::registry::free_port());
    let began = Instant::now();
    pull(&d, &down).0.expect_error(502, "registry_unreachable");
    assert!(began.elapsed() < Duration::from_secs(60));

    d.call("GET", "/v1/images/nope", None)
        .expect_error(404, "image_not_found");
    d.call("DELETE", "/v1/images/nope", None)
        .expect_error(404, "image_not_found");
    let both = json!({"id": "both", "image": "busybox", "bundle": "/tmp"}).to_string();
    d.call("POST", "/v1/containers", Some(&both))
        .expect_error(422, "invalid_spec");
    let stray = json!({"id": "stray", "bundle": "/tmp", "args": ["x"]}).to_string();
    d.call("POST", "/v1/containers", Some(&stray))
        .expect_error(422, "invalid_spec");
    let bad = json!({"id": "bad", "image": "no/Upper/case"}).to_string();
    d.call("POST", "/v1/containers", Some(&bad))
        .expect_error(422, "invalid_spec");
    d.call("POST", "/v1/images/save", Some(r#"{"names":["nope"]}"#))
        .expect_error(404, "image_not_found");
    assert_eq!(
        d.call("GET", "/v1/images", None)
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_restart_releases_the_root_filesystem_of_a_container_it_no_longer_knows() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/orphan:1");
    let name = format!("{}/test/orphan:1", reg.host());
    let scratch = Scratch::new("images-orphan");
    let mut d = Daemon::start(&scratch, &[], &[]);
    let (kept, _) = run(&d, "kept", &name, &["true"]);
    assert_eq!(kept["exit_code"], 0, "{kept}");
    assert_eq!(d.stop(), Some(0));
    // What a daemon killed between preparing a container's root filesystem and
    // recording the container leaves: its directories, and no record.
    let orphan = rootfs_of(&scratch, "orphan");
    for sub in ["rootfs", "upper/etc", "work"] {
        std::fs::create_dir_all(orphan.parent().unwrap().join(sub)).unwrap();
    }

    let d = Daemon::start(&scratch, &[], &[]);
    // Answered once the engine is up (berthd listens before, requests wait).
    let list = d.call("GET", "/v1/containers", None);
    assert_eq!(list.json["containers"][0]["id"], "kept", "{list:?}");
    assert!(
        !orphan.parent().unwrap().exists(),
        "{} kept without a record",
        orphan.display()
    );
    assert!(rootfs_of(&scratch, "kept").parent().unwrap().exists());
    let r = d.call("DELETE", "/v1/containers/kept", None);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(!rootfs_of(&scratch, "kept").parent().unwrap().exists());
}
