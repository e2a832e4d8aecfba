//! Mounts and unmounts N container snapshots of an L-layer stack in a fresh store and
//! prints the time per mount and per unmount: the snapshot half of a burst from an image
//! (`cargo run --release -p berth-images --example mount_many -- ROOT [N] [L]`; ROOT is
//! created and must not exist; it is removed afterwards).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use berth_images::digest::Digest;
use berth_images::snapshot::{chain_ids, LayerSlot, SnapshotError, Snapshots};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first() else {
        eprintln!("usage: mount_many ROOT [N] [LAYERS]");
        return ExitCode::from(2);
    };
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, layers) = (num(1, 1000), num(2, 5));
    let result = run(Path::new(root), n, layers);
    let _ = std::fs::remove_dir_all(root);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mount_many: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(root: &Path, n: usize, layers: usize) -> Result<(), SnapshotError> {
    let s = Snapshots::open(root)?;
    let diffs: Vec<Digest> = (0..layers).map(|i| Digest::of(&i.to_le_bytes())).collect();
    let chain = chain_ids(&diffs);
    for c in &chain {
        if let LayerSlot::Writer(p) = s.begin_layer(c)? {
            p.commit()?;
        }
    }
    let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let start = Instant::now();
    for id in &ids {
        s.mount(id, &chain)?;
    }
    let mounted = start.elapsed();
    let start = Instant::now();
    for id in &ids {
        s.unmount(id)?;
    }
    let unmounted = start.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{n} overlays of {layers} layers: mount {:.0} us each, unmount {:.0} us each",
        per(mounted),
        per(unmounted)
    );
    Ok(())
}
