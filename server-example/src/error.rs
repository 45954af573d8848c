//! Errors as HTTP answers: one table from failures to statuses and stable codes.
//!
//! An [`ApiError`] turned into a response carries itself as a response extension and no body;
//! the [`request_id`](crate::request_id) layer renders the `{error, meta}` envelope at the
//! edge, where the request id is known. That way errors raised anywhere (extractors, axum's
//! own 404/405, the panic handler) get the same envelope and `meta.request_id`.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use licentia_core::crypto::{Refusal, Signature, Signed};
use licentia_core::engine::EngineError;
use licentia_core::rules::DenialKind;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::meta::{Meta, now_timestamp};

/// The server's own error codes (engine denials keep their rule codes).
pub mod codes {
    /// Malformed JSON (syntax, truncated body).
    pub const INVALID_JSON: &str = "INVALID_JSON";
    /// A body field the operation does not know.
    pub const UNKNOWN_FIELD: &str = "UNKNOWN_FIELD";
    /// A required body field is missing.
    pub const MISSING_FIELD: &str = "MISSING_FIELD";
    /// A body field has the wrong type or an impossible value.
    pub const INVALID_FIELD_TYPE: &str = "INVALID_FIELD_TYPE";
    /// A query parameter could not be read.
    pub const INVALID_QUERY: &str = "INVALID_QUERY";
    /// A path parameter could not be read.
    pub const INVALID_PATH: &str = "INVALID_PATH";
    /// The operation requires an `Idempotency-Key` header.
    pub const IDEMPOTENCY_KEY_REQUIRED: &str = "IDEMPOTENCY_KEY_REQUIRED";
    /// The `Idempotency-Key` is empty, too long or not visible ASCII.
    pub const INVALID_IDEMPOTENCY_KEY: &str = "INVALID_IDEMPOTENCY_KEY";
    /// No `Authorization` header.
    pub const MISSING_CREDENTIALS: &str = "MISSING_CREDENTIALS";
    /// An `Authorization` header of the wrong scheme or shape.
    pub const MALFORMED_CREDENTIALS: &str = "MALFORMED_CREDENTIALS";
    /// Unknown, expired, inactive or address-restricted credentials.
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    /// The token lacks the operation's scope.
    pub const TOKEN_SCOPE_DENIED: &str = "TOKEN_SCOPE_DENIED";
    /// No such resource or route.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The route exists but not for this method.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// A unique value is taken.
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    /// The write conflicts with other records.
    pub const CONFLICT: &str = "CONFLICT";
    /// The `Idempotency-Key` was used before with another request.
    pub const IDEMPOTENCY_CONFLICT: &str = "IDEMPOTENCY_CONFLICT";
    /// The body is over the configured limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// A body with a declared non-JSON content type.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    /// The request body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// A string holds a character no backend stores (U+0000).
    pub const INVALID_STRING: &str = "INVALID_STRING";
    /// Too many requests; `Retry-After` says when to try again.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// Storage cannot be reached now.
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// A `Range` that starts past the end of the file (416).
    pub const RANGE_NOT_SATISFIABLE: &str = "RANGE_NOT_SATISFIABLE";
    /// Anything else; details are logged, not shown.
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
}

/// An error answer: status, stable code, message and optional detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: Cow<'static, str>,
    /// A human-readable message.
    pub message: String,
    /// More detail, when there is some.
    pub detail: Option<String>,
    /// For a signed runtime refusal: the exact bytes of the `error` object and their
    /// signature ([`licentia_core::crypto::refusal`]).
    pub signed: Option<Box<(String, Signature)>>,
}

impl ApiError {
    /// An error with no detail.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            detail: None,
            signed: None,
        }
    }

    /// Adds a detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 with `code`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 404 for a route that does not exist.
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route")
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "method not allowed on this route",
        )
    }

    /// 503: a store the answer needs cannot be reached now; the cause is logged by the
    /// caller.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::SERVICE_UNAVAILABLE,
            "a store is unavailable; retry later",
        )
    }

    /// 500; the cause is logged by the caller, never shown.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "internal error",
        )
    }

    /// The refusal this error states, to sign.
    pub fn refusal(&self) -> Refusal {
        Refusal {
            code: self.code.to_string(),
            message: self.message.clone(),
            detail: self.detail.clone(),
        }
    }

    /// The same error carrying `signed`: the signed bytes of its [`ApiError::refusal`].
    #[must_use]
    pub fn with_signature(mut self, signed: &Signed<Refusal>) -> Self {
        self.signed = Some(Box::new((
            signed.data_json().get().to_owned(),
            signed.signature().clone(),
        )));
        self
    }

    /// The `{error, meta}` body for request `request_id` (`{error, signature, meta}` when
    /// signed, `error` then being exactly the signed bytes).
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        if let Some(signed) = &self.signed {
            let (error, signature) = &**signed;
            #[derive(Serialize)]
            struct SignedEnvelope<'a> {
                error: &'a RawValue,
                signature: &'a Signature,
                meta: Meta<'a>,
            }
            if let Ok(error) = serde_json::from_str::<&RawValue>(error) {
                let env = SignedEnvelope {
                    error,
                    signature,
                    meta: Meta {
                        request_id,
                        timestamp: now_timestamp(),
                    },
                };
                if let Ok(body) = serde_json::to_vec(&env) {
                    return body;
                }
            }
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: ErrorObject<'a>,
            meta: Meta<'a>,
        }
        #[derive(Serialize)]
        struct ErrorObject<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
        }
        let env = Envelope {
            error: ErrorObject {
                code: &self.code,
                message: &self.message,
                detail: self.detail.as_deref(),
            },
            meta: Meta {
                request_id,
                timestamp: now_timestamp(),
            },
        };
        serde_json::to_vec(&env).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// The complete response for request `request_id`.
    pub fn render(&self, request_id: &str) -> Response {
        let mut res = (self.status, self.body(request_id)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    /// A bodiless response carrying the error; the edge layer renders the envelope.
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Denied(d) => {
                let primary = d.primary();
                let status = match primary.code.kind() {
                    DenialKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                    DenialKind::Forbidden => StatusCode::FORBIDDEN,
                    DenialKind::NotFound => StatusCode::NOT_FOUND,
                    DenialKind::Conflict => StatusCode::CONFLICT,
                    // A kind added later: the request was refused as it stands.
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let detail = d
                    .reasons()
                    .iter()
                    .map(|r| match r.field {
                        Some(f) => format!("{} ({f}): {}", r.code.as_str(), r.message),
                        None => format!("{}: {}", r.code.as_str(), r.message),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError::new(status, primary.code.as_str(), primary.message.clone())
                    .with_detail(detail)
            }
            EngineError::InvalidCredentials => ApiError::unauthorized(
                codes::INVALID_CREDENTIALS,
                "credentials are unknown, expired or inactive",
            ),
            EngineError::NotFound { entity } => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!("{entity} not found"),
            ),
            EngineError::AlreadyExists { entity, constraint } => ApiError::new(
                StatusCode::CONFLICT,
                codes::ALREADY_EXISTS,
                format!("a {entity} with this {constraint} already exists"),
            ),
            EngineError::Conflict(reason) => ApiError::new(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                format!("conflict: {reason}"),
            ),
            EngineError::InvalidQuery { param, message } => ApiError::bad_request(
                codes::INVALID_QUERY,
                format!("query parameter {param} {message}"),
            ),
            EngineError::IdempotencyConflict => ApiError::new(
                StatusCode::CONFLICT,
                codes::IDEMPOTENCY_CONFLICT,
                "this Idempotency-Key was used with a different request",
            ),
            EngineError::Unavailable(source) => {
                tracing::warn!(error = %source, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::SERVICE_UNAVAILABLE,
                    "storage is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "internal error");
                ApiError::internal()
            }
        }
    }
}
