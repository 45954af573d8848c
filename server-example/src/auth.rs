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

/// A runtime caller: its credential and the peer address. The `Authorization` schemes:
/// `License <key>`; `Session <token>` for a pre-registered device; and for a license user
/// (user-based licenses, an extension) `User <base64 of e-mail:password>` or
/// `Bearer <session token>` from `POST /api/v1/license/users/sign-in`, with the license to
/// act on named by `Licentia-License: <license id>` when the user has several.
#[derive(Clone)]
pub struct License {
    /// Which credential `secret` is.
    pub kind: CredentialKind,
    /// The license key, session token or password (a secret: never log it).
    pub secret: String,
    /// A license user's e-mail (`User`).
    pub email: Option<String>,
    /// The `Licentia-License` header, for a license user.
    pub license: Option<String>,
    /// The caller's address.
    pub ip: Option<String>,
}

/// A runtime credential's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// `License <key>`.
    LicenseKey,
    /// `Session <token>`: a pre-registered device.
    DeviceSession,
    /// `User <base64 e-mail:password>`.
    User,
    /// `Bearer <token>`: a license user's session.
    UserSession,
}

/// The header naming the license a license user acts on.
pub const LICENSE_HEADER: &str = "licentia-license";

impl License {
    /// The credential as the engine takes it.
    pub fn credential(&self) -> licentia_core::engine::Credential<'_> {
        use licentia_core::engine::Credential;
        let license = self.license.as_deref();
        match self.kind {
            CredentialKind::LicenseKey => Credential::LicenseKey(&self.secret),
            CredentialKind::DeviceSession => Credential::Session(&self.secret),
            CredentialKind::User => Credential::User {
                email: self.email.as_deref().unwrap_or_default(),
                password: &self.secret,
                license,
            },
            CredentialKind::UserSession => Credential::UserSession {
                token: &self.secret,
                license,
            },
        }
    }
}

impl std::fmt::Debug for License {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("License")
            .field("kind", &self.kind)
            .field("secret", &"<redacted>")
            .field("license", &self.license)
            .field("ip", &self.ip)
            .finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for License {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        let (kind, scheme) = match given.as_deref() {
            Some("session") => (CredentialKind::DeviceSession, "Session"),
            Some("user") => (CredentialKind::User, "User"),
            Some("bearer") => (CredentialKind::UserSession, "Bearer"),
            _ => (CredentialKind::LicenseKey, "License"),
        };
        let credential = credentials(parts, scheme)?;
        let (email, secret) = match kind {
            CredentialKind::User => {
                let (email, password) = user_password(credential)?;
                (Some(email), password)
            }
            _ => (None, credential.to_owned()),
        };
        let license = match kind {
            CredentialKind::User | CredentialKind::UserSession => parts
                .headers
                .get(LICENSE_HEADER)
                .map(|v| v.to_str().map(|s| s.trim().to_owned()))
                .transpose()
                .map_err(|_| {
                    ApiError::unauthorized(
                        codes::MALFORMED_CREDENTIALS,
                        "Licentia-License must be a license id",
                    )
                })?,
            _ => None,
        };
        Ok(Self {
            kind,
            secret,
            email,
            license,
            ip: peer_ip(parts).map(|ip| ip.to_string()),
        })
    }
}

/// The e-mail and password of a `User` credential: base64 (standard, padded) of
/// `e-mail:password`, split at the first colon as HTTP Basic is.
fn user_password(credential: &str) -> Result<(String, String), ApiError> {
    use base64::Engine as _;
    let malformed = || {
        ApiError::unauthorized(
            codes::MALFORMED_CREDENTIALS,
            "the Authorization header must be `User <base64 of e-mail:password>`",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(credential)
        .map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let (email, password) = text.split_once(':').ok_or_else(malformed)?;
    if email.is_empty() || password.is_empty() {
        return Err(malformed());
    }
    Ok((email.to_owned(), password.to_owned()))
}

/// 403 `TOKEN_SCOPE_DENIED` unless `key` holds `scope` (or `admin`).
///
/// # Errors
///
/// As above.
pub fn require_scope(key: &ApiKey, scope: ManagementScope) -> Result<(), ApiError> {
    match key.has_scope(scope) {
        true => Ok(()),
        false => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::TOKEN_SCOPE_DENIED,
            format!("this operation requires the `{scope}` scope"),
        )),
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
        require_scope(&key, R::SCOPE)?;
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
