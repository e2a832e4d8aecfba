//! Time `Images::prepare` and `release` for N containers of one image (root filesystem
//! mount and spec), to see the image path's share of a container start.
//!
//! Usage: prepare_many ROOT IMAGE [N] [host|ns]

use std::time::Instant;

use berth_images::runspec::Overrides;
use berth_images::{Images, ImagesConfig, RootfsMode};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (root, image) = (&args[1], &args[2]);
    let n: usize = args.get(3).map_or(200, |s| s.parse().unwrap());
    let mode = match args.get(4).map(String::as_str) {
        Some("ns") => RootfsMode::InNamespace,
        _ => RootfsMode::Host,
    };
    let images = Images::open(ImagesConfig {
        root: root.into(),
        ..Default::default()
    })
    .unwrap();
    if images.get(image).is_err() {
        images.pull(image, None, &|_| {}).unwrap();
    }
    let began = Instant::now();
    for i in 0..n {
        images
            .prepare(&format!("p{i}"), image, &Overrides::default(), mode)
            .unwrap();
    }
    let prepared = began.elapsed();
    let began = Instant::now();
    for i in 0..n {
        images.release(&format!("p{i}")).unwrap();
    }
    let released = began.elapsed();
    println!(
        "prepare {:.2} ms, release {:.2} ms per container ({n})",
        prepared.as_secs_f64() * 1e3 / n as f64,
        released.as_secs_f64() * 1e3 / n as f64
    );
}
