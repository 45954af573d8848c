//! Requests that judge or set a password run off the async workers.
//!
//! Argon2id takes tens of milliseconds of CPU and about 19 MiB on purpose. On a tokio worker
//! it would stall every other connection that worker serves, so the requests that hash — the
//! sign-ins, setting a password with a one-time token, and runtime calls with a license
//! user's `Authorization: User …` — run whole on a blocking thread instead, at most one per
//! core at once (the others wait their turn), which also bounds the memory the hashes take.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The routes whose body holds a password to judge or set.
const PASSWORD_PATHS: [&str; 3] = [
    "/api/v1/auth/sign-in",
    "/api/v1/auth/password",
    "/api/v1/license/users/sign-in",
];

/// One permit per core: how many password requests run at once.
pub fn permits() -> Arc<Semaphore> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    Arc::new(Semaphore::new(cores))
}

/// Whether `req` hashes a password.
fn hashes(req: &Request) -> bool {
    PASSWORD_PATHS.contains(&req.uri().path())
        || req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().get(..5))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"user "))
}

/// Middleware: see the module docs.
pub async fn off_worker(permits: Arc<Semaphore>, req: Request, next: Next) -> Response {
    if !hashes(&req) {
        return next.run(req).await;
    }
    let Ok(_permit) = permits.acquire_owned().await else {
        return ApiError::unavailable().into_response();
    };
    let runtime = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || runtime.block_on(next.run(req))).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(error = %e, "a password request's thread failed");
            ApiError::internal().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, authorization: Option<&str>) -> Request {
        let mut b = Request::builder().uri(path);
        if let Some(a) = authorization {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn only_the_requests_that_hash_a_password_leave_the_workers() {
        assert!(hashes(&request("/api/v1/auth/sign-in", None)));
        assert!(hashes(&request("/api/v1/auth/password", None)));
        assert!(hashes(&request("/api/v1/license/users/sign-in", None)));
        assert!(hashes(&request(
            "/api/v1/license/validate",
            Some("user YTpi")
        )));
        assert!(!hashes(&request(
            "/api/v1/license/validate",
            Some("License lsk_x")
        )));
        assert!(!hashes(&request(
            "/api/v1/license/validate",
            Some("Bearer lkm_x")
        )));
        assert!(!hashes(&request("/api/v1/licenses", Some("Bearer lkm_x"))));
    }
}
