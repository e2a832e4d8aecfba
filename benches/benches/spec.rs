//! What the runtime does with a spec before any syscall of a start: parse and validate
//! config.json (`Bundle::load`: read, parse naming the bad field, check the rootfs), and
//! compile a Docker-like seccomp profile to BPF (the pure-Rust compiler, uncached).

use berth_runtime::bundle::{parse_spec, Bundle};
use berth_runtime::default_spec::default_spec;
use berth_runtime::seccomp::compile;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oci_spec::runtime::LinuxSeccomp;

/// The default spec (as `berth-runc spec` writes it), as config.json bytes.
fn config_bytes() -> Vec<u8> {
    let mut spec = default_spec(false, 0, 0);
    spec["process"]["terminal"] = false.into();
    spec["root"]["path"] = "rootfs".into();
    serde_json::to_vec_pretty(&spec).unwrap()
}

fn spec(c: &mut Criterion) {
    let mut g = c.benchmark_group("spec");
    g.throughput(Throughput::Elements(1));
    let bytes = config_bytes();
    g.bench_function("parse", |b| b.iter(|| parse_spec(&bytes).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    std::fs::write(dir.path().join("config.json"), &bytes).unwrap();
    g.bench_function("bundle_load_and_validate", |b| {
        b.iter(|| Bundle::load(dir.path()).unwrap())
    });
    g.finish();
}

fn seccomp(c: &mut Criterion) {
    let text = include_str!("../../runtime-shim/runtime/fixtures/seccomp-default.json");
    let profile: LinuxSeccomp = serde_json::from_str(text).unwrap();
    let mut g = c.benchmark_group("seccomp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("compile_docker_like_profile", |b| {
        b.iter(|| compile(&profile).unwrap())
    });
    g.finish();
}

criterion_group!(benches, spec, seccomp);
criterion_main!(benches);
