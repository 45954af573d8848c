//! The nine runtime operations and the device heartbeat (an extension): `Authorization:
//! License <key>`, signed answers sent as the engine's bytes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use licentia_core::engine::{EngineError, ResponseBody, RuntimeCall};
use licentia_core::model::{
    CheckRequest, ConsumeRequest, DeviceActivateRequest, FloatingBorrowRequest,
    FloatingCheckoutRequest, FloatingLeaseRequest, RuntimeBindingRequest,
};
use licentia_core::store::Store;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use licentia_core::rules::telemetry::MAX_TELEMETRY_BYTES;
use serde_json::{Map, Value};

use super::{envelope, stored};
use crate::auth::License;
use crate::error::{ApiError, codes};
use crate::extract::{IdempotencyKey, Json, body_rejection, decode};
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
        .route(
            "/api/v1/license/device-heartbeat",
            post(device_heartbeat::<S>),
        )
        .route("/api/v1/license/telemetry", post(telemetry::<S>))
        .route("/api/v1/license/floating/borrow", post(borrow::<S>))
        .route("/api/v1/license/floating/return", post(return_lease::<S>))
        .route("/api/v1/device/activate", post(device_activate::<S>))
}

pub(super) fn call<'a>(
    license: &'a License,
    key: Option<&'a IdempotencyKey>,
    rid: &'a RequestId,
) -> RuntimeCall<'a> {
    RuntimeCall {
        credential: license.credential(),
        idempotency_key: key.map(|k| k.0.as_str()),
        request_id: rid.as_str(),
        ip_address: license.ip.as_deref(),
    }
}

/// Sends the engine's bytes, counting the decision. A refusal (403, 404, 409, 422) is signed
/// like an answer, so a client can trust it ([`licentia_core::crypto::refusal`]).
pub(super) fn answer<S: Store + 'static>(
    app: &App<S>,
    operation: &'static str,
    result: Result<ResponseBody, EngineError>,
) -> Result<Response, ApiError> {
    match result {
        Ok(r) => {
            crate::metrics::runtime_decision(operation, "OK");
            Ok(stored(r.body, r.replayed))
        }
        Err(e) => {
            // A refusal about a license is signed by its product's ring.
            let product = match &e {
                EngineError::Denied(d) => d.product().cloned(),
                _ => None,
            };
            let mut e = ApiError::from(e);
            crate::metrics::runtime_decision(operation, &e.code);
            if is_signed_refusal(e.status) {
                match app.engine().sign_refusal(&e.refusal(), product.as_ref()) {
                    Ok(signed) => e = e.with_signature(&signed),
                    Err(err) => tracing::error!(error = %err, "a refusal could not be signed"),
                }
            }
            Err(e)
        }
    }
}

/// The refusals that are decisions about the license (signed), as opposed to malformed
/// requests, credentials and outages (not signed).
fn is_signed_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::FORBIDDEN
            | StatusCode::NOT_FOUND
            | StatusCode::CONFLICT
            | StatusCode::UNPROCESSABLE_ENTITY
    )
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
    answer(&app, "activate", r)
}

/// Extension: a pre-registered device activates with its serial and secret (in the body; no
/// `Authorization` header) and gets its session.
async fn device_activate<S: Store + 'static>(
    State(app): State<App<S>>,
    rid: RequestId,
    crate::auth::PeerAddr(ip): crate::auth::PeerAddr,
    Json(req): Json<DeviceActivateRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .device_activate(rid.as_str(), ip.as_deref(), &req)
        .await;
    answer(&app, "device_activate", r)
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
    answer(&app, "validate", r)
}

async fn check<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<CheckRequest>,
) -> Result<Response, ApiError> {
    let (binding, feature) = req.into_parts();
    let r = app
        .engine()
        .check_feature(call(&license, None, &rid), &binding, feature.as_deref())
        .await;
    answer(&app, "check", r)
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
    answer(&app, "consume", r)
}

async fn offline<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app.engine().offline(call(&license, None, &rid), &req).await;
    answer(&app, "offline", r)
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
    answer(&app, "deactivate", r)
}

async fn checkout<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<FloatingCheckoutRequest>,
) -> Result<Response, ApiError> {
    let (binding, feature) = req.into_parts();
    let r = app
        .engine()
        .checkout_feature(
            call(&license, Some(&key), &rid),
            &binding,
            feature.as_deref(),
        )
        .await;
    answer(&app, "floating_checkout", r)
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
    answer(&app, "floating_checkin", r)
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
    answer(&app, "floating_heartbeat", r)
}

async fn device_heartbeat<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<RuntimeBindingRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .device_heartbeat(call(&license, None, &rid), &req)
        .await;
    answer(&app, "device_heartbeat", r)
}

/// Extension: a telemetry object, stored as sent and flagged against the documented schema
/// (`rules::telemetry`); 201 with the stored record. Not signed: it decides nothing. Over
/// `MAX_TELEMETRY_BYTES` is 413 before anything is parsed.
async fn telemetry<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    if body.len() > MAX_TELEMETRY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("telemetry is at most {MAX_TELEMETRY_BYTES} bytes"),
        ));
    }
    // As every body here: one with no bytes (or only whitespace) reads as `{}`.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    let payload: Map<String, Value> = decode(body)?;
    let record = app
        .engine()
        .record_telemetry(call(&license, None, &rid), payload)
        .await?;
    envelope(StatusCode::CREATED, &rid, &record)
}

/// Extension: borrow a floating seat for offline use; the lease and an offline envelope valid
/// until the borrow ends, signed like a checkout.
async fn borrow<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<FloatingBorrowRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .borrow(call(&license, Some(&key), &rid), &req)
        .await;
    answer(&app, "floating_borrow", r)
}

/// Extension: return a borrowed seat early (a checkin under its own name).
async fn return_lease<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    key: IdempotencyKey,
    rid: RequestId,
    Json(req): Json<FloatingLeaseRequest>,
) -> Result<Response, ApiError> {
    let r = app
        .engine()
        .return_lease(call(&license, Some(&key), &rid), &req)
        .await;
    answer(&app, "floating_return", r)
}
