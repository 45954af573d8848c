//! The route table and the response helpers every handler shares.

mod access;
mod catalog;
mod commerce;
mod customers;
mod licenses;
mod runtime;
mod system;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use licentia_core::store::{Limit, Store};
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::request_id::{Meta, RequestId};
use crate::state::App;

/// The whole API: runtime, management and system routes, with the error, request id,
/// metrics, body limit and panic layers.
pub fn router<S: Store + 'static>(app: App<S>) -> Router {
    let limit = app.config().body_limit;
    // Make sure the recorder exists before the first request is counted.
    let _ = crate::metrics::handle();
    let routes = Router::new()
        .merge(runtime::routes())
        .merge(catalog::routes())
        .merge(commerce::routes())
        .merge(customers::routes())
        .merge(licenses::routes())
        .merge(access::routes())
        .merge(system::routes());
    #[cfg(feature = "test-routes")]
    let routes = routes.route(
        "/__test/panic",
        axum::routing::get(|| async {
            if true {
                panic!("deliberate panic from the test route");
            }
        }),
    );
    routes
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            refuse_oversized(limit, req, next)
        }))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn(crate::request_id::edge))
        .with_state(app)
}

/// How much of a body declared over the limit is read and thrown away before the 413.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;

/// A body whose `Content-Length` is over the limit gets 413 `PAYLOAD_TOO_LARGE` before any
/// handler runs. Up to [`DRAIN_CAP`] bytes of it are read and discarded first: a client that
/// writes the whole body before reading (Python's `urllib`, for one) would otherwise see the
/// connection closed under it (a broken pipe) instead of the 413.
async fn refuse_oversized(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|&n| n > u64::try_from(limit).unwrap_or(u64::MAX)) else {
        return next.run(req).await;
    };
    if declared <= DRAIN_CAP {
        let mut body = req.into_body();
        let mut read = 0u64;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Some(data) = frame.data_ref() {
                read += u64::try_from(data.len()).unwrap_or(u64::MAX);
            }
            if read > DRAIN_CAP {
                break;
            }
        }
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        crate::error::codes::PAYLOAD_TOO_LARGE,
        "the request body is over the size limit",
    )
    .into_response()
}

fn on_panic(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %message, "a handler panicked");
    ApiError::internal().into_response()
}

/// `?limit=` of list operations (default 50, clamped to 200; below 1 is 400).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default, deserialize_with = "positive_limit")]
    pub limit: Option<i64>,
}

/// `limit` of every list: the contract's `LimitParam` has `minimum: 1`, so `0` or a negative
/// value is a bad query value (400 `INVALID_QUERY`); above 200 is clamped, as it says.
pub(crate) fn positive_limit<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    let v = Option::<i64>::deserialize(d)?;
    if v.is_some_and(|n| n < 1) {
        return Err(serde::de::Error::custom("limit must be at least 1"));
    }
    Ok(v)
}

impl ListQuery {
    pub(crate) fn limit(&self) -> Limit {
        Limit::new(self.limit)
    }
}

/// `{"data": data, "meta": …}` with `status`.
pub(crate) fn envelope<T: Serialize>(
    status: StatusCode,
    rid: &RequestId,
    data: &T,
) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        data: &'a T,
        meta: Meta<'a>,
    }
    let body = serde_json::to_vec(&Envelope {
        data,
        meta: Meta::now(rid.as_str()),
    })
    .map_err(|e| {
        tracing::error!(error = %e, "response encoding failed");
        ApiError::internal()
    })?;
    Ok(json_bytes(status, body))
}

/// 200 `{data, meta}`.
pub(crate) fn ok<T: Serialize>(rid: &RequestId, data: &T) -> Result<Response, ApiError> {
    envelope(StatusCode::OK, rid, data)
}

/// 201 `{data, meta}`.
pub(crate) fn created<T: Serialize>(rid: &RequestId, data: &T) -> Result<Response, ApiError> {
    envelope(StatusCode::CREATED, rid, data)
}

/// 204, empty.
pub(crate) fn no_content() -> Result<Response, ApiError> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Bytes that are already a complete JSON body.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A stored body that may be an idempotent replay (marked `idempotent-replayed: true`).
pub(crate) fn stored(body: Vec<u8>, replayed: bool) -> Response {
    let mut res = json_bytes(StatusCode::OK, body);
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}
