//! Layer unpacking against real tar streams built here: every entry kind with its
//! ownership, modes, times and capabilities; whiteouts in overlayfs's format; escapes
//! refused with nothing written outside; digest, compression and corruption errors.
//! Runs as root (ownership, devices, trusted.* xattrs).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_images::digest::Digest;
use berth_images::manifest::media as mt;
use berth_images::unpack::{apply_layer, UnpackError};
use common::{gzip, Layer};
use tar::EntryType;

mod common;

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// Applies the plain tar `tar` (compressed as `media`) into a fresh dir.
fn apply(
    tar: &[u8],
    media: &str,
    blob: &[u8],
    dest: &Path,
) -> Result<berth_images::unpack::LayerStats, UnpackError> {
    apply_layer(blob, media, dest, &Digest::of(tar))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A v2 `security.capability` value granting cap_net_raw (13), effective.
fn net_raw_cap() -> Vec<u8> {
    let mut v = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

#[test]
fn every_entry_kind_lands_with_its_owner_mode_time_and_capabilities() {
    let cap = net_raw_cap();
    let tar = Layer::new()
        .raw("etc/", EntryType::Directory, 0o750, b"", |h| {
            h.set_mtime(500);
            h.set_uid(3);
            h.set_gid(4);
        })
        .raw(
            "etc/passwd",
            EntryType::Regular,
            0o640,
            b"root:x:0:0\n",
            |h| {
                h.set_uid(1000);
                h.set_gid(1001);
                h.set_mtime(123_456);
            },
        )
        .dir("bin/")
        .raw("bin/su", EntryType::Regular, 0o4755, b"su-binary", |h| {
            h.set_uid(0);
            h.set_gid(0)
        })
        .raw("tmp/", EntryType::Directory, 0o1777, b"", |_| {})
        .link("bin/sh", EntryType::Symlink, "busybox")
        .link("bin/login", EntryType::Link, "bin/su")
        .pax(&[("SCHILY.xattr.security.capability", &cap)])
        .raw("bin/ping", EntryType::Regular, 0o755, b"ping", |h| {
            h.set_uid(0);
            h.set_gid(0)
        })
        .raw("dev/null", EntryType::Char, 0o666, b"", |h| {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        })
        .raw("dev/loop0", EntryType::Block, 0o660, b"", |h| {
            h.set_device_major(7).unwrap();
            h.set_device_minor(0).unwrap();
        })
        .raw("run/fifo", EntryType::Fifo, 0o600, b"", |h| h.set_uid(5))
        .bytes();
    let dir = tmp();
    let stats = apply(&tar, mt::OCI_LAYER_GZIP, &gzip(&tar), dir.path()).unwrap();
    assert_eq!(stats.files, 11);
    assert_eq!(stats.bytes, (11 + 9 + 4) as u64);
    assert_eq!(stats.uncompressed, tar.len() as u64);
    let root = dir.path();
    let m = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();

    let etc = m("etc");
    assert!(etc.is_dir());
    assert_eq!(
        (etc.mode() & 0o7777, etc.uid(), etc.gid(), etc.mtime()),
        (0o750, 3, 4, 500)
    );
    let passwd = m("etc/passwd");
    assert_eq!(
        (
            passwd.mode() & 0o7777,
            passwd.uid(),
            passwd.gid(),
            passwd.mtime()
        ),
        (0o640, 1000, 1001, 123_456)
    );
    assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0\n");
    assert_eq!(m("bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(m("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(m("bin/sh").mtime(), 1000);
    assert_eq!(m("bin/login").ino(), m("bin/su").ino());
    let got = xattr(&root.join("bin/ping"), "security.capability");
    assert_eq!(got.as_deref(), Some(&cap[..]));
    let null = m("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    assert!(m("dev/loop0").file_type().is_block_device());
    assert_eq!(m("dev/loop0").rdev(), rustix::fs::makedev(7, 0));
    let fifo = m("run/fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!((fifo.mode() & 0o777, fifo.uid()), (0o600, 5));
    // A parent the tar never named is made 0755.
    assert_eq!(m("dev").mode() & 0o7777, 0o755);
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn whiteouts_become_char_devices_and_opaque_dirs_get_the_overlay_xattr() {
    let tar = Layer::new()
        .dir("a/")
        .file("a/.wh.gone", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"new")
        .file(".wh..wh.plnk", b"")
        .pax(&[
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.note", b"kept"),
        ])
        .file("redirected", b"")
        .bytes();
    let dir = tmp();
    apply(&tar, mt::OCI_LAYER, &tar, dir.path()).unwrap();
    let wh = fs::symlink_metadata(dir.path().join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!dir.path().join("a/.wh.gone").exists());
    assert_eq!(
        xattr(&dir.path().join("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dir.path().join("d/.wh..wh..opq").exists());
    assert!(!dir.path().join(".wh..wh.plnk").exists());
    assert_eq!(fs::read(dir.path().join("d/new")).unwrap(), b"new");
    // overlayfs's own xattrs are not taken from a layer; others are.
    let redirected = dir.path().join("redirected");
    assert_eq!(xattr(&redirected, "trusted.overlay.redirect"), None);
    assert_eq!(
        xattr(&redirected, "user.note").as_deref(),
        Some(&b"kept"[..])
    );
}

#[test]
fn a_later_entry_replaces_an_earlier_one_of_another_type() {
    let tar = Layer::new()
        .file("x", b"file")
        .dir("x/")
        .file("x/y", b"y")
        .raw("d/", EntryType::Directory, 0o755, b"", |h| h.set_mtime(5))
        .file("d/child", b"c")
        .raw("d", EntryType::Symlink, 0o777, b"", |h| {
            h.set_link_name("x").unwrap();
            h.set_mtime(7)
        })
        .file("f", b"first")
        .file("f", b"second")
        .dir("keep/")
        .file("keep/a", b"a")
        .raw("keep/", EntryType::Directory, 0o700, b"", |_| {})
        .bytes();
    let dir = tmp();
    apply(&tar, mt::OCI_LAYER, &tar, dir.path()).unwrap();
    let root = dir.path();
    assert_eq!(fs::read(root.join("x/y")).unwrap(), b"y");
    assert_eq!(fs::read_link(root.join("d")).unwrap(), Path::new("x"));
    // The replaced directory's time is not set on what replaced it.
    assert_eq!(fs::symlink_metadata(root.join("d")).unwrap().mtime(), 7);
    assert_eq!(fs::read(root.join("f")).unwrap(), b"second");
    assert_eq!(fs::read(root.join("keep/a")).unwrap(), b"a");
    assert_eq!(
        fs::metadata(root.join("keep")).unwrap().mode() & 0o777,
        0o700
    );
}

/// Each hostile layer must fail with an Escape naming the entry and leave `outside`
/// untouched.
#[test]
fn escapes_are_refused_and_nothing_is_written_outside() {
    let top = tmp();
    let outside = top.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    let abs = outside.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("../x", Layer::new().file("../x", b"pwned").bytes()),
        (
            "/abs/../../x",
            Layer::new().file("/abs/../../x", b"pwned").bytes(),
        ),
        (
            "evil/x",
            Layer::new()
                .link("evil", EntryType::Symlink, &abs)
                .file("evil/x", b"pwned")
                .bytes(),
        ),
        (
            "up/x",
            Layer::new()
                .link("up", EntryType::Symlink, "../..")
                .file("up/outside/x", b"pwned")
                .bytes(),
        ),
        (
            "h",
            Layer::new()
                .link("h", EntryType::Link, "../outside/secret")
                .bytes(),
        ),
        (
            "h2",
            Layer::new()
                .link("ev", EntryType::Symlink, &abs)
                .link("h2", EntryType::Link, "ev/secret")
                .bytes(),
        ),
        (".wh..", Layer::new().file("a/.wh..", b"").bytes()),
    ];
    for (i, (entry, tar)) in cases.iter().enumerate() {
        let dest = top.path().join(format!("layer{i}"));
        fs::create_dir(&dest).unwrap();
        let err = apply(tar, mt::OCI_LAYER, tar, &dest).unwrap_err();
        assert!(matches!(err, UnpackError::Escape { .. }), "{entry}: {err}");
        assert!(
            err.to_string().contains(entry.split('/').next().unwrap()),
            "{entry}: {err}"
        );
        let mut names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["secret"], "{entry}");
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
        assert!(!top.path().join("x").exists(), "{entry}");
    }
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_fails() {
    let tar = Layer::new().file("a", b"a").bytes();
    let dir = tmp();
    let err = apply_layer(
        &gzip(&tar)[..],
        mt::OCI_LAYER_GZIP,
        dir.path(),
        &Digest::of(b"other"),
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::Digest(_)), "{err}");
}

#[test]
fn truncated_or_corrupt_gzip_fails() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let tar = Layer::new().file("big", &data).bytes();
    let gz = gzip(&tar);
    let dir = tmp();
    let err = apply(&tar, mt::OCI_LAYER_GZIP, &gz[..gz.len() / 2], dir.path()).unwrap_err();
    assert!(
        matches!(err, UnpackError::Read(_) | UnpackError::Digest(_)),
        "{err}"
    );
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    bad[mid..mid + 16].fill(0xff);
    let dir = tmp();
    let err = apply(&tar, mt::OCI_LAYER_GZIP, &bad, dir.path()).unwrap_err();
    assert!(
        matches!(err, UnpackError::Read(_) | UnpackError::Digest(_)),
        "{err}"
    );
}

#[test]
fn zstd_plain_and_mislabelled_layers() {
    let tar = Layer::new().file("z", b"zstd!").bytes();
    for (media, blob) in [
        (mt::OCI_LAYER_ZSTD, zstd(&tar)),
        (mt::OCI_LAYER, tar.clone()),
        (mt::DOCKER_LAYER, gzip(&tar)), // a "tar" type over gzip bytes is decompressed
        ("", zstd(&tar)),
    ] {
        let dir = tmp();
        apply(&tar, media, &blob, dir.path()).unwrap_or_else(|e| panic!("{media}: {e}"));
        assert_eq!(fs::read(dir.path().join("z")).unwrap(), b"zstd!");
    }
    let dir = tmp();
    let err = apply(&tar, mt::OCI_LAYER_GZIP, &tar, dir.path()).unwrap_err();
    assert!(matches!(err, UnpackError::Compression { .. }), "{err}");
    let err = apply(&tar, mt::OCI_LAYER_ZSTD, &gzip(&tar), dir.path()).unwrap_err();
    assert!(matches!(err, UnpackError::Compression { .. }), "{err}");
    let err = apply(&tar, "application/json", &tar, dir.path()).unwrap_err();
    assert!(matches!(err, UnpackError::MediaType(_)), "{err}");
}

#[test]
fn long_names_and_pax_ids_and_times_are_honoured() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let mut layer = Layer::new();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_size(4);
    h.set_mtime(1);
    layer.pax(&[
        ("uid", b"3000000"),
        ("gid", b"3000001"),
        ("mtime", b"1700000000.25"),
    ]);
    layer.0.append_data(&mut h, &long, &b"long"[..]).unwrap();
    let tar = layer.bytes();
    let dir = tmp();
    apply(&tar, mt::OCI_LAYER, &tar, dir.path()).unwrap();
    let m = fs::metadata(dir.path().join(&long)).unwrap();
    assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
    assert_eq!(fs::read(dir.path().join(&long)).unwrap(), b"long");
}

#[test]
fn what_lands_in_a_setgid_dir_keeps_the_tars_group_and_mode() {
    let tar = Layer::new()
        .raw("shared/", EntryType::Directory, 0o2775, b"", |h| {
            h.set_gid(50)
        })
        .dir("shared/sub/")
        .file("shared/file", b"f")
        .bytes();
    let dir = tmp();
    apply(&tar, mt::OCI_LAYER, &tar, dir.path()).unwrap();
    let m = |p: &str| fs::symlink_metadata(dir.path().join(p)).unwrap();
    assert_eq!(
        (m("shared").mode() & 0o7777, m("shared").gid()),
        (0o2775, 50)
    );
    assert_eq!(
        (m("shared/sub").mode() & 0o7777, m("shared/sub").gid()),
        (0o755, 0)
    );
    assert_eq!(m("shared/file").gid(), 0);
}

/// A blob reader that is not `Send` (a body tied to its connection's thread): the
/// contract takes any reader.
struct NotSend<'a>(std::marker::PhantomData<std::rc::Rc<()>>, &'a [u8]);

impl std::io::Read for NotSend<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1.read(buf)
    }
}

#[test]
fn any_reader_will_do() {
    let tar = Layer::new().file("x", b"x").bytes();
    let gz = gzip(&tar);
    let dir = tmp();
    let blob = NotSend(std::marker::PhantomData, &gz);
    apply_layer(blob, mt::OCI_LAYER_GZIP, dir.path(), &Digest::of(&tar)).unwrap();
    assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"x");
}
