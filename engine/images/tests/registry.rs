//! The registry client against a real registry (Debian's docker-registry on loopback,
//! started per test) and against small loopback servers that misbehave on purpose:
//! stall mid-blob, corrupt bytes, redirect elsewhere, fail then recover.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_images::manifest::{media, Descriptor, ImageConfig};
use berth_images::reference::Reference;
use berth_images::registry::{
    Client, Credentials, Platform, RegistryConfig, RegistryError, Resolved,
};
use berth_images::{Digest, DigestError};
use berth_testkit::http::{self, Request, Server};
use berth_testkit::image::{
    host_platform, Blob, BuiltImage, BuiltManifest, Compression, Format, ImageBuilder, Layer,
};
use berth_testkit::registry::{free_port, Mode, Registry, PASSWORD, USER};

fn client() -> Client {
    Client::new(RegistryConfig {
        read_timeout: Duration::from_secs(10),
        ..RegistryConfig::default()
    })
}

fn reference(host: &str, name: &str) -> Reference {
    format!("{host}/{name}").parse().unwrap()
}

fn creds(password: &str) -> Credentials {
    Credentials {
        username: USER.to_string(),
        password: password.to_string(),
    }
}

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

/// Resolves `name` on `reg`, then fetches and checks the config and every layer.
fn pull_and_check(
    c: &Client,
    r: &Reference,
    want: &BuiltManifest,
    cr: Option<&Credentials>,
) -> Resolved {
    let res = c.resolve(r, &Platform::host(), cr).unwrap();
    assert_eq!(res.manifest_digest, digest(&want.manifest.digest));
    assert_eq!(res.manifest_bytes, want.manifest.bytes);
    let config = c.blob_bytes(r, &res.manifest.config, cr, 1 << 20).unwrap();
    assert_eq!(config, want.config.bytes);
    let config: ImageConfig = serde_json::from_slice(&config).unwrap();
    let diff_ids: Vec<String> = config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(diff_ids, want.diff_ids);
    assert_eq!(res.manifest.layers.len(), want.layers.len());
    for (desc, blob) in res.manifest.layers.iter().zip(&want.layers) {
        assert_eq!(desc.media_type, blob.media_type);
        let mut got = Vec::new();
        c.blob(r, desc, cr).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == blob.bytes, "layer {} differs", desc.digest);
    }
    res
}

#[test]
fn oci_and_docker_images_resolve_and_their_blobs_verify() {
    let reg = Registry::start(Mode::Open);
    let c = client();
    for (format, name) in [
        (Format::Oci, "test/oci:1"),
        (Format::Docker, "test/docker:1"),
    ] {
        let built = ImageBuilder::busybox().format(format).push(&reg, name);
        let r = reference(&reg.host(), name);
        let res = pull_and_check(&c, &r, built.main(), None);
        assert!(res.index.is_none());
        assert!(media::is_manifest(
            res.manifest.media_type.as_deref().unwrap()
        ));
        // The same manifest by digest.
        let pinned = r.with_digest(res.manifest_digest.clone());
        let again = c.resolve(&pinned, &Platform::host(), None).unwrap();
        assert_eq!(again.manifest_bytes, res.manifest_bytes);
    }
    c.ping(&reg.host(), None).unwrap();
    // The harness leaves nothing behind: the process is gone once the guard is.
    let (pid, storage) = (reg.pid(), reg.storage());
    assert!(storage.exists());
    drop(reg);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!storage.exists());
}

#[test]
fn uncompressed_gzip_and_zstd_layers_stream_verified() {
    let reg = Registry::start(Mode::Open);
    let c = client();
    let extra = Layer::new()
        .dir("data")
        .file("data/a", b"a\n")
        .whiteout("etc/group")
        .opaque("root");
    for (comp, tag) in [
        (Compression::None, "none"),
        (Compression::Gzip, "gzip"),
        (Compression::Zstd, "zstd"),
    ] {
        let name = format!("test/layers:{tag}");
        let built = ImageBuilder::busybox()
            .compression(comp)
            .layer(extra.clone())
            .push(&reg, &name);
        pull_and_check(&c, &reference(&reg.host(), &name), built.main(), None);
    }
}

#[test]
fn an_image_of_more_than_128_layers_resolves() {
    let reg = Registry::start(Mode::Open);
    let mut b = ImageBuilder::busybox().compression(Compression::None);
    for i in 0..130 {
        b = b.layer(Layer::new().file(format!("layers/{i}"), format!("{i}\n").as_bytes()));
    }
    let built = b.push(&reg, "test/deep:1");
    let res = client()
        .resolve(
            &reference(&reg.host(), "test/deep:1"),
            &Platform::host(),
            None,
        )
        .unwrap();
    assert_eq!(res.manifest.layers.len(), 131);
    assert_eq!(res.manifest_digest, digest(&built.main().manifest.digest));
}

#[test]
fn an_index_resolves_to_the_wanted_platform_and_refuses_a_missing_one() {
    let reg = Registry::start(Mode::Open);
    let c = client();
    for (format, name) in [
        (Format::Oci, "test/multi:oci"),
        (Format::Docker, "test/multi:docker"),
    ] {
        let built: BuiltImage = ImageBuilder::busybox()
            .format(format)
            .also_platform("linux/arm64/v8")
            .push(&reg, name);
        let r = reference(&reg.host(), name);
        let res = pull_and_check(&c, &r, built.main(), None);
        let (index_digest, index_bytes) = res.index.clone().unwrap();
        assert_eq!(index_digest.to_string(), built.target());
        assert_eq!(index_bytes, built.index.as_ref().unwrap().bytes);
        let arm = c
            .resolve(&r, &"linux/arm64".parse().unwrap(), None)
            .unwrap();
        assert_eq!(
            arm.manifest_digest,
            digest(&built.manifests[1].manifest.digest)
        );
        // By the index's digest, too.
        let pinned = c
            .resolve(
                &r.with_digest(index_digest),
                &"linux/arm64/v8".parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(pinned.manifest_digest, arm.manifest_digest);

        let err = c
            .resolve(&r, &"linux/riscv64".parse().unwrap(), None)
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::NoPlatform { ref available, .. } if available.len() == 2),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("linux/riscv64") && msg.contains("linux/arm64/v8") && msg.contains(name),
            "{msg}"
        );
    }
}

#[test]
fn basic_auth_passes_with_the_password_and_refuses_a_wrong_one() {
    let reg = Registry::start(Mode::Basic);
    let built = ImageBuilder::busybox().push(&reg, "test/basic:1");
    let r = reference(&reg.host(), "test/basic:1");
    let c = client();
    pull_and_check(&c, &r, built.main(), Some(&creds(PASSWORD)));
    // Credentials from the config serve when the request brings none.
    let mut config = RegistryConfig::default();
    config.credentials.insert(reg.host(), creds(PASSWORD));
    pull_and_check(&Client::new(config), &r, built.main(), None);

    for cr in [Some(creds("wrong")), None] {
        let err = client()
            .resolve(&r, &Platform::host(), cr.as_ref())
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::Unauthorized { ref registry, .. } if *registry == reg.host()),
            "{err}"
        );
        assert!(err.to_string().contains(&reg.host()), "{err}");
    }
}

#[test]
fn token_auth_gets_one_token_per_scope_and_refuses_a_wrong_password() {
    let reg = Registry::start(Mode::Token);
    let built = ImageBuilder::busybox()
        .layer(Layer::new().file("x", b"x"))
        .push(&reg, "test/token:1");
    let r = reference(&reg.host(), "test/token:1");
    let c = client();
    let before = reg.token_requests();
    pull_and_check(&c, &r, built.main(), Some(&creds(PASSWORD)));
    pull_and_check(&c, &r, built.main(), Some(&creds(PASSWORD)));
    // Manifest, config and two layers, twice: one token, cached for the repository's scope.
    assert_eq!(reg.token_requests() - before, 1);

    let err = client()
        .resolve(&r, &Platform::host(), Some(&creds("wrong")))
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { ref registry, .. } if *registry == reg.host()),
        "{err}"
    );
    let err = client().resolve(&r, &Platform::host(), None).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
}

#[test]
fn unknown_repositories_tags_and_blobs_are_not_found() {
    let reg = Registry::start(Mode::Open);
    let built = ImageBuilder::busybox().push(&reg, "test/known:1");
    let c = client();
    for name in ["test/unknown:1", "test/known:nope"] {
        let r = reference(&reg.host(), name);
        let err = c.resolve(&r, &Platform::host(), None).unwrap_err();
        assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("{}/{name}", reg.host())),
            "{err}"
        );
    }
    let mut desc = descriptor_of(&built.main().layers[0].bytes);
    desc.digest = Digest::of(b"not there");
    let err = c
        .blob(&reference(&reg.host(), "test/known:1"), &desc, None)
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { ref reference } if reference.contains(&desc.digest.to_string())),
        "{err}"
    );
}

#[test]
fn a_registry_that_is_down_is_a_clear_error() {
    let host = format!("127.0.0.1:{}", free_port());
    let c = Client::new(RegistryConfig {
        retries: 1,
        ..RegistryConfig::default()
    });
    let err = c
        .resolve(&reference(&host, "x:1"), &Platform::host(), None)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unreachable { ref registry, .. } if *registry == host),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("registry {host} is unreachable")),
        "{err}"
    );
}

fn descriptor_of(bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media::OCI_LAYER.to_string(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    }
}

#[test]
fn a_blob_that_stalls_midway_times_out() {
    let blob = vec![7u8; 64 * 1024];
    let half = blob[..blob.len() / 2].to_vec();
    let len = blob.len() as u64;
    let server = Server::start(move |_req: &Request, conn: &mut TcpStream| {
        let _ = http::write_head(conn, 200, &[], len);
        let _ = conn.write_all(&half);
        let _ = conn.flush();
        std::thread::sleep(Duration::from_secs(5));
    });
    let c = Client::new(RegistryConfig {
        read_timeout: Duration::from_millis(300),
        retries: 0,
        ..RegistryConfig::default()
    });
    let desc = descriptor_of(&blob);
    let mut reader = c
        .blob(&reference(&server.host(), "x:1"), &desc, None)
        .unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains(&desc.digest.to_string()), "{err}");
    let err = c
        .blob_bytes(&reference(&server.host(), "x:1"), &desc, None, len)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Io { ref source, .. } if source.kind() == io::ErrorKind::TimedOut),
        "{err}"
    );
}

/// A proxy to `reg` that flips one byte of every body whose path contains `corrupt`,
/// and drops Docker-Content-Digest when `strip_digest`.
fn corrupting_proxy(reg: &Registry, corrupt: &'static str, strip_digest: bool) -> Server {
    http::proxy(reg.url(), move |req, headers, body| {
        if req.path.contains(corrupt) && !body.is_empty() {
            let mid = body.len() / 2;
            body[mid] ^= 0x20;
        }
        if strip_digest {
            headers.retain(|(n, _)| n != "docker-content-digest");
        }
    })
}

#[test]
fn a_corrupted_manifest_or_blob_is_a_digest_mismatch() {
    let reg = Registry::start(Mode::Open);
    let built = ImageBuilder::busybox().push(&reg, "test/corrupt:1");
    let c = client();

    // A manifest checked against the registry's Docker-Content-Digest …
    let proxy = corrupting_proxy(&reg, "/manifests/", false);
    let r = reference(&proxy.host(), "test/corrupt:1");
    let err = c.resolve(&r, &Platform::host(), None).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Digest {
                source: DigestError::Mismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    // … and, with that header gone, against the digest asked for.
    let proxy = corrupting_proxy(&reg, "/manifests/", true);
    let r = reference(&proxy.host(), "test/corrupt:1")
        .with_digest(digest(&built.main().manifest.digest));
    let err = c.resolve(&r, &Platform::host(), None).unwrap_err();
    assert!(matches!(err, RegistryError::Digest { .. }), "{err}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");

    // Blobs: the stream fails at its end, blob_bytes with a typed error.
    let proxy = corrupting_proxy(&reg, "/blobs/", false);
    let r = reference(&proxy.host(), "test/corrupt:1");
    let res = c.resolve(&r, &Platform::host(), None).unwrap();
    let err = c
        .blob(&r, &res.manifest.layers[0], None)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    let err = c
        .blob_bytes(&r, &res.manifest.config, None, 1 << 20)
        .unwrap_err();
    assert!(matches!(err, RegistryError::Digest { .. }), "{err}");
}

#[test]
fn a_redirect_to_another_host_carries_no_authorization() {
    let blob = b"blob behind a redirect".to_vec();
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let seen2 = seen.clone();
    let body = blob.clone();
    let storage = Server::start(move |req: &Request, conn: &mut TcpStream| {
        seen2.lock().unwrap().push(req.clone());
        http::respond(conn, 200, &[], &body);
    });
    let storage_url = storage.url();
    let front_auth: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let front_auth2 = front_auth.clone();
    let front = Server::start(move |req: &Request, conn: &mut TcpStream| {
        let authz = req.header("authorization").map(str::to_string);
        front_auth2.lock().unwrap().push(authz.clone());
        if authz.is_none() {
            return http::respond(conn, 401, &[("WWW-Authenticate", "Basic realm=\"r\"")], b"");
        }
        let to = format!("{storage_url}/storage/blob?sig=1");
        http::respond(conn, 307, &[("Location", &to)], b"");
    });
    let c = client();
    let r = reference(&front.host(), "x:1");
    let got = c
        .blob_bytes(&r, &descriptor_of(&blob), Some(&creds(PASSWORD)), 1 << 20)
        .unwrap();
    assert_eq!(got, blob);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/storage/blob?sig=1");
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "Authorization leaked to {}",
        storage.host()
    );
    assert!(front_auth
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.as_deref().is_some_and(|a| a.starts_with("Basic "))));
}

#[test]
fn endless_redirects_stop() {
    let hops = Arc::new(AtomicUsize::new(0));
    let h = hops.clone();
    let server = Server::start(move |req: &Request, conn: &mut TcpStream| {
        h.fetch_add(1, Ordering::SeqCst);
        let to = format!("{}x", req.path);
        http::respond(conn, 302, &[("Location", &to)], b"");
    });
    let err = client()
        .blob_bytes(
            &reference(&server.host(), "x:1"),
            &descriptor_of(b"x"),
            None,
            10,
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::Redirect { .. }), "{err}");
    assert_eq!(hops.load(Ordering::SeqCst), 6);
}

#[test]
fn server_errors_are_retried_and_client_errors_are_not() {
    let blob = b"eventually".to_vec();
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let body = blob.clone();
    let server = Server::start(move |req: &Request, conn: &mut TcpStream| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        match (req.path.contains("bad"), i) {
            (true, _) => http::respond(conn, 400, &[], b"no"),
            (false, 0) => http::respond(conn, 503, &[], b""),
            (false, 1) => http::respond(conn, 429, &[], b""),
            _ => http::respond(conn, 200, &[], &body),
        }
    });
    let c = client();
    let got = c
        .blob_bytes(
            &reference(&server.host(), "x:1"),
            &descriptor_of(&blob),
            None,
            100,
        )
        .unwrap();
    assert_eq!(got, blob);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    calls.store(0, Ordering::SeqCst);
    let err = c
        .blob_bytes(
            &reference(&server.host(), "bad:1"),
            &descriptor_of(&blob),
            None,
            100,
        )
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 400, .. }),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An index with one entry, for the host's platform, pointing at `target`.
fn index_of(target: &Blob) -> Blob {
    let (os, arch) = host_platform()
        .split_once('/')
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [
        {"mediaType": target.media_type, "digest": target.digest, "size": target.bytes.len(),
         "platform": {"os": os, "architecture": arch}}]});
    let bytes = index.to_string().into_bytes();
    Blob {
        media_type: media::OCI_INDEX.to_string(),
        digest: Digest::of(&bytes).to_string(),
        bytes,
    }
}

#[test]
fn a_nested_index_is_followed_once_and_no_deeper() {
    let reg = Registry::start(Mode::Open);
    let built = ImageBuilder::busybox()
        .also_platform("linux/arm64/v8")
        .push(&reg, "test/nested:inner");
    let outer = index_of(built.index.as_ref().unwrap());
    reg.push_manifest("test/nested", "outer", &outer.media_type, &outer.bytes);
    let c = client();
    let res = c
        .resolve(
            &reference(&reg.host(), "test/nested:outer"),
            &Platform::host(),
            None,
        )
        .unwrap();
    assert_eq!(res.manifest_digest, digest(&built.main().manifest.digest));
    assert_eq!(res.index.unwrap().0, digest(&outer.digest));

    let deeper = index_of(&outer);
    reg.push_manifest("test/nested", "deeper", &deeper.media_type, &deeper.bytes);
    let err = c
        .resolve(
            &reference(&reg.host(), "test/nested:deeper"),
            &Platform::host(),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::BadManifest { .. }), "{err}");
    assert!(
        err.to_string().contains("expected an image manifest"),
        "{err}"
    );
}

#[test]
fn a_config_larger_than_the_cap_is_refused_before_it_is_read() {
    let reg = Registry::start(Mode::Open);
    let built = ImageBuilder::busybox().push(&reg, "test/cap:1");
    let r = reference(&reg.host(), "test/cap:1");
    let c = client();
    let res = c.resolve(&r, &Platform::host(), None).unwrap();
    let max = built.main().config.bytes.len() as u64 - 1;
    let err = c
        .blob_bytes(&r, &res.manifest.config, None, max)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { max: m, .. } if m == max),
        "{err}"
    );
}

#[test]
fn a_registry_that_never_answers_times_out() {
    let server = Server::start(|_req: &Request, _conn: &mut TcpStream| {
        std::thread::sleep(Duration::from_secs(5));
    });
    let c = Client::new(RegistryConfig {
        read_timeout: Duration::from_millis(300),
        retries: 1,
        ..RegistryConfig::default()
    });
    let err = c
        .resolve(&reference(&server.host(), "x:1"), &Platform::host(), None)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Timeout { ref registry, .. } if *registry == server.host()),
        "{err}"
    );
}
