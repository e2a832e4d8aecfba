//! The content store: one writer per digest across threads and processes, partial writes
//! that never look complete, image records that survive reopening and concurrent writers,
//! and garbage collection of exactly the unreached blobs.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use berth_images::manifest::{media, Descriptor, Index, Manifest};
use berth_images::store::{Ingest, Store, StoreError};
use berth_images::{Digest, DigestError};

fn desc(bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media::OCI_LAYER.into(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Waits until some process waits for the flock on `lock` (a `->` line in /proc/locks).
fn wait_for_lock_waiter(lock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(meta) = fs::metadata(lock) {
            let ino = format!(":{} ", meta.ino());
            let locks = fs::read_to_string("/proc/locks").unwrap();
            if locks.lines().any(|l| l.contains("->") && l.contains(&ino)) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nobody ever waited for {}",
            lock.display()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn content() -> Vec<u8> {
    (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect()
}

#[test]
fn eight_threads_ingesting_one_digest_write_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = content();
    let d = desc(&data);
    let writers = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                match store.ingest(&d).unwrap() {
                    Ingest::Present => {}
                    Ingest::Writer(mut w) => {
                        writers.fetch_add(1, Ordering::SeqCst);
                        for chunk in data.chunks(4096) {
                            w.write_all(chunk).unwrap();
                        }
                        w.commit().unwrap();
                    }
                }
                assert!(store.has_blob(&d.digest));
            });
        }
    });
    assert_eq!(writers.load(Ordering::SeqCst), 1);
    assert_eq!(fs::read(store.blob_path(&d.digest)).unwrap(), data);
    assert!(
        names(&dir.path().join("ingest")).is_empty(),
        "{:?}",
        names(&dir.path().join("ingest"))
    );
}

#[test]
fn a_waiter_becomes_the_writer_when_the_first_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = content();
    let d = desc(&data);
    let Ingest::Writer(mut first) = store.ingest(&d).unwrap() else {
        panic!("present in an empty store")
    };
    first.write_all(&data[..1000]).unwrap();
    let lock = dir.path().join(format!("ingest/{}.lock", d.digest.hex()));
    thread::scope(|s| {
        let waiter = s.spawn(|| match store.ingest(&d).unwrap() {
            Ingest::Present => panic!("the first writer gave up, yet the blob is present"),
            Ingest::Writer(mut w) => {
                w.write_all(&data).unwrap();
                w.commit().unwrap()
            }
        });
        wait_for_lock_waiter(&lock);
        drop(first);
        assert_eq!(
            waiter.join().unwrap(),
            (d.digest.clone(), data.len() as u64)
        );
    });
    assert_eq!(fs::read(store.blob_path(&d.digest)).unwrap(), data);
}

const CHILD_ENV: &str = "BERTH_STORE_TEST_CHILD";

/// Run as a child process by the test below: ingests the content and prints what it got.
#[test]
fn child_process_ingest() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    match store.ingest(&desc(&content())).unwrap() {
        Ingest::Present => println!("CHILD:present"),
        Ingest::Writer(_) => println!("CHILD:writer"),
    }
}

#[test]
fn a_second_process_waits_for_the_first_writer_and_then_sees_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = content();
    let d = desc(&data);
    let Ingest::Writer(mut w) = store.ingest(&d).unwrap() else {
        panic!("present in an empty store")
    };
    w.write_all(&data[..data.len() / 2]).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_ingest",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The child's Store::open must not take the live partial for a crash's leftover.
    wait_for_lock_waiter(&dir.path().join(format!("ingest/{}.lock", d.digest.hex())));
    w.write_all(&data[data.len() / 2..]).unwrap();
    w.commit().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CHILD:present"), "{stdout}");
}

#[test]
fn an_ingest_dropped_midway_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = content();
    let d = desc(&data);
    let Ingest::Writer(mut w) = store.ingest(&d).unwrap() else {
        panic!()
    };
    w.write_all(&data[..5000]).unwrap();
    assert_eq!(
        names(&dir.path().join("ingest")).len(),
        2,
        "a partial and its lock while writing"
    );
    drop(w);
    assert!(!store.has_blob(&d.digest));
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());
    assert!(names(&dir.path().join("ingest")).is_empty());
}

#[test]
fn commit_refuses_wrong_content_and_wrong_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = desc(b"hello");
    let Ingest::Writer(mut w) = store.ingest(&d).unwrap() else {
        panic!()
    };
    w.write_all(b"hullo").unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(err, StoreError::Content(DigestError::Mismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(&d.digest.to_string()), "{err}");

    let Ingest::Writer(mut w) = store.ingest(&d).unwrap() else {
        panic!()
    };
    w.write_all(b"hell").unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Content(DigestError::Size {
                expected: 5,
                actual: 4,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&d.digest.to_string()), "{err}");

    let Ingest::Writer(mut w) = store.ingest(&d).unwrap() else {
        panic!()
    };
    assert!(
        w.write_all(b"hello!").is_err(),
        "more than the announced size"
    );
    drop(w);
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());
    assert!(names(&dir.path().join("ingest")).is_empty());
}

#[test]
fn open_removes_a_crashed_writers_partial_but_not_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ingest = dir.path().join("ingest");
    fs::write(ingest.join("abc.partial"), b"half").unwrap();
    fs::write(ingest.join("def.lock"), b"").unwrap();
    fs::write(ingest.join("def.partial"), b"half").unwrap();
    let live = desc(b"live");
    let Ingest::Writer(mut w) = store.ingest(&live).unwrap() else {
        panic!()
    };
    w.write_all(b"li").unwrap();
    Store::open(dir.path()).unwrap();
    let hex = live.digest.hex();
    assert_eq!(
        names(&ingest),
        [format!("{hex}.lock"), format!("{hex}.partial")]
    );
    w.write_all(b"ve").unwrap();
    w.commit().unwrap();
    assert!(store.has_blob(&live.digest));
}

/// Stores a one-layer image with `layer` as its content and returns the manifest digest.
fn image(store: &Store, layer: &[u8]) -> Digest {
    let layer_d = store.write_blob(layer).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_d}"]}}}}"#
    );
    store.write_blob(config.as_bytes()).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: media::OCI_CONFIG.into(),
            ..desc(config.as_bytes())
        },
        layers: vec![desc(layer)],
        annotations: Default::default(),
    };
    store
        .write_blob(&serde_json::to_vec(&manifest).unwrap())
        .unwrap()
}

#[test]
fn records_survive_reopening_and_resolve_by_name_digest_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = image(&store, b"layer one");
    let rec = store
        .image_record("docker.io/library/busybox:latest", &m, &m)
        .unwrap();
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].diff_id, Digest::of(b"layer one"));
    assert_eq!(rec.layers[0].chain_id, rec.layers[0].diff_id);
    store.put_image(&rec).unwrap();
    let mut other = rec.clone();
    other.name = "example.com:5000/a/b:v1".into();
    store.put_image(&other).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_image("docker.io/library/busybox:latest"),
        Some(rec.clone())
    );
    assert_eq!(store.list_images(), vec![rec.clone(), other.clone()]);
    assert_eq!(store.get_image(&m.to_string()).unwrap().manifest, m);
    assert_eq!(
        store.get_image(&rec.config.to_string()).unwrap().config,
        rec.config
    );
    assert_eq!(
        store.get_image(&rec.config.hex()[..12]).unwrap().config,
        rec.config
    );
    assert_eq!(
        store.get_image(&rec.config.hex()[..11]),
        None,
        "too short for an id"
    );
    assert_eq!(
        store.get_image("busybox"),
        None,
        "short names are the caller's to expand"
    );

    let m2 = image(&store, b"layer two");
    let mut third = store
        .image_record("docker.io/library/x:1", &m2, &m2)
        .unwrap();
    store.put_image(&third).unwrap();
    third.name = "docker.io/library/x:2".into();
    store.put_image(&third).unwrap();
    assert_eq!(store.list_images().len(), 4);

    assert_eq!(
        store
            .remove_image("docker.io/library/busybox:latest")
            .unwrap(),
        rec
    );
    assert!(matches!(
        store.remove_image("docker.io/library/busybox:latest"),
        Err(StoreError::ImageNotFound(_))
    ));
    assert_eq!(store.list_images().len(), 3);
}

#[test]
fn fifty_names_put_from_threads_all_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let m = image(&store, b"shared layer");
    let base = store.image_record("x", &m, &m).unwrap();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let mut rec = base.clone();
            thread::spawn(move || {
                rec.name = format!("registry.local/app/n{i}:latest");
                store.put_image(&rec).unwrap();
                if i % 2 == 0 {
                    store.remove_image(&rec.name).unwrap();
                    store.put_image(&rec).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let names: BTreeSet<String> = store.list_images().into_iter().map(|r| r.name).collect();
    assert_eq!(names.len(), 50);
    assert!(names.contains("registry.local/app/n49:latest"));
}

#[test]
fn gc_removes_exactly_the_blobs_no_record_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let kept = image(&store, b"kept layer");
    let dropped = image(&store, b"dropped layer");
    let listed = image(&store, b"other platform layer");
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: vec![
            desc(&store.read_blob(&kept, 1 << 20).unwrap()),
            desc(&store.read_blob(&listed, 1 << 20).unwrap()),
            desc(b"a manifest never pulled"),
        ],
        annotations: Default::default(),
    };
    let index_d = store
        .write_blob(&serde_json::to_vec(&index).unwrap())
        .unwrap();
    let stray = store.write_blob(b"stray").unwrap();
    let rec = store
        .image_record("docker.io/library/kept:1", &index_d, &kept)
        .unwrap();
    store.put_image(&rec).unwrap();
    store
        .put_image(
            &store
                .image_record("docker.io/library/dropped:1", &dropped, &dropped)
                .unwrap(),
        )
        .unwrap();
    store.remove_image("docker.io/library/dropped:1").unwrap();

    let before: BTreeSet<Digest> = store.blobs().unwrap().into_iter().map(|(d, _)| d).collect();
    let dropped_m = store.manifest(&dropped).unwrap();
    let mut gone = BTreeSet::from([
        stray.clone(),
        dropped.clone(),
        dropped_m.config.digest.clone(),
    ]);
    gone.extend(dropped_m.layers.iter().map(|l| l.digest.clone()));
    let gone_bytes: u64 = gone.iter().map(|d| store.blob_size(d).unwrap()).sum();
    let size_before = store.size().unwrap();

    let stats = store.gc_blobs().unwrap();
    let after: BTreeSet<Digest> = store.blobs().unwrap().into_iter().map(|(d, _)| d).collect();
    assert_eq!(
        before.difference(&after).cloned().collect::<BTreeSet<_>>(),
        gone
    );
    assert_eq!(
        (stats.removed, stats.bytes, stats.kept),
        (gone.len(), gone_bytes, after.len())
    );
    assert_eq!(store.size().unwrap(), size_before - gone_bytes);
    let listed_m = store.manifest(&listed).unwrap();
    assert!(
        store.has_blob(&listed_m.layers[0].digest),
        "an index's other manifests keep their parts"
    );
    assert!(store.has_blob(&index_d));
    assert_eq!(store.gc_blobs().unwrap().removed, 0);
}
