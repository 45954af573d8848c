//! The nine runtime operations: `Authorization: License <key>`, signed answers sent as the
//! engine's bytes.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use licentia_core::engine::{EngineError, ResponseBody, RuntimeCall};
use licentia_core::model::{ConsumeRequest, FloatingLeaseRequest, RuntimeBindingRequest};
use licentia_core::store::Store;

use super::stored;
use crate::auth::License;
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, Json};
use crate::request_id::RequestId;
use crate::state::App;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route("/api/v1/license/activate", post(activate::<S>))
        .route("/api/v1/license/validate", post(validate::<S>))
        .route("/api/v1/license/check", post(check::<S>))
        .route("/api/v1/license/consume", post(consume::<S>))
        .route("/api/v1/license/offline", post(offline::<S>))
        .route("/api/v1/license/deactivate", post(deactivate::<S>))
        .route("/api/v1/license/floating/checkout", post(checkout::<S>))
        .route("/api/v1/license/floating/checkin", post(checkin::<S>))
        .route("/api/v1/license/floating/heartbeat", post(heartbeat::<S>))
}

fn call<'a>(
    license: &'a License,
    key: Option<&'a IdempotencyKey>,
    rid: &'a RequestId,
) -> RuntimeCall<'a> {
    RuntimeCall {
        license_key: &license.key,
        idempotency_key: key.map(|k| k.0.as_str()),
        request_id: rid.as_str(),
        ip_address: license.ip.as_deref(),
    }
}

/// Sends the engine's bytes, counting the decision.
fn answer(
    operation: &'static str,
    result: Result<ResponseBody, EngineError>,
) -> Result<Response, ApiError> {
    match result {
        Ok(r) => {
            crate::metrics::runtime_decision(operation, "OK");
            Ok(stored(r.body, r.replayed))
        }
        Err(e) => {
            let e = ApiError::from(e);
            crate::metrics::runtime_decision(operation, &e.code);
            Err(e)
        }
    }
}

async fn activate<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .activate(call(&license, Some(&key), &rid), &req)
        .await;
    answer("activate", r)
}

async fn validate<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .validate(call(&license, None, &rid), &req)
        .await;
    answer("validate", r)
}

async fn check<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app.engine().check(call(&license, None, &rid), &req).await;
    answer("check", r)
}

async fn consume<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<ConsumeRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .consume(call(&license, Some(&key), &rid), &req)
        .await;
    answer("consume", r)
}

async fn offline<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app.engine().offline(call(&license, None, &rid), &req).await;
    answer("offline", r)
}

async fn deactivate<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .deactivate(call(&license, Some(&key), &rid), &req)
        .await;
    answer("deactivate", r)
}

async fn checkout<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .checkout(call(&license, Some(&key), &rid), &req)
        .await;
    answer("floating_checkout", r)
}

async fn checkin<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<FloatingLeaseRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .checkin(call(&license, Some(&key), &rid), &req)
        .await;
    answer("floating_checkin", r)
}

async fn heartbeat<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<FloatingLeaseRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .heartbeat(call(&license, None, &rid), &req)
        .await;
    answer("floating_heartbeat", r)
}
