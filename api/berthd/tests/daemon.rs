//! `berthd` end to end (as root): the built daemon on a temporary socket and state
//! directory, real containers from bundles made of the host's binaries, HTTP/1.1 over
//! the unix socket.

use berth_testkit::daemon as harness;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testkit::{bundle, rootfs};
use harness::{
    absent_or_empty, assert_cgroup_gone, delete_all, inline_spec, promtool_check, wait_state,
    write_request, Conn, Daemon, Resp, Scratch,
};
use serde_json::{json, Value};

#[test]
fn lifecycle_over_http() {
    let scratch = Scratch::new("life");
    let d = Daemon::start(&scratch, &[], &[]);
    let pid = std::process::id();
    let id1 = format!("api-a-{pid}");
    let b1 = bundle(&scratch.0, &id1, &["sleep", "1000"]);

    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&json!({"id": id1, "bundle": b1}).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["id"], id1.as_str());
    assert!(
        ["queued", "creating", "created", "running"].contains(&r.json["state"].as_str().unwrap()),
        "{r:?}"
    );
    let rec = wait_state(&d, &id1, "running");
    assert!(rec["pid"].as_i64().unwrap() > 0, "{rec:?}");

    // The same id again: 409, and the first one is untouched.
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&json!({"id": id1, "bundle": b1}).to_string()),
    );
    r.expect_error(409, "conflict");

    // No id: one is generated; ?wait=running answers once it runs.
    let name2 = format!("api-b-{pid}");
    let b2 = bundle(&scratch.0, &name2, &["sleep", "1000"]);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&json!({"bundle": b2}).to_string()),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["state"], "running", "{r:?}");
    let id2 = r.json["id"].as_str().unwrap().to_owned();
    assert!(!id2.is_empty() && id2.len() <= 64, "{id2}");

    let r = d.call("GET", "/v1/containers?state=running", None);
    assert_eq!(r.status, 200, "{r:?}");
    let ids: Vec<&str> = r.json["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id1.as_str()) && ids.contains(&id2.as_str()),
        "{ids:?}"
    );
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["containers"]["running"], 2, "{r:?}");
    assert_eq!(r.json["workers"], 10, "{r:?}");

    let r = d.call("GET", &format!("/v1/containers/{id2}/stats"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.json["pids"].is_object() && r.json["memory"].is_object(),
        "{r:?}"
    );
    // Pause and resume (freezer), start of a container created without starting.
    let r = d.call("POST", &format!("/v1/containers/{id2}/pause"), None);
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("paused")),
        "{r:?}"
    );
    d.call("POST", &format!("/v1/containers/{id2}/pause"), None)
        .expect_error(409, "conflict");
    let r = d.call("POST", &format!("/v1/containers/{id2}/resume"), None);
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    d.call("POST", &format!("/v1/containers/{id2}/start"), None)
        .expect_error(409, "conflict");
    let id3 = format!("api-c-{pid}");
    let b3 = bundle(&scratch.0, &id3, &["sleep", "1000"]);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&json!({"id": id3, "bundle": b3, "start": false}).to_string()),
    );
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("created")),
        "{r:?}"
    );
    let r = d.call("POST", &format!("/v1/containers/{id3}/start"), None);
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &id3, "running");
    let r = d.call("DELETE", &format!("/v1/containers/{id3}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_cgroup_gone(&id3);

    // Kill: the init dies of SIGKILL, the record says stopped with 137.
    let r = d.call(
        "POST",
        &format!("/v1/containers/{id1}/kill"),
        Some(r#"{"signal": "KILL"}"#),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let rec = wait_state(&d, &id1, "stopped");
    assert_eq!(rec["exit_code"], 137, "{rec:?}");
    let r = d.call(
        "POST",
        &format!("/v1/containers/{id1}/kill"),
        Some(r#"{"signal": 9}"#),
    );
    r.expect_error(409, "conflict");

    d.call("GET", &format!("/v1/containers/{id1}/stats"), None)
        .expect_error(409, "conflict");
    let r = d.call("DELETE", &format!("/v1/containers/{id1}"), None);
    assert_eq!(r.status, 204, "{r:?}");
    d.call("GET", &format!("/v1/containers/{id1}"), None)
        .expect_error(404, "not_found");
    assert_cgroup_gone(&id1);

    // A running container needs force.
    d.call("DELETE", &format!("/v1/containers/{id2}"), None)
        .expect_error(409, "conflict");
    let r = d.call("DELETE", &format!("/v1/containers/{id2}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    d.call("GET", &format!("/v1/containers/{id2}"), None)
        .expect_error(404, "not_found");
    assert_cgroup_gone(&name2);

    // Prometheus text: the engine's metrics and the API's own.
    let r = d.call("GET", "/metrics", None);
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.text;
    for want in [
        "berth_starts_total 3",
        "berth_start_latency_seconds_bucket{le=\"0.001\"}",
        "berth_http_requests_total{route=\"/v1/containers\",status=\"202\"}",
        "berth_http_request_duration_seconds_bucket{route=\"/v1/containers/{id}\"",
        "# HELP berth_containers",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    // Debian's prometheus package has promtool; where it is installed, it must agree.
    promtool_check(&text);

    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.json["containers"], json!([]), "{r:?}");
    let left: Vec<_> = fs::read_dir(scratch.state().join("runtime"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
}

#[test]
fn bad_input_gets_the_right_status_and_creates_nothing() {
    let scratch = Scratch::new("bad");
    let d = Daemon::start(
        &scratch,
        &["--body-limit", "1024", "--body-timeout", "1"],
        &[],
    );
    let b = bundle(
        &scratch.0,
        &format!("api-bad-{}", std::process::id()),
        &["true"],
    );
    let post = |body: &str| d.call("POST", "/v1/containers", Some(body));

    post(r#"{"id": "#).expect_error(400, "malformed_json");
    post("not json").expect_error(400, "malformed_json");
    post(&json!({"bundle": b, "nope": 1}).to_string()).expect_error(400, "invalid_body");
    post(r#"{"bundle": 5}"#).expect_error(400, "invalid_body");
    post(r#"[1, 2]"#).expect_error(400, "invalid_body");
    post(&json!({"id": "../escape", "bundle": b}).to_string()).expect_error(422, "invalid_id");
    post(&json!({"id": "a/b", "bundle": b}).to_string()).expect_error(422, "invalid_id");
    post(&json!({"id": "a..b", "bundle": b}).to_string()).expect_error(422, "invalid_id");
    post(&json!({"id": "a+b", "bundle": b}).to_string()).expect_error(422, "invalid_id");
    post(&json!({"id": "", "bundle": b}).to_string()).expect_error(422, "invalid_id");
    post(&json!({"id": "x".repeat(65), "bundle": b}).to_string()).expect_error(422, "invalid_id");
    post(&json!({"id": "ok-id"}).to_string()).expect_error(422, "invalid_spec");
    post(&json!({"id": "ok-id", "bundle": "/no/such/bundle"}).to_string())
        .expect_error(422, "invalid_spec");
    post(&json!({"id": "ok-id", "bundle": "relative"}).to_string())
        .expect_error(422, "invalid_spec");
    d.call(
        "POST",
        "/v1/containers?wait=forever",
        Some(&json!({"bundle": b}).to_string()),
    )
    .expect_error(400, "bad_query");

    // Bodies over the limit: declared, and chunked without a length.
    let big = format!(r#"{{"bundle": "{}"}}"#, "x".repeat(4096));
    post(&big).expect_error(413, "body_too_large");
    d.call_with(
        "POST",
        "/v1/containers",
        &[
            "Transfer-Encoding: chunked",
            "Content-Type: application/json",
        ],
        Some(big.as_bytes()),
    )
    .expect_error(413, "body_too_large");

    // A client that stalls in its body gets 408 and costs only its connection.
    let mut slow = d.connect(Duration::from_secs(20));
    slow.write_all(b"POST /v1/containers HTTP/1.1\r\nHost: berth\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let began = Instant::now();
    let r = d.call("GET", "/healthz", None);
    assert_eq!(r.status, 200, "others are served meanwhile");
    Conn::new(slow, "a stalled POST".to_owned())
        .finish()
        .expect_error(408, "body_timeout");
    assert!(began.elapsed() < Duration::from_secs(10));

    for (method, path) in [
        ("GET", "/v1/containers/nope"),
        ("DELETE", "/v1/containers/nope"),
    ] {
        d.call(method, path, None).expect_error(404, "not_found");
    }
    d.call(
        "POST",
        "/v1/containers/nope/kill",
        Some(r#"{"signal": "KILL"}"#),
    )
    .expect_error(404, "not_found");
    d.call(
        "POST",
        "/v1/containers/nope/kill",
        Some(r#"{"signal": "NOPE"}"#),
    )
    .expect_error(422, "invalid_signal");
    d.call("POST", "/v1/containers/nope/kill", Some(r#"{"signal": 0}"#))
        .expect_error(422, "invalid_signal");
    d.call("GET", "/v1/containers?state=bogus", None)
        .expect_error(400, "bad_query");
    d.call("DELETE", "/v1/containers/nope?force=maybe", None)
        .expect_error(400, "bad_query");
    d.call("GET", "/v1/nothing", None)
        .expect_error(404, "no_route");
    d.call("PATCH", "/v1/containers", None)
        .expect_error(405, "method_not_allowed");

    // System endpoints.
    let r = d.call("GET", "/healthz", None);
    assert_eq!((r.status, &r.json["status"]), (200, &json!("ok")), "{r:?}");
    let r = d.call("PUT", "/v1/system/workers", Some(r#"{"workers": 3}"#));
    assert_eq!((r.status, &r.json["workers"]), (200, &json!(3)), "{r:?}");
    d.call("PUT", "/v1/system/workers", Some(r#"{"workers": 0}"#))
        .expect_error(422, "invalid_workers");
    // A number is the right type whatever its size: out of range is 422.
    d.call("PUT", "/v1/system/workers", Some(r#"{"workers": -1}"#))
        .expect_error(422, "invalid_workers");
    d.call("PUT", "/v1/system/workers", Some(r#"{"workers": "3"}"#))
        .expect_error(400, "invalid_body");
    d.call(
        "PUT",
        "/v1/system/workers",
        Some(r#"{"workers": 2, "x": 1}"#),
    )
    .expect_error(400, "invalid_body");
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.json["workers"], 3, "{r:?}");
    assert_eq!(r.json["runtime"], "builtin", "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));

    // Nothing was made.
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.json["containers"], json!([]), "{r:?}");
    assert!(absent_or_empty(&scratch.state().join("shims")));
}

#[test]
fn sigterm_exits_0_and_a_restart_finds_the_running_container() {
    let scratch = Scratch::new("restart");
    let id = format!("api-r-{}", std::process::id());
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let mut d = Daemon::start(&scratch, &[], &[]);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&json!({"id": id, "bundle": b}).to_string()),
    );
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    let init = r.json["pid"].as_i64().unwrap();
    assert!(
        is_mount_point(&scratch.state()),
        "the state directory is a tmpfs of its own"
    );
    assert_eq!(d.stop(), Some(0), "berthd exits 0 on SIGTERM");
    assert!(
        is_mount_point(&scratch.state()),
        "with a container left, its state stays mounted for the next daemon"
    );
    assert!(
        Path::new(&format!("/proc/{init}")).exists(),
        "the container died with the daemon"
    );
    assert!(!d.socket.exists(), "the socket is removed on exit");
    drop(d);

    let d = Daemon::start(&scratch, &[], &[]);
    let r = d.call("GET", &format!("/v1/containers/{id}"), None);
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    assert_eq!(r.json["pid"], init, "{r:?}");
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_cgroup_gone(&id);
    assert!(!Path::new(&format!("/proc/{init}")).exists());
    let mut d = d;
    assert_eq!(d.stop(), Some(0));
    assert!(
        !is_mount_point(&scratch.state()),
        "with no container left, berthd unmounts its tmpfs"
    );
}

/// Whether `dir` is a mount point (in this mount namespace).
fn is_mount_point(dir: &Path) -> bool {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|m| Path::new(m) == dir)
}

#[test]
fn events_stream_one_containers_life_in_order() {
    let scratch = Scratch::new("events");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-ev-{}", std::process::id());
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let since = d.call("GET", "/v1/system", None).json["next_event_seq"]
        .as_u64()
        .unwrap();

    // The request goes now; its answer (head and lines) is read beside the test.
    let mut s = d.connect(Duration::from_secs(60));
    let events = format!("/v1/events?id={id}&type=state&since={since}");
    write_request(&mut s, "GET", &events, &[], None);
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        let mut conn = Conn::new(s, events);
        assert_eq!(conn.status, 200, "{conn:?}");
        while let Some(line) = conn.next_line() {
            if line.trim_start().starts_with('{') {
                let v: Value = serde_json::from_str(line.trim()).unwrap();
                let last = v["state"] == "deleted";
                if tx.send(v).is_err() || last {
                    return;
                }
            }
        }
    });

    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&json!({"id": id, "bundle": b}).to_string()),
    );
    assert_eq!(r.status, 200, "{r:?}");
    d.call(
        "POST",
        &format!("/v1/containers/{id}/kill"),
        Some(r#"{"signal": "KILL"}"#),
    );
    wait_state(&d, &id, "stopped");
    assert_eq!(
        d.call("DELETE", &format!("/v1/containers/{id}"), None)
            .status,
        204
    );
    let mut seen = Vec::new();
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(30)) {
        assert_eq!(v["item"], "event", "{v}");
        assert_eq!(v["id"], id.as_str(), "{v}");
        seen.push(v);
        if seen.last().unwrap()["state"] == "deleted" {
            break;
        }
    }
    let states: Vec<&str> = seen.iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!(
        states,
        ["queued", "creating", "created", "running", "stopped", "deleted"],
        "{seen:?}"
    );
    let seqs: Vec<u64> = seen.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs[0] >= since);
    assert_eq!(seen[4]["exit_code"], 137);
    drop(d);
    let _ = reader.join();
    assert_cgroup_gone(&id);
}

/// POST `n` containers at once from `n` threads; returns the responses with their ids.
fn burst(d: &Daemon, scratch: &Scratch, tag: &str, n: usize) -> Vec<(String, Resp)> {
    let jobs: Vec<(String, PathBuf)> = (0..n)
        .map(|i| {
            let id = format!("api-{tag}{i}-{}", std::process::id());
            let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
            (id, b)
        })
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(id, b)| {
                s.spawn(move || {
                    let body = json!({"id": id, "bundle": b}).to_string();
                    (id.clone(), d.call("POST", "/v1/containers", Some(&body)))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_burst_of_500_concurrent_posts_all_run() {
    let scratch = Scratch::new("burst");
    let d = Daemon::start(&scratch, &[], &[]);
    let answers = burst(&d, &scratch, "b", 500);
    for (id, r) in &answers {
        assert_eq!(r.status, 202, "{id}: {r:?}");
    }
    let ids: Vec<String> = answers.into_iter().map(|(id, _)| id).collect();
    for id in &ids {
        wait_state(&d, id, "running");
    }
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.json["containers"]["running"], 500, "{r:?}");
    delete_all(&d, &ids);
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_records_nothing() {
    let scratch = Scratch::new("full");
    let d = Daemon::start(&scratch, &["--workers", "1", "--max-queued", "2"], &[]);
    let answers = burst(&d, &scratch, "f", 24);
    let mut accepted = Vec::new();
    for (id, r) in &answers {
        match r.status {
            202 => accepted.push(id.clone()),
            429 => {
                r.expect_error(429, "queue_full");
                assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
                d.call("GET", &format!("/v1/containers/{id}"), None)
                    .expect_error(404, "not_found");
            }
            _ => panic!("{id}: {r:?}"),
        }
    }
    eprintln!("{} of 24 accepted with a queue of 2", accepted.len());
    assert!(!accepted.is_empty());
    for id in &accepted {
        wait_state(&d, id, "running");
    }
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(
        r.json["containers"].as_array().unwrap().len(),
        accepted.len(),
        "{r:?}"
    );
    delete_all(&d, &accepted);
}

#[test]
fn an_inline_spec_with_a_rootfs_runs() {
    let scratch = Scratch::new("inline");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-in-{}", std::process::id());
    let spec = inline_spec(&id, &["sleep", "1000"]);
    let root = rootfs(&scratch.0);

    let post = |body: Value| {
        d.call(
            "POST",
            "/v1/containers?wait=running",
            Some(&body.to_string()),
        )
    };
    post(json!({"id": id, "spec": spec})).expect_error(422, "invalid_spec");
    post(json!({"id": id, "spec": spec, "rootfs": root, "bundle": root}))
        .expect_error(422, "invalid_spec");
    post(json!({"id": id, "spec": 7, "rootfs": root})).expect_error(400, "invalid_body");
    post(json!({"id": id, "spec": spec, "rootfs": "/no/such/rootfs"}))
        .expect_error(422, "invalid_spec");

    let r = post(json!({"id": id, "spec": spec, "rootfs": root}));
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_cgroup_gone(&id);
}

#[test]
fn logs_hold_the_containers_output() {
    let scratch = Scratch::new("logs");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-log-{}", std::process::id());
    let b = bundle(
        &scratch.0,
        &id,
        &["sh", "-c", "echo one; echo two >&2; echo three; sleep 1000"],
    );
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&json!({"id": id, "bundle": b}).to_string()),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // stdout and stderr are two pipes: their lines may interleave either way.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let r = d.call("GET", &format!("/v1/containers/{id}/logs"), None);
        let mut lines: Vec<&str> = r.text.lines().collect();
        lines.sort_unstable();
        if r.status == 200 && lines == ["one", "three", "two"] {
            break r.text;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = d.call("GET", &format!("/v1/containers/{id}/logs?tail=1"), None);
    let last = format!("{}\n", body.lines().last().unwrap());
    assert!(r.status == 200 && r.text == last, "{r:?}");
    d.call("GET", &format!("/v1/containers/{id}/logs?tail=x"), None)
        .expect_error(400, "bad_query");
    d.call("GET", "/v1/containers/nope/logs", None)
        .expect_error(404, "not_found");
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_cgroup_gone(&id);
}
