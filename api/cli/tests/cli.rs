//! `berth`, the CLI, end to end (as root): a real berthd on a scratch socket and state
//! directory, real containers in a root filesystem made of the host's binaries, and the
//! built `berth` binary driven as a user or a script would: its output, its one-line
//! errors and its exit statuses. Images come from a real registry on loopback (the test
//! kit's docker-registry); only a daemon answering nonsense is a stand-in.

use berth_testkit::daemon as harness;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::image::{BuiltImage, ImageBuilder, Layer};
use berth_testkit::netns::TestNetns;
use berth_testkit::registry::{Mode, Registry};
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
    berth_io(args, env, None)
}

/// [`berth_env`] with `input` written to its stdin through a pipe (none: /dev/null).
fn berth_io(args: &[&str], env: &[(&str, &str)], input: Option<Vec<u8>>) -> Out {
    let mut cmd = Command::new(berth_testkit::binary("berth"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BERTH_") {
            cmd.env_remove(key);
        }
    }
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .args(args)
        .envs(env.iter().copied())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), input) {
        // Beside the wait: a big input must not block on a full pipe. A run that stops
        // reading early ends the write with EPIPE, which is its business.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
    }
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
    berth_in(d, args, None)
}

/// [`berth`] with `input` piped to its stdin.
fn berth_in(d: &Daemon, args: &[&str], input: Option<Vec<u8>>) -> Out {
    let host = format!("unix://{}", d.socket.display());
    let mut all = vec!["--host", host.as_str()];
    all.extend_from_slice(args);
    berth_io(&all, &[], input)
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

/// A stand-in for berthd answering what no real one would (the CLI's defences against
/// odd answers), on a unix socket: answers each request with `answer(request
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

/// A registry holding the test busybox as `test/busybox:1` (open or behind Basic auth);
/// the image's full name at it.
fn registry_with_busybox(mode: Mode) -> (Registry, String) {
    let reg = Registry::start(mode);
    ImageBuilder::busybox().push(&reg, "test/busybox:1");
    let name = format!("{}/test/busybox:1", reg.host());
    (reg, name)
}

/// `berth pull name` in a pipe: plain lines, the last one naming the image; its id.
fn pull(d: &Daemon, name: &str) -> String {
    let out = berth(d, &["pull", name]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(
        lines[0].starts_with(&format!("{name}: manifest sha256:"))
            && lines[0].ends_with(" (1 layers)"),
        "{out:#?}"
    );
    // The one layer, by its short digest: downloaded, then unpacked.
    let layer = lines[1].split_whitespace().next().unwrap_or_default();
    assert_eq!(layer.len(), 12, "{out:#?}");
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with(&format!("{layer} downloading "))
                || *l == format!("{layer} unpacked")),
        "{out:#?}"
    );
    assert_eq!(
        lines[lines.len() - 2],
        format!("{layer} unpacked"),
        "{out:#?}"
    );
    let last = lines[lines.len() - 1];
    let id = last
        .strip_prefix(&format!("Pulled {name} (id "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("last line: {out:#?}"));
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out:#?}");
    id.to_owned()
}

/// Poll `berth logs id` until it is `want` (bounded).
fn wait_logs(d: &Daemon, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = berth(d, &["logs", id]).ok().to_owned();
        if logs == want {
            return;
        }
        assert!(Instant::now() < deadline, "logs of {id}: {logs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_image_from_a_registry_through_the_cli() {
    let (reg, name) = registry_with_busybox(Mode::Open);
    let scratch = Scratch::new("images");
    let d = Daemon::start(&scratch, &[], &[]);
    let first_seq = berth(&d, &["--json", "system"]).json()["next_event_seq"].to_string();

    let id = pull(&d, &name);
    // An unknown tag: one line, nothing pulled.
    let unknown = format!("{}/test/busybox:nope", reg.host());
    berth(&d, &["pull", &unknown]).fails(1, "(image_not_found, HTTP 404)");

    // The list: a row for it, its id alone, the daemon's JSON.
    let table = berth(&d, &["images"]).ok().to_owned();
    assert!(table.starts_with("NAME "), "{table}");
    let cells = row(&table, &name).unwrap_or_else(|| panic!("{name} not in {table}"));
    assert_eq!(cells[1], &id[7..19], "{table}");
    assert!(cells[2].ends_with('B'), "size column: {table}");
    assert_eq!(cells.last(), Some(&"1"), "layers column: {table}");
    assert_eq!(table.lines().count(), 2, "{table}");
    assert_eq!(berth(&d, &["images", "-q"]).ok(), format!("{id}\n"));
    let listed = berth(&d, &["images", "--format", "json"]).json();
    assert_eq!(
        (
            &listed[0]["name"],
            &listed[0]["id"],
            listed.as_array().map(Vec::len)
        ),
        (
            &Value::from(name.as_str()),
            &Value::from(id.as_str()),
            Some(1)
        ),
        "{listed}"
    );
    let inspected = berth(&d, &["image", "inspect", &name]).json();
    assert_eq!(
        inspected["image_config"]["config"]["Cmd"],
        serde_json::json!(["sh"]),
        "{inspected}"
    );

    // In the foreground: the output, then the command's exit status as berth's.
    let pid = std::process::id();
    let (fg, bg) = (format!("cli-fg-{pid}"), format!("cli-bg-{pid}"));
    let out = berth(
        &d,
        &["run", "--name", &fg, &name, "sh", "-c", "echo hi; exit 3"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(3), "hi\n"),
        "{out:#?}"
    );
    assert_eq!(berth(&d, &["rm", &fg]).ok(), format!("{fg}\n"));
    // Detached, with the environment, working directory and user given.
    let out = berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &bg,
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            &name,
            "sh",
            "-c",
            "echo $A; pwd; id -u; sleep 100",
        ],
    );
    assert_eq!(out.ok(), format!("{bg}\n"));
    wait_logs(&d, &bg, "1\n/tmp\n1000\n");
    // Never pulled when told never: one line, no container.
    let missing = format!("{}/test/missing:1", reg.host());
    let never = format!("cli-never-{pid}");
    berth(
        &d,
        &["run", "--name", &never, "--pull", "never", &missing, "true"],
    )
    .fails(1, "(image_not_found, HTTP 404)");
    berth(&d, &["inspect", &never]).fails(1, "(not_found, HTTP 404)");

    // Not removed while a container uses it; then removed, and its layers pruned.
    berth(&d, &["rmi", &name]).fails(1, "(image_in_use, HTTP 409)");
    assert_eq!(berth(&d, &["rm", "-f", &bg]).ok(), format!("{bg}\n"));
    assert_eq!(berth(&d, &["rmi", &name]).ok(), format!("Deleted {name}\n"));
    assert_eq!(berth(&d, &["images", "-q"]).ok(), "");
    let pruned = berth(&d, &["image", "prune"]).ok().to_owned();
    let freed = pruned
        .strip_prefix("Freed ")
        .and_then(|f| f.strip_suffix("B\n"))
        .unwrap_or_else(|| panic!("{pruned:?}"));
    assert!(freed.ends_with("Ki") || freed.ends_with("Mi"), "{pruned:?}");

    // The pull's event, and the removal's after it.
    let events = berth(
        &d,
        &[
            "events", "--type", "image", "--since", &first_seq, "-n", "2",
        ],
    );
    let lines: Vec<&str> = events.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{events:#?}");
    assert!(
        lines[0].ends_with(&format!(" image pulled {name} id={id}")),
        "{events:#?}"
    );
    assert!(
        lines[1].contains(&format!(" image deleted {name}")),
        "{events:#?}"
    );
}

#[test]
fn a_pull_with_a_password_from_stdin() {
    let (_reg, name) = registry_with_busybox(Mode::Basic);
    let scratch = Scratch::new("images-auth");
    let d = Daemon::start(&scratch, &[], &[]);
    let user = berth_testkit::registry::USER;

    berth(&d, &["pull", &name]).fails(1, "registry_unauthorized");
    let args = ["pull", "--user", user, "--password-stdin", &name];
    let wrong = berth_in(&d, &args, Some(b"wrong\n".to_vec()));
    wrong.fails(1, "registry_unauthorized");
    assert_eq!(wrong.stdout, "", "{wrong:#?}");
    assert_eq!(berth(&d, &["images", "-q"]).ok(), "");
    let password = format!("{}\n", berth_testkit::registry::PASSWORD);
    let right = berth_in(&d, &args, Some(password.into_bytes()));
    assert!(
        right
            .ok()
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with(&format!("Pulled {name} ")),
        "{right:#?}"
    );
    // No password on stdin: refused before any request.
    berth_in(&d, &args, Some(Vec::new())).fails(2, "stdin gave no password");
}

#[test]
fn an_image_archive_round_trips_through_a_file_and_a_pipe() {
    let (_reg, name) = registry_with_busybox(Mode::Open);
    let scratch = Scratch::new("images-archive");
    let d = Daemon::start(&scratch, &[], &[]);
    let id = pull(&d, &name);
    let dir = scratch.0.join("archives");
    std::fs::create_dir(&dir).unwrap();
    let archive = dir.join("f.tar");

    assert_eq!(
        berth(&d, &["image", "save", "-o", path_str(&archive), &name]).ok(),
        ""
    );
    let bytes = std::fs::read(&archive).unwrap();
    assert!(bytes.len() > 100_000, "{} bytes", bytes.len());
    let imported = format!("Imported {name} (id {id})\n");
    let pid = std::process::id();
    for (how, run) in [
        ("file", format!("cli-f-{pid}")),
        ("pipe", format!("cli-p-{pid}")),
    ] {
        assert_eq!(berth(&d, &["rmi", &name]).ok(), format!("Deleted {name}\n"));
        let out = match how {
            "file" => berth(&d, &["image", "import", path_str(&archive)]),
            _ => berth_in(&d, &["image", "import", "-"], Some(bytes.clone())),
        };
        assert_eq!(out.ok(), imported, "from a {how}");
        let out = berth(
            &d,
            &["run", "--name", &run, "--pull", "never", &name, "echo", how],
        );
        assert_eq!(out.ok(), format!("{how}\n"));
        assert_eq!(berth(&d, &["rm", &run]).ok(), format!("{run}\n"));
    }

    // An image the daemon does not have: one line, and no file, not even a partial one.
    let nothing = dir.join("nothing.tar");
    berth(&d, &["image", "save", "-o", path_str(&nothing), "nope:1"])
        .fails(1, "(image_not_found, HTTP 404)");
    // A store that lost the image's layer: the daemon says so instead of sending an
    // empty archive, and berth leaves no file.
    let blobs = scratch.images().join("blobs/sha256");
    let layer = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().map_or(0, |m| m.len()))
        .unwrap_or_else(|| panic!("no blobs in {}", blobs.display()));
    std::fs::remove_file(layer.path()).unwrap();
    let broken = dir.join("broken.tar");
    berth(&d, &["image", "save", "-o", path_str(&broken), &name])
        .fails(1, "(image_error, HTTP 500)");
    // One that cannot read it once the archive has begun (a directory where the layer
    // was): the stream is cut, not ended as if complete, and berth leaves no file.
    std::fs::create_dir(layer.path()).unwrap();
    let out = berth(&d, &["image", "save", "-o", path_str(&broken), &name]);
    // (Cut short, the answer looks like a daemon that went away: status 3.)
    out.fails(3, "during POST /v1/images/save");
    let cut = berth_in(&d, &["image", "save", &name], None);
    assert_eq!(cut.code, Some(3), "to a pipe: {cut:#?}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "f.tar")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_pull_that_fails_midway_ends_with_one_line() {
    // A manifest whose one layer is not a layer (the config blob, called gzip): the
    // daemon's stream has begun when unpacking it fails.
    let reg = Registry::start(Mode::Open);
    let built = ImageBuilder::busybox().build();
    let config = &built.main().config;
    reg.push_blob("test/broken", &config.bytes);
    let descriptor = |media_type: &str| serde_json::json!({"mediaType": media_type, "digest": config.digest, "size": config.bytes.len()});
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": descriptor(&config.media_type),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip")],
    });
    reg.push_manifest(
        "test/broken",
        "1",
        manifest_type,
        manifest.to_string().as_bytes(),
    );
    let name = format!("{}/test/broken:1", reg.host());
    let scratch = Scratch::new("images-broken");
    let d = Daemon::start(&scratch, &[], &[]);

    let out = berth(&d, &["pull", &name]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(
        out.stderr.starts_with("berth: ") && out.stderr.ends_with(" (bad_layer)\n"),
        "{out:#?}"
    );
    assert!(
        out.stdout.starts_with(&format!("{name}: manifest sha256:")),
        "the stream had begun: {out:#?}"
    );
    assert!(!out.stdout.contains("Pulled"), "{out:#?}");
    assert_eq!(berth(&d, &["images", "-q"]).ok(), "");
}

/// An OCI image layout archive (as `berth image save` writes one) of `built`, named
/// `name`: how an image reaches a daemon in a test's network namespace, which cannot
/// reach the test registry on the machine's loopback.
fn oci_archive(dir: &Path, built: &BuiltImage, name: &str) -> PathBuf {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let main = built.main();
    for blob in [&main.config, &main.manifest]
        .into_iter()
        .chain(&main.layers)
    {
        let hex = blob.digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), &blob.bytes).unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": main.manifest.media_type,
            "digest": main.manifest.digest,
            "size": main.manifest.bytes.len(),
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(status.success(), "tar of {}", layout.display());
    archive
}

/// A berthd in a network namespace of the test's own (its bridges and rules are the
/// namespace's), with the test busybox (plus `httpd` and a page to serve) imported as
/// `name`. Dropped in reverse order: daemon, scratch, namespace.
fn daemon_in_netns(what: &str, name: &str) -> (TestNetns, Scratch, Daemon) {
    let ns = TestNetns::new(what);
    let scratch = Scratch::new(what);
    let d = Daemon::start_in(&ns, &scratch, &[], &[]);
    let built = ImageBuilder::busybox()
        .layer(
            Layer::new()
                .symlink("bin/httpd", "busybox")
                .dir("www")
                .file("www/index.html", b"served by berth\n"),
        )
        .build();
    let archive = oci_archive(&scratch.0, &built, name);
    let out = berth(&d, &["image", "import", path_str(&archive)]);
    assert!(
        out.ok().starts_with(&format!("Imported {name} ")),
        "{out:#?}"
    );
    (ns, scratch, d)
}

#[test]
fn networks_through_the_cli() {
    let (_ns, _scratch, d) = daemon_in_netns("cli-nets", "test.invalid/cli/web:1");
    let pid = std::process::id();
    let (one, two) = (format!("cli-n1-{pid}"), format!("cli-n2-{pid}"));

    // create: the id; the daemon's default network is there beside it.
    let out = berth(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--gateway",
            "10.77.0.254",
            "--internal",
            "--label",
            "team=cli",
            &one,
        ],
    );
    let id = out.ok().trim_end().to_owned();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{out:#?}"
    );
    let out = berth(
        &d,
        &[
            "network",
            "create",
            "--no-masquerade",
            "--mtu",
            "1400",
            &two,
        ],
    );
    let id2 = out.ok().trim_end().to_owned();

    // ls: a row each, the ids alone, the daemon's JSON.
    let table = berth(&d, &["network", "ls"]).ok().to_owned();
    assert!(
        table.starts_with("NETWORK ID   ") && table.contains(" SUBNET "),
        "{table}"
    );
    let cells = row(&table, &id[..12]).unwrap_or_else(|| panic!("{one} not in {table}"));
    assert_eq!(
        cells[1..],
        [one.as_str(), "bridge", "10.77.0.0/24", "0"],
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.contains(" berth0 ")),
        "default network: {table}"
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    let quiet = berth(&d, &["network", "ls", "-q"]).ok().to_owned();
    assert!(
        quiet.lines().any(|l| l == id) && quiet.lines().any(|l| l == id2),
        "{quiet}"
    );
    let listed = berth(&d, &["network", "ls", "--format", "json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // inspect: a JSON array, by name or id.
    let shown = berth(&d, &["network", "inspect", &one, &id2[..12]]).json();
    assert_eq!(shown.as_array().map(Vec::len), Some(2), "{shown}");
    let (first, second) = (&shown[0], &shown[1]);
    assert_eq!(
        (&first["name"], &first["id"]),
        (&Value::from(one.as_str()), &Value::from(id.as_str())),
        "{shown}"
    );
    let driver = &first["driver"];
    assert_eq!(
        (
            &driver["type"],
            &driver["subnet"],
            &driver["gateway"],
            &driver["internal"],
            &driver["masquerade"],
            &first["labels"]["team"]
        ),
        (
            &Value::from("bridge"),
            &Value::from("10.77.0.0/24"),
            &Value::from("10.77.0.254"),
            &Value::from(true),
            &Value::from(false),
            &Value::from("cli")
        ),
        "{shown}"
    );
    assert_eq!(first["containers"], serde_json::json!({}), "{shown}");
    assert_eq!(
        (
            &second["name"],
            &second["driver"]["masquerade"],
            &second["driver"]["mtu"]
        ),
        (
            &Value::from(two.as_str()),
            &Value::from(false),
            &Value::from(1400)
        ),
        "{shown}"
    );
    assert!(second["driver"]["subnet"].is_string(), "picked: {shown}");
    assert_eq!(
        berth(&d, &["network", "inspect", &one]).json()[0]["id"],
        id.as_str()
    );

    // Refusals: one line each, exit 1, nothing made.
    berth(&d, &["network", "create", &one]).fails(
        1,
        &format!("a network named {one:?} exists (conflict, HTTP 409)"),
    );
    berth(
        &d,
        &["network", "create", "--subnet", "10.78.0.0/33", "cli-bad"],
    )
    .fails(1, "(invalid_network, HTTP 422)");
    berth(
        &d,
        &["network", "create", "--subnet", "not-a-subnet", "cli-bad"],
    )
    .fails(1, "(invalid_network, HTTP 422)");
    berth(
        &d,
        &["network", "create", "--subnet", "10.77.0.128/25", "cli-bad"],
    )
    .fails(1, "(subnet_overlap, HTTP 409)");
    berth(&d, &["network", "create", "none"]).fails(1, "(invalid_network, HTTP 422)");
    berth(&d, &["network", "inspect", "cli-bad"]).fails(1, "(network_not_found, HTTP 404)");
    berth(&d, &["network", "rm", "berth0"]).fails(1, "(predefined_network, HTTP 409)");
    // A usage error never reaches the daemon.
    let out = berth(
        &d,
        &["network", "create", "--gateway", "10.0.0.1", "cli-bad"],
    );
    assert_eq!(out.code, Some(2), "{out:#?}");

    // rm: an unknown name is reported, the others are still removed.
    let out = berth(&d, &["network", "rm", &one, "cli-nonesuch", &two]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stdout, format!("{one}\n{two}\n"), "{out:#?}");
    assert_eq!(
        out.stderr, "berth: no network named \"cli-nonesuch\" (network_not_found, HTTP 404)\n",
        "{out:#?}"
    );
    berth(&d, &["network", "inspect", &one]).fails(1, "(network_not_found, HTTP 404)");
    let quiet = berth(&d, &["network", "ls", "-q"]).ok().to_owned();
    assert_eq!(
        quiet.lines().count(),
        1,
        "only the default network: {quiet}"
    );
}

#[test]
fn a_container_without_a_network_through_the_cli() {
    let image = "test.invalid/cli/none:1";
    let (_ns, _scratch, d) = daemon_in_netns("cli-none", image);
    let pid = std::process::id();
    let id = format!("cli-none-{pid}");

    // Only lo inside.
    let out = berth(
        &d,
        &[
            "run",
            "--name",
            &id,
            "--network",
            "none",
            "--pull",
            "never",
            image,
            "cat",
            "/proc/net/dev",
        ],
    );
    let text = out.ok();
    assert!(text.contains("lo:") && !text.contains("eth0"), "{out:#?}");
    // Nothing published, nothing attached.
    assert_eq!(berth(&d, &["port", &id]).ok(), "");
    assert_eq!(berth(&d, &["--json", "port", &id]).ok(), "[]\n");
    assert!(
        berth(&d, &["inspect", &id]).json()["network_attachment"].is_null(),
        "no attachment"
    );
    assert_eq!(berth(&d, &["rm", &id]).ok(), format!("{id}\n"));
    // Ports need a network: refused before anything is made.
    let refused = format!("cli-nop-{pid}");
    berth(
        &d,
        &[
            "run", "-d", "--name", &refused, "--net", "none", "-p", "8080:80", "--pull", "never",
            image, "sleep", "100",
        ],
    )
    .fails(1, "(invalid_network, HTTP 422)");
    berth(&d, &["inspect", &refused]).fails(1, "(not_found, HTTP 404)");
    // A -p the CLI cannot read never reaches the daemon.
    let out = berth(&d, &["run", "-p", "80/sctp", image]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        out.stderr
            .contains(r#""80/sctp": protocol "sctp" is not tcp or udp"#),
        "{out:#?}"
    );
}

#[test]
fn a_published_port_through_the_cli() {
    let image = "test.invalid/cli/httpd:1";
    let (ns, _scratch, d) = daemon_in_netns("cli-port", image);
    let pid = std::process::id();
    let id = format!("cli-web-{pid}");
    let host_port = "18080";

    let published = format!("127.0.0.1:{host_port}:8080");
    let out = berth(
        &d,
        &[
            "run", "-d", "--name", &id, "-p", &published, "--pull", "never", image, "httpd", "-f",
            "-p", "8080", "-h", "/www",
        ],
    );
    assert_eq!(out.ok(), format!("{id}\n"));

    // The page, from the namespace's own loopback (the daemon's "host").
    let url = format!("http://127.0.0.1:{host_port}/index.html");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = ns
            .command("/bin/busybox")
            .args(["wget", "-qO-", &url])
            .output()
            .unwrap();
        if got.status.success() {
            assert_eq!(String::from_utf8_lossy(&got.stdout), "served by berth\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // port: docker's lines; one port alone; one not published.
    assert_eq!(
        berth(&d, &["port", &id]).ok(),
        format!("8080/tcp -> 127.0.0.1:{host_port}\n")
    );
    assert_eq!(
        berth(&d, &["port", &id, "8080/tcp"]).ok(),
        format!("127.0.0.1:{host_port}\n")
    );
    berth(&d, &["port", &id, "53/udp"]).fails(1, "publishes no port 53/udp");
    let ports = berth(&d, &["--json", "port", &id]).json();
    assert_eq!(
        ports,
        serde_json::json!([{"host_ip": "127.0.0.1", "host_port": 18080,
                            "container_port": 8080, "protocol": "tcp"}])
    );
    // inspect: where it is; the default network lists it.
    let record = berth(&d, &["inspect", &id]).json();
    let attachment = &record["network_attachment"];
    assert_eq!(attachment["network"], "berth0", "{record}");
    assert!(attachment["address"].is_string(), "{record}");
    let table = berth(&d, &["network", "ls"]).ok().to_owned();
    let berth0 = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.get(1) == Some(&"berth0"))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(berth0.last(), Some(&"1"), "{table}");
    // The same host port again: refused before anything is made.
    let again = format!("cli-web2-{pid}");
    berth(
        &d,
        &[
            "run", "-d", "--name", &again, "-p", &published, "--pull", "never", image, "sleep",
            "100",
        ],
    )
    .fails(1, "(port_in_use, HTTP 409)");
    assert_eq!(berth(&d, &["rm", "-f", &id]).ok(), format!("{id}\n"));
    assert_eq!(berth(&d, &["port", &id]).code, Some(1));
}
