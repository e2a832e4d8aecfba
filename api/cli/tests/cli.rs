//! `berth`, the CLI, end to end (as root): a real berthd on a scratch socket and state
//! directory, real containers in a root filesystem made of the host's binaries, and the
//! built `berth` binary driven as a user or a script would: its output, its one-line
//! errors and its exit statuses.

use berth_testkit::daemon as harness;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::rootfs;
use harness::{assert_cgroup_gone, free_port, Daemon, Scratch};
use serde_json::Value;

/// How long one `berth` run may take before the test gives up on it.
const DEADLINE: Duration = Duration::from_secs(90);

/// What one `berth` run did.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Assert success; its stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:#?}");
        &self.stdout
    }

    /// Its stdout as JSON (after asserting success).
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Assert exit status `code` with exactly one line on stderr containing `want`.
    fn fails(&self, code: i32, want: &str) {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
        assert!(self.stderr.contains(want), "no {want:?} in {self:#?}");
    }
}

/// Run `berth` with `args` and `env` (and none of this process's `BERTH_*`); a run that
/// does not end in time is killed and fails the test.
fn berth_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(berth_testkit::binary("berth"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BERTH_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes beside the wait, so a chatty run cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth {args:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// A `berth` that streams (logs -f, events): its stdout read as it comes; killed on
/// drop if it is still running.
struct Streaming {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Streaming {
    fn spawn(d: &Daemon, args: &[&str]) -> Self {
        let host = format!("unix://{}", d.socket.display());
        let mut child = Command::new(berth_testkit::binary("berth"))
            .arg("--host")
            .arg(&host)
            .args(args)
            .env_remove("BERTH_HOST")
            .env_remove("BERTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line + "\n").is_err() {
                    return;
                }
            }
        });
        Streaming {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Read until the output so far is `want` (bounded).
    fn read_until(&mut self, want: &str) {
        let deadline = Instant::now() + DEADLINE;
        while self.seen != want {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push_str(&line),
                Err(_) => panic!("wanted {want:?}, got {:?}", self.seen),
            }
        }
    }

    /// Wait (bounded) for the end; the exit status and the whole output.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "still streaming: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader ends at end-of-file, once the process is gone.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push_str(&line);
        }
        (status.code(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `berth --host <the daemon's socket> args…`.
fn berth(d: &Daemon, args: &[&str]) -> Out {
    let host = format!("unix://{}", d.socket.display());
    let mut all = vec!["--host", host.as_str()];
    all.extend_from_slice(args);
    berth_env(&all, &[])
}

/// Poll `berth --json inspect id` until its state is `want` (bounded); the record.
fn wait_state(d: &Daemon, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let record = berth(d, &["--json", "inspect", id]).json();
        if record["state"] == want {
            return record;
        }
        assert!(Instant::now() < deadline, "{id} never {want}: {record}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The row of `id` in a human table, split into cells.
fn row<'a>(table: &'a str, id: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&id))
}

/// How many `GET /v1/containers` berthd answered with 200, from its metrics.
fn list_requests(d: &Daemon) -> u64 {
    let text = d.call("GET", "/metrics", None).text;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(r#"berth_http_requests_total{route="/v1/containers",status="200"} "#)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no list requests counted in:\n{text}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn lifecycle_through_the_cli() {
    let scratch = Scratch::new("life");
    let d = Daemon::start(&scratch, &[], &[]);
    let root: PathBuf = rootfs(&scratch.0);
    let root = path_str(&root);
    let pid = std::process::id();
    let (sleeper, echo, created) = (
        format!("cli-s-{pid}"),
        format!("cli-e-{pid}"),
        format!("cli-c-{pid}"),
    );
    let first_seq = berth(&d, &["--json", "system"]).json()["next_event_seq"]
        .as_u64()
        .unwrap();

    // run: create, start, wait until running, print the id.
    let out = berth(
        &d,
        &[
            "run", "--id", &sleeper, "--rootfs", root, "--", "sleep", "1000",
        ],
    );
    assert_eq!(out.ok(), format!("{sleeper}\n"));
    let table = berth(&d, &["ps"]).ok().to_owned();
    assert!(table.starts_with("ID "), "{table}");
    let cells = row(&table, &sleeper).unwrap_or_else(|| panic!("{sleeper} not in {table}"));
    assert_eq!(cells[1], "running", "{table}");
    let init: i64 = cells[2].parse().unwrap_or_else(|_| panic!("pid? {table}"));
    assert!(init > 0, "{table}");
    let listed = berth(&d, &["--json", "ps"]).json();
    let mine: Vec<&Value> = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == sleeper.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(
        (&mine[0]["state"], mine[0]["pid"].as_i64()),
        (&Value::from("running"), Some(init)),
        "{listed}"
    );
    assert_eq!(berth(&d, &["ps", "-q"]).ok(), format!("{sleeper}\n"));

    // inspect: the record, pretty.
    let out = berth(&d, &["inspect", &sleeper]);
    assert!(out.ok().lines().count() > 5, "not pretty: {out:#?}");
    let record = out.json();
    assert_eq!(
        (&record["id"], &record["state"]),
        (&Value::from(sleeper.as_str()), &Value::from("running")),
        "{record}"
    );

    // stats: a table row, and the daemon's JSON.
    let out = berth(&d, &["stats", &sleeper]);
    let cells = row(out.ok(), &sleeper).unwrap_or_else(|| panic!("{out:#?}"));
    assert!(cells[1].ends_with('s'), "cpu column: {out:#?}");
    assert!(cells[2].ends_with('B'), "memory column: {out:#?}");
    assert_eq!(cells[3], "1", "one process (sleep): {out:#?}");
    let stats = berth(&d, &["--json", "stats", &sleeper]).json();
    assert_eq!(stats["pids"]["current"], 1, "{stats}");
    assert!(
        stats["memory"]["usage"]["usage"].as_u64() > Some(0),
        "{stats}"
    );

    // exec: the output, and the process's exit status as berth's.
    let out = berth(
        &d,
        &[
            "exec",
            "-e",
            "WHO=exec",
            &sleeper,
            "--",
            "sh",
            "-c",
            "echo out $WHO; echo err >&2; exit 3",
        ],
    );
    assert_eq!(out.code, Some(3), "{out:#?}");
    assert!(
        out.stdout.contains("out exec\n") && out.stdout.contains("err\n"),
        "{out:#?}"
    );
    assert_eq!(berth(&d, &["exec", &sleeper, "--", "true"]).ok(), "");
    let done = berth(
        &d,
        &["--json", "exec", &sleeper, "--", "sh", "-c", "echo hi"],
    )
    .json();
    assert_eq!(
        (&done["exit_code"], &done["output"]),
        (&Value::from(0), &Value::from("hi\n")),
        "{done}"
    );

    // logs of a container that echoes (with an environment variable of ours), then
    // stays: its stop below comes from a kill, like the sleeper's.
    let out = berth(
        &d,
        &[
            "run",
            "--id",
            &echo,
            "--rootfs",
            root,
            "-e",
            "GREETING=hello",
            "--",
            "sh",
            "-c",
            "echo $GREETING; echo second; exec sleep 1000",
        ],
    );
    assert_eq!(out.ok(), format!("{echo}\n"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = berth(&d, &["logs", &echo]).ok().to_owned();
        if logs == "hello\nsecond\n" {
            break;
        }
        assert!(Instant::now() < deadline, "logs of {echo}: {logs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(berth(&d, &["logs", "--tail", "1", &echo]).ok(), "second\n");
    // Live: `logs -f` and `events` stream while the container runs, and the log
    // stream ends when it stops.
    let mut follower = Streaming::spawn(&d, &["logs", "-f", &echo]);
    follower.read_until("hello\nsecond\n");
    // From the next sequence number on: no race with the kill below.
    let next = berth(&d, &["--json", "system"]).json()["next_event_seq"].to_string();
    let watcher = Streaming::spawn(&d, &["events", "--id", &echo, "--since", &next, "-n", "1"]);
    assert_eq!(
        berth(&d, &["kill", "-s", "9", &echo]).ok(),
        format!("{echo}\n")
    );
    let record = wait_state(&d, &echo, "stopped");
    assert_eq!(record["exit_code"], 137, "{record}");
    let (code, text) = follower.finish();
    assert_eq!((code, text.as_str()), (Some(0), "hello\nsecond\n"));
    let (code, text) = watcher.finish();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(" {echo} state running->stopped ")) && text.contains("exit=137"),
        "{text}"
    );
    // Following a stopped container's log prints it and ends.
    assert_eq!(berth(&d, &["logs", "-f", &echo]).ok(), "hello\nsecond\n");
    // ps hides stopped containers unless asked.
    assert!(row(berth(&d, &["ps"]).ok(), &echo).is_none());
    let table = berth(&d, &["ps", "-a"]).ok().to_owned();
    let cells = row(&table, &echo).unwrap_or_else(|| panic!("{echo} not in {table}"));
    assert_eq!((cells[1], cells[3]), ("stopped", "137"), "{table}");
    let stopped = berth(&d, &["--json", "ps", "--state", "stopped"]).json();
    assert_eq!(
        stopped["containers"].as_array().map(Vec::len),
        Some(1),
        "{stopped}"
    );

    // create leaves it created; start runs it.
    let out = berth(
        &d,
        &[
            "create", "--id", &created, "--rootfs", root, "--", "sleep", "1000",
        ],
    );
    assert_eq!(out.ok(), format!("{created}\n"));
    let table = berth(&d, &["ps"]).ok().to_owned();
    assert_eq!(
        row(&table, &created).map(|c| c[1]),
        Some("created"),
        "{table}"
    );
    assert_eq!(berth(&d, &["start", &created]).ok(), format!("{created}\n"));
    wait_state(&d, &created, "running");
    assert_eq!(berth(&d, &["pause", &created]).ok(), format!("{created}\n"));
    let table = berth(&d, &["ps"]).ok().to_owned();
    assert_eq!(
        row(&table, &created).map(|c| c[1]),
        Some("paused"),
        "{table}"
    );
    assert_eq!(
        berth(&d, &["resume", &created]).ok(),
        format!("{created}\n")
    );
    wait_state(&d, &created, "running");

    // Paging: one container per request (three requests), all of them shown, in the
    // order queued.
    let before = list_requests(&d);
    let ids = berth(&d, &["ps", "-a", "-q", "--page-size", "1"])
        .ok()
        .to_owned();
    assert_eq!(ids, format!("{sleeper}\n{echo}\n{created}\n"));
    assert_eq!(list_requests(&d) - before, 3);
    let paged = berth(&d, &["--json", "ps", "-a", "--page-size", "1"]).json();
    let paged: Vec<&str> = paged["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(paged, [&sleeper, &echo, &created], "{paged:?}");

    // kill (every process of it), then rm; rm -f of a running one.
    assert_eq!(
        berth(&d, &["kill", "--all", "-s", "KILL", &sleeper]).ok(),
        format!("{sleeper}\n")
    );
    let record = wait_state(&d, &sleeper, "stopped");
    assert_eq!(record["exit_code"], 137, "{record}");
    berth(&d, &["rm", &created]).fails(1, "(conflict, HTTP 409)");
    assert_eq!(
        berth(&d, &["rm", &sleeper, &echo]).ok(),
        format!("{sleeper}\n{echo}\n")
    );
    assert_eq!(
        berth(&d, &["rm", "-f", &created]).ok(),
        format!("{created}\n")
    );
    berth(&d, &["inspect", &sleeper]).fails(1, "(not_found, HTTP 404)");
    let left = berth(&d, &["--json", "ps", "-a"]).json();
    assert_eq!(left["containers"], Value::Array(vec![]), "{left}");
    // The default cgroup of a container berthd made from a root filesystem.
    let parent = berth_testkit::runtime::cgroups::default_parent(&scratch.state().join("runtime"));
    for id in [&sleeper, &echo, &created] {
        assert_cgroup_gone(&format!("{parent}/{id}"));
    }

    // events: the sleeper's whole life, in order, from the history.
    let since = first_seq.to_string();
    let out = berth(
        &d,
        &[
            "events", "--since", &since, "--id", &sleeper, "--type", "state", "-n", "6",
        ],
    );
    let lines: Vec<&str> = out.ok().lines().collect();
    let transitions: Vec<&str> = lines
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!((cells[2], cells[3]), (sleeper.as_str(), "state"), "{l}");
            cells[4]
        })
        .collect();
    assert_eq!(
        transitions,
        [
            "none->queued",
            "queued->creating",
            "creating->created",
            "created->running",
            "running->stopped",
            "stopped->deleted"
        ],
        "{out:#?}"
    );
    assert!(lines[4].contains("exit=137"), "{out:#?}");
    let out = berth(
        &d,
        &[
            "--json", "events", "--since", &since, "--type", "state", "-n", "18",
        ],
    );
    let mut last = 0;
    for line in out.ok().lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let seq = event["seq"].as_u64().unwrap();
        assert!(seq > last, "out of order: {out:#?}");
        last = seq;
    }
    assert_eq!(out.stdout.lines().count(), 18, "{out:#?}");

    // system: the figures, and a live pool resize.
    let info = berth(&d, &["system"]).ok().to_owned();
    assert_eq!(row(&info, "workers"), Some(vec!["workers", "10"]), "{info}");
    let info = berth(&d, &["system", "workers", "3"]).ok().to_owned();
    assert_eq!(row(&info, "workers"), Some(vec!["workers", "3"]), "{info}");
    assert_eq!(berth(&d, &["--json", "system"]).json()["workers"], 3);
}

#[test]
fn errors_and_exit_statuses() {
    let scratch = Scratch::new("err");
    let token = "cli-T0ken";
    let addr = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::start(&scratch, &["--tcp", &addr], &[("BERTH_TOKEN", token)]);
    let root: PathBuf = rootfs(&scratch.0);
    let pid = std::process::id();

    // The daemon says no: exit 1, one line on stderr, nothing on stdout.
    let out = berth(&d, &["inspect", &format!("cli-nope-{pid}")]);
    out.fails(1, "(not_found, HTTP 404)");
    assert!(out.stderr.starts_with("berth: "), "{out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    berth(&d, &["kill", "-s", "NOSUCH", "x"]).fails(1, "(invalid_signal, HTTP 422)");
    berth(&d, &["rm", "bad/id"]).fails(1, "HTTP 4");
    berth(&d, &["events", "--type", "other"]).fails(1, "(bad_query, HTTP 400)");
    berth(&d, &["exec", &format!("cli-nope-{pid}"), "--", "true"]).fails(1, "HTTP 404");
    // One bad id among good ones: the others still happen, the status says 1.
    let failing = format!("cli-f-{pid}");
    let out = berth(
        &d,
        &[
            "run",
            "--id",
            &failing,
            "--rootfs",
            path_str(&root),
            "--",
            "/no/such/binary",
        ],
    );
    out.fails(1, &format!("container {failing} failed"));
    assert_eq!(out.stdout, format!("{failing}\n"), "{out:#?}");
    let out = berth(&d, &["rm", "cli-nope", &failing]);
    out.fails(1, "(not_found, HTTP 404)");
    assert_eq!(out.stdout, format!("{failing}\n"), "{out:#?}");

    // A bundle instead of a rootfs; the same id twice is refused.
    let bundled = format!("cli-b-{pid}");
    let bundle = berth_testkit::bundle(&scratch.0, &bundled, &["sleep", "1000"]);
    let run = ["run", "--id", &bundled, "--bundle", path_str(&bundle)];
    assert_eq!(berth(&d, &run).ok(), format!("{bundled}\n"));
    berth(&d, &run).fails(1, "(conflict, HTTP 409)");
    assert_eq!(
        berth(&d, &["--json", "inspect", &bundled]).json()["state"],
        "running"
    );
    assert_eq!(
        berth(&d, &["rm", "-f", &bundled]).ok(),
        format!("{bundled}\n")
    );

    // Usage errors: 2, before any request.
    for args in [
        &["ps", "--bogus"][..],
        &["run"][..],
        &["run", "--rootfs", "/r"][..],
        &["run", "--bundle", "/b", "--rootfs", "/r", "sh"][..],
        &["logs", "--tail", "x", "id"][..],
        &["exec", "id"][..],
        &["system", "workers", "many"][..],
        &["--host", "ftp://x", "ps"][..],
    ] {
        let out = berth(&d, args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:#?}");
    }
    let help = berth_env(&["--help"], &[]);
    assert!(
        help.ok().contains("Exit status") && help.stdout.contains("3  berthd could not be reached"),
        "{help:#?}"
    );

    // TCP: the token from --token or BERTH_TOKEN, and the daemon's 401 without it.
    let tcp = format!("tcp://{addr}");
    berth_env(&["--host", &tcp, "ps"], &[]).fails(1, "(unauthorized, HTTP 401)");
    berth_env(&["--host", &tcp, "--token", "wrong", "ps"], &[])
        .fails(1, "(unauthorized, HTTP 401)");
    assert!(berth_env(&["--host", &tcp, "--token", token, "ps"], &[])
        .ok()
        .starts_with("ID "));
    let info = berth_env(
        &["--json", "system"],
        &[("BERTH_HOST", &tcp), ("BERTH_TOKEN", token)],
    )
    .json();
    assert_eq!(info["workers"], 10, "{info}");

    // No daemon: 3.
    let missing = scratch.0.join("no-such.sock");
    berth_env(&["--host", path_str(&missing), "ps"], &[]).fails(3, "cannot reach berthd");
    let host = format!("unix://{}", d.socket.display());
    assert_eq!(d.stop(), Some(0));
    berth_env(&["--host", &host, "ps"], &[]).fails(3, "cannot reach berthd");
    berth_env(&["--host", &tcp, "--token", token, "system"], &[]).fails(3, "cannot reach berthd");
}

/// A stand-in for berthd on a unix socket: answers each request with `answer(request
/// line)` (status line, content type, body), one connection at a time, until dropped.
struct FakeDaemon {
    socket: PathBuf,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeDaemon {
    fn start(
        dir: &Path,
        answer: impl Fn(&str) -> (&'static str, &'static str, String) + Send + 'static,
    ) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let socket = dir.join("fake.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers; these requests carry no body.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let line = line.trim_end().to_owned();
                let (status, content_type, body) = answer(&line);
                seen.lock().unwrap().push(line);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeDaemon { socket, requests }
    }

    fn berth(&self, args: &[&str]) -> Out {
        let host = format!("unix://{}", self.socket.display());
        let mut all = vec!["--host", host.as_str()];
        all.extend_from_slice(args);
        berth_env(&all, &[])
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

#[test]
fn odd_answers_from_a_daemon() {
    let scratch = Scratch::new("fake");
    let fake = FakeDaemon::start(&scratch.0, |line| {
        let bad_query = r#"{"error":{"code":"bad_query","message":"unknown parameter follow"}}"#;
        match line {
            // A daemon without `?follow`: berth asks once more without it.
            l if l.contains("/logs?follow=true") => {
                ("400 Bad Request", "application/json", bad_query.into())
            }
            l if l.contains("/logs") => ("200 OK", "text/plain", "old output\n".into()),
            // A proxy's error page: shown as one line.
            l if l.contains("/v1/system") => (
                "502 Bad Gateway",
                "text/html",
                "<html>\n<body>bad gateway</body>\n</html>\n".into(),
            ),
            // Paging whose cursor never moves: berth stops instead of looping.
            l if l.starts_with("GET /v1/containers ") || l.starts_with("GET /v1/containers?") => (
                "200 OK",
                "application/json",
                r#"{"containers":[{"id":"a","state":"running"}],"next":"c1"}"#.into(),
            ),
            _ => ("404 Not Found", "application/json", "{}".into()),
        }
    });

    assert_eq!(fake.berth(&["logs", "-f", "x"]).ok(), "old output\n");
    assert_eq!(
        fake.requests(),
        [
            "GET /v1/containers/x/logs?follow=true HTTP/1.1",
            "GET /v1/containers/x/logs HTTP/1.1"
        ]
    );
    fake.berth(&["system"]).fails(
        1,
        "berth: <html> <body>bad gateway</body> </html> (http_error, HTTP 502)",
    );
    let out = fake.berth(&["ps", "-q"]);
    assert_eq!(out.ok(), "a\na\n");
    let pages = fake.requests().len() - 3;
    assert_eq!(pages, 2, "{:?}", fake.requests());
    // A 404 whose body is not the error shape.
    fake.berth(&["inspect", "nope"])
        .fails(1, "berth: {} (http_error, HTTP 404)");
}

/// The image id of the stand-in's image.
const IMAGE_ID: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
/// The stand-in's image.
const IMAGE: &str = "127.0.0.1:5000/test/busybox:latest";

/// A pull's progress as the OpenAPI document describes it, ending with `last`.
fn pull_lines(last: &str) -> String {
    let layer = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    format!(
        "{{\"status\":\"resolved\",\"reference\":\"{IMAGE}\",\"manifest\":\"sha256:aa\",\"layers\":2}}\n\
         {{\"status\":\"downloading\",\"layer\":\"{layer}\",\"current\":0,\"total\":2000000}}\n\
         {{\"status\":\"downloading\",\"layer\":\"{layer}\",\"current\":2000000,\"total\":2000000}}\n\
         {{\"status\":\"exists\",\"layer\":\"sha256:fedcba9876543210\"}}\n\
         {{\"status\":\"unpacked\",\"layer\":\"{layer}\"}}\n{last}\n"
    )
}

/// The stand-in's answers for the image routes (berthd's image routes are not merged
/// yet: the lead adds the same checks against the real daemon and a registry).
fn image_answers(line: &str) -> (&'static str, &'static str, String) {
    let json = "application/json";
    let summary = format!(
        r#"{{"name":"{IMAGE}","id":"{IMAGE_ID}","digest":"sha256:bb","size":1234567,"created":"2026-01-01T00:00:00Z","layers":2}}"#
    );
    match line {
        "POST /v1/images/pull HTTP/1.1" => (
            "200 OK",
            "application/x-ndjson",
            pull_lines(&format!(
                r#"{{"status":"done","reference":"{IMAGE}","id":"{IMAGE_ID}"}}"#
            )),
        ),
        "GET /v1/images HTTP/1.1" => ("200 OK", json, format!("[{summary}]")),
        l if l.starts_with(&format!("DELETE /v1/images/{IMAGE}?force=true ")) => {
            ("200 OK", json, summary)
        }
        l if l.starts_with("DELETE /v1/images/busybox ") => (
            "409 Conflict",
            json,
            r#"{"error":{"code":"image_in_use","message":"container c1 uses busybox"}}"#.into(),
        ),
        "POST /v1/images/save HTTP/1.1" => ("200 OK", "application/x-tar", "an archive".into()),
        l if l.starts_with("GET /v1/events") => (
            "200 OK",
            "application/x-ndjson",
            format!(
                "{{\"item\":\"image\",\"seq\":4,\"at\":\"2026-01-01T00:00:00Z\",\"action\":\"pulled\",\"name\":\"{IMAGE}\",\"id\":\"{IMAGE_ID}\"}}\n"
            ),
        ),
        l if l.starts_with("POST /v1/containers?wait=running") => (
            "201 Created",
            json,
            r#"{"id":"c1","state":"running","pid":7}"#.into(),
        ),
        l if l.starts_with("GET /v1/containers/c1/logs") => ("200 OK", "text/plain", "hi\n".into()),
        l if l.starts_with("GET /v1/containers/c1 ") => (
            "200 OK",
            json,
            r#"{"id":"c1","state":"stopped","exit_code":3}"#.into(),
        ),
        _ => ("404 Not Found", json, "{}".into()),
    }
}

#[test]
fn image_commands_speak_the_documented_api() {
    let scratch = Scratch::new("fake-images");
    let fake = FakeDaemon::start(&scratch.0, image_answers);

    // Not a terminal: plain lines, ending with the image pulled.
    assert_eq!(
        fake.berth(&["pull", IMAGE]).ok(),
        format!(
            "{IMAGE}: manifest sha256:aa (2 layers)\n\
             0123456789ab downloading 0.0/2.0 MB\n\
             0123456789ab downloading 2.0/2.0 MB\n\
             fedcba987654 exists\n\
             0123456789ab unpacked\n\
             Pulled {IMAGE} (id {IMAGE_ID})\n"
        )
    );
    let listed = fake.berth(&["images"]);
    let row = listed.ok().lines().nth(1).unwrap_or_default().to_owned();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], [IMAGE, "2cf24dba5fb0", "1.2MiB"], "{row}");
    assert_eq!(cells.last(), Some(&"2"), "{row}");
    assert_eq!(fake.berth(&["images", "-q"]).ok(), format!("{IMAGE_ID}\n"));

    // The name's slashes go unescaped; an image in use is refused with its reason.
    assert_eq!(
        fake.berth(&["rmi", "-f", IMAGE]).ok(),
        format!("Deleted {IMAGE}\n")
    );
    let wanted = format!("DELETE /v1/images/{IMAGE}?force=true HTTP/1.1");
    assert!(fake.requests().contains(&wanted), "{:?}", fake.requests());
    fake.berth(&["image", "rm", "busybox"]).fails(
        1,
        "berth: container c1 uses busybox (image_in_use, HTTP 409)",
    );

    let archive = scratch.0.join("out.tar");
    fake.berth(&["image", "save", "-o", path_str(&archive), IMAGE])
        .ok();
    assert_eq!(std::fs::read_to_string(&archive).unwrap(), "an archive");

    let events = fake.berth(&["events", "--type", "image", "-n", "1"]);
    assert_eq!(
        events.ok(),
        format!("4 2026-01-01T00:00:00.000Z image pulled {IMAGE} id={IMAGE_ID}\n")
    );

    // In the foreground: the container's output, then its exit status.
    let run = fake.berth(&["run", "busybox", "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(3), "hi\n"),
        "{run:#?}"
    );
    assert_eq!(fake.berth(&["run", "-d", "busybox"]).ok(), "c1\n");
}

#[test]
fn a_failing_pull_and_save_leave_one_line_and_no_file() {
    let scratch = Scratch::new("fake-images-fail");
    let fake = FakeDaemon::start(&scratch.0, |line| match line {
        "POST /v1/images/pull HTTP/1.1" => (
            "200 OK",
            "application/x-ndjson",
            pull_lines(
                r#"{"status":"error","error":{"code":"bad_layer","message":"layer sha256:01 is\ntruncated"}}"#,
            ),
        ),
        _ => (
            "404 Not Found",
            "application/json",
            r#"{"error":{"code":"image_not_found","message":"no image nope"}}"#.into(),
        ),
    });
    let out = fake.berth(&["pull", IMAGE]);
    out.fails(1, "berth: layer sha256:01 is truncated (bad_layer)");
    assert!(out.stdout.ends_with("0123456789ab unpacked\n"), "{out:#?}");

    let archive = scratch.0.join("out.tar");
    fake.berth(&["image", "save", "-o", path_str(&archive), "nope"])
        .fails(1, "no image nope (image_not_found, HTTP 404)");
    let left: Vec<_> = std::fs::read_dir(&scratch.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "fake.sock")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
