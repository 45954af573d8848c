//! `licentia-server`: the Open License v1 HTTP API over the licentia engine.
//!
//! The server is a thin adapter. Every handler authenticates, decodes strictly, calls one
//! [`Engine`](licentia_core::engine::Engine) operation and encodes its answer; no licensing
//! rule lives here. Signed runtime responses are the engine's bytes, sent as they are, so an
//! idempotent replay is the stored response byte for byte.
//!
//! # Running it
//!
//! ```text
//! cargo run --release -p licentia-server            # serve on 127.0.0.1:8080, memory backend
//! licentia-server serve --listen 0.0.0.0:8080       # or LICENTIA_LISTEN=0.0.0.0:8080
//! licentia-server keys rotate                       # new active signing key
//! licentia-server keys rotate --product editor      # new key for one product's own ring
//! ```
//!
//! At start the server prints the backend it uses and the URL to reach it. On a store with no
//! management token it creates an admin token and prints it once (`LICENTIA_BOOTSTRAP_TOKEN`
//! chooses its value).
//!
//! # Embedding
//!
//! [`serve`] and [`router`] are generic over the [`Store`], so a
//! backend is one match arm in the binary:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use licentia_server::{Config, serve};
//! use licentia_storage_memory::MemoryStore;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(MemoryStore::new(), listener, Config::default()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Wire decisions
//!
//! * Errors are `{"error":{"code","message","detail"?},"meta":{"request_id","timestamp"}}`
//!   with `content-type: application/json`; codes are stable SCREAMING_SNAKE strings, listed
//!   in [`error::codes`]. Engine denials keep their rule code (`LICENSE_SUSPENDED`, …) and
//!   their status by kind (invalid 422, forbidden 403, not found 404, conflict 409); `detail`
//!   lists every failing rule.
//! * Every response carries `x-request-id` (an incoming valid one is kept, otherwise
//!   `req_` + 24 hex digits) and, where the body has `meta`, the same `meta.request_id`.
//! * Bodies: unknown fields, wrong types and malformed JSON are 400; an empty body is read as
//!   `{}` (body-less `POST`s from SDKs send no `Content-Type` and no bytes); the body is read
//!   as JSON whatever `Content-Type` says (the contract lists no 415: JSON labelled
//!   `text/plain` or form-encoded by a client's default is accepted, anything not JSON is 400);
//!   a body over the limit (default 64 KiB, `--body-limit`/`LICENTIA_BODY_LIMIT`) is 413 with
//!   `Connection: close`, at once for a declared length and the moment a chunked body crosses
//!   it ([`body`]); a string holding U+0000 (body, path or query) is 400 `INVALID_STRING` on
//!   every backend.
//! * The open internet: request head, body and keep-alive timeouts, a connection cap and a
//!   bounded shutdown ([`transport`]); 429 `RATE_LIMITED` with `Retry-After` per credential
//!   and, for failed authentication, per client address ([`ratelimit`]); the client address
//!   behind trusted proxies ([`client_ip`]).
//! * `/readyz` answers the contract's `{"data":{"status":"ready"|"not_ready","db":…},"meta"}`
//!   with 200 or 503; it reads the store on every call, so it recovers by itself.
//! * `/metrics` is Prometheus text: `licentia_http_requests_total` and
//!   `licentia_http_request_duration_seconds` by `operation` (method and route template) and
//!   `status`, and `licentia_runtime_decisions_total` by runtime `operation` and `code`
//!   (`OK` or the refusal's code).
//! * Scopes: each management route declares its `x-required-scopes` in its extractor type
//!   ([`auth::Auth`]); `admin` satisfies all. Tokens with `allowed_cidrs` are refused (401)
//!   from other peer addresses.
//!
//! # Where the contract was silent or loose
//!
//! * `/readyz` 503 keeps the contract's `{data: ReadyData, meta}` shape (not the error
//!   envelope): `data.status` is `not_ready`, `data.db` says why.
//! * `POST /licenses/{id}/features` answers 200 (the contract's status: an assignment is
//!   written, created or updated); `PUT …/custom-fields/{field_id}` answers 200 with the value,
//!   or 204 when the request cleared it.
//! * `ConsumeLicenseRequest` is read as one closed object (binding fields plus `feature_code`,
//!   `amount`, `event_id`), and policy create/update accept every `Policy` field (DESIGN 5).
//! * `limit` above 200 is clamped; below 1 or a non-integer is 400 `INVALID_QUERY`; a malformed id
//!   in a list filter names nothing, so the list is empty; unknown query parameters are
//!   ignored (unknown body fields are not).
//! * `PATCH /webhooks/{id}` answers `WebhookEndpointWithSecret` when the secret was rotated,
//!   `WebhookEndpoint` otherwise (the contract's `oneOf`).
//! * Webhook deliveries are at least once, sent by one instance per attempt, from an outbox
//!   written with each event ([`webhooks`]); `GET /webhooks/{id}/deliveries` and
//!   `POST /webhooks/{id}/deliveries/{delivery_id}/retry` are documented extensions.
//! * An idempotent replay is the stored body (its `meta.request_id` is the first request's);
//!   the `x-request-id` header is the current request's, and `idempotent-replayed: true`
//!   marks the replay.

pub mod artifacts;
pub mod auth;
pub mod body;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod error;
pub mod exports;
pub mod extract;
pub mod key_sheet;
pub mod keys;
pub mod meta;
pub mod metrics;
pub mod password_work;
pub mod ratelimit;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod transport;
pub mod webhooks;

use licentia_core::store::Store;

pub use config::Config;
pub use routes::{metrics_router, router};
pub use state::{App, ServerEngine, SystemClock};

/// Serves the API on `listener` over `store` until Ctrl-C (or SIGTERM).
///
/// # Errors
///
/// The engine cannot start (storage unreachable, unusable stored keys) or the listener fails.
pub async fn serve<S: Store + 'static>(
    store: S,
    listener: tokio::net::TcpListener,
    config: Config,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = App::start(store, config).await?;
    serve_app(app, listener, shutdown_signal()).await
}

/// Serves an already started [`App`] until `shutdown` completes (tests pass their own).
///
/// # Errors
///
/// The listener fails.
pub async fn serve_app<S: Store + 'static>(
    app: App<S>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let deliveries = webhooks::spawn(app.clone())?;
    let touches = spawn_touch_flusher(app.clone());
    let pruning = spawn_housekeeping(app.clone());
    let exporting = exports::spawn(app.clone());
    let mut limits = app.config().limits;
    limits.max_connections = transport::raise_fd_limit(limits.max_connections);
    let served = transport::serve(listener, router(app.clone()), limits, shutdown).await;
    // Attempts in flight are reported before the process ends (else they are sent again).
    if !deliveries.shutdown(limits.shutdown_grace).await {
        tracing::warn!("webhook attempts still in flight at shutdown will be sent again");
    }
    touches.abort();
    pruning.abort();
    exporting.abort();
    // What validations noted since the last flush is written before the process ends.
    if let Err(e) = app.engine().flush_touches().await {
        tracing::warn!(error = %e, "validation bookkeeping could not be written at shutdown");
    }
    if let Err(e) = app.engine().flush_runtime_errors().await {
        tracing::warn!(error = %e, "runtime refusal counts could not be written at shutdown");
    }
    served?;
    Ok(())
}

/// Writes the validation bookkeeping the engine coalesced, every [`config::TOUCH_FLUSH_PERIOD`],
/// off the request path. A failed flush keeps its batch for the next one.
fn spawn_touch_flusher<S: Store + 'static>(app: App<S>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first flush one period after start (an interval's first tick is immediate).
        let period = config::TOUCH_FLUSH_PERIOD;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            // Refusal counts go with the touches; a failure keeps them for the next tick.
            if let Err(e) = app.engine().flush_runtime_errors().await {
                tracing::debug!(error = %e, "runtime refusal counts not written yet");
            }
            match app.engine().flush_touches().await {
                Ok(_) => failing = false,
                // Logged once per outage, not once a second.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, pending = app.engine().pending_touches(),
                        "validation bookkeeping not written yet; retrying");
                }
                Err(_) => {}
            }
        }
    })
}

/// Every minute: purges idempotency records past their time to live, finished webhook
/// deliveries and telemetry past their retention and expired sign-in sessions, releases
/// devices silent past their policy's heartbeat (all safe on several instances at once), and
/// forgets rate-limit keys back at full allowance.
fn spawn_housekeeping<S: Store + 'static>(app: App<S>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config::HOUSEKEEPING_PERIOD);
        let mut failing = false;
        loop {
            tick.tick().await;
            if let Some(limiter) = app.limiter() {
                limiter.prune();
            }
            let purged = match app.engine().purge_idempotency().await {
                Ok(n) => app.engine().purge_deliveries().await.map(|d| (n, d)),
                Err(e) => Err(e),
            };
            if let Err(e) = app.engine().purge_reports().await {
                tracing::debug!(error = %e, "expired report data not purged yet");
            }
            if let Err(e) = app.engine().purge_telemetry().await {
                tracing::debug!(error = %e, "expired telemetry not purged yet");
            }
            if let Err(e) = app.engine().purge_sessions().await {
                tracing::debug!(error = %e, "expired sign-in sessions not purged yet");
            }
            match app.engine().release_silent_devices().await {
                Ok(0) => {}
                Ok(released) => {
                    tracing::info!(released, "devices silent past their heartbeat released")
                }
                Err(e) => tracing::debug!(error = %e, "silent devices not released yet"),
            }
            match purged {
                Ok((records, deliveries)) => {
                    failing = false;
                    if records + deliveries > 0 {
                        tracing::debug!(
                            records,
                            deliveries,
                            "expired idempotency records and finished webhook deliveries purged"
                        );
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "expired records not purged yet; retrying");
                }
                Err(_) => {}
            }
        }
    })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
