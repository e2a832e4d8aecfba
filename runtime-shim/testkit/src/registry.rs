//! A real registry for tests: Debian's `docker-registry` on 127.0.0.1 at a free port,
//! storing in a temp dir, open or behind htpasswd Basic auth or token auth (with a token
//! endpoint served here, signing with a test certificate); killed on Drop. Pushing goes
//! through its HTTP API ([`Registry::push_blob`], [`Registry::push_manifest`]).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::http::{self, Server};

/// The registry binary (Debian's docker-registry package).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// The user the auth modes accept.
pub const USER: &str = "berth";
/// Their password.
pub const PASSWORD: &str = "s3cret-pass";
const SERVICE: &str = "berth-test-registry";
const ISSUER: &str = "berth-test-issuer";

/// How the registry authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Anyone may pull and push.
    Open,
    /// htpasswd Basic auth for [`USER`]/[`PASSWORD`].
    Basic,
    /// Token auth: a Bearer challenge pointing at a token endpoint served by the test.
    Token,
}

/// A running registry; killed (and its storage removed) on Drop.
pub struct Registry {
    child: Child,
    port: u16,
    mode: Mode,
    token: Option<TokenServer>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry in `mode` and waits until `/v2/` answers.
    pub fn start(mode: Mode) -> Registry {
        let mut last = String::new();
        // A free port can be taken between probing and binding: a few tries.
        for _ in 0..3 {
            match Registry::try_start(mode) {
                Ok(r) => return r,
                Err(e) => last = e,
            }
        }
        panic!("docker-registry did not start: {last}");
    }

    fn try_start(mode: Mode) -> Result<Registry, String> {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = free_port();
        let token = (mode == Mode::Token).then(|| TokenServer::start(dir.path()));
        let config = write_config(dir.path(), port, mode, token.as_ref());
        let log = fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{REGISTRY_BIN}: {e}"))?;
        // Owned from here: a failure below kills it through Drop.
        let mut reg = Registry {
            child,
            port,
            mode,
            token,
            dir,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log()));
            }
            // Only the registry's own answer counts (not another server's on a reused port).
            let resp = match agent.get(&format!("{}/v2/", self.url())).call() {
                Ok(r) | Err(ureq::Error::Status(_, r)) => Some(r),
                Err(_) => None,
            };
            if resp.is_some_and(|r| r.header("docker-distribution-api-version").is_some()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        Err(format!("no answer on /v2/ within 15 s: {}", self.log()))
    }

    /// `127.0.0.1:PORT`, the registry part of references to it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The registry process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The auth mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What the registry logged (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many token requests the token endpoint has answered (any outcome).
    pub fn token_requests(&self) -> usize {
        self.token
            .as_ref()
            .map_or(0, |t| t.requests.load(Ordering::SeqCst))
    }

    /// The Authorization header for pushing to (and pulling from) `repo`, if the mode
    /// wants one; tokens are minted here and not counted as token requests.
    pub fn authorization(&self, repo: &str) -> Option<String> {
        match self.mode {
            Mode::Open => None,
            Mode::Basic => Some(basic(USER, PASSWORD)),
            Mode::Token => {
                let t = self.token.as_ref()?;
                let scope = format!("repository:{repo}:pull,push");
                Some(format!("Bearer {}", t.signer.mint(USER, &scope)))
            }
        }
    }

    /// Uploads `bytes` as a blob of `repo` (POST then PUT ?digest=); returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let auth = self.authorization(repo);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.url());
        let resp = self.send("POST", &url, auth.as_deref(), None, &[]);
        let location = resp
            .header("location")
            .expect("upload Location")
            .to_string();
        let put = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location
        };
        let sep = if put.contains('?') { '&' } else { '?' };
        let put = format!("{put}{sep}digest={digest}");
        let ctype = Some("application/octet-stream");
        self.send("PUT", &put, auth.as_deref(), ctype, bytes);
        digest
    }

    /// Puts a manifest or index under `reference` (a tag or digest); returns its digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let auth = self.authorization(repo);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.url());
        self.send("PUT", &url, auth.as_deref(), Some(media_type), bytes);
        sha256(bytes)
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        auth: Option<&str>,
        ctype: Option<&str>,
        body: &[u8],
    ) -> ureq::Response {
        let mut req = ureq::request(method, url);
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        if let Some(c) = ctype {
            req = req.set("Content-Type", c);
        }
        match req.send_bytes(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "{method} {url}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("{method} {url}: {e}"),
        }
    }

    /// The storage directory (to corrupt a stored blob, say).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn write_config(dir: &Path, port: u16, mode: Mode, token: Option<&TokenServer>) -> PathBuf {
    let auth = match (mode, token) {
        (Mode::Basic, _) => {
            let hash = bcrypt::hash_with_result(PASSWORD, 4)
                .expect("bcrypt")
                .format_for_version(bcrypt::Version::TwoY);
            let file = dir.join("htpasswd");
            fs::write(&file, format!("{USER}:{hash}\n")).expect("write htpasswd");
            format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", file.display())
        }
        (Mode::Token, Some(t)) => format!(
            "auth:\n  token:\n    realm: {}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            t.server.url(),
            t.cert_path.display()
        ),
        _ => String::new(),
    };
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
        dir.join("data").display()
    );
    let path = dir.join("config.yml");
    fs::write(&path, config).expect("write registry config");
    path
}

/// Signs registry tokens with a self-signed test certificate carried in `x5c`.
struct Signer {
    key: jsonwebtoken::EncodingKey,
    cert_der_b64: String,
}

impl Signer {
    fn new(dir: &Path) -> (Signer, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let params = rcgen::CertificateParams::new(vec!["berth-test-token".to_string()])
            .expect("cert params");
        let cert = params.self_signed(&key).expect("self-sign");
        let cert_path = dir.join("token-cert.pem");
        fs::write(&cert_path, cert.pem()).expect("write cert");
        let key = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
            .expect("signing key");
        let cert_der_b64 = base64::engine::general_purpose::STANDARD.encode(cert.der());
        (Signer { key, cert_der_b64 }, cert_path)
    }

    /// A token granting `scope` (`repository:NAME:ACTIONS`, several space-separated).
    fn mint(&self, subject: &str, scope: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let access: Vec<serde_json::Value> = scope
            .split_whitespace()
            .filter_map(|s| {
                let mut p = s.splitn(3, ':');
                let (kind, name, actions) = (p.next()?, p.next()?, p.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", rand_suffix()), "access": access,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![self.cert_der_b64.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign a token")
    }
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

/// The token endpoint: Basic credentials checked, every request counted.
struct TokenServer {
    server: Server,
    cert_path: PathBuf,
    signer: Arc<Signer>,
    requests: Arc<AtomicUsize>,
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        let (signer, cert_path) = Signer::new(dir);
        let signer = Arc::new(signer);
        let requests = Arc::new(AtomicUsize::new(0));
        let (s, n) = (signer.clone(), requests.clone());
        let server = Server::start(move |req, conn| {
            n.fetch_add(1, Ordering::SeqCst);
            if req.header("authorization") != Some(basic(USER, PASSWORD).as_str()) {
                return http::respond(
                    conn,
                    401,
                    &[("WWW-Authenticate", "Basic realm=\"token\"")],
                    b"{}",
                );
            }
            let scope = req.query("scope").unwrap_or_default();
            let body = serde_json::json!({"token": s.mint(USER, &scope), "expires_in": 300});
            http::respond(
                conn,
                200,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            );
        });
        TokenServer {
            server,
            cert_path,
            signer,
            requests,
        }
    }
}
