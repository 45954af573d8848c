//! Health, readiness, metrics, the public key set and the OpenAPI document.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use licentia_core::store::{Store, StoreError};
use serde_json::json;

use super::{envelope, ok};
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::App;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(readyz::<S>))
        .route("/api/v1/system/public-keys", get(public_keys::<S>))
        .route("/api/v1/system/token", get(token))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/openapi.json", get(openapi))
}

/// The server's own OpenAPI document: the v1 core contract with the amendments it states in
/// `info.x-licentia-amendments` (DESIGN 5). Built from the contract by hand-checked edits and
/// checked in; `tests/scenarios/contract_scenarios.py` reads it back.
pub(super) const OPENAPI_JSON: &str = include_str!("../../openapi/licentia-v1.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn health(rid: RequestId) -> Result<Response, ApiError> {
    ok(&rid, &json!({"status": "ok"}))
}

/// Ready when a store read succeeds; 503 `not_ready` while it is unavailable.
async fn readyz<S: Store + 'static>(
    State(app): State<App<S>>,
    rid: RequestId,
) -> Result<Response, ApiError> {
    match app.engine().store().count_api_keys().await {
        Ok(_) => ok(&rid, &json!({"status": "ready", "db": "ok"})),
        Err(e) => {
            let db = match e {
                StoreError::Unavailable { .. } => "unavailable",
                _ => "error",
            };
            tracing::warn!(error = %e, "readiness check failed");
            envelope(
                StatusCode::SERVICE_UNAVAILABLE,
                &rid,
                &json!({"status": "not_ready", "db": db}),
            )
        }
    }
}

/// `GET /metrics` alone, for the API's router or a listener of its own (`--metrics-listen`).
pub(crate) fn metrics_routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> Response {
    let mut res = crate::metrics::render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// Extension: the calling token's own record (name, prefix, scopes, expiry), for any valid
/// token; what a console asks to know which controls to show.
async fn token(caller: crate::auth::AnyScope, rid: RequestId) -> Result<Response, ApiError> {
    ok(&rid, &caller.key)
}

async fn public_keys<S: Store + 'static>(
    State(app): State<App<S>>,
    rid: RequestId,
) -> Result<Response, ApiError> {
    ok(&rid, &app.engine().public_keys())
}
