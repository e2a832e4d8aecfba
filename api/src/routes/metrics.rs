//! `GET /metrics`: Prometheus text exposition through `metrics-exporter-prometheus` —
//! the engine's metrics and the API's own (requests by route and status, latency).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::{ApiError, App, Reply};

/// HTTP requests answered, by route and status.
pub const HTTP_REQUESTS: &str = "berth_http_requests_total";
/// Time to answer an HTTP request, by route.
pub const HTTP_DURATION: &str = "berth_http_request_duration_seconds";

/// Install the process-wide Prometheus recorder (histograms with buckets from 1 ms to
/// 10 s) and describe every metric.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets(berth_engine::metrics::LATENCY_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    berth_engine::metrics::describe();
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route."
    );
    Ok(handle)
}

/// Count one answered request.
pub fn record(route: &'static str, status: StatusCode, took: Duration) {
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(took.as_secs_f64());
}

/// `GET /metrics`.
pub fn render(app: &App) -> Reply {
    let handle = app
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no_metrics", "metrics are not enabled"))?;
    let mut resp = Response::new(Full::new(Bytes::from(handle.render())));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}
