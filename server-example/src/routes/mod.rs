//! The route table and the response helpers every handler shares.

mod access;
mod allocation;
mod artifacts;
pub(crate) use artifacts::is_upload;
mod catalog;
mod commerce;
mod customers;
mod licenses;
mod registrations;
mod reports;
mod runtime;
mod system;
mod templates;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use licentia_core::store::{Limit, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::request_id::{Meta, RequestId};
use crate::state::App;

/// A body of two chunks 1.2 s apart (longer than the tests' idle timeout), as a slow
/// download sends it.
#[cfg(feature = "test-routes")]
async fn slow_body() -> Response {
    Response::new(axum::body::Body::new(SlowBody {
        sent: 0,
        gap: Box::pin(tokio::time::sleep(std::time::Duration::from_millis(1200))),
    }))
}

#[cfg(feature = "test-routes")]
struct SlowBody {
    sent: u8,
    gap: std::pin::Pin<Box<tokio::time::Sleep>>,
}

#[cfg(feature = "test-routes")]
impl axum::body::HttpBody for SlowBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let chunk = || Poll::Ready(Some(Ok(hyper::body::Frame::data("x".repeat(1024).into()))));
        match self.sent {
            0 => {
                self.sent = 1;
                chunk()
            }
            1 => match self.gap.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.sent = 2;
                    chunk()
                }
                Poll::Pending => Poll::Pending,
            },
            _ => Poll::Ready(None),
        }
    }
}

/// The whole API: runtime, management and system routes, with the error, request id,
/// metrics, body limit and panic layers.
pub fn router<S: Store + 'static>(app: App<S>) -> Router {
    let body = crate::body::BodyLimits {
        max_bytes: app.config().body_limit,
        upload_max_bytes: app.config().artifacts.upload_limit,
        timeout: app.config().limits.body_timeout,
    };
    let limiter = app.limiter();
    let passwords = crate::password_work::permits();
    let trusted: std::sync::Arc<[ipnet::IpNet]> = app.config().trusted_proxies.clone().into();
    // Make sure the recorder exists before the first request is counted.
    let _ = crate::metrics::handle();
    let routes = Router::new()
        .merge(runtime::routes())
        .merge(catalog::routes())
        .merge(commerce::routes())
        .merge(customers::routes())
        .merge(licenses::routes())
        .merge(allocation::routes())
        .merge(artifacts::routes())
        .merge(registrations::routes())
        .merge(templates::routes())
        .merge(access::routes())
        .merge(users::routes())
        .merge(reports::routes())
        .merge(system::routes())
        .merge(crate::console::routes());
    let routes = if app.config().metrics_separate {
        routes
    } else {
        routes.merge(system::metrics_routes())
    };
    #[cfg(feature = "test-routes")]
    let routes = routes
        .route(
            "/__test/panic",
            axum::routing::get(|| async {
                if true {
                    panic!("deliberate panic from the test route");
                }
            }),
        )
        .route("/__test/slow-body", axum::routing::get(slow_body));
    let routes = routes
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(body.max_bytes))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::body::read_whole(body, req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::password_work::off_worker(passwords.clone(), req, next)
        }));
    // Layers that would do nothing are not installed (they cost a boxed future per request).
    let routes = match limiter {
        Some(limiter) => routes.layer(axum::middleware::from_fn(move |req, next| {
            crate::ratelimit::enforce(Some(limiter.clone()), req, next)
        })),
        None => routes,
    };
    let routes = if trusted.is_empty() {
        routes
    } else {
        routes.layer(axum::middleware::from_fn(move |req, next| {
            crate::client_ip::resolve(trusted.clone(), req, next)
        }))
    };
    routes
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn(crate::request_id::edge))
        .with_state(app)
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

/// `/metrics` alone, for its own listener (`--metrics-listen`).
pub fn metrics_router<S: Store + 'static>(app: App<S>) -> Router {
    system::metrics_routes()
        .fallback(|| async { ApiError::route_not_found() })
        .layer(axum::middleware::from_fn(crate::request_id::edge))
        .with_state(app)
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

/// A cursor-paged answer: `{data, page_info: {next_cursor}, meta}`.
pub(crate) fn paged<T: Serialize, C: Serialize>(
    rid: &RequestId,
    data: &T,
    next_cursor: Option<C>,
) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Page<'a, T> {
        data: &'a T,
        page_info: serde_json::Value,
        meta: Meta<'a>,
    }
    let body = serde_json::to_vec(&Page {
        data,
        page_info: json!({ "next_cursor": next_cursor }),
        meta: Meta::now(rid.as_str()),
    })
    .map_err(|_| ApiError::internal())?;
    Ok(json_bytes(StatusCode::OK, body))
}
