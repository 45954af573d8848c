//! Prometheus metrics (`/metrics`, or `--metrics-listen`), every family with `# HELP` and
//! `# TYPE`:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `licentia_http_requests_total` | counter | `method`, `route`, `status` |
//! | `licentia_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `licentia_runtime_decisions_total` | counter | `operation`, `code` (`OK` or the refusal's code) |
//! | `licentia_build_info` | gauge (1) | `version` |
//! | `licentia_webhook_deliveries_in_flight` | gauge | — |
//! | `licentia_webhook_deliveries_total` | counter | `outcome` (`delivered`, `refused` (answered non-2xx), `failed` (no answer), `given_up` (retry window closed)) |
//! | `licentia_webhook_queue_depth` | gauge (pending deliveries, refreshed every 5 s) | — |
//! | `licentia_webhook_delivery_duration_seconds` | histogram | — |
//! | `licentia_db_pool_connections` | gauge | `pool` (`main`, `runtime`, `reads`), `state` (`open`, `idle`) — PostgreSQL only |
//! | `licentia_db_snapshot_statements_total`, `licentia_db_snapshots_total` | counter (refreshed every 5 s) | — (snapshots per statement: the read path's batch size) — PostgreSQL only |
//! | `process_*` | the process's CPU, memory, threads and open files (`metrics-process`) | — |
//!
//! Labels come from closed sets: a method HTTP does not define is `OTHER`, a path no route
//! matches is `unmatched`, so garbage requests cannot grow the output.
//!
//! One process-wide recorder is installed on first use (several servers in one process, as in
//! tests, share it).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The access log's target (`RUST_LOG=licentia::access=off` silences it).
pub const ACCESS_LOG: &str = "licentia::access";

/// Requests served, by `method`, `route` and `status`.
pub const REQUESTS_TOTAL: &str = "licentia_http_requests_total";
/// Request latency in seconds, by `method`, `route` and `status`.
pub const REQUEST_DURATION: &str = "licentia_http_request_duration_seconds";
/// Runtime decisions, by `operation` and `code` (`OK` or the refusal's code).
pub const RUNTIME_DECISIONS: &str = "licentia_runtime_decisions_total";
/// 1, labelled with the server's version.
pub const BUILD_INFO: &str = "licentia_build_info";
/// Webhook deliveries being attempted now.
pub const WEBHOOKS_IN_FLIGHT: &str = "licentia_webhook_deliveries_in_flight";
/// Webhook delivery attempts, by `outcome`.
pub const WEBHOOK_DELIVERIES: &str = "licentia_webhook_deliveries_total";
/// Webhook deliveries pending in the outbox.
pub const WEBHOOK_QUEUE_DEPTH: &str = "licentia_webhook_queue_depth";
/// Webhook delivery attempt latency in seconds.
pub const WEBHOOK_DURATION: &str = "licentia_webhook_delivery_duration_seconds";
/// Database pool connections, by `pool` and `state`.
pub const DB_POOL: &str = "licentia_db_pool_connections";
/// Snapshot statements the read path ran (PostgreSQL).
pub const DB_SNAPSHOT_STATEMENTS: &str = "licentia_db_snapshot_statements_total";
/// Snapshots those statements read (PostgreSQL).
pub const DB_SNAPSHOTS: &str = "licentia_db_snapshots_total";

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Webhook attempts take longer than requests: up to the attempt timeout.
const WEBHOOK_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

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
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(WEBHOOK_DURATION.into()),
                    WEBHOOK_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// The `# HELP` texts, and the gauges that exist from the start.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "HTTP request latency, by method, route template and status."
    );
    describe_counter!(
        RUNTIME_DECISIONS,
        "Runtime decisions, by operation and code (OK or the refusal's code)."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the build.");
    describe_gauge!(
        WEBHOOKS_IN_FLIGHT,
        "Webhook deliveries being attempted now."
    );
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts, by outcome.");
    describe_gauge!(
        WEBHOOK_QUEUE_DEPTH,
        "Webhook deliveries pending in the outbox (every instance's view of one queue)."
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "Webhook delivery attempt latency."
    );
    describe_gauge!(
        DB_POOL,
        "Database pool connections, by pool and state (open, idle)."
    );
    describe_counter!(
        DB_SNAPSHOT_STATEMENTS,
        "Snapshot statements the read path ran."
    );
    describe_counter!(DB_SNAPSHOTS, "Snapshots the read path's statements read.");
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!(WEBHOOKS_IN_FLIGHT).set(0.0);
    metrics::gauge!(WEBHOOK_QUEUE_DEPTH).set(0.0);
    let process = PROCESS.get_or_init(metrics_process::Collector::default);
    process.describe();
}

/// The Prometheus text of every metric (process metrics read now).
pub fn render() -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    handle.render()
}

/// Sets the database pool gauges (called periodically by a host that has pools).
pub fn db_pools(pools: &[(&'static str, u32, u32)]) {
    for &(pool, open, idle) in pools {
        metrics::gauge!(DB_POOL, "pool" => pool, "state" => "open").set(f64::from(open));
        metrics::gauge!(DB_POOL, "pool" => pool, "state" => "idle").set(f64::from(idle));
    }
}

/// Sets the PostgreSQL read path's counters from the store's own.
pub fn db_read_path(reads: licentia_storage_postgres::ReadPathStats) {
    metrics::counter!(DB_SNAPSHOT_STATEMENTS).absolute(reads.statements);
    metrics::counter!(DB_SNAPSHOTS).absolute(reads.snapshots);
}

/// Counts one webhook delivery attempt's outcome.
pub fn webhook_delivery(outcome: &'static str) {
    metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// Sets the webhook queue depth gauge.
pub fn webhook_queue_depth(n: f64) {
    metrics::gauge!(WEBHOOK_QUEUE_DEPTH).set(n);
}

/// Records one webhook attempt's duration.
pub fn webhook_delivery_duration(secs: f64) {
    metrics::histogram!(WEBHOOK_DURATION).record(secs);
}

/// Moves the in-flight webhook deliveries gauge.
pub fn webhooks_in_flight(delta: f64) {
    metrics::gauge!(WEBHOOKS_IN_FLIGHT).increment(delta);
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
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let elapsed = start.elapsed();
    // The access log: its own target, integer microseconds, never a header.
    tracing::info!(
        target: ACCESS_LOG,
        request_id,
        method,
        route = %route,
        status = res.status().as_u16(),
        duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
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
