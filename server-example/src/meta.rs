//! The `meta` object of every response body (a leaf: errors and the request-id layer both
//! render it).

use chrono::SecondsFormat;
use serde::Serialize;

/// The contract's `ResponseMeta`.
#[derive(Debug, Serialize)]
pub struct Meta<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// When the response was made (RFC 3339, UTC, seconds).
    pub timestamp: String,
}

impl<'a> Meta<'a> {
    /// Meta for request `id`, now.
    pub fn now(id: &'a str) -> Self {
        Self {
            request_id: id,
            timestamp: now_timestamp(),
        }
    }
}

/// Now as RFC 3339 UTC with second precision and a `Z`.
pub fn now_timestamp() -> String {
    crate::state::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}
