//! Pulls through the images service against a real registry on loopback: every layer
//! kind and manifest format ends in a mounted root filesystem; a deep image mounts;
//! concurrent pulls fetch each blob once; a corrupt blob or a full disk fails the pull
//! and leaves nothing that looks complete.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_images::runspec::Overrides;
use berth_images::{Images, ImagesConfig, ImagesError, RootfsMode};
use berth_testkit::http::{self, Server};
use berth_testkit::image::{Compression, Format, ImageBuilder, Layer};
use berth_testkit::registry::{Mode, Registry};

/// An images service rooted in a fresh temporary directory.
fn service(root: &Path) -> Images {
    Images::open(ImagesConfig {
        root: root.to_path_buf(),
        ..Default::default()
    })
    .unwrap()
}

/// Mount container `id` of `image`, give `check` its root, then release it.
fn with_rootfs(images: &Images, id: &str, image: &str, check: impl FnOnce(&Path)) {
    let prepared = images
        .prepare(id, image, &Overrides::default(), RootfsMode::Host)
        .unwrap();
    let released = ReleaseOnDrop(images, id);
    check(&prepared.rootfs);
    drop(released);
    assert!(!prepared.rootfs.exists(), "{}", prepared.rootfs.display());
}

/// Releases a container's root filesystem, also when a check fails.
struct ReleaseOnDrop<'a>(&'a Images, &'a str);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.release(self.1);
    }
}

/// Nothing half-made in `root` and no image recorded: no image record, no partial ingest
/// file, no pending layer directory, and every blob stored is whole (its content hashes
/// to its name). Layers that were complete and verified before the failure may stay:
/// they are shared content a later pull reuses.
fn nothing_stored(root: &Path) {
    let names = |sub: &str| -> Vec<String> {
        std::fs::read_dir(root.join(sub))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(names("images").is_empty(), "{:?}", names("images"));
    assert!(names("ingest").is_empty(), "{:?}", names("ingest"));
    let pending: Vec<String> = names("snapshots/layers")
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
    for hex in names("blobs/sha256") {
        let bytes = std::fs::read(root.join("blobs/sha256").join(&hex)).unwrap();
        let digest: berth_images::Digest = format!("sha256:{hex}").parse().unwrap();
        assert!(digest.verify(&bytes).is_ok(), "blob {hex} is not whole");
    }
}

#[test]
fn every_layer_kind_and_format_pulls_into_a_mounted_root() {
    let reg = Registry::start(Mode::Open);
    let tmp = tempfile::tempdir().unwrap();
    let images = service(tmp.path());
    let cases = [
        ("gzip-oci", Compression::Gzip, Format::Oci),
        ("gzip-docker", Compression::Gzip, Format::Docker),
        ("zstd", Compression::Zstd, Format::Oci),
        ("plain", Compression::None, Format::Docker),
    ];
    for (tag, compression, format) in cases {
        ImageBuilder::busybox()
            .compression(compression)
            .format(format)
            .layer(
                Layer::new()
                    .file("etc/gone", b"x")
                    .dir("data")
                    .file("data/old", b"x"),
            )
            .layer(
                Layer::new()
                    .whiteout("etc/gone")
                    .opaque("data")
                    .file("data/new", b"n"),
            )
            .push(&reg, &format!("test/kinds:{tag}"));
        let name = format!("{}/test/kinds:{tag}", reg.host());
        let progress = Mutex::new(Vec::new());
        let record = images
            .pull(&name, None, &|p| progress.lock().unwrap().push(p))
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(record.layers.len(), 3, "{tag}");
        let seen = progress.into_inner().unwrap();
        assert!(
            matches!(seen.last(), Some(berth_images::pull::Progress::Done { .. })),
            "{tag}: {seen:?}"
        );
        with_rootfs(&images, &format!("c-{tag}"), &name, |root| {
            assert!(root.join("bin/busybox").is_file(), "{tag}");
            assert!(!root.join("etc/gone").exists(), "{tag}: the whiteout");
            assert!(root.join("data/new").exists(), "{tag}");
            assert!(!root.join("data/old").exists(), "{tag}: the opaque dir");
        });
    }
    // Snapshots are named by the uncompressed layers' chain: the four images, whatever
    // their compression and format, share three.
    let layers = std::fs::read_dir(tmp.path().join("snapshots/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 3, "{layers} layer snapshots");
}

#[test]
fn an_image_of_more_than_128_layers_mounts() {
    let reg = Registry::start(Mode::Open);
    let mut builder = ImageBuilder::busybox();
    for i in 0..140 {
        builder = builder.layer(Layer::new().file(format!("layers/{i:03}"), b"x"));
    }
    builder.push(&reg, "test/deep:1");
    let tmp = tempfile::tempdir().unwrap();
    let images = service(tmp.path());
    let name = format!("{}/test/deep:1", reg.host());
    let record = images.pull(&name, None, &|_| {}).unwrap();
    assert_eq!(record.layers.len(), 141);
    with_rootfs(&images, "deep", &name, |root| {
        let n = std::fs::read_dir(root.join("layers")).unwrap().count();
        assert_eq!(n, 140);
    });
}

/// A proxy to `reg` counting the blob GETs it forwards, optionally flipping a byte in
/// blobs of more than `corrupt_over` bytes.
fn counting_proxy(reg: &Registry, corrupt_over: Option<usize>) -> (Server, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    let server = http::proxy(reg.url(), move |req, _, body| {
        if req.path.contains("/blobs/") && req.method == "GET" {
            counted.fetch_add(1, Ordering::SeqCst);
            if corrupt_over.is_some_and(|n| body.len() > n) {
                let mid = body.len() / 2;
                body[mid] ^= 0x20;
            }
        }
    });
    (server, count)
}

#[test]
fn concurrent_pulls_of_one_image_fetch_each_blob_once() {
    let reg = Registry::start(Mode::Open);
    let built = ImageBuilder::busybox()
        .layer(Layer::new().file("a", &[1; 4096]))
        .layer(Layer::new().file("b", &[2; 4096]))
        .push(&reg, "test/shared:1");
    let (proxy, count) = counting_proxy(&reg, None);
    let tmp = tempfile::tempdir().unwrap();
    let images = service(tmp.path());
    let name = format!("{}/test/shared:1", proxy.host());
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    images
                        .pull(&name, None, &|_| {})
                        .unwrap()
                        .config
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    // One GET per layer blob and at most one per config per puller (the config is
    // small and fetched before the layers' locks).
    let layers = built.main().layers.len();
    let got = count.load(Ordering::SeqCst);
    assert!(
        got >= layers && got <= layers + 4,
        "{got} blob GETs for {layers} layers"
    );
}

#[test]
fn a_corrupt_layer_fails_the_pull_and_stores_nothing() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/corrupt:1");
    // Layers are the only blobs over 64 KiB here (busybox itself is a megabyte).
    let (proxy, _) = counting_proxy(&reg, Some(64 << 10));
    let tmp = tempfile::tempdir().unwrap();
    let images = service(tmp.path());
    let name = format!("{}/test/corrupt:1", proxy.host());
    let err = images.pull(&name, None, &|_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            ImagesError::Unpack { .. } | ImagesError::Registry(_) | ImagesError::Store(_)
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("mismatch") || text.contains("corrupt") || text.contains("invalid"),
        "{text}"
    );
    assert!(images.list().is_empty());
    nothing_stored(tmp.path());
}

#[test]
fn a_full_disk_fails_the_pull_and_leaves_nothing_half_made() {
    let reg = Registry::start(Mode::Open);
    // Incompressible data, so the layer is as big on the wire as on disk: 6 MiB.
    let mut noise = vec![0u8; 6 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    ImageBuilder::busybox()
        .layer(Layer::new().file("noise", &noise))
        .push(&reg, "test/big:1");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("small");
    std::fs::create_dir(&root).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &root,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        Some(c"size=8m"),
    )
    .unwrap();
    let unmount = Unmount(&root);
    let images = service(&root);
    let name = format!("{}/test/big:1", reg.host());
    let err = images.pull(&name, None, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(images.list().is_empty());
    nothing_stored(&root);
    drop(images);
    drop(unmount);
}

/// Unmounts a test's tmpfs, also when the test fails.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn an_in_namespace_prepare_mounts_nothing_and_asks_the_runtime_by_annotation() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox()
        .layer(Layer::new().file(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\napp:x:1234:5678::/home/app:/bin/sh\n",
        ))
        .config("User", serde_json::json!("app"))
        .config("WorkingDir", serde_json::json!("/made/by/prepare"))
        .push(&reg, "test/ns:1");
    let tmp = tempfile::tempdir().unwrap();
    let images = service(tmp.path());
    let name = format!("{}/test/ns:1", reg.host());
    images.pull(&name, None, &|_| {}).unwrap();
    let prepared = images
        .prepare("ns", &name, &Overrides::default(), RootfsMode::InNamespace)
        .unwrap();
    let released = ReleaseOnDrop(&images, "ns");
    let dir = prepared.rootfs.parent().unwrap().to_path_buf();
    // Nothing mounted anywhere under the store, the rootfs an empty dir.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(tmp.path().to_str().unwrap()), "{info}");
    assert!(std::fs::read_dir(&prepared.rootfs)
        .unwrap()
        .next()
        .is_none());
    // The spec was built through the overlay: the image's user, its working dir made
    // (in the upper dir), and the runtime's annotation with a fresh work dir.
    let spec = &prepared.spec;
    let user = spec.process().as_ref().unwrap().user();
    assert_eq!((user.uid(), user.gid()), (1234, 5678));
    assert!(dir.join("upper/made/by/prepare").is_dir());
    assert_eq!(spec.root().as_ref().unwrap().path(), &prepared.rootfs);
    let value = &spec.annotations().as_ref().unwrap()[berth_overlay::ANNOTATION];
    let plan = berth_overlay::OverlayPlan::from_annotation(value).unwrap();
    assert_eq!(
        (plan.upper, plan.work.clone()),
        (dir.join("upper"), dir.join("work"))
    );
    assert_eq!(plan.lower.len(), 2);
    assert!(std::fs::read_dir(&plan.work).unwrap().next().is_none());
    drop(released);
    assert!(!dir.exists(), "{}", dir.display());
}

#[test]
fn containers_of_an_image_whose_files_answer_the_spec_share_one_view_of_it() {
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox()
        .layer(
            Layer::new()
                .file(
                    "etc/passwd",
                    b"root:x:0:0::/root:/bin/sh\napp:x:1234:5678::/home/app:/bin/sh\n",
                )
                .dir("srv/app"),
        )
        .config("User", serde_json::json!("app"))
        .config("WorkingDir", serde_json::json!("/srv/app"))
        .push(&reg, "test/view:1");
    let tmp = tempfile::tempdir().unwrap();
    let images = service(tmp.path());
    let name = format!("{}/test/view:1", reg.host());
    images.pull(&name, None, &|_| {}).unwrap();
    for id in ["v1", "v2"] {
        let prepared = images
            .prepare(id, &name, &Overrides::default(), RootfsMode::InNamespace)
            .unwrap();
        let released = ReleaseOnDrop(&images, id);
        let dir = prepared.rootfs.parent().unwrap().to_path_buf();
        // The user came from the image's passwd, the working dir existed: nothing was
        // written into the container's upper, and nothing is mounted for it.
        let user = prepared.spec.process().as_ref().unwrap().user();
        assert_eq!((user.uid(), user.gid()), (1234, 5678));
        assert!(std::fs::read_dir(dir.join("upper"))
            .unwrap()
            .next()
            .is_none());
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!info.contains(tmp.path().to_str().unwrap()), "{info}");
        drop(released);
    }
    // The view goes with a collection (it pins the layers): the image is still whole.
    images.gc().unwrap();
    let prepared = images
        .prepare("v3", &name, &Overrides::default(), RootfsMode::InNamespace)
        .unwrap();
    assert_eq!(prepared.spec.process().as_ref().unwrap().user().uid(), 1234);
    images.release("v3").unwrap();
}
