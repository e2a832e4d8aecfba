//! Applies one layer blob to a directory and prints how long it took: the unpack
//! benchmark's probe (`cargo run --release -p berth-images --example apply_layer --
//! BLOB MEDIA_TYPE DEST DIFF_ID`). DEST must exist; use a fresh one (or tmpfs) per run.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use berth_images::unpack::apply_layer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [blob, media, dest, diff_id] = args.as_slice() else {
        eprintln!("usage: apply_layer BLOB MEDIA_TYPE DEST DIFF_ID");
        return ExitCode::from(2);
    };
    let diff_id = match diff_id.parse() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("apply_layer: {e}");
            return ExitCode::from(2);
        }
    };
    let file = match File::open(blob) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("apply_layer: {blob}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    match apply_layer(file, media, Path::new(dest), &diff_id) {
        Ok(stats) => {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{secs:.3} s: {} entries, {} bytes of files, {} uncompressed",
                stats.files, stats.bytes, stats.uncompressed
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("apply_layer: {e}");
            ExitCode::FAILURE
        }
    }
}
