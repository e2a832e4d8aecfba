//! The harness every berthd integration test shares: a scratch directory cleaned up on
//! drop, berthd started with any flags and environment and stopped on drop, HTTP/1.1
//! requests over its unix socket or TCP (whole answers or read as they stream), and
//! the checks several test files make (error shape, container states, cgroups gone).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a request waits for its answer unless a test says otherwise.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A scratch directory; on drop (also when a test fails) every shim under its state
/// directories is killed, every container removed, and the directory deleted.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory named after the test file, `name` and this process, so test
    /// binaries running side by side never share one.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "berth-{}-{name}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The state directory the daemons here use by default.
    pub fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    /// The images root (content store, snapshots) the daemons here use by default.
    pub fn images(&self) -> PathBuf {
        self.0.join("images")
    }

    /// The unix socket the daemons here use by default.
    pub fn socket(&self) -> PathBuf {
        self.0.join("berth.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for state in [self.state(), self.0.join("state-env")] {
            crate::stop_everything_in(&state);
        }
        // berthd mounts a tmpfs on its state directory and keeps it while containers
        // are left in it (as after a test that stops it with containers running).
        let mut points: Vec<PathBuf> = crate::runc::mountinfo()
            .into_iter()
            .map(|m| m.mountpoint)
            .filter(|m| m.starts_with(&self.0))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for point in points {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// berthd with `args` and `env` (and nothing else from this process's `BERTH_*`).
pub fn berthd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(crate::binary("berthd"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BERTH_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    cmd
}

/// Run berthd expecting it to refuse to start; its output.
pub fn refused(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = berthd(args, env).stdin(Stdio::null()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "berthd {args:?} should exit 2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running berthd; stopped (SIGTERM, then SIGKILL) on drop. Its stdout and stderr
/// go to a file beside its socket, printed only when the test fails (a passing test's
/// output carries no daemon log).
pub struct Daemon {
    child: Option<Child>,
    /// Its unix socket.
    pub socket: PathBuf,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Daemon {
    /// Start berthd with the scratch socket, state and the workspace's shim, plus
    /// `extra` flags and `env`; wait until the socket answers.
    /// Outside a test's own network namespace containers get no network unless the
    /// test asks (`--default-network none`): no test touches the machine's network.
    pub fn start(scratch: &Scratch, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = extra.to_vec();
        if !extra.contains(&"--default-network") {
            args.extend(["--default-network", "none"]);
        }
        Self::start_with(scratch, &args, env, |_| {})
    }

    /// As [`Daemon::start`], berthd running inside `netns` (its bridges, addresses and
    /// firewall rules are the namespace's, not the machine's).
    pub fn start_in(
        netns: &crate::netns::TestNetns,
        scratch: &Scratch,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_with(scratch, extra, env, |cmd| netns.enter(cmd))
    }

    fn start_with(
        scratch: &Scratch,
        extra: &[&str],
        env: &[(&str, &str)],
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        let socket = scratch.socket();
        let state = scratch.state();
        let images = scratch.images();
        let network = scratch.0.join("network");
        let shim = crate::shim_binary();
        let mut args = vec![
            "--socket",
            socket.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--shim",
            shim.to_str().unwrap(),
        ];
        // Never the host's /var/lib/berth; a test may name its own (a later flag wins).
        if !extra.contains(&"--images-root") {
            args.extend(["--images-root", images.to_str().unwrap()]);
        }
        // Nor the host's network definitions or CNI files.
        if !extra.contains(&"--network-root") {
            args.extend(["--network-root", network.to_str().unwrap()]);
        }
        let cni = scratch.0.join("cni");
        if !extra.contains(&"--cni-conf-dir") {
            args.extend(["--cni-conf-dir", cni.to_str().unwrap()]);
        }
        args.extend_from_slice(extra);
        let mut cmd = berthd(&args, env);
        adjust(&mut cmd);
        Self::spawn(cmd, socket)
    }

    /// Start `cmd` (a berthd) and wait until `socket` answers.
    pub fn spawn(mut cmd: Command, socket: PathBuf) -> Self {
        let log = daemon_log_path(&socket);
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn();
        let mut daemon = Daemon {
            child: Some(child.unwrap()),
            socket,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&daemon.socket).is_err() {
            if let Some(child) = daemon.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("berthd exited early: {status}");
                }
            }
            assert!(Instant::now() < deadline, "berthd did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    /// SIGTERM; the exit code.
    pub fn stop(&mut self) -> Option<i32> {
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

    /// SIGKILL, as a crash would: nothing of it runs its shutdown.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A connection to the unix socket whose reads give up after `timeout`.
    pub fn connect(&self, timeout: Duration) -> UnixStream {
        let stream = UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        stream
    }

    /// A request over the unix socket; the whole answer.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.call_with(method, path, &[], body.map(str::as_bytes))
    }

    /// A request with extra `headers` and any bytes as its body; the whole answer.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> Resp {
        self.open(method, path, headers, body).finish()
    }

    /// A request whose answer is read as it comes (a stream).
    pub fn open(&self, method: &str, path: &str, headers: &[&str], body: Option<&[u8]>) -> Conn {
        send(self.connect(READ_TIMEOUT), method, path, headers, body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        // Only a failing test shows what the daemon said (the test harness prints a
        // failed test's captured output).
        if std::thread::panicking() {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "---- berthd log ({}) ----\n{text}---- end of berthd log ----",
                self.log.display()
            );
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// A log file beside `socket` no other daemon of this process uses.
fn daemon_log_path(socket: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = socket.file_name().unwrap_or_default().to_string_lossy();
    socket.with_file_name(format!("{name}.berthd-{n}.log"))
}

/// A request over TCP to `addr` with extra `headers`; the whole answer.
pub fn call_tcp(addr: &str, method: &str, path: &str, headers: &[&str]) -> Resp {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    send(stream, method, path, headers, None).finish()
}

/// Send one request on `stream` and read the head of its answer.
pub fn send<S: Read + Write + Send + 'static>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&[u8]>,
) -> Conn {
    write_request(&mut stream, method, path, headers, body);
    Conn::new(stream, format!("{method} {path}"))
}

/// Write one HTTP/1.1 request (`Connection: close`). A body goes as JSON with its
/// length, or in one chunk when `headers` ask for `Transfer-Encoding` (chunked).
pub fn write_request<S: Write>(
    stream: &mut S,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&[u8]>,
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        req.push_str("Host: localhost\r\n");
    }
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
    // The server may answer (413) before reading all of a large body: what it says
    // is read next, so a failed write is not the test's verdict.
    let _ = stream.write_all(&bytes);
}

/// An answer being read: its head, and its body as it comes (chunked or not).
pub struct Conn {
    /// The request, for messages.
    pub what: String,
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    stream: Box<dyn Read + Send>,
    /// Bytes read past the head and not yet decoded.
    raw: Vec<u8>,
    /// Decoded body bytes not yet taken as a line.
    pending: Vec<u8>,
    /// Body bytes still to come when the answer has a `Content-Length`.
    left: Option<usize>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {} {:?}", self.what, self.status, self.headers)
    }
}

impl Conn {
    /// Read the head of the answer on `stream` (a request for `what` already sent).
    pub fn new<S: Read + Send + 'static>(stream: S, what: String) -> Self {
        let mut conn = Conn {
            what,
            status: 0,
            headers: Vec::new(),
            stream: Box::new(stream),
            raw: Vec::new(),
            pending: Vec::new(),
            left: None,
        };
        let end = loop {
            if let Some(i) = conn.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(
                conn.fill(),
                "{}: the connection closed before an answer: {:?}",
                conn.what,
                String::from_utf8_lossy(&conn.raw)
            );
        };
        let head = String::from_utf8_lossy(&conn.raw[..end]).into_owned();
        conn.raw.drain(..end + 4);
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "{}: not an HTTP/1.1 answer: {head:?}",
            conn.what
        );
        conn.status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}: bad status line in {head:?}", conn.what));
        conn.headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        if conn.header("transfer-encoding") != Some("chunked") {
            conn.left = conn.header("content-length").and_then(|l| l.parse().ok());
        }
        conn
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Read more from the stream; false at its end (or when a read times out).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next piece of the body as it comes (one chunk of a chunked body); `None`
    /// at its end.
    pub fn chunk(&mut self) -> Option<Vec<u8>> {
        if self.header("transfer-encoding") != Some("chunked") {
            if self.left == Some(0) || (self.raw.is_empty() && !self.fill()) {
                return None;
            }
            let n = self.left.map_or(self.raw.len(), |l| l.min(self.raw.len()));
            self.left = self.left.map(|l| l - n);
            return Some(self.raw.drain(..n).collect());
        }
        loop {
            if let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") {
                let size = String::from_utf8_lossy(&self.raw[..eol]);
                let size = size.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16)
                    .unwrap_or_else(|_| panic!("{}: bad chunk size {size:?}", self.what));
                if size == 0 {
                    return None;
                }
                if self.raw.len() >= eol + 2 + size + 2 {
                    let data = self.raw[eol + 2..eol + 2 + size].to_vec();
                    self.raw.drain(..eol + 2 + size + 2);
                    return Some(data);
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The next line of the body (without its newline); `None` at its end.
    pub fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line[..i]);
                return Some(line.trim_end_matches('\r').to_owned());
            }
            match self.chunk() {
                Some(c) => self.pending.extend_from_slice(&c),
                None if self.pending.is_empty() => return None,
                None => {
                    let rest = std::mem::take(&mut self.pending);
                    return Some(String::from_utf8_lossy(&rest).into_owned());
                }
            }
        }
    }

    /// The answer with what of its body was not read (nothing of a stream yet).
    pub fn head(&self) -> Resp {
        Resp::new(
            self.what.clone(),
            self.status,
            self.headers.clone(),
            Vec::new(),
        )
    }

    /// Read the rest of the body; the whole answer.
    pub fn finish(mut self) -> Resp {
        let mut body = std::mem::take(&mut self.pending);
        while let Some(c) = self.chunk() {
            body.extend_from_slice(&c);
        }
        Resp::new(self.what, self.status, self.headers, body)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A whole HTTP answer. `json` is the body parsed (`Null` for a body that is not
/// JSON); a body that says it is JSON and is not fails the test.
pub struct Resp {
    /// The request, for messages.
    pub what: String,
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub text: String,
    pub json: Value,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} {:?} {}",
            self.what, self.status, self.headers, self.text
        )
    }
}

impl Resp {
    fn new(what: String, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let text = String::from_utf8_lossy(&body).into_owned();
        let says_json =
            header(&headers, "content-type").is_some_and(|t| t.starts_with("application/json"));
        let json = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) if text.trim().is_empty() => Value::Null,
            Err(e) if says_json => panic!("{what} -> {status}: the JSON body {text:?}: {e}"),
            Err(_) => Value::Null,
        };
        Resp {
            what,
            status,
            headers,
            body,
            text,
            json,
        }
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Assert the status and the error shape with `code` and a message.
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.json["error"]["code"], code, "{self:?}");
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
    }
}

/// Poll `GET /v1/containers/{id}` until its state is `want` (bounded); its record.
pub fn wait_state(d: &Daemon, id: &str, want: &str) -> Value {
    wait_state_checked(d, id, want, |_| {})
}

/// [`wait_state`], passing every answer on the way to `check` first.
pub fn wait_state_checked(d: &Daemon, id: &str, want: &str, check: impl Fn(&Resp)) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = d.call("GET", &format!("/v1/containers/{id}"), None);
        check(&r);
        assert_eq!(r.status, 200, "{r:?}");
        if r.json["state"] == want {
            return r.json;
        }
        assert!(Instant::now() < deadline, "{id} never {want}: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the cgroup `name` (under the pids hierarchy) is gone (bounded).
pub fn assert_cgroup_gone(name: &str) {
    let cg = Path::new("/sys/fs/cgroup/pids").join(name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cg.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!cg.exists(), "{} left behind", cg.display());
}

/// Force-delete every id over HTTP, check their cgroups (`/{id}`) are gone and that
/// no container is left.
pub fn delete_all(d: &Daemon, ids: &[String]) {
    for id in ids {
        let r = d.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
        assert_eq!(r.status, 204, "{id}: {r:?}");
    }
    for id in ids {
        assert_cgroup_gone(id);
    }
    let r = d.call("GET", "/v1/containers", None);
    assert_eq!(r.json["containers"], json!([]), "{r:?}");
}

/// The default spec running `args` without a terminal, in its own cgroup `/{id}`: the
/// `spec` of an inline create.
pub fn inline_spec(id: &str, args: &[&str]) -> Value {
    let mut spec = berth_runtime::default_spec::default_spec(false, 0, 0);
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = json!(args);
    spec["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    spec
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `dir` is absent or empty.
pub fn absent_or_empty(dir: &Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Lint a Prometheus exposition with promtool where it is installed (CI installs it).
pub fn promtool_check(exposition: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: /metrics not linted");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
