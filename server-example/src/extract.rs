//! Strict extractors whose rejections are [`ApiError`] envelopes (never axum's text bodies).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, codes};

/// A JSON body decoded strictly: the target types refuse unknown fields. An empty body reads
/// as `{}` (SDKs send body-less `POST`s with no bytes and no `Content-Type`).
///
/// The body is read as JSON whatever `Content-Type` says: the contract's only refusal of a body
/// is 400 (malformed JSON, unknown fields, wrong types) and it lists no 415, and common clients
/// label JSON otherwise by default (`urllib` sends `application/x-www-form-urlencoded`, `fetch`
/// with a string body `text/plain`). A body that is not JSON is 400 `INVALID_JSON`.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        decode(bytes).map(Json)
    }
}

/// Decodes `bytes` as `T`, classifying failures into stable codes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        let code = match e.classify() {
            serde_json::error::Category::Data if text.starts_with("unknown field") => {
                codes::UNKNOWN_FIELD
            }
            serde_json::error::Category::Data if text.starts_with("missing field") => {
                codes::MISSING_FIELD
            }
            serde_json::error::Category::Data => codes::INVALID_FIELD_TYPE,
            _ => codes::INVALID_JSON,
        };
        let message = match code {
            codes::UNKNOWN_FIELD => "the body has a field this operation does not accept",
            codes::MISSING_FIELD => "the body lacks a required field",
            codes::INVALID_FIELD_TYPE => "a body field has the wrong type or value",
            _ => "the body is not valid JSON",
        };
        ApiError::bad_request(code, message).with_detail(text)
    })
}

pub(crate) fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            "the request body is over the size limit",
        )
    } else {
        ApiError::bad_request(codes::INVALID_JSON, "the request body could not be read")
            .with_detail(r.body_text())
    }
}

/// Query parameters; unreadable values are 400 `INVALID_QUERY`.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r| {
                ApiError::bad_request(codes::INVALID_QUERY, "a query parameter is invalid")
                    .with_detail(r.body_text())
            })
    }
}

/// Path parameters; unreadable values are 400 `INVALID_PATH`.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r| {
                ApiError::bad_request(codes::INVALID_PATH, "a path parameter is invalid")
                    .with_detail(r.body_text())
            })
    }
}

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header, required (400 `IDEMPOTENCY_KEY_REQUIRED` when missing); as
/// `Option<IdempotencyKey>`, optional (still 400 when malformed).
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Err(ApiError::bad_request(
                codes::IDEMPOTENCY_KEY_REQUIRED,
                "this operation requires an Idempotency-Key header",
            ));
        };
        match v.to_str() {
            Ok(k)
                if (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Self(k.to_owned()))
            }
            _ => Err(ApiError::bad_request(
                codes::INVALID_IDEMPOTENCY_KEY,
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                ),
            )),
        }
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        if !parts.headers.contains_key("idempotency-key") {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}
