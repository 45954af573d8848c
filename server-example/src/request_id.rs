//! The edge of every request: its id, and the rendering of error envelopes.
//!
//! The id comes from a valid incoming `x-request-id` (1 to 128 characters of
//! `A-Z a-z 0-9 . _ : -`) or is generated (`req_` + 24 hex digits). Handlers read it with the
//! [`RequestId`] extractor; the response always carries it back in `x-request-id`.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
pub use crate::meta::{Meta, now_timestamp};

/// The `x-request-id` header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(generate())))
    }
}

fn valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn generate() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock; ids only need to be unique enough to trace.
        let nanos = crate::state::now()
            .timestamp_nanos_opt()
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
    }
    let mut s = String::with_capacity(28);
    s.push_str("req_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Middleware: assigns the request id, renders pending error envelopes, sets `x-request-id`.
pub async fn edge(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid(v))
        .map_or_else(generate, str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Some(err) = res.extensions_mut().remove::<ApiError>() {
        let extensions = std::mem::take(res.extensions_mut());
        let headers = std::mem::take(res.headers_mut());
        res = err.render(&id);
        *res.extensions_mut() = extensions;
        for (name, value) in &headers {
            if name != axum::http::header::CONTENT_TYPE
                && name != axum::http::header::CONTENT_LENGTH
            {
                res.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate();
        assert!(valid(&a) && a.starts_with("req_") && a.len() == 28);
        assert_ne!(a, generate());
        assert!(!valid("") && !valid("a b") && !valid(&"x".repeat(129)));
    }
}
