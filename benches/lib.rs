//! Holder crate for Berth's benchmarks; the criterion benches live in `benches/`, the
//! side-by-side scripts beside this file. Benches may use any crate of the workspace.
