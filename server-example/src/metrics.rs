//! Prometheus metrics: request counts and latencies by operation and status, and runtime
//! decisions by code.
//!
//! One process-wide recorder is installed on first use (several servers in one process, as in
//! tests, share it).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Requests served, by `operation` and `status`.
pub const REQUESTS_TOTAL: &str = "licentia_http_requests_total";
/// Request latency in seconds, by `operation` and `status`.
pub const REQUEST_DURATION: &str = "licentia_http_request_duration_seconds";
/// Runtime decisions, by `operation` and `code` (`OK` or the refusal's code).
pub const RUNTIME_DECISIONS: &str = "licentia_runtime_decisions_total";

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once; `None` when another recorder was installed by the host.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(REQUEST_DURATION.into()),
                    BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Middleware: counts, times and logs every request under its route template (method, route,
/// status, latency and request id only: never headers, so never a credential).
pub async fn track(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<crate::request_id::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // Labels come from a closed set: the methods HTTP defines (others are `OTHER`) and the
    // route templates (an unmatched path is `unmatched`), so garbage cannot grow the output.
    let operation = match req.extensions().get::<MatchedPath>() {
        Some(p) => format!("{} {}", method_label(req.method()), p.as_str()),
        None => "unmatched".to_owned(),
    };
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let elapsed = start.elapsed();
    tracing::info!(
        request_id,
        operation = %operation,
        status = %status,
        ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    let labels = [("operation", operation), ("status", status)];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(elapsed.as_secs_f64());
    res
}

/// The method as a label: one of the methods HTTP defines, else `OTHER`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Records one runtime decision.
pub fn runtime_decision(operation: &'static str, code: &str) {
    metrics::counter!(RUNTIME_DECISIONS, "operation" => operation, "code" => code.to_owned())
        .increment(1);
}
