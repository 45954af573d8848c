//! Credentials: `Authorization: License <key>` (or a pre-registered device's `Session
//! <token>`) for runtime calls, `Authorization: Bearer <token>` with the operation's scope for
//! management calls.
//!
//! Credentials are never logged. Missing or malformed headers are 401 before anything else is
//! looked at; a known token without the operation's scope is 403 `TOKEN_SCOPE_DENIED`.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use licentia_core::engine::Actor;
use licentia_core::model::{ApiKey, ManagementScope};
use licentia_core::store::Store;

use crate::error::{ApiError, codes};
use crate::state::App;

/// The client's address as text (see [`peer_ip`]), for calls that name no credential.
#[derive(Debug, Clone)]
pub struct PeerAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer_ip(parts).map(|ip| ip.to_string())))
    }
}

/// The client address: the one [`crate::client_ip`] resolved (behind a trusted proxy, the
/// address it reports), else the peer's when the server was started with connect info.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<crate::client_ip::ClientIp>()
        .map(|c| c.0)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
}

/// The caller's address ([`peer_ip`]) as an extractor, for calls that take no token.
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer_ip(parts)))
    }
}

fn credentials<'a>(parts: &'a Parts, scheme: &str) -> Result<&'a str, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            codes::MISSING_CREDENTIALS,
            format!("an Authorization: {scheme} header is required"),
        ));
    };
    let malformed = || {
        ApiError::unauthorized(
            codes::MALFORMED_CREDENTIALS,
            format!("the Authorization header must be `{scheme} <credential>`"),
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (given, credential) = value.split_once(' ').ok_or_else(malformed)?;
    let credential = credential.trim();
    if !given.eq_ignore_ascii_case(scheme) || credential.is_empty() || credential.contains(' ') {
        return Err(malformed());
    }
    Ok(credential)
}

/// A runtime caller: its credential (`License <key>`, or `Session <token>` for a
/// pre-registered device) and the peer address.
#[derive(Clone)]
pub struct License {
    /// The license key or session token (a secret: never log it).
    pub secret: String,
    /// Whether `secret` is a device session token.
    pub session: bool,
    /// The caller's address.
    pub ip: Option<String>,
}

impl License {
    /// The credential as the engine takes it.
    pub fn credential(&self) -> licentia_core::engine::Credential<'_> {
        use licentia_core::engine::Credential;
        match self.session {
            true => Credential::Session(&self.secret),
            false => Credential::LicenseKey(&self.secret),
        }
    }
}

impl std::fmt::Debug for License {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("License")
            .field("secret", &"<redacted>")
            .field("session", &self.session)
            .field("ip", &self.ip)
            .finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for License {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let session = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("Session"));
        let scheme = if session { "Session" } else { "License" };
        let secret = credentials(parts, scheme)?.to_owned();
        Ok(Self {
            secret,
            session,
            ip: peer_ip(parts).map(|ip| ip.to_string()),
        })
    }
}

/// A scope an operation requires (`x-required-scopes`), as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: ManagementScope;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $name:ident = $scope:ident;)+) => {
        /// Scope markers for [`Auth`].
        pub mod scope {
            use super::*;
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub struct $name;
                impl RequiredScope for $name {
                    const SCOPE: ManagementScope = ManagementScope::$scope;
                }
            )+
        }
    };
}

scopes! {
    /// `admin`.
    Admin = Admin;
    /// `product:read`.
    ProductRead = ProductRead;
    /// `product:write`.
    ProductWrite = ProductWrite;
    /// `license:read`.
    LicenseRead = LicenseRead;
    /// `license:write`.
    LicenseWrite = LicenseWrite;
    /// `device:write`.
    DeviceWrite = DeviceWrite;
    /// `event:read`.
    EventRead = EventRead;
    /// `webhook:write`.
    WebhookWrite = WebhookWrite;
    /// `report:read`.
    ReportRead = ReportRead;
    /// `report:export`.
    ReportExport = ReportExport;
    /// `ops:read`.
    OpsRead = OpsRead;
}

/// An authenticated management caller holding scope `R` (or `admin`).
pub struct Auth<R> {
    /// The token's key record.
    pub key: ApiKey,
    /// The actor recorded in events.
    pub actor: Actor,
    _scope: PhantomData<R>,
}

impl<R> std::fmt::Debug for Auth<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("key_id", &self.key.id)
            .finish_non_exhaustive()
    }
}

/// The caller's token and address once the token is known, active and allowed from that
/// address, whatever its scopes: what every [`Auth`] starts from.
async fn authenticate<S: Store + 'static>(
    parts: &Parts,
    app: &App<S>,
) -> Result<(ApiKey, Option<IpAddr>), ApiError> {
    let token = credentials(parts, "Bearer")?;
    let key = app.engine().authenticate(token).await?;
    let ip = peer_ip(parts);
    if !key.allowed_cidrs.is_empty()
        && !ip.is_some_and(|ip| key.allowed_cidrs.iter().any(|c| cidr_contains(c, ip)))
    {
        return Err(ApiError::unauthorized(
            codes::INVALID_CREDENTIALS,
            "this token is not allowed from this address",
        ));
    }
    Ok((key, ip))
}

impl<R: RequiredScope, S: Store + 'static> FromRequestParts<App<S>> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App<S>) -> Result<Self, ApiError> {
        let (key, ip) = authenticate(parts, app).await?;
        if !key.has_scope(R::SCOPE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::TOKEN_SCOPE_DENIED,
                format!("this operation requires the `{}` scope", R::SCOPE),
            ));
        }
        let ip = ip.map(|i| i.to_string());
        // A user's session acts as the user: its events name them.
        let actor = match &key.user_id {
            Some(user) => Actor::user(user, ip),
            None => Actor::api_key(&key.id, ip),
        };
        Ok(Self {
            key,
            actor,
            _scope: PhantomData,
        })
    }
}

/// A management caller with any valid token: for the one operation every token may call,
/// reading what the token itself may do (`GET /api/v1/system/token`).
#[derive(Debug)]
pub struct AnyScope {
    /// The token's key record.
    pub key: ApiKey,
}

impl<S: Store + 'static> FromRequestParts<App<S>> for AnyScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App<S>) -> Result<Self, ApiError> {
        let (key, _) = authenticate(parts, app).await?;
        Ok(Self { key })
    }
}

/// Whether `cidr` (`a.b.c.d/n`, `x::y/n`, or a bare address) contains `ip`.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, len) = match cidr.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32);
            len <= 32
                && prefix_eq(
                    u128::from(n.to_bits()) << 96,
                    u128::from(i.to_bits()) << 96,
                    len,
                )
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128);
            len <= 128 && prefix_eq(n.to_bits(), i.to_bits(), len)
        }
        _ => false,
    }
}

fn prefix_eq(a: u128, b: u128, len: u32) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - len);
    a & mask == b & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!cidr_contains("10.0.0.0/8", ip("11.1.2.3")));
        assert!(cidr_contains("0.0.0.0/0", ip("1.2.3.4")));
        assert!(cidr_contains("127.0.0.1", ip("127.0.0.1")));
        assert!(cidr_contains("127.0.0.1/32", ip("::ffff:127.0.0.1")));
        assert!(cidr_contains("::1/128", ip("::1")));
        assert!(cidr_contains("2001:db8::/32", ip("2001:db8::5")));
        assert!(!cidr_contains("2001:db8::/32", ip("2001:db9::5")));
        assert!(!cidr_contains("garbage", ip("::1")));
        assert!(!cidr_contains("10.0.0.0/33", ip("10.0.0.1")));
    }
}
