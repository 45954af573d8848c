//! Pre-registered devices (an extension): a serial number registered on a license with a
//! device secret shown once. The device activates with serial and secret, no license key and
//! no user, and then authenticates its runtime calls with a session token
//! (`Authorization: Session <token>`) that expires and is extended while it is used.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{DeviceId, LicenseId, RegistrationId, RuntimeEntitlementData, SecretHash, SessionId};

/// A serial number registered on a license.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRegistration {
    pub id: RegistrationId,
    pub license_id: LicenseId,
    /// Unique among all registrations.
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `dsk_` and the secret's first 4 characters, for display.
    pub secret_prefix: String,
    /// SHA-256 of the device secret (never serialized).
    #[serde(skip)]
    pub secret_hash: SecretHash,
    /// The device it activated as; `None` before its first activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// The binding key of that device: a later activation from another binding is refused
    /// while the device holds its seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<DateTime<Utc>>,
    /// The live session, if any (one per registration: activating again replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<DeviceSession>,
    pub created_at: DateTime<Utc>,
}

/// A device's session: what `Authorization: Session <token>` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSession {
    pub id: SessionId,
    /// SHA-256 of the token (never serialized).
    #[serde(skip)]
    pub token_hash: SecretHash,
    pub issued_at: DateTime<Utc>,
    /// Moved forward while the session is used (see `Engine::with_session_ttl`).
    pub expires_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/licenses/{id}/device-registrations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRegistrationRequest {
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// A string holding a secret in a request: zeroized on drop, `[redacted]` in `Debug`, the
/// string itself in serde.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl SecretString {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The secret.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A session as device activation returns it: the token is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedSession {
    pub id: SessionId,
    /// `Authorization: Session <token>` on the device's runtime calls.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The signed `data` of `POST /api/v1/device/activate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceActivationData {
    pub registration_id: RegistrationId,
    /// The activation, as `POST /api/v1/license/activate` answers it.
    pub activation: RuntimeEntitlementData,
    pub session: IssuedSession,
}
