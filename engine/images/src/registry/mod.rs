//! The OCI distribution (registry v2) client: manifests resolved to one platform, blobs
//! streamed through digest checks, Basic and Bearer-token auth, redirects followed by
//! hand (the Authorization header never leaves the registry's host), timeouts and
//! retries. Blocking, on ureq with rustls.

mod auth;
mod http;
mod platform;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::Duration;

pub use auth::{parse_challenge, Challenge};
pub use platform::{Platform, PlatformError};

use crate::manifest::{media, Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::{Digest, DigestError, Verified};

/// Manifests and indexes larger than this are refused (docker's limit is 4 MiB).
pub const MANIFEST_MAX: u64 = 4 << 20;
/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;
/// What a manifest GET accepts: OCI index and manifest, Docker list and schema2.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A user name and password for a registry (or its token endpoint).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

/// How the client talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host[:port]` as in references) spoken to over plain HTTP; loopback
    /// ones (127.0.0.0/8, ::1, localhost) always are.
    pub insecure: Vec<String>,
    /// Credentials per registry, used when a request brings none.
    pub credentials: HashMap<String, Credentials>,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on each read (and write) of a socket: a stalled transfer fails after this.
    pub read_timeout: Duration,
    /// Retries after connection errors, 5xx and 429 (with exponential backoff).
    pub retries: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            credentials: HashMap::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 3,
        }
    }
}

/// A name resolved to one platform's manifest.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The index (or manifest list) the name pointed at, if it pointed at one.
    pub index: Option<(Digest, Vec<u8>)>,
    /// The platform's manifest digest.
    pub manifest_digest: Digest,
    /// Its bytes, as served (they hash to `manifest_digest`).
    pub manifest_bytes: Vec<u8>,
    /// Parsed.
    pub manifest: Manifest,
}

impl Resolved {
    /// What the name points at: the index if there is one, else the manifest.
    pub fn target(&self) -> &Digest {
        self.index
            .as_ref()
            .map_or(&self.manifest_digest, |(d, _)| d)
    }
}

/// Why a registry operation failed; each names the registry, reference or URL.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made (refused, DNS, TLS).
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// What failed.
        reason: String,
    },
    /// The registry accepted the connection but did not answer in time.
    #[error("registry {registry} timed out: {reason}")]
    Timeout {
        /// `host[:port]`.
        registry: String,
        /// What timed out.
        reason: String,
    },
    /// Credentials missing or refused.
    #[error("registry {registry} refused access: {reason}")]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// Why.
        reason: String,
    },
    /// Unknown repository, tag, manifest or blob (404).
    #[error("{reference}: not found")]
    NotFound {
        /// The reference (or `name@digest` of a blob).
        reference: String,
    },
    /// Any other HTTP status.
    #[error("{url}: unexpected HTTP status {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// What came back.
        status: u16,
    },
    /// A manifest or blob did not match its digest or size.
    #[error("{what}: {source}")]
    Digest {
        /// Which manifest or blob.
        what: String,
        /// The mismatch.
        source: DigestError,
    },
    /// The index has no manifest for the wanted platform.
    #[error("{reference}: no image for {wanted} (the index has {})", .available.join(", "))]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        wanted: Platform,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// A manifest or index that does not parse or is of an unknown kind.
    #[error("{reference}: bad manifest: {reason}")]
    BadManifest {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Content larger than allowed.
    #[error("{what} is larger than {max} bytes")]
    TooLarge {
        /// Which manifest or blob.
        what: String,
        /// The limit.
        max: u64,
    },
    /// A redirect that cannot be followed.
    #[error("{url}: {reason}")]
    Redirect {
        /// The URL that redirected (or was redirected to).
        url: String,
        /// Why it was not followed.
        reason: String,
    },
    /// The token endpoint answered something unusable.
    #[error("token endpoint {realm}: {reason}")]
    Token {
        /// The endpoint.
        realm: String,
        /// What was wrong.
        reason: String,
    },
    /// Reading a response failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The error.
        source: io::Error,
    },
}

/// A registry client. Cheap to share between threads (`&Client` is all a pull needs).
pub struct Client {
    config: RegistryConfig,
    agent: ureq::Agent,
    tokens: auth::TokenCache,
    /// Registries that asked for Basic auth: later requests send it up front.
    basic: Mutex<HashSet<String>>,
}

impl Client {
    /// A client with `config`.
    pub fn new(config: RegistryConfig) -> Client {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.read_timeout)
            .timeout_write(config.read_timeout)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            config,
            agent,
            tokens: auth::TokenCache::default(),
            basic: Mutex::new(HashSet::new()),
        }
    }

    /// `GET /v2/`: whether the registry answers and accepts the credentials.
    pub fn ping(&self, registry: &str, creds: Option<&Credentials>) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base(registry));
        let resp = self.get(registry, "", creds, &url, None)?;
        expect_ok(resp, &url, || registry.to_string()).map(drop)
    }

    /// The manifest `r` names for `platform` (through an index if it names one), every
    /// document checked against its digest.
    pub fn resolve(
        &self,
        r: &Reference,
        platform: &Platform,
        creds: Option<&Credentials>,
    ) -> Result<Resolved, RegistryError> {
        let top = self.fetch_manifest(r, &r.manifest_ref(), r.digest.as_ref(), None, creds)?;
        if !media::is_index(&top.media_type) {
            return finish(None, top);
        }
        let mut doc = self.fetch_entry(r, &top.bytes, platform, creds)?;
        if media::is_index(&doc.media_type) {
            // An index of indexes: followed once, no further.
            doc = self.fetch_entry(r, &doc.bytes, platform, creds)?;
        }
        finish(Some((top.digest, top.bytes)), doc)
    }

    /// The document an index names for `platform`, checked against the entry.
    fn fetch_entry(
        &self,
        r: &Reference,
        index: &[u8],
        platform: &Platform,
        creds: Option<&Credentials>,
    ) -> Result<Document, RegistryError> {
        let desc = pick(r, index, platform)?;
        let reference = desc.digest.to_string();
        self.fetch_manifest(r, &reference, Some(&desc.digest), Some(desc.size), creds)
    }

    /// A blob of `r`'s repository, streamed: the reader fails at its end unless the
    /// content matched `desc`'s digest and size.
    pub fn blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        creds: Option<&Credentials>,
    ) -> Result<Verified<Box<dyn Read + Send>>, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.base(&r.registry),
            r.repository,
            desc.digest
        );
        let scope = pull_scope(r);
        let resp = self.get(&r.registry, &scope, creds, &url, None)?;
        let what = format!("blob {} of {}", desc.digest, r.name());
        let resp = expect_ok(resp, &url, || format!("{}@{}", r.name(), desc.digest))?;
        let body: Box<dyn Read + Send> = Box::new(http::Annotated::new(resp.into_reader(), what));
        Ok(Verified::new(body, desc.digest.clone(), Some(desc.size)))
    }

    /// A small blob (a config) read whole, at most `max` bytes, verified.
    pub fn blob_bytes(
        &self,
        r: &Reference,
        desc: &Descriptor,
        creds: Option<&Credentials>,
        max: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let what = format!("blob {} of {}", desc.digest, r.name());
        if desc.size > max {
            return Err(RegistryError::TooLarge { what, max });
        }
        let mut out = Vec::with_capacity(desc.size as usize);
        self.blob(r, desc, creds)?
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| read_error(&what, e))?;
        Ok(out)
    }

    fn fetch_manifest(
        &self,
        r: &Reference,
        reference: &str,
        expect: Option<&Digest>,
        size: Option<u64>,
        creds: Option<&Credentials>,
    ) -> Result<Document, RegistryError> {
        let sep = if reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        let what = format!("{}{sep}{reference}", r.name());
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(&r.registry),
            r.repository
        );
        let resp = self.get(
            &r.registry,
            &pull_scope(r),
            creds,
            &url,
            Some(MANIFEST_ACCEPT),
        )?;
        let resp = expect_ok(resp, &url, || what.clone())?;
        let header_digest = match resp.header("docker-content-digest") {
            Some(h) => Some(
                h.trim()
                    .parse::<Digest>()
                    .map_err(|e| bad(&what, e.to_string()))?,
            ),
            None => None,
        };
        let content_type = resp
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let bytes = read_capped(resp.into_reader(), MANIFEST_MAX, &what)?;
        let mismatch = |source| RegistryError::Digest {
            what: what.clone(),
            source,
        };
        let digest = Digest::of(&bytes);
        if let Some(size) = size.filter(|&s| s != bytes.len() as u64) {
            return Err(mismatch(DigestError::Size {
                digest,
                expected: size,
                actual: bytes.len() as u64,
            }));
        }
        // Pinned by the caller, else by the registry's header: a proxy cannot swap it.
        if let Some(want) = expect.or(header_digest.as_ref()) {
            want.verify(&bytes).map_err(mismatch)?;
        }
        let media_type = media_type_of(content_type.as_deref(), &bytes).ok_or_else(|| {
            bad(
                &what,
                format!(
                    "unknown manifest type {:?}",
                    content_type.unwrap_or_default()
                ),
            )
        })?;
        Ok(Document {
            what,
            digest,
            bytes,
            media_type,
        })
    }

    /// A GET on `registry` with the auth dance: known auth first; on 401 the challenge is
    /// answered once (Basic, or a Bearer token for `scope`) and the request retried.
    fn get(
        &self,
        registry: &str,
        scope: &str,
        creds: Option<&Credentials>,
        url: &str,
        accept: Option<&str>,
    ) -> Result<ureq::Response, RegistryError> {
        let creds = creds.or_else(|| self.config.credentials.get(registry));
        let mut authz = self.known_auth(registry, scope, creds);
        for attempt in 0..2 {
            let resp = self.follow(url, accept, authz.as_deref())?;
            if resp.status() != 401 {
                return Ok(resp);
            }
            if attempt == 1 {
                break;
            }
            let challenge = resp.header("www-authenticate").and_then(parse_challenge);
            authz = Some(self.answer(registry, scope, creds, challenge)?);
        }
        self.tokens.forget(registry, scope);
        Err(RegistryError::Unauthorized {
            registry: registry.to_string(),
            reason: "the credentials were refused".to_string(),
        })
    }

    fn known_auth(
        &self,
        registry: &str,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Option<String> {
        if let Some(t) = self.tokens.get(registry, scope) {
            return Some(format!("Bearer {t}"));
        }
        let basic = self.basic.lock().unwrap_or_else(|e| e.into_inner());
        creds
            .filter(|_| basic.contains(registry))
            .map(auth::basic_header)
    }

    /// The Authorization value answering `challenge`.
    fn answer(
        &self,
        registry: &str,
        scope: &str,
        creds: Option<&Credentials>,
        challenge: Option<Challenge>,
    ) -> Result<String, RegistryError> {
        let denied = |reason: &str| RegistryError::Unauthorized {
            registry: registry.to_string(),
            reason: reason.to_string(),
        };
        match challenge {
            None => Err(denied(
                "it asked for an authentication scheme Berth does not speak",
            )),
            Some(Challenge::Basic) => {
                let c = creds.ok_or_else(|| denied("it wants credentials and none were given"))?;
                let mut basic = self.basic.lock().unwrap_or_else(|e| e.into_inner());
                basic.insert(registry.to_string());
                Ok(auth::basic_header(c))
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                self.tokens.forget(registry, scope);
                let want = asked.as_deref().unwrap_or(scope);
                let (token, life) =
                    self.fetch_token(registry, &realm, service.as_deref(), want, creds)?;
                self.tokens.put(registry, scope, token.clone(), life);
                Ok(format!("Bearer {token}"))
            }
        }
    }

    fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<(String, Duration), RegistryError> {
        let token_err = |reason: String| RegistryError::Token {
            realm: realm.to_string(),
            reason,
        };
        let mut url = url::Url::parse(realm).map_err(|e| token_err(e.to_string()))?;
        self.check_scheme(&url)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
        }
        let basic = creds.map(auth::basic_header);
        let resp = self.follow(url.as_str(), None, basic.as_deref())?;
        if matches!(resp.status(), 401 | 403) {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                reason: match creds {
                    Some(_) => format!("the token endpoint {realm} refused the credentials"),
                    None => {
                        format!("the token endpoint {realm} wants credentials and none were given")
                    }
                },
            });
        }
        let resp = expect_ok(resp, realm, || realm.to_string())?;
        let body = read_capped(resp.into_reader(), 1 << 20, realm)?;
        let parsed: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| token_err(e.to_string()))?;
        parsed
            .into_parts()
            .ok_or_else(|| token_err("the answer has no token".to_string()))
    }

    /// One GET, redirects followed by hand: at most [`MAX_REDIRECTS`], Authorization only
    /// while on the first URL's host and port, no step down from https to a host that is
    /// not allowed plain HTTP.
    fn follow(
        &self,
        url: &str,
        accept: Option<&str>,
        authz: Option<&str>,
    ) -> Result<ureq::Response, RegistryError> {
        let redirect_err = |url: &str, reason: String| RegistryError::Redirect {
            url: url.to_string(),
            reason,
        };
        let mut url = url::Url::parse(url).map_err(|e| redirect_err(url, e.to_string()))?;
        let origin = http::host_port(&url);
        let mut authz = authz;
        for _ in 0..=MAX_REDIRECTS {
            if http::host_port(&url) != origin {
                authz = None;
            }
            let resp = self.call(&url, accept, authz)?;
            if !(300..400).contains(&resp.status()) || resp.status() == 304 {
                return Ok(resp);
            }
            let location = resp.header("location").ok_or_else(|| {
                redirect_err(url.as_str(), "a redirect without a Location".to_string())
            })?;
            let next = url
                .join(location)
                .map_err(|e| redirect_err(location, e.to_string()))?;
            self.check_scheme(&next)?;
            url = next;
        }
        Err(redirect_err(
            url.as_str(),
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// One request, retried with exponential backoff after connection errors, 5xx and 429.
    fn call(
        &self,
        url: &url::Url,
        accept: Option<&str>,
        authz: Option<&str>,
    ) -> Result<ureq::Response, RegistryError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let mut req = self.agent.request_url("GET", url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(a) = authz {
                req = req.set("Authorization", a);
            }
            let outcome = req.call();
            if attempt >= self.config.retries || !http::retryable(&outcome) {
                return http::response(outcome, url);
            }
            attempt += 1;
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// `http` or `https` for a registry.
    fn base(&self, registry: &str) -> String {
        let host = if registry == crate::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if self.plain_allowed(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    fn plain_allowed(&self, host_port: &str) -> bool {
        self.config.insecure.iter().any(|h| h == host_port) || http::is_loopback(host_port)
    }

    fn check_scheme(&self, url: &url::Url) -> Result<(), RegistryError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.plain_allowed(&http::host_port(url)) => Ok(()),
            other => Err(RegistryError::Redirect {
                url: url.to_string(),
                reason: format!("{other} is not allowed for this host (https only unless it is insecure or loopback)"),
            }),
        }
    }
}

/// A manifest or index as fetched.
struct Document {
    what: String,
    digest: Digest,
    bytes: Vec<u8>,
    media_type: String,
}

fn pull_scope(r: &Reference) -> String {
    format!("repository:{}:pull", r.repository)
}

fn bad(what: &str, reason: String) -> RegistryError {
    RegistryError::BadManifest {
        reference: what.to_string(),
        reason,
    }
}

/// 200 passes; 404 is NotFound naming `reference()`; anything else a status error.
fn expect_ok(
    resp: ureq::Response,
    url: &str,
    reference: impl FnOnce() -> String,
) -> Result<ureq::Response, RegistryError> {
    match resp.status() {
        200 => Ok(resp),
        404 => Err(RegistryError::NotFound {
            reference: reference(),
        }),
        status => Err(RegistryError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

fn read_capped(reader: impl Read, max: u64, what: &str) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| read_error(what, e))?;
    if out.len() as u64 > max {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            max,
        });
    }
    Ok(out)
}

/// A read error as the registry error it stands for (digest mismatch, timeout, I/O).
fn read_error(what: &str, e: io::Error) -> RegistryError {
    if e.get_ref().is_some_and(|i| i.is::<DigestError>()) {
        let kind = e.kind();
        return match e.into_inner().map(|i| i.downcast::<DigestError>()) {
            Some(Ok(d)) => RegistryError::Digest {
                what: what.to_string(),
                source: *d,
            },
            _ => RegistryError::Io {
                what: what.to_string(),
                source: kind.into(),
            },
        };
    }
    RegistryError::Io {
        what: what.to_string(),
        source: e,
    }
}

/// The media type from the Content-Type header, else from the document itself.
fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let known = |m: &str| media::is_index(m) || media::is_manifest(m);
    if let Some(c) = content_type.filter(|c| known(c)) {
        return Some(c.to_string());
    }
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    match doc.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) if known(m) => Some(m.to_string()),
        Some(_) => None,
        None if doc.get("manifests").is_some() => Some(media::OCI_INDEX.to_string()),
        None if doc.get("layers").is_some() => Some(media::OCI_MANIFEST.to_string()),
        None => None,
    }
}

/// The index entry for `platform`, or an error listing what the index has.
fn pick(r: &Reference, bytes: &[u8], platform: &Platform) -> Result<Descriptor, RegistryError> {
    let index: Index =
        serde_json::from_slice(bytes).map_err(|e| bad(&r.to_string(), e.to_string()))?;
    platform
        .select(&index.manifests)
        .cloned()
        .ok_or_else(|| RegistryError::NoPlatform {
            reference: r.to_string(),
            wanted: platform.clone(),
            available: index
                .manifests
                .iter()
                .map(|d| platform::describe(d.platform.as_ref()))
                .collect(),
        })
}

fn finish(index: Option<(Digest, Vec<u8>)>, doc: Document) -> Result<Resolved, RegistryError> {
    if !media::is_manifest(&doc.media_type) {
        return Err(bad(
            &doc.what,
            format!("expected an image manifest, got {}", doc.media_type),
        ));
    }
    let manifest: Manifest =
        serde_json::from_slice(&doc.bytes).map_err(|e| bad(&doc.what, e.to_string()))?;
    Ok(Resolved {
        index,
        manifest_digest: doc.digest,
        manifest_bytes: doc.bytes,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_insecure_registries() {
        let c = Client::new(RegistryConfig {
            insecure: vec!["reg.lan:5000".to_string()],
            ..RegistryConfig::default()
        });
        assert_eq!(c.base("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(c.base("localhost:5000"), "http://localhost:5000");
        assert_eq!(c.base("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(c.base("reg.lan:5000"), "http://reg.lan:5000");
        assert_eq!(c.base("reg.lan"), "https://reg.lan");
        assert_eq!(c.base("docker.io"), "https://registry-1.docker.io");
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(c.check_scheme(&url("https://cdn.example/x")).is_ok());
        assert!(c.check_scheme(&url("http://127.0.0.1:9/x")).is_ok());
        assert!(c.check_scheme(&url("http://reg.lan:5000/x")).is_ok());
        let err = c.check_scheme(&url("http://cdn.example/x")).unwrap_err();
        assert!(matches!(err, RegistryError::Redirect { .. }), "{err}");
        assert!(c.check_scheme(&url("ftp://127.0.0.1/x")).is_err());
    }

    #[test]
    fn media_types_come_from_the_header_or_the_document() {
        let oci = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(media_type_of(None, oci).as_deref(), Some(media::OCI_INDEX));
        let m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(
            media_type_of(Some("text/plain"), m).as_deref(),
            Some(media::OCI_MANIFEST)
        );
        assert_eq!(
            media_type_of(Some(media::DOCKER_LIST), b"{}").as_deref(),
            Some(media::DOCKER_LIST)
        );
        let schema1 = br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert_eq!(media_type_of(None, schema1), None);
        assert_eq!(media_type_of(None, b"not json"), None);
    }

    #[test]
    fn credentials_do_not_print_their_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
