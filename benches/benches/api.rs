//! berthd's request handling in process, without sockets: routing, body limits, JSON
//! decoding and encoding, and the engine behind it with a launcher that does nothing.
//! One iteration is one request answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{Config, Engine, NoopLauncher};
use berthd::routes::{handle, App};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::Request;

/// An app over an in-memory engine.
fn app() -> Arc<App> {
    let engine = Engine::new(Config::default(), Arc::new(NoopLauncher)).unwrap();
    Arc::new(App {
        engine: Arc::new(engine),
        body_limit: 1 << 20,
        runtime: None,
        shim: None,
        body_timeout: Duration::from_secs(30),
        metrics: None,
        images: None,
        networks: None,
    })
}

/// Answer one request; its status.
async fn call(app: &Arc<App>, method: &str, path: &str, body: Bytes) -> u16 {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let resp = handle(Arc::clone(app), req).await;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = app();
    let rootfs = tempfile::tempdir().unwrap();
    let mut spec = berth_runtime::default_spec::default_spec(false, 0, 0);
    spec["process"]["terminal"] = false.into();
    let n = AtomicU64::new(0);
    // A template with a placeholder id, so each create is new.
    let template =
        serde_json::json!({"id": "ID", "spec": spec, "rootfs": rootfs.path()}).to_string();

    let mut g = c.benchmark_group("api");
    g.throughput(Throughput::Elements(1));
    g.bench_function("create_inline_spec", |b| {
        b.iter(|| {
            let id = format!("bench-{}", n.fetch_add(1, Ordering::Relaxed));
            let body = Bytes::from(template.replacen("\"ID\"", &format!("\"{id}\""), 1));
            assert_eq!(rt.block_on(call(&app, "POST", "/v1/containers", body)), 202);
        })
    });
    rt.block_on(call(
        &app,
        "POST",
        "/v1/containers",
        Bytes::from(template.replacen("\"ID\"", "\"probe\"", 1)),
    ));
    g.bench_function("get_container", |b| {
        b.iter(|| {
            assert_eq!(
                rt.block_on(call(&app, "GET", "/v1/containers/probe", Bytes::new())),
                200
            )
        })
    });
    g.bench_function("bad_json_refused", |b| {
        b.iter(|| {
            assert_eq!(
                rt.block_on(call(
                    &app,
                    "POST",
                    "/v1/containers",
                    Bytes::from_static(b"{\"id\":")
                )),
                400
            )
        })
    });
    g.bench_function("system_info", |b| {
        b.iter(|| {
            assert_eq!(
                rt.block_on(call(&app, "GET", "/v1/system", Bytes::new())),
                200
            )
        })
    });
    g.finish();
    app.engine.shutdown();
}

criterion_group!(benches, requests);
criterion_main!(benches);
