//! `berthd` end to end (as root): the built daemon on a temporary socket and state
//! directory, real containers from bundles made of the host's binaries, HTTP/1.1 over
//! the unix socket.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "../../engine/tests/support/mod.rs"]
mod support;
use support::{bundle, rootfs, shim_binary};

/// A scratch directory; on drop (also when a test fails) every shim under its state
/// directory is killed, every container removed, and the directory deleted.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("berth-api-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn state(&self) -> PathBuf {
        self.0.join("state")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for entry in fs::read_dir(self.state().join("shims"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(pid) = fs::read_to_string(entry.path().join("shim.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        if let Ok(list) = berth_api::engine::runtime::container::list(&self.state().join("runtime"))
        {
            for c in list {
                let _ = c.delete(true);
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running `berthd`; stopped (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
}

impl Daemon {
    fn start(scratch: &Scratch, extra: &[&str]) -> Self {
        let socket = scratch.0.join("berth.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(scratch.state())
            .arg("--shim")
            .arg(shim_binary())
            .args(extra)
            .spawn()
            .unwrap();
        let daemon = Daemon {
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&daemon.socket).is_err() {
            assert!(Instant::now() < deadline, "berthd did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    /// SIGTERM; returns the exit code.
    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.raw(method, path, &[], body.map(str::as_bytes))
    }

    fn raw(&self, method: &str, path: &str, headers: &[&str], body: Option<&[u8]>) -> Resp {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
        let chunked = headers.iter().any(|h| h.starts_with("Transfer-Encoding"));
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if let (Some(b), false) = (body, chunked) {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if let Some(b) = body {
            if chunked {
                bytes.extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
                bytes.extend_from_slice(b);
                bytes.extend_from_slice(b"\r\n0\r\n\r\n");
            } else {
                bytes.extend_from_slice(b);
            }
        }
        // The server may answer (413) before reading all of a large body.
        let _ = s.write_all(&bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Resp::parse(&out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Resp {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?}: {e}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Assert the status and the error shape with `code`.
    fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"]["code"], code, "{self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
    }
}

/// Poll `GET /v1/containers/{id}` until its state is `want` (bounded).
fn wait_state(d: &Daemon, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = d.call("GET", &format!("/v1/containers/{id}"), None);
        assert_eq!(r.status, 200, "{r:?}");
        if r.body["state"] == want {
            return r.body;
        }
        assert!(Instant::now() < deadline, "{id} never {want}: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the container's cgroup is gone (bounded).
fn assert_cgroup_gone(name: &str) {
    let cg = Path::new("/sys/fs/cgroup/pids").join(name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cg.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!cg.exists(), "{} left behind", cg.display());
}

#[test]
fn lifecycle_over_http() {
    let scratch = Scratch::new("life");
    let d = Daemon::start(&scratch, &[]);
    let pid = std::process::id();
    let id1 = format!("api-a-{pid}");
    let b1 = bundle(&scratch.0, &id1, &["sleep", "1000"]);

    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&json!({"id": id1, "bundle": b1}).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["id"], id1.as_str());
    assert!(
        ["queued", "creating", "created", "running"].contains(&r.body["state"].as_str().unwrap()),
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
    assert_eq!(r.body["state"], "running", "{r:?}");
    let id2 = r.body["id"].as_str().unwrap().to_owned();
    assert!(!id2.is_empty() && id2.len() <= 64, "{id2}");

    let r = d.call("GET", "/v1/containers?state=running", None);
    assert_eq!(r.status, 200, "{r:?}");
    let ids: Vec<&str> = r.body["containers"]
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
    assert_eq!(r.body["containers"]["running"], 2, "{r:?}");
    assert_eq!(r.body["workers"], 10, "{r:?}");

    let r = d.call("GET", &format!("/v1/containers/{id2}/stats"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body["pids"].is_object() && r.body["memory"].is_object(),
        "{r:?}"
    );
    // Pause and resume (freezer), start of a container created without starting.
    let r = d.call("POST", &format!("/v1/containers/{id2}/pause"), None);
    assert_eq!(
        (r.status, &r.body["state"]),
        (200, &json!("paused")),
        "{r:?}"
    );
    d.call("POST", &format!("/v1/containers/{id2}/pause"), None)
        .expect_error(409, "conflict");
    let r = d.call("POST", &format!("/v1/containers/{id2}/resume"), None);
    assert_eq!(
        (r.status, &r.body["state"]),
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
        (r.status, &r.body["state"]),
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
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
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
    let exposition = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    if let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(exposition.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("promtool not installed: /metrics not linted");
    }

    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.body["containers"], json!([]), "{r:?}");
    let left: Vec<_> = fs::read_dir(scratch.state().join("runtime"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
}

#[test]
fn bad_input_gets_the_right_status_and_creates_nothing() {
    let scratch = Scratch::new("bad");
    let d = Daemon::start(&scratch, &["--body-limit", "1024", "--body-timeout", "1"]);
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
    d.raw(
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
    let mut slow = UnixStream::connect(&d.socket).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(b"POST /v1/containers HTTP/1.1\r\nHost: berth\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let began = Instant::now();
    let r = d.call("GET", "/healthz", None);
    assert_eq!(r.status, 200, "others are served meanwhile");
    let mut out = Vec::new();
    let _ = slow.read_to_end(&mut out);
    Resp::parse(&out).expect_error(408, "body_timeout");
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
    assert_eq!((r.status, &r.body["status"]), (200, &json!("ok")), "{r:?}");
    let r = d.call("PUT", "/v1/system/workers", Some(r#"{"workers": 3}"#));
    assert_eq!((r.status, &r.body["workers"]), (200, &json!(3)), "{r:?}");
    d.call("PUT", "/v1/system/workers", Some(r#"{"workers": 0}"#))
        .expect_error(422, "invalid_workers");
    d.call("PUT", "/v1/system/workers", Some(r#"{"workers": -1}"#))
        .expect_error(400, "invalid_body");
    d.call(
        "PUT",
        "/v1/system/workers",
        Some(r#"{"workers": 2, "x": 1}"#),
    )
    .expect_error(400, "invalid_body");
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.body["workers"], 3, "{r:?}");
    assert_eq!(r.body["runtime"], "builtin", "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));

    // Nothing was made.
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.body["containers"], json!([]), "{r:?}");
    assert!(
        !scratch.state().join("shims").exists()
            || fs::read_dir(scratch.state().join("shims"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn sigterm_exits_0_and_a_restart_finds_the_running_container() {
    let scratch = Scratch::new("restart");
    let id = format!("api-r-{}", std::process::id());
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let mut d = Daemon::start(&scratch, &[]);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running",
        Some(&json!({"id": id, "bundle": b}).to_string()),
    );
    assert_eq!(
        (r.status, &r.body["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    let init = r.body["pid"].as_i64().unwrap();
    assert_eq!(d.stop(), Some(0), "berthd exits 0 on SIGTERM");
    assert!(
        Path::new(&format!("/proc/{init}")).exists(),
        "the container died with the daemon"
    );
    assert!(!d.socket.exists(), "the socket is removed on exit");
    drop(d);

    let d = Daemon::start(&scratch, &[]);
    let r = d.call("GET", &format!("/v1/containers/{id}"), None);
    assert_eq!(
        (r.status, &r.body["state"]),
        (200, &json!("running")),
        "{r:?}"
    );
    assert_eq!(r.body["pid"], init, "{r:?}");
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_cgroup_gone(&id);
    assert!(!Path::new(&format!("/proc/{init}")).exists());
}

#[test]
fn events_stream_one_containers_life_in_order() {
    let scratch = Scratch::new("events");
    let d = Daemon::start(&scratch, &[]);
    let id = format!("api-ev-{}", std::process::id());
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let since = d.call("GET", "/v1/system", None).body["next_event_seq"]
        .as_u64()
        .unwrap();

    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /v1/events?id={id}&type=state&since={since} HTTP/1.1\r\nHost: berth\r\n\r\n"
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(s).lines() {
            let Ok(line) = line else { return };
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

/// Force-delete every id over HTTP and check their cgroups are gone.
fn delete_all(d: &Daemon, ids: &[String]) {
    for id in ids {
        let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
        assert_eq!(r.status, 204, "{id}: {r:?}");
    }
    for id in ids {
        assert_cgroup_gone(id);
    }
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.body["containers"], json!([]), "{r:?}");
}

#[test]
fn a_burst_of_500_concurrent_posts_all_run() {
    let scratch = Scratch::new("burst");
    let d = Daemon::start(&scratch, &[]);
    let answers = burst(&d, &scratch, "b", 500);
    for (id, r) in &answers {
        assert_eq!(r.status, 202, "{id}: {r:?}");
    }
    let ids: Vec<String> = answers.into_iter().map(|(id, _)| id).collect();
    for id in &ids {
        wait_state(&d, id, "running");
    }
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.body["containers"]["running"], 500, "{r:?}");
    delete_all(&d, &ids);
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_records_nothing() {
    let scratch = Scratch::new("full");
    let d = Daemon::start(&scratch, &["--workers", "1", "--max-queued", "2"]);
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
        r.body["containers"].as_array().unwrap().len(),
        accepted.len(),
        "{r:?}"
    );
    delete_all(&d, &accepted);
}

#[test]
fn an_inline_spec_with_a_rootfs_runs() {
    let scratch = Scratch::new("inline");
    let d = Daemon::start(&scratch, &[]);
    let id = format!("api-in-{}", std::process::id());
    let mut spec = berth_api::engine::runtime::default_spec::default_spec(false, 0, 0);
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = json!(["sleep", "1000"]);
    spec["linux"]["cgroupsPath"] = json!(format!("/{id}"));
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
        (r.status, &r.body["state"]),
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
    let d = Daemon::start(&scratch, &[]);
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
    let get = |path: &str| {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    // stdout and stderr are two pipes: their lines may interleave either way.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let text = get(&format!("/v1/containers/{id}/logs"));
        let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
        let mut lines: Vec<&str> = body.lines().collect();
        lines.sort_unstable();
        if lines == ["one", "three", "two"] {
            break body;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = get(&format!("/v1/containers/{id}/logs?tail=1"));
    let last = format!("\r\n\r\n{}\n", body.lines().last().unwrap());
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with(&last),
        "{text}"
    );
    d.call("GET", &format!("/v1/containers/{id}/logs?tail=x"), None)
        .expect_error(400, "bad_query");
    d.call("GET", "/v1/containers/nope/logs", None)
        .expect_error(404, "not_found");
    let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_cgroup_gone(&id);
}
