//! New licenses' keys as a CSV sheet (an extension): `POST /api/v1/licenses/bulk` and
//! `POST /api/v1/contracts/{id}/licenses` answer `text/csv` instead of JSON when the request
//! says `Accept: text/csv`, for a reseller or a fulfilment system that wants a file.
//!
//! The sheet is made from the same stored answer as the JSON (so a replay of the call gives
//! the same sheet); the keys are in it once, as in the JSON, and never stored in clear.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use crate::error::ApiError;

/// The columns of the sheet, in order.
pub const COLUMNS: [&str; 8] = [
    "license_id",
    "license_key",
    "product_id",
    "policy_id",
    "customer_id",
    "pool",
    "contract_id",
    "expires_at",
];

/// Whether the request asks for the sheet: its `Accept` names `text/csv`.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
        })
}

#[derive(Deserialize)]
struct Created {
    license: Row,
    license_key: String,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    product_id: String,
    policy_id: String,
    customer_id: Option<String>,
    pool: Option<String>,
    contract_id: Option<String>,
    expires_at: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Created>,
}

/// Logs why the sheet could not be made; the client sees a plain 500.
fn failed(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "could not make a key sheet");
    ApiError::internal()
}

/// The sheet of a `{"data":[<LicenseCreated>…]}` answer.
///
/// # Errors
///
/// An internal error when `body` is not such an answer (it always is: the engine made it).
pub fn of(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let answer: Answer = serde_json::from_slice(body).map_err(failed)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).map_err(failed)?;
    for c in answer.data {
        let l = c.license;
        let text = |v: Option<String>| v.unwrap_or_default();
        w.write_record([
            l.id,
            c.license_key,
            l.product_id,
            l.policy_id,
            text(l.customer_id),
            text(l.pool),
            text(l.contract_id),
            text(l.expires_at),
        ])
        .map_err(failed)?;
    }
    w.into_inner().map_err(|e| failed(e.into_error()))
}

/// `res` (a JSON answer of new licenses) as the sheet, with its status and headers kept.
///
/// # Errors
///
/// As [`of`].
pub fn respond(mut res: Response, body: &[u8]) -> Result<Response, ApiError> {
    let sheet = of(body)?;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"licenses.csv\""),
    );
    // It holds license keys: no cache keeps a copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.remove(header::CONTENT_LENGTH);
    *res.body_mut() = sheet.into();
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_names_csv_among_others() {
        let mut h = HeaderMap::new();
        assert!(!wanted(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wanted(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;q=0.5, Text/CSV; charset=utf-8"),
        );
        assert!(wanted(&h));
    }

    #[test]
    fn a_sheet_has_a_header_and_one_row_per_license() {
        let body = br#"{"data":[{"license":{"id":"lic_1","product_id":"prod_1","policy_id":"pol_1","pool":"spring","status":"active"},"license_key":"lsk_A,B"}],"meta":{}}"#;
        let sheet = String::from_utf8(of(body).unwrap()).unwrap();
        let lines: Vec<&str> = sheet.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(lines[1], "lic_1,\"lsk_A,B\",prod_1,pol_1,,spring,,");
        assert_eq!(lines.len(), 2);
    }
}
