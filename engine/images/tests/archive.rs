//! Archives in and out, against real peers: an OCI layout built here from Debian's
//! busybox-static is turned by skopeo into `docker-archive:` and `oci-archive:` tarballs,
//! which import; what `save` writes, skopeo reads back and import takes again.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_images::archive::{import, save, ArchiveError};
use berth_images::manifest::{media, Descriptor, ImageConfig, Index, Manifest};
use berth_images::store::{Store, StoreError};
use berth_images::{Digest, DigestError};

const NAME: &str = "docker.io/library/busybox:latest";

/// The OCI layout this test builds: its directory and the digests of its parts.
struct Layout {
    dir: PathBuf,
    layer: Digest,
    config: Digest,
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A layer with /bin/busybox (Debian's busybox-static) and a few applet symlinks.
fn busybox_layer() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, "bin/", std::io::empty()).unwrap();
    let busybox = fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", &busybox[..])
        .unwrap();
    for applet in ["sh", "echo", "ls"] {
        let mut l = tar::Header::new_ustar();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        l.set_mode(0o777);
        tar.append_link(&mut l, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    tar.into_inner().unwrap()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    d
}

/// Builds an OCI image layout under `root/layout`, tagged `latest`.
fn build_layout(root: &Path) -> Layout {
    let dir = root.join("layout");
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let layer = busybox_layer();
    let layer_d = write_blob(&dir, &layer);
    let config = format!(
        r#"{{"architecture":"{}","os":"linux","config":{{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}},"rootfs":{{"type":"layers","diff_ids":["{layer_d}"]}},"history":[{{"created_by":"berth test"}}]}}"#,
        host_arch()
    );
    let config_d = write_blob(&dir, config.as_bytes());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: descriptor(media::OCI_CONFIG, config.as_bytes()),
        layers: vec![descriptor(media::OCI_LAYER, &layer)],
        annotations: Default::default(),
    };
    let manifest = serde_json::to_vec(&manifest).unwrap();
    write_blob(&dir, &manifest);
    let mut entry = descriptor(media::OCI_MANIFEST, &manifest);
    entry
        .annotations
        .insert("org.opencontainers.image.ref.name".into(), "latest".into());
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: vec![entry],
        annotations: Default::default(),
    };
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout {
        dir,
        layer: layer_d,
        config: config_d,
    }
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo is installed");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// skopeo's conversion of the layout to `kind` (`docker-archive` or `oci-archive`).
fn skopeo_archive(root: &Path, layout: &Layout, kind: &str) -> PathBuf {
    let out = root.join(format!("{kind}.tar"));
    skopeo(&[
        "copy",
        &format!("oci:{}:latest", layout.dir.display()),
        &format!("{kind}:{}:busybox:latest", out.display()),
    ]);
    out
}

/// Checks the store holds the busybox image of `layout` under NAME, complete; the layer
/// blob is the uncompressed layer or (skopeo compresses for OCI destinations) its gzip.
fn check_imported(store: &Store, layout: &Layout) {
    let rec = store.get_image(NAME).expect("imported under its full name");
    assert_eq!(rec.config, layout.config);
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].diff_id, layout.layer);
    let layer = &rec.layers[0].descriptor;
    match layer.media_type.as_str() {
        media::OCI_LAYER => assert_eq!(layer.digest, layout.layer),
        media::OCI_LAYER_GZIP => assert_ne!(layer.digest, layout.layer),
        other => panic!("layer media type {other}"),
    }
    let config: ImageConfig =
        serde_json::from_slice(&store.read_blob(&rec.config, 1 << 20).unwrap()).unwrap();
    assert_eq!(config.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(store.blob_size(&layer.digest).unwrap(), layer.size);
    let manifest = store.manifest(&rec.manifest).unwrap();
    assert_eq!(manifest.config.digest, rec.config);
    assert_eq!(store.get_image(&rec.config.hex()[..12]).unwrap().name, NAME);
}

#[test]
fn imports_what_skopeo_writes_as_docker_archive_and_oci_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    for kind in ["docker-archive", "oci-archive"] {
        let archive = skopeo_archive(tmp.path(), &layout, kind);
        let store = Store::open(&tmp.path().join(format!("store-{kind}"))).unwrap();
        let records = import(&store, fs::File::open(&archive).unwrap()).unwrap();
        assert_eq!(
            records.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            [NAME],
            "{kind}"
        );
        check_imported(&store, &layout);
        assert_eq!(store.list_images(), records);
    }
}

#[test]
fn save_writes_what_skopeo_reads_and_import_takes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    let archive = skopeo_archive(tmp.path(), &layout, "oci-archive");
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let first = import(&store, fs::File::open(&archive).unwrap()).unwrap();
    let saved = tmp.path().join("saved.tar");
    save(
        &store,
        &[NAME.to_string()],
        fs::File::create(&saved).unwrap(),
    )
    .unwrap();

    for kind in ["docker-archive", "oci-archive"] {
        let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            &format!("{kind}:{}", saved.display()),
        ]))
        .unwrap();
        let stored = first[0].layers[0].descriptor.digest.to_string();
        let listed = inspect["Layers"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            listed == stored || listed == layout.layer.to_string(),
            "{kind}: {inspect}"
        );
        let config: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--config",
            &format!("{kind}:{}", saved.display()),
        ]))
        .unwrap();
        assert_eq!(config["config"]["Cmd"][0], "/bin/sh", "{kind}: {config}");
    }
    // skopeo copies it on, too, and the copy imports.
    let copied = tmp.path().join("copied.tar");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", saved.display()),
        &format!("docker-archive:{}:busybox:latest", copied.display()),
    ]);

    for source in [&saved, &copied] {
        let again = Store::open(&tmp.path().join(format!(
            "again-{}",
            source.file_name().unwrap().to_string_lossy()
        )))
        .unwrap();
        let records = import(&again, fs::File::open(source).unwrap()).unwrap();
        assert_eq!(records.len(), 1);
        check_imported(&again, &layout);
    }
    let again = Store::open(&tmp.path().join("again-saved.tar")).unwrap();
    assert_eq!(
        again.get_image(NAME).unwrap().manifest,
        first[0].manifest,
        "a round trip keeps the manifest"
    );
}

/// A copy of the tar at `path`, entries filtered and changed by `f` (None drops one).
fn rewrite(path: &Path, mut f: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if header.entry_type().is_symlink() {
            let target = entry.link_name().unwrap().unwrap().into_owned();
            out.append_link(&mut header, &name, target).unwrap();
            continue;
        }
        let Some(data) = f(&name, data) else { continue };
        header.set_size(data.len() as u64);
        out.append_data(&mut header, &name, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn a_docker_manifest_json_pointing_into_blobs_imports_without_the_oci_index() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    let store = Store::open(&tmp.path().join("store")).unwrap();
    import(
        &store,
        fs::File::open(skopeo_archive(tmp.path(), &layout, "oci-archive")).unwrap(),
    )
    .unwrap();
    let saved = tmp.path().join("saved.tar");
    save(
        &store,
        &[NAME.to_string()],
        fs::File::create(&saved).unwrap(),
    )
    .unwrap();
    let docker_only = rewrite(&saved, |name, data| {
        (name != "index.json" && name != "oci-layout").then_some(data)
    });
    let fresh = Store::open(&tmp.path().join("fresh")).unwrap();
    import(&fresh, &docker_only[..]).unwrap();
    check_imported(&fresh, &layout);
}

#[test]
fn imports_the_legacy_docker_save_layout_with_a_shared_layer_linked() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = busybox_layer();
    let layer_d = Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_d}"]}}}}"#
    );
    let config2 = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["ls"]}},"rootfs":{{"type":"layers","diff_ids":["{layer_d}"]}}}}"#
    );
    let (c1, c2) = (
        Digest::of(config.as_bytes()),
        Digest::of(config2.as_bytes()),
    );
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["busybox:latest","example.com:5000/team/bb:1"],"Layers":["aaa/layer.tar"]}},
            {{"Config":"{}.json","RepoTags":["other:2"],"Layers":["bbb/layer.tar"]}}]"#,
        c1.hex(),
        c2.hex()
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, path, data).unwrap();
    };
    add("aaa/VERSION", b"1.0");
    add("aaa/json", b"{}");
    add("aaa/layer.tar", &layer);
    add(&format!("{}.json", c1.hex()), config.as_bytes());
    add(&format!("{}.json", c2.hex()), config2.as_bytes());
    add("manifest.json", manifest.as_bytes());
    add("repositories", b"{}");
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let bytes = tar.into_inner().unwrap();

    let store = Store::open(tmp.path()).unwrap();
    let records = import(&store, &bytes[..]).unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:latest",
            "docker.io/library/other:2",
            "example.com:5000/team/bb:1"
        ]
    );
    for rec in &records {
        assert_eq!(rec.layers[0].descriptor.digest, layer_d);
        assert_eq!(rec.layers[0].descriptor.media_type, media::OCI_LAYER);
    }
    assert_eq!(records[1].config, c2);
    assert_eq!(
        store
            .get_image("docker.io/library/busybox:latest")
            .unwrap()
            .config,
        c1
    );
}

/// No image records and no blob in the store.
fn assert_nothing_recorded(store: &Store) {
    assert!(store.list_images().is_empty());
}

#[test]
fn a_tar_that_is_not_an_image_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(5);
    tar.append_data(&mut h, "etc/hello.txt", &b"hello"[..])
        .unwrap();
    let bytes = tar.into_inner().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let err = import(&store, &bytes[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::NotAnImage), "{err}");
    let err = import(
        &store,
        &b"this is not a tar at all, just some text that is long enough"[..],
    )
    .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Read(_) | ArchiveError::NotAnImage),
        "{err}"
    );
    assert_nothing_recorded(&store);
    assert!(store.blobs().unwrap().is_empty());
}

#[test]
fn a_truncated_archive_is_refused_and_records_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    for kind in ["docker-archive", "oci-archive"] {
        let bytes = fs::read(skopeo_archive(tmp.path(), &layout, kind)).unwrap();
        for cut in [
            bytes.len() / 2,
            bytes.len() / 2 + 512,
            bytes.len() - 2048,
            bytes.len() - 1024,
        ] {
            let store = Store::open(&tmp.path().join(format!("store-{kind}-{cut}"))).unwrap();
            let err = import(&store, &bytes[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ArchiveError::Truncated { .. }
                        | ArchiveError::Unterminated
                        | ArchiveError::Read(_)
                        | ArchiveError::MissingFile(_)
                        | ArchiveError::MissingBlob(_)
                        | ArchiveError::NotAnImage
                ),
                "{kind} cut at {cut}: {err}"
            );
            assert_nothing_recorded(&store);
            let ingest = fs::read_dir(store.root().join("ingest")).unwrap().count();
            assert_eq!(ingest, 0, "no partial left behind");
        }
    }
}

#[test]
fn a_blob_whose_content_does_not_match_its_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    let archive = skopeo_archive(tmp.path(), &layout, "oci-archive");
    let bad_name = format!("blobs/sha256/{}", layout.config.hex());
    let bytes = rewrite(&archive, |name, mut data| {
        if name == bad_name {
            let last = data.len() - 1;
            data[last] ^= 1;
        }
        Some(data)
    });
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = import(&store, &bytes[..]).unwrap_err();
    match &err {
        ArchiveError::Blob {
            path,
            source: StoreError::Content(DigestError::Mismatch { expected, .. }),
        } => {
            assert_eq!(path, Path::new(&bad_name));
            assert_eq!(*expected, layout.config);
        }
        other => panic!("want a digest mismatch naming the blob, got {other}"),
    }
    assert!(
        err.to_string().contains(&layout.config.to_string()),
        "{err}"
    );
    assert!(!store.has_blob(&layout.config));
    assert_nothing_recorded(&store);
}

#[test]
fn saving_an_unknown_or_incomplete_image_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut out = Vec::new();
    let err = save(&store, &["docker.io/library/nope:1".to_string()], &mut out).unwrap_err();
    assert!(matches!(err, ArchiveError::ImageNotFound(_)), "{err}");
    assert!(out.is_empty());

    let layout = build_layout(tmp.path());
    let name = "docker.io/library/busybox:latest";
    set_index(&layout, {
        let index: Index =
            serde_json::from_slice(&fs::read(layout.dir.join("index.json")).unwrap()).unwrap();
        let mut entry = index.manifests[0].clone();
        entry
            .annotations
            .insert("io.containerd.image.name".into(), name.into());
        vec![entry]
    });
    import(&store, &tar_dir(&layout.dir)[..]).unwrap();
    fs::remove_file(store.blob_path(&layout.layer)).unwrap();
    let err = save(&store, &[name.to_string()], &mut out).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Store(StoreError::BlobNotFound(ref d)) if *d == layout.layer),
        "{err}"
    );
    assert!(out.is_empty(), "nothing written before the check");
}

/// The layout directory as a tar.
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", dir).unwrap();
    tar.into_inner().unwrap()
}

/// Rewrites the layout's index.json to list `manifests`.
fn set_index(layout: &Layout, manifests: Vec<Descriptor>) {
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests,
        annotations: Default::default(),
    };
    fs::write(
        layout.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_oci_layout_gives_this_hosts_platform_and_refuses_an_index_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    let index: Index =
        serde_json::from_slice(&fs::read(layout.dir.join("index.json")).unwrap()).unwrap();
    let platform = |arch: &str| {
        Some(berth_images::manifest::PlatformSpec {
            architecture: arch.into(),
            os: "linux".into(),
            variant: None,
        })
    };
    let mut host = index.manifests[0].clone();
    host.annotations
        .insert("io.containerd.image.name".into(), NAME.into());
    host.platform = platform(host_arch());
    let mut foreign = descriptor(
        media::OCI_MANIFEST,
        b"a manifest for another machine, not in the layout",
    );
    foreign.annotations = host.annotations.clone();
    foreign.platform = platform("no-such-arch");

    set_index(&layout, vec![foreign.clone(), host.clone()]);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let records = import(&store, &tar_dir(&layout.dir)[..]).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].manifest, host.digest);
    check_imported(&store, &layout);

    set_index(&layout, vec![foreign.clone()]);
    let store = Store::open(&tmp.path().join("store-foreign")).unwrap();
    let err = import(&store, &tar_dir(&layout.dir)[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::NoPlatform { .. }), "{err}");
    assert_nothing_recorded(&store);

    let nested = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: vec![foreign],
        annotations: Default::default(),
    };
    let nested = serde_json::to_vec(&nested).unwrap();
    let nested_d = write_blob(&layout.dir, &nested);
    let mut entry = descriptor(media::OCI_INDEX, &nested);
    entry.annotations = host.annotations.clone();
    set_index(&layout, vec![entry]);
    let store = Store::open(&tmp.path().join("store-nested")).unwrap();
    let err = import(&store, &tar_dir(&layout.dir)[..]).unwrap_err();
    match err {
        ArchiveError::NoPlatform { index, .. } => assert_eq!(index, nested_d),
        other => panic!("want NoPlatform for the nested index, got {other}"),
    }
    assert_nothing_recorded(&store);
}

#[test]
fn an_oci_entry_with_only_a_tag_is_recorded_under_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build_layout(tmp.path());
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let records = import(&store, &tar_dir(&layout.dir)[..]).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].name,
        records[0].target.to_string(),
        "ref.name \"latest\" names no repository"
    );
    assert_eq!(
        store.get_image(&layout.config.hex()[..12]).unwrap(),
        records[0]
    );
}
