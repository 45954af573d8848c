//! Rate limits (DESIGN 5 and 7): 429 `RATE_LIMITED` with `Retry-After`, from `governor`.
//!
//! Two limits, both on by default (`LICENTIA_RATE_LIMIT=off` turns them off, for benchmarks):
//!
//! * **per credential**, for every request that carries a license key or a management token:
//!   [`DEFAULT_PER_CREDENTIAL_PER_SECOND`] requests a second with bursts of
//!   [`DEFAULT_PER_CREDENTIAL_BURST`]. A site license used by thousands of machines that each
//!   validate once a minute stays far below it; a script hammering one key does not. The
//!   credential is keyed by a keyed hash, never kept as it is. Device activation, sign-in
//!   and setting a password with a one-time token, whose credentials are in the body, are
//!   limited per client address the same way.
//! * **per client address, for failed authentication** (401 on a request that carried
//!   credentials: key and token guessing): after [`DEFAULT_FAILED_AUTH_BURST`] failures,
//!   one more is allowed every [`DEFAULT_FAILED_AUTH_PERIOD`]; while an address is over it,
//!   every credentialed request from it is 429, so a guess that would succeed is not
//!   answered either.
//!
//! The client address is the peer's, or behind a trusted proxy the one it reports
//! ([`crate::client_ip`]). Both tables forget keys that are back to full allowance every
//! minute ([`Limiter::prune`]), so they stay bounded by the traffic of the last minute.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use parking_lot::Mutex;

use crate::client_ip::ClientIp;
use crate::error::{ApiError, codes};

/// Default requests a second per credential.
pub const DEFAULT_PER_CREDENTIAL_PER_SECOND: u32 = 100;
/// Default burst per credential.
pub const DEFAULT_PER_CREDENTIAL_BURST: u32 = 200;
/// Default failed authentications an address may make at once.
pub const DEFAULT_FAILED_AUTH_BURST: u32 = 20;
/// Default time after which one more failed authentication is allowed.
pub const DEFAULT_FAILED_AUTH_PERIOD: Duration = Duration::from_secs(6);
/// Addresses remembered as over their failure allowance at once; beyond it the oldest go.
const MAX_BLOCKED: usize = 100_000;

/// The limits' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests a second per credential.
    pub per_credential_per_second: u32,
    /// Burst per credential.
    pub per_credential_burst: u32,
    /// Failed authentications an address may make at once.
    pub failed_auth_burst: u32,
    /// One more failed authentication is allowed after this long.
    pub failed_auth_period: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_credential_per_second: DEFAULT_PER_CREDENTIAL_PER_SECOND,
            per_credential_burst: DEFAULT_PER_CREDENTIAL_BURST,
            failed_auth_burst: DEFAULT_FAILED_AUTH_BURST,
            failed_auth_period: DEFAULT_FAILED_AUTH_PERIOD,
        }
    }
}

/// The limiters of one server.
#[derive(Debug)]
pub struct Limiter {
    credentials: DefaultKeyedRateLimiter<u64>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    hasher: RandomState,
    clock: DefaultClock,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limiter {
    /// Limiters with `limits`.
    pub fn new(limits: RateLimits) -> Self {
        let credential_quota = Quota::per_second(nonzero(limits.per_credential_per_second))
            .allow_burst(nonzero(limits.per_credential_burst));
        let failure_quota =
            Quota::with_period(limits.failed_auth_period.max(Duration::from_millis(1)))
                .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
                .allow_burst(nonzero(limits.failed_auth_burst));
        Self {
            credentials: DefaultKeyedRateLimiter::keyed(credential_quota),
            failures: DefaultKeyedRateLimiter::keyed(failure_quota),
            blocked: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
            clock: DefaultClock::default(),
        }
    }

    /// Forgets keys back at full allowance and addresses no longer blocked.
    pub fn prune(&self) {
        self.credentials.retain_recent();
        self.credentials.shrink_to_fit();
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        let now = Instant::now();
        self.blocked.lock().retain(|_, until| *until > now);
    }

    /// How long `ip` must wait, when it is over its failed-authentication allowance.
    fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock();
        let until = *blocked.get(&ip)?;
        until.checked_duration_since(Instant::now())
    }

    /// Notes a failed authentication from `ip`.
    fn failed(&self, ip: IpAddr) {
        if let Err(not_until) = self.failures.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            let mut blocked = self.blocked.lock();
            if blocked.len() >= MAX_BLOCKED {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            if blocked.len() < MAX_BLOCKED {
                blocked.insert(ip, Instant::now() + wait);
            }
        }
    }

    /// Takes one request from `credential`'s allowance; the wait when there is none left.
    fn take(&self, credential: &[u8]) -> Result<(), Duration> {
        let key = self.hasher.hash_one(credential);
        self.credentials
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The calls that authenticate by their body (serial and secret, e-mail and password, a
/// one-time token): limited per address, their failures counted like any other.
const BODY_CREDENTIALS: [&str; 4] = [
    "/api/v1/device/activate",
    "/api/v1/auth/sign-in",
    "/api/v1/auth/password",
    "/api/v1/license/users/sign-in",
];

/// Middleware: see the module docs. `limiter` is `None` when rate limits are off.
pub async fn enforce(limiter: Option<Arc<Limiter>>, req: Request, next: Next) -> Response {
    let Some(limiter) = limiter else {
        return next.run(req).await;
    };
    let ip = req.extensions().get::<ClientIp>().map(|c| c.0).or_else(|| {
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
    });
    // Device activation, sign-in and setting a password carry their credential in the body:
    // they are limited per address instead, and their failures count like any other.
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            let path = req.uri().path();
            BODY_CREDENTIALS.contains(&path).then(|| {
                format!("{path} {}", ip.map(|i| i.to_string()).unwrap_or_default()).into_bytes()
            })
        });
    let Some(credential) = credential else {
        return next.run(req).await;
    };
    let has_body = crate::body::has_body(&req);
    let refused = ip
        .and_then(|ip| limiter.blocked_for(ip))
        .map(|wait| (wait, "too many failed authentications from this address"))
        .or_else(|| {
            limiter
                .take(&credential)
                .err()
                .map(|wait| (wait, "too many requests with this credential"))
        });
    if let Some((wait, why)) = refused {
        let res = rate_limited(wait, why);
        // The body was not read: the connection cannot carry another request after it.
        return if has_body {
            crate::body::closing(res)
        } else {
            res
        };
    }
    let res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED
        && let Some(ip) = ip
    {
        limiter.failed(ip);
    }
    res
}

/// 429 `RATE_LIMITED` with `Retry-After` in whole seconds (at least 1).
pub fn rate_limited(wait: Duration, why: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMITED,
        format!("{why}; retry after {} s", secs.max(1)),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_an_address_and_credentials_have_a_budget() {
        let l = Limiter::new(RateLimits {
            per_credential_per_second: 1,
            per_credential_burst: 3,
            failed_auth_burst: 2,
            failed_auth_period: Duration::from_secs(60),
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        l.failed(ip);
        l.failed(ip);
        assert_eq!(l.blocked_for(ip), None, "within the burst");
        l.failed(ip);
        let wait = l.blocked_for(ip).expect("over the burst");
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            l.blocked_for("192.0.2.8".parse().unwrap()),
            None,
            "per address"
        );
        for _ in 0..3 {
            assert!(l.take(b"License lsk_a").is_ok());
        }
        assert!(l.take(b"License lsk_a").is_err(), "over the burst");
        assert!(l.take(b"License lsk_b").is_ok(), "per credential");
    }
}
