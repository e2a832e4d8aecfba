//! `GET /metrics`: Prometheus text exposition through `metrics-exporter-prometheus` —
//! the engine's metrics and the API's own (requests by route and status, latency) from
//! the global recorder, then what is read at scrape time (berthd's process, the
//! containers' cgroups; see [`crate::scrape`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

use super::{ApiError, App, Reply};

/// HTTP requests answered, by route and status.
pub const HTTP_REQUESTS: &str = "berth_http_requests_total";
/// Time to answer an HTTP request, by route.
pub const HTTP_DURATION: &str = "berth_http_request_duration_seconds";

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The latency buckets were refused.
    #[error("metrics buckets: {0}")]
    Buckets(BuildError),
    /// A global recorder could not be set (one is already installed, say).
    #[error("installing the metrics recorder: {0}")]
    Install(BuildError),
}

/// Install the process-wide Prometheus recorder (histograms with buckets from 1 ms to
/// 10 s) and describe every metric.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(berth_engine::metrics::LATENCY_BUCKETS)
        .map_err(MetricsError::Buckets)?
        .install_recorder()
        .map_err(MetricsError::Install)?;
    berth_engine::metrics::describe();
    berth_images::metrics::describe();
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route."
    );
    register_requests();
    Ok(handle)
}

/// Register at zero, per route, the request counter for every status the OpenAPI
/// document lists for that path (and the latency histogram, empty), so error rates
/// and alerts have a series from the first scrape. Unmatched paths count from their
/// first request on.
fn register_requests() {
    let doc: serde_json::Value = serde_json::from_str(super::openapi::DOCUMENT).unwrap_or_default();
    for route in super::ROUTES.iter().map(|r| r.pattern) {
        let _ = metrics::histogram!(HTTP_DURATION, "route" => route);
        let item = &doc["paths"][route];
        let mut statuses: Vec<&str> = item
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, op)| op["responses"].as_object())
            .flat_map(|r| r.keys().map(String::as_str))
            .collect();
        statuses.sort_unstable();
        statuses.dedup();
        for status in statuses {
            metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => status.to_owned())
                .increment(0);
        }
    }
}

/// Count one answered request.
pub fn record(route: &'static str, status: StatusCode, took: Duration) {
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(took.as_secs_f64());
}

/// The exporter's handle; the scrape-time collectors need nothing kept.
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// Install the global recorder (see [`install`]).
    pub fn install() -> Result<Self, MetricsError> {
        Ok(Exporter { handle: install()? })
    }

    /// The whole exposition: the recorder's metrics, then berthd's process and the
    /// live containers' cgroups. Reads files: call off the async threads.
    pub fn render(
        &self,
        engine: &berth_engine::Engine,
        networks: Option<&berth_engine::Networks>,
    ) -> String {
        let mut out = self.handle.render();
        crate::scrape::finish(&mut out);
        if let Some(process) = crate::scrape::process::read() {
            crate::scrape::process::render(&process, &mut out);
        }
        let usage = crate::scrape::containers::collect(engine);
        crate::scrape::containers::render(&usage, &mut out);
        if let Some(networks) = networks {
            let interfaces = crate::scrape::network::collect(engine, networks);
            crate::scrape::network::render(&interfaces, &mut out);
        }
        out
    }
}

/// `GET /metrics`.
pub async fn render(app: &Arc<App>) -> Reply {
    if app.metrics.is_none() {
        return Err(ApiError::not_found("no_metrics", "metrics are not enabled"));
    }
    let app = Arc::clone(app);
    let text = super::blocking(move || match &app.metrics {
        Some(exporter) => {
            if let Some(images) = &app.images {
                berth_images::metrics::observe(images);
            }
            Ok(exporter.render(&app.engine, app.networks.as_deref()))
        }
        None => Err(ApiError::not_found("no_metrics", "metrics are not enabled")),
    })
    .await?;
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}
