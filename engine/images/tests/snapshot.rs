//! Snapshots on a real kernel: ChainIDs, one writer per layer, overlay mounts of layers
//! applied from tar streams (whiteouts and opaque dirs hide what they should), an image
//! deeper than mount(2)'s one-page option limit, and nothing left after unmount or a
//! failed mount. Runs as root.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use berth_images::digest::Digest;
use berth_images::manifest::media as mt;
use berth_images::snapshot::{chain_ids, LayerSlot, SnapshotError, Snapshots};
use berth_images::unpack::apply_layer;
use common::{gzip, Layer};

mod common;

/// Unmounts the container on drop, so a failed assertion leaves no mount behind.
struct Mounted<'a>(&'a Snapshots, &'static str);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = self.0.unmount(self.1);
    }
}

fn mounts_under(dir: &Path) -> usize {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    info.lines().filter(|l| l.contains(dir)).count()
}

/// Commits a layer holding what `fill` writes into its directory.
fn layer(s: &Snapshots, chain: &Digest, fill: impl FnOnce(&Path)) {
    let LayerSlot::Writer(p) = s.begin_layer(chain).unwrap() else {
        panic!("layer {chain} present already")
    };
    fill(p.path());
    p.commit().unwrap();
}

#[test]
fn chain_ids_follow_the_image_spec() {
    let d: Vec<Digest> = (0..3u8).map(|i| Digest::of(&[i])).collect();
    let c = chain_ids(&d);
    assert_eq!(c[0], d[0]);
    assert_eq!(c[1], Digest::of(format!("{} {}", d[0], d[1]).as_bytes()));
    assert_eq!(c[2], Digest::of(format!("{} {}", c[1], d[2]).as_bytes()));
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn an_overlay_of_two_layers_applies_whiteouts_and_opaque_dirs() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshots::open(root.path()).unwrap();
    let base = Layer::new()
        .dir("a/")
        .file("a/keep", b"keep")
        .file("a/gone", b"gone")
        .dir("d/")
        .file("d/old", b"old")
        .bytes();
    let top = Layer::new()
        .dir("a/")
        .file("a/.wh.gone", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"new")
        .bytes();
    let diffs = [Digest::of(&base), Digest::of(&top)];
    let chain = chain_ids(&diffs);
    for ((tar, diff), c) in [&base, &top].iter().zip(&diffs).zip(&chain) {
        layer(&s, c, |dir| {
            apply_layer(&gzip(tar)[..], mt::OCI_LAYER_GZIP, dir, diff).unwrap();
        });
    }
    assert_eq!(s.layers().len(), 2);
    let rootfs = s.mount("two-layers", &chain).unwrap();
    let _guard = Mounted(&s, "two-layers");
    assert_eq!(fs::read(rootfs.join("a/keep")).unwrap(), b"keep");
    assert!(!rootfs.join("a/gone").exists());
    let names: Vec<_> = fs::read_dir(rootfs.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["new"]);
    // The container writes to its own upper, never to a layer.
    fs::write(rootfs.join("a/keep"), b"changed").unwrap();
    let base_dir = root.path().join("layers").join(chain[0].hex());
    assert_eq!(fs::read(base_dir.join("a/keep")).unwrap(), b"keep");
    assert_eq!(s.mounted(), ["two-layers"]);
    assert!(matches!(
        s.mount("two-layers", &chain),
        Err(SnapshotError::AlreadyMounted(_))
    ));
    assert!(matches!(
        s.remove_layer(&chain[0]),
        Err(SnapshotError::LayerInUse { .. })
    ));

    s.unmount("two-layers").unwrap();
    s.unmount("two-layers").unwrap();
    assert_eq!(mounts_under(root.path()), 0);
    assert!(s.mounted().is_empty());
    assert!(fs::read_dir(root.path().join("containers"))
        .unwrap()
        .next()
        .is_none());
    s.remove_layer(&chain[0]).unwrap();
    assert_eq!(s.layers(), [chain[1].clone()]);
}

#[test]
fn an_image_deeper_than_the_option_page_mounts() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshots::open(root.path()).unwrap();
    let diffs: Vec<Digest> = (0..150u32).map(|i| Digest::of(&i.to_le_bytes())).collect();
    let chain = chain_ids(&diffs);
    for (i, c) in chain.iter().enumerate() {
        layer(&s, c, |dir| {
            fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
            fs::write(dir.join("top"), i.to_string()).unwrap();
        });
    }
    let rootfs = s.mount("deep", &chain).unwrap();
    let _guard = Mounted(&s, "deep");
    assert_eq!(fs::read_to_string(rootfs.join("top")).unwrap(), "149");
    assert_eq!(fs::read_to_string(rootfs.join("f0")).unwrap(), "0");
    s.unmount("deep").unwrap();
    assert_eq!(mounts_under(root.path()), 0);
}

#[test]
fn one_writer_per_chain_id_and_a_waiter_sees_it_present() {
    let root = tempfile::tempdir().unwrap();
    let s = Arc::new(Snapshots::open(root.path()).unwrap());
    let c = Digest::of(b"one");
    let writers = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (s, c, writers, start) = (s.clone(), c.clone(), writers.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                if let LayerSlot::Writer(p) = s.begin_layer(&c).unwrap() {
                    writers.fetch_add(1, Ordering::SeqCst);
                    // Hold the slot a moment so the other thread is surely waiting.
                    std::thread::sleep(Duration::from_millis(100));
                    fs::write(p.path().join("x"), b"x").unwrap();
                    p.commit().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(writers.load(Ordering::SeqCst), 1);
    assert!(s.has_layer(&c));
    assert!(matches!(s.begin_layer(&c).unwrap(), LayerSlot::Present));
}

#[test]
fn a_writer_that_gives_up_leaves_nothing_and_the_next_takes_over() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshots::open(root.path()).unwrap();
    let c = Digest::of(b"given up");
    let LayerSlot::Writer(p) = s.begin_layer(&c).unwrap() else {
        panic!()
    };
    fs::write(p.path().join("half"), b"half").unwrap();
    drop(p);
    assert!(!s.has_layer(&c));
    let only_locks: Vec<_> = fs::read_dir(root.path().join("layers")).unwrap().collect();
    assert!(only_locks.is_empty());
    assert!(matches!(s.begin_layer(&c).unwrap(), LayerSlot::Writer(_)));
}

#[test]
fn bad_ids_and_missing_layers_are_refused_with_nothing_made() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshots::open(root.path()).unwrap();
    let c = Digest::of(b"present");
    layer(&s, &c, |_| {});
    for id in ["", ".", "..", "a/b", "../x", ".hidden"] {
        assert!(
            matches!(
                s.mount(id, std::slice::from_ref(&c)),
                Err(SnapshotError::InvalidId(_))
            ),
            "{id:?}"
        );
        assert!(
            matches!(s.unmount(id), Err(SnapshotError::InvalidId(_))),
            "{id:?}"
        );
    }
    let missing = Digest::of(b"missing");
    let err = s.mount("c1", &[c.clone(), missing.clone()]).unwrap_err();
    assert!(
        matches!(&err, SnapshotError::MissingLayer(d) if *d == missing),
        "{err}"
    );
    assert!(matches!(
        s.mount("c1", &[]),
        Err(SnapshotError::NoLayers(_))
    ));
    assert!(s.mounted().is_empty());
    s.unmount("never-mounted").unwrap();
}

#[test]
fn a_failed_mount_removes_its_dirs() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshots::open(root.path()).unwrap();
    let c = Digest::of(b"layer");
    layer(&s, &c, |_| {});
    // The same layer twice overlaps itself: the kernel refuses the mount.
    let err = s.mount("c1", &[c.clone(), c]).unwrap_err();
    assert!(matches!(err, SnapshotError::Mount { .. }), "{err}");
    println!("{err}");
    assert!(fs::read_dir(root.path().join("containers"))
        .unwrap()
        .next()
        .is_none());
    assert_eq!(mounts_under(root.path()), 0);
}

#[test]
fn opening_the_store_removes_what_crashed_writers_left() {
    let root = tempfile::tempdir().unwrap();
    let layers = root.path().join("layers");
    let stale = layers.join(format!(".pending-{}-1-0", Digest::of(b"x").hex()));
    let doomed = layers.join(format!(".removing-{}-1-0", Digest::of(b"y").hex()));
    for d in [&stale, &doomed] {
        fs::create_dir_all(d.join("sub")).unwrap();
    }
    let s = Snapshots::open(root.path()).unwrap();
    assert!(!stale.exists() && !doomed.exists());
    assert!(s.layers().is_empty());
}

#[test]
fn a_waiter_takes_over_when_the_writer_gives_up() {
    let root = tempfile::tempdir().unwrap();
    let s = Arc::new(Snapshots::open(root.path()).unwrap());
    let c = Digest::of(b"takeover");
    let LayerSlot::Writer(first) = s.begin_layer(&c).unwrap() else {
        panic!()
    };
    let waiter = {
        let (s, c) = (s.clone(), c.clone());
        std::thread::spawn(move || match s.begin_layer(&c).unwrap() {
            LayerSlot::Writer(p) => {
                fs::write(p.path().join("second"), b"2").unwrap();
                p.commit().unwrap();
                true
            }
            LayerSlot::Present => false,
        })
    };
    // Give the waiter time to block on the lock, then fail the first write.
    std::thread::sleep(Duration::from_millis(100));
    drop(first);
    assert!(
        waiter.join().unwrap(),
        "the waiter should have become the writer"
    );
    let layer = root.path().join("layers").join(c.hex());
    assert_eq!(fs::read(layer.join("second")).unwrap(), b"2");
}

#[test]
fn containers_may_live_apart_from_layers_and_their_overlays_are_volatile() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir_in("/dev/shm").unwrap();
    let s = Snapshots::open_split(root.path(), scratch.path()).unwrap();
    let c = Digest::of(b"base");
    layer(&s, &c, |dir| fs::write(dir.join("f"), b"f").unwrap());
    let rootfs = s.mount("apart", std::slice::from_ref(&c)).unwrap();
    let _guard = Mounted(&s, "apart");
    assert!(rootfs.starts_with(scratch.path()));
    assert_eq!(fs::read(rootfs.join("f")).unwrap(), b"f");
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.contains(rootfs.to_str().unwrap()))
        .unwrap();
    assert!(line.contains("volatile"), "{line}");
    s.unmount("apart").unwrap();
    assert!(fs::read_dir(scratch.path()).unwrap().next().is_none());
    assert_eq!(mounts_under(scratch.path()), 0);
}

#[test]
fn a_plan_makes_the_dirs_without_mounting_and_keeps_its_layers_in_use() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshots::open(root.path()).unwrap();
    let chain = chain_ids(&[Digest::of(b"bottom"), Digest::of(b"top")]);
    for c in &chain {
        layer(&s, c, |_| {});
    }
    let plan = s.plan("planned", &chain).unwrap();
    let _guard = Mounted(&s, "planned");
    assert_eq!(mounts_under(root.path()), 0);
    let layer_dir = |c: &Digest| root.path().join("layers").join(c.hex());
    assert_eq!(plan.lowers, [layer_dir(&chain[1]), layer_dir(&chain[0])]);
    for d in [&plan.upper, &plan.work, &plan.rootfs] {
        assert!(d.is_dir(), "{}", d.display());
    }
    assert!(fs::read_dir(&plan.rootfs).unwrap().next().is_none());
    assert_eq!(s.mounted(), ["planned"]);
    assert!(matches!(
        s.plan("planned", &chain),
        Err(SnapshotError::AlreadyMounted(_))
    ));
    assert!(matches!(
        s.remove_layer(&chain[0]),
        Err(SnapshotError::LayerInUse { .. })
    ));
    // A missing layer makes nothing.
    let missing = chain_ids(&[Digest::of(b"absent")]);
    assert!(matches!(
        s.plan("other", &missing),
        Err(SnapshotError::MissingLayer(_))
    ));
    assert!(!s.container_dir("other").exists());
    s.unmount("planned").unwrap();
    assert!(!plan.upper.parent().unwrap().exists());
    s.remove_layer(&chain[0]).unwrap();
}
