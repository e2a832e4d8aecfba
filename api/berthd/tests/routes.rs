//! berthd's batch, paging, exec and log-following routes end to end (as root): a real
//! daemon on a scratch socket and state directory, real containers.

use berth_testkit::daemon as harness;

use std::time::{Duration, Instant};

use berth_testkit::rootfs;
use harness::{delete_all, inline_spec, send, wait_state, Conn, Daemon, Scratch};
use serde_json::{json, Value};

/// An inline create for `id` running `args`, in its own cgroup.
fn create(scratch: &Scratch, id: &str, args: &[&str]) -> Value {
    json!({"id": id, "spec": inline_spec(id, args), "rootfs": rootfs(&scratch.0)})
}

/// A stream at `path` (with extra `headers`) whose reads give up after `timeout`.
fn stream(d: &Daemon, path: &str, headers: &[&str], timeout: Duration) -> Conn {
    let conn = send(d.connect(timeout), "GET", path, headers, None);
    assert_eq!(conn.status, 200, "{conn:?}");
    conn
}

/// The first line of the stream at `path` that contains `needle` (bounded wait).
fn first_line_with(d: &Daemon, path: &str, needle: &str) -> String {
    let mut conn = stream(d, path, &[], Duration::from_secs(30));
    std::iter::from_fn(|| conn.next_line())
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle} at {path}"))
}

#[test]
fn a_batch_queues_the_good_items_and_names_the_bad_ones() {
    let scratch = Scratch::new("batch");
    let d = Daemon::start(&scratch, &[], &[]);
    let pid = std::process::id();
    let good: Vec<String> = (0..3).map(|i| format!("api-batch{i}-{pid}")).collect();
    let mut items: Vec<Value> = good
        .iter()
        .map(|id| create(&scratch, id, &["sleep", "1000"]))
        .collect();
    items.push(json!({"id": "bad/id", "bundle": "/nonexistent"}));
    items.push(create(&scratch, &good[0], &["sleep", "1000"]));
    items.push(json!({"id": format!("api-batchx-{pid}")}));
    let r = d.call(
        "POST",
        "/v1/containers/batch",
        Some(&json!({ "containers": items }).to_string()),
    );
    assert_eq!(r.status, 207, "{r:?}");
    assert_eq!(
        (r.json["accepted"].as_u64(), r.json["failed"].as_u64()),
        (Some(3), Some(3))
    );
    let results = r.json["results"].as_array().unwrap();
    for (i, id) in good.iter().enumerate() {
        assert_eq!(results[i]["id"], id.as_str(), "{r:?}");
        assert_eq!(results[i]["record"]["id"], id.as_str(), "{r:?}");
    }
    assert_eq!(results[3]["index"], 3);
    assert_eq!(results[3]["error"]["code"], "invalid_id", "{r:?}");
    assert_eq!(results[4]["error"]["code"], "conflict", "{r:?}");
    assert_eq!(results[5]["error"]["code"], "invalid_spec", "{r:?}");
    for id in &good {
        wait_state(&d, id, "running");
    }
    // Nothing was made for the refused ones.
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.json["containers"].as_array().unwrap().len(), 3, "{r:?}");

    // Whole-request errors create nothing.
    let r = d.call("POST", "/v1/containers/batch", Some(r#"{"containers":[]}"#));
    r.expect_error(422, "empty_batch");
    let many = vec![json!({"bundle": "/x"}); 1001];
    let r = d.call(
        "POST",
        "/v1/containers/batch",
        Some(&json!({ "containers": many }).to_string()),
    );
    r.expect_error(422, "batch_too_large");
    let r = d.call(
        "POST",
        "/v1/containers/batch",
        Some(r#"{"containers":[],"x":1}"#),
    );
    r.expect_error(400, "invalid_body");
    let r = d.call("POST", "/v1/containers/batch", Some(r#"{"containers":["#));
    r.expect_error(400, "malformed_json");
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.json["containers"].as_array().unwrap().len(), 3, "{r:?}");

    // Paging walks every container once, in the order they were queued.
    let mut seen = Vec::new();
    let mut path = "/v1/containers?limit=2".to_owned();
    loop {
        let r = d.call("GET", &path, None);
        assert_eq!(r.status, 200, "{r:?}");
        let page = r.json["containers"].as_array().unwrap();
        assert!(page.len() <= 2, "{r:?}");
        seen.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match r.json["next"].as_str() {
            Some(next) => path = format!("/v1/containers?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, good);
    d.call("GET", "/v1/containers?limit=0", None)
        .expect_error(400, "bad_query");
    d.call("GET", "/v1/containers?after=nope", None)
        .expect_error(400, "bad_query");
    delete_all(&d, &good);
}

#[test]
fn exec_runs_in_the_container_and_answers_with_its_exit_and_output() {
    let scratch = Scratch::new("exec");
    let d = Daemon::start(&scratch, &[], &[]);
    let pid = std::process::id();
    let id = format!("api-exec-{pid}");
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&create(&scratch, &id, &["sleep", "1000"]).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let rec = wait_state(&d, &id, "running");
    let path = format!("/v1/containers/{id}/exec");

    // It runs inside: its own pid namespace (the init is pid 1 there), env added.
    let body = json!({
        "args": ["sh", "-c", "read -r c < /proc/1/comm; echo pid1=$c; echo $GREETING >&2; exit 3"],
        "env": ["GREETING=hello"],
    });
    let r = d.call("POST", &path, Some(&body.to_string()));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["exit_code"], 3, "{r:?}");
    let out = r.json["output"].as_str().unwrap();
    assert!(out.contains("pid1=sleep\n"), "{out:?}");
    assert!(out.contains("hello"), "{out:?}");
    assert_eq!(r.json["truncated"], false);

    // A flood of output is capped (the newest kept), not stored whole.
    let flood = "i=0; while [ $i -lt 40000 ]; do echo line-$i-0123456789012345678901234567; i=$((i+1)); done";
    let r = d.call(
        "POST",
        &path,
        Some(&json!({"args": ["sh", "-c", flood]}).to_string()),
    );
    assert_eq!(
        (r.status, &r.json["exit_code"]),
        (200, &json!(0)),
        "{}",
        r.text.len()
    );
    assert_eq!(r.json["truncated"], true);
    let out = r.json["output"].as_str().unwrap();
    assert!(out.len() <= 1 << 20 && out.len() > 1000, "{}", out.len());
    assert!(out.ends_with("line-39999-0123456789012345678901234567\n"));
    assert_ne!(r.json["pid"], rec["pid"]);

    // Not waited: answered at once, the exit is an event.
    let r = d.call(
        "POST",
        &path,
        Some(&json!({"args": ["true"], "wait": false}).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let exec_pid = r.json["pid"].as_i64().unwrap();
    let line = first_line_with(
        &d,
        &format!("/v1/events?since=1&id={id}&type=exec"),
        &format!("\"pid\":{exec_pid},"),
    );
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "exec", "{event}");
    assert_eq!(event["exit_code"], 0, "{event}");
    assert_eq!(event["state"], "running", "{event}");

    // A process that outlives its wait: 504 naming it.
    let r = d.call(
        "POST",
        &path,
        Some(r#"{"args":["sleep","30"],"timeout":1}"#),
    );
    r.expect_error(504, "exec_timeout");
    let r = d.call("POST", &path, Some(r#"{"args":[]}"#));
    r.expect_error(422, "invalid_exec");
    let r = d.call("POST", &path, Some(r#"{"args":["true"],"cwd":"relative"}"#));
    r.expect_error(422, "invalid_exec");
    let r = d.call("POST", &path, Some(r#"{"args":["/nonexistent"]}"#));
    assert!(r.status == 422 || r.json["exit_code"] != 0, "{r:?}");
    let r = d.call(
        "POST",
        "/v1/containers/nope/exec",
        Some(r#"{"args":["true"]}"#),
    );
    r.expect_error(404, "not_found");

    let r = d.call(
        "POST",
        &format!("/v1/containers/{id}/kill"),
        Some(r#"{"signal":"KILL"}"#),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &id, "stopped");
    let r = d.call("POST", &path, Some(r#"{"args":["true"]}"#));
    r.expect_error(409, "conflict");
    assert!(exec_pid > 0);
    delete_all(&d, &[id]);
}

/// Poll the result of exec `name` of `id` until its process has ended (bounded).
fn finished_exec(d: &Daemon, id: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = d.call(
            "GET",
            &format!("/v1/containers/{id}/exec?exec_id={name}"),
            None,
        );
        assert_eq!(r.status, 200, "{r:?}");
        if r.json["running"] == false {
            return r.json;
        }
        assert!(Instant::now() < deadline, "exec {name} still runs: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_exec_on_a_container_that_does_not_exist_touches_no_file() {
    // `..` as the id once pointed the exec's result sweep at the state directory itself.
    let scratch = Scratch::new("execdotdot");
    let d = Daemon::start(&scratch, &[], &[]);
    // As after a first container: `shims/..` then resolves to the state directory.
    std::fs::create_dir_all(scratch.state().join("shims")).unwrap();
    let planted: Vec<_> = ["exec-planted.out", "exec-planted.exit"]
        .iter()
        .map(|name| scratch.state().join(name))
        .collect();
    for file in &planted {
        std::fs::write(file, "not the API's").unwrap();
        let touched = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(file)
            .status()
            .unwrap();
        assert!(touched.success());
    }
    d.call(
        "POST",
        "/v1/containers/../exec",
        Some(r#"{"args":["true"]}"#),
    )
    .expect_error(404, "not_found");
    for file in &planted {
        assert!(file.exists(), "{} was removed", file.display());
    }
}

#[test]
fn concurrent_execs_of_one_name_start_one_and_refuse_the_rest_with_409() {
    let scratch = Scratch::new("execrace");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-execrace-{}", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&create(&scratch, &id, &["sleep", "1000"]).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &id, "running");
    let path = format!("/v1/containers/{id}/exec");
    let body = json!({"args": ["sleep", "1"], "wait": false, "exec_id": "same"}).to_string();
    let answers: Vec<_> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|_| s.spawn(|| d.call("POST", &path, Some(&body))))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let started = answers.iter().filter(|r| r.status == 202).count();
    let refused = answers.iter().filter(|r| r.status == 409).count();
    assert_eq!((started, refused), (1, 7), "{answers:?}");
    d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
}

#[test]
fn an_execs_result_is_fetched_by_name_also_after_a_daemon_restart() {
    let scratch = Scratch::new("execres");
    let mut d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-execres-{}", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&create(&scratch, &id, &["sleep", "1000"]).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &id, "running");
    let path = format!("/v1/containers/{id}/exec");

    // Not waited for, and the daemon restarts while it runs: its result is still there.
    let late = json!({"args": ["sh", "-c", "sleep 2; echo late; exit 4"], "wait": false,
                      "exec_id": "late"});
    let r = d.call("POST", &path, Some(&late.to_string()));
    assert_eq!(
        (r.status, &r.json["exec_id"]),
        (202, &json!("late")),
        "{r:?}"
    );
    // A name in use is refused; a name that is no name too.
    d.call("POST", &path, Some(&late.to_string()))
        .expect_error(409, "conflict");
    d.call("POST", &path, Some(r#"{"args":["true"],"exec_id":"../x"}"#))
        .expect_error(422, "invalid_exec");
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&scratch, &[], &[]);
    let result = finished_exec(&d, &id, "late");
    assert_eq!(
        (&result["exit_code"], &result["output"]),
        (&json!(4), &json!("late\n")),
        "{result}"
    );
    // Answered once, then gone with its files.
    d.call("GET", &format!("{path}?exec_id=late"), None)
        .expect_error(404, "not_found");
    let shim_dir = scratch.state().join("shims").join(&id);
    let left: Vec<_> = std::fs::read_dir(&shim_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exec-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A waited exec whose wait runs out (the answer lost) is fetched later too.
    let r = d.call(
        "POST",
        &path,
        Some(r#"{"args":["sh","-c","sleep 2; exit 6"],"timeout":1}"#),
    );
    r.expect_error(504, "exec_timeout");
    let message = r.json["error"]["message"].as_str().unwrap();
    let name = message.rsplit("exec_id=").next().unwrap();
    assert_eq!(finished_exec(&d, &id, name)["exit_code"], 6);
    d.call("GET", &format!("{path}?exec_id=nope"), None)
        .expect_error(404, "not_found");
    d.call("GET", &path, None).expect_error(400, "bad_query");
    delete_all(&d, &[id]);
}

#[test]
fn following_logs_streams_until_the_container_stops() {
    let scratch = Scratch::new("follow");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-follow-{}", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(
            &create(
                &scratch,
                &id,
                &[
                    "sh",
                    "-c",
                    "echo first; sleep 1; echo second; sleep 1; echo third",
                ],
            )
            .to_string(),
        ),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&d, &id, "running");
    let began = Instant::now();
    // Ends by itself once the container has stopped and its output is drained.
    let r = d.call(
        "GET",
        &format!("/v1/containers/{id}/logs?follow=true"),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let (a, b, c) = (
        r.text.find("first"),
        r.text.find("second"),
        r.text.find("third"),
    );
    assert!(a.is_some() && a < b && b < c, "{:?}", r.text);
    assert!(began.elapsed() < Duration::from_secs(30));
    // Following a stopped container gives what is kept, with tail, and ends.
    let r = d.call(
        "GET",
        &format!("/v1/containers/{id}/logs?follow=true&tail=1"),
        None,
    );
    assert!(
        r.text.contains("third") && !r.text.contains("second"),
        "{:?}",
        r.text
    );
    d.call(
        "GET",
        &format!("/v1/containers/{id}/logs?follow=maybe"),
        None,
    )
    .expect_error(400, "bad_query");
    d.call("GET", "/v1/containers/nope/logs?follow=true", None)
        .expect_error(404, "not_found");
    delete_all(&d, &[id]);
}

/// Read `path` as a stream of server-sent events (with extra `headers`): the lines
/// that come until `lines` have, or until none came for two seconds.
fn stream_lines(d: &Daemon, path: &str, headers: &[&str], lines: usize) -> Vec<String> {
    let mut conn = stream(d, path, headers, Duration::from_secs(2));
    let ctype = conn.header("content-type").unwrap_or_default();
    assert!(ctype.starts_with("text/event-stream"), "{conn:?}");
    std::iter::from_fn(|| conn.next_line())
        .take(lines)
        .collect()
}

#[test]
fn events_also_stream_as_server_sent_events() {
    let scratch = Scratch::new("sse");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = format!("api-sse-{}", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&create(&scratch, &id, &["sleep", "1000"]).to_string()),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // queued, creating, created, running: events 1 to 4, each `id:`, `event:`, `data:`.
    let got = stream_lines(
        &d,
        &format!("/v1/events?since=1&id={id}"),
        &["Accept: text/event-stream"],
        40,
    );
    let text = got.join("\n");
    let ids: Vec<&str> = got.iter().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids, ["1", "2", "3", "4"], "{text}");
    let data: Vec<Value> = got
        .iter()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let states: Vec<&str> = data.iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["queued", "creating", "created", "running"]);
    assert!(got.iter().any(|l| l == "event: state"), "{text}");
    // Resuming after event 2 with Last-Event-ID (as EventSource does) and ?format=sse.
    let got = stream_lines(
        &d,
        &format!("/v1/events?format=sse&id={id}"),
        &["Last-Event-ID: 2"],
        30,
    );
    let ids: Vec<&str> = got.iter().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids, ["3", "4"], "{got:?}");
    d.call("GET", "/v1/events?format=xml", None)
        .expect_error(400, "bad_query");
    for bad in ["x", "18446744073709551615"] {
        d.call_with(
            "GET",
            "/v1/events?format=sse",
            &[&format!("Last-Event-ID: {bad}")],
            None,
        )
        .expect_error(400, "bad_header");
    }
    delete_all(&d, &[id]);
}

#[test]
fn waiting_clients_do_not_starve_the_rest_of_the_api() {
    // More idle event followers than tokio has blocking threads
    // (512): if each held a thread, the create below could never be served.
    let scratch = Scratch::new("idle");
    let d = Daemon::start(&scratch, &[], &[]);
    let followers: Vec<Conn> = (0..600)
        .map(|_| stream(&d, "/v1/events", &[], Duration::from_secs(5)))
        .collect();
    let id = format!("api-idle-{}", std::process::id());
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&create(&scratch, &id, &["sleep", "1000"]).to_string()),
    );
    assert_eq!(
        (r.status, &r.json["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    drop(followers);
    delete_all(&d, &[id]);
}

#[test]
fn an_id_that_reads_as_an_option_is_refused() {
    // Issue 12.6: `-rf` reached an external runtime's command line as a flag.
    let scratch = Scratch::new("dashid");
    let d = Daemon::start(&scratch, &[], &[]);
    for id in ["-rf", "--help"] {
        let body = json!({"id": id, "spec": inline_spec(id, &["true"]), "rootfs": rootfs(&scratch.0),
                          "runtime": "/usr/sbin/runc"});
        let r = d.call("POST", "/v1/containers", Some(&body.to_string()));
        r.expect_error(422, "invalid_id");
    }
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.json["containers"].as_array().unwrap().len(), 0, "{r:?}");
}
