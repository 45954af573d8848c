//! The admin console at `/console`: a small front end (plain HTML, CSS and one script, no
//! build step) embedded in the binary, so the release server carries it with nothing else
//! to install or serve.
//!
//! The console has no API of its own. Its script signs in with a management token (kept in
//! the tab's `sessionStorage`, never in a URL or a cookie), asks `GET /api/v1/system/token`
//! which scopes the token has, and calls the documented management API with it, so scopes,
//! rate limits and validation apply exactly as they do for any client. Every value reaches
//! the page as text (`textContent`), never as markup, and the pages are served with a
//! Content-Security-Policy that allows only the console's own script and style.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use licentia_core::store::Store;

use crate::error::ApiError;
use crate::state::App;

const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

/// Only the console's own files: no inline script or style, no other origin, no framing,
/// no form posts (every action is a `fetch` to the API of this origin).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `/console` and its assets.
pub fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/{file}", get(asset))
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX_HTML)
}

async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    match file.as_str() {
        "app.js" => Ok(page("text/javascript; charset=utf-8", APP_JS)),
        "app.css" => Ok(page("text/css; charset=utf-8", APP_CSS)),
        _ => Err(ApiError::route_not_found()),
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // The assets change with the binary: always revalidate.
        (header::CACHE_CONTROL, "no-cache"),
    ];
    let mut res = body.into_response();
    for (name, value) in headers {
        res.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    res
}
