//! Request bodies: read whole, once, before any handler, within a size and a time limit.
//!
//! * A `Content-Length` over the limit is 413 `PAYLOAD_TOO_LARGE` at once: nothing of the
//!   body is read, and the answer carries `Connection: close` (the unread bytes would
//!   otherwise be taken for the next request).
//! * A body without a length (chunked) is read until it crosses the limit, then 413 the same
//!   way.
//! * A body that takes longer than the body timeout is 408 `REQUEST_TIMEOUT`, closed too.
//!
//! Bodies are small JSON documents here (64 KiB by default), so reading them whole up front
//! costs what the JSON extractor would have done anyway, and every handler after this layer
//! sees a body that is complete and within its limits. The one exception is a raw artifact
//! upload, which its handler reads itself once the caller is authenticated ([`read_limited`]).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{ApiError, codes};

/// The body limits of one router.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body in bytes.
    pub max_bytes: usize,
    /// Largest raw artifact upload in bytes (`POST …/artifacts` as
    /// `application/octet-stream`).
    pub upload_max_bytes: usize,
    /// Time to read the whole body.
    pub timeout: Duration,
}

/// Middleware: see the module docs. A raw artifact upload (`POST …/artifacts` as
/// `application/octet-stream`) is only held to its declared length here and passed on
/// unread: its handler authenticates first and then reads it with [`read_limited`] under the
/// upload limit, so no unauthenticated request can make the server buffer that much.
pub async fn read_whole(limits: BodyLimits, req: Request, next: Next) -> Response {
    let upload = crate::routes::is_upload(req.method(), req.uri().path(), req.headers());
    let max = match upload {
        true => limits.upload_max_bytes,
        false => limits.max_bytes,
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        return too_large();
    }
    if has_nul(req.uri()) {
        return nul_refused();
    }
    if declared == Some(0) || upload {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(body, limits.max_bytes, limits.timeout).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    if has_nul_escape(&bytes) {
        return nul_refused();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Reads `body` whole, at most `max_bytes` within `timeout`; otherwise the answer to send:
/// 413 (closing the connection), 408, or 400 for a body that could not be read.
pub async fn read_limited(
    body: Body,
    max_bytes: usize,
    timeout: Duration,
) -> Result<axum::body::Bytes, Response> {
    let read = tokio::time::timeout(timeout, Limited::new(body, max_bytes).collect()).await;
    match read {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(closing(
            ApiError::bad_request(codes::INVALID_JSON, "the request body could not be read")
                .into_response(),
        )),
        Err(_) => Err(closing(
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )
            .into_response(),
        )),
    }
}

/// U+0000 cannot be stored by PostgreSQL (nor safely by many consumers of our data), so a
/// request carrying it in its path, query or body is refused the same way on every backend.
fn nul_refused() -> Response {
    ApiError::bad_request(
        codes::INVALID_STRING,
        "strings must not contain the character U+0000",
    )
    .into_response()
}

/// Whether the path or query percent-encodes a NUL (`%00`).
fn has_nul(uri: &axum::http::Uri) -> bool {
    let s = uri.path_and_query().map_or("", |p| p.as_str()).as_bytes();
    s.windows(3).any(|w| w == b"%00")
}

/// Whether JSON text holds a `\u0000` escape (a raw NUL byte is not JSON at all and is refused
/// by the parser). An escape is one whose backslash is not itself escaped: an odd run of
/// backslashes before the `u`.
pub fn has_nul_escape(json: &[u8]) -> bool {
    json.windows(5).enumerate().any(|(i, w)| {
        w == b"u0000" && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

fn too_large() -> Response {
    closing(
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            "the request body is over the size limit",
        )
        .into_response(),
    )
}

/// Whether `req` has a body still to read (a length above 0, or chunked).
pub fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Marks `res` as the last answer on its connection.
pub fn closing(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn nul_escapes() {
        assert!(has_nul_escape(br#"{"a":"x\u0000y"}"#));
        assert!(has_nul_escape(br#"{"a":"\\\u0000"}"#));
        assert!(
            !has_nul_escape(br#"{"a":"\\u0000"}"#),
            "an escaped backslash, then text"
        );
        assert!(!has_nul_escape(br#"{"a":"u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"\u0001"}"#));
    }
}
