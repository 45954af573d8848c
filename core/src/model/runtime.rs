//! The data of signed runtime responses (`data` of the contract's signed envelopes).
//!
//! Field order is the contract's declared order and is part of the signed bytes (DESIGN 4.1):
//! do not reorder fields. Absent optional fields are omitted, never `null`.

use serde::{Deserialize, Serialize};

use super::{DeviceId, FeatureCode, LicenseId, LicenseStatus, LicenseType, Timestamp};

/// One feature's entitlement as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureEntitlement {
    /// The feature's code.
    pub code: FeatureCode,
    /// Whether the feature may be used now (assigned, enabled and not expired).
    pub enabled: bool,
    /// The quota for the current period; absent for unmetered features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    /// Units consumed in the current period; absent for unmetered features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed: Option<i64>,
    /// `quota - consumed`, never below zero; absent for unmetered features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
}

/// Whether the client's `app_version` is covered by the license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEligibility {
    /// The version the client reported (valid semver).
    pub app_version: String,
    /// Whether that version is entitled.
    pub is_entitled: bool,
    /// `false` when the product has no version catalog, so nothing is enforced.
    pub enforced: bool,
    /// When that version was released, if it is in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Timestamp>,
    /// Versions released up to this instant are entitled; absent when unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_through: Option<Timestamp>,
}

/// `data` of activate, validate, check and consume responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeEntitlementData {
    /// The license.
    pub license_id: LicenseId,
    /// The effective status at `issued_at`.
    pub status: LicenseStatus,
    /// The license type.
    pub license_type: LicenseType,
    /// Increases whenever what the client is entitled to changes.
    pub entitlement_version: i64,
    /// When this response was decided.
    pub issued_at: Timestamp,
    /// When the client should check again; never after the license stops being valid.
    pub next_check_at: Timestamp,
    /// When the license expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The device the request was bound to.
    pub device_id: DeviceId,
    /// Every feature assigned to the license.
    pub features: Vec<FeatureEntitlement>,
    /// Present when the request carried an `app_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_eligibility: Option<VersionEligibility>,
}

/// `data` of deactivate responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeactivationData {
    /// The license.
    pub license_id: LicenseId,
    /// The effective status at `issued_at`.
    pub status: LicenseStatus,
    /// The license type.
    pub license_type: LicenseType,
    /// The entitlement version after the deactivation.
    pub entitlement_version: i64,
    /// When this response was decided.
    pub issued_at: Timestamp,
    /// The device that was released.
    pub device_id: DeviceId,
    /// When the license expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// `data` of floating checkout responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingCheckoutData {
    /// The license.
    pub license_id: LicenseId,
    /// The effective status at `issued_at`.
    pub status: LicenseStatus,
    /// The license type.
    pub license_type: LicenseType,
    /// The entitlement version.
    pub entitlement_version: i64,
    /// When this response was decided.
    pub issued_at: Timestamp,
    /// When the license expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The device id of the lease holder.
    pub device_id: DeviceId,
    /// The secret lease token; only its hash is stored.
    pub lease_token: String,
    /// When the lease ends unless a heartbeat extends it.
    pub lease_expires_at: Timestamp,
    /// Every feature assigned to the license.
    pub features: Vec<FeatureEntitlement>,
    /// Present when the request carried an `app_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_eligibility: Option<VersionEligibility>,
}

/// `data` of floating heartbeat and checkin responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingLeaseData {
    /// The license.
    pub license_id: LicenseId,
    /// The effective status at `issued_at`.
    pub status: LicenseStatus,
    /// The license type.
    pub license_type: LicenseType,
    /// The entitlement version.
    pub entitlement_version: i64,
    /// When this response was decided.
    pub issued_at: Timestamp,
    /// When the license expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The device id of the lease holder.
    pub device_id: DeviceId,
    /// When the lease ends (for a checkin: when it ended, which is `issued_at`).
    pub lease_expires_at: Timestamp,
    /// Every feature assigned to the license (heartbeat only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<FeatureEntitlement>>,
    /// Present when the lease was checked out with an `app_version` (heartbeat only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_eligibility: Option<VersionEligibility>,
}

/// `data` of the signed payload inside an offline envelope (DESIGN 4.2): the runtime
/// entitlement plus the offline window and the device binding it is locked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineEntitlementData {
    /// The runtime entitlement at issue time.
    #[serde(flatten)]
    pub entitlement: RuntimeEntitlementData,
    /// `issued_at` + the policy's `offline_grace_days`.
    pub offline_expires_at: Timestamp,
    /// Lowercase hex SHA-256 of the device binding key.
    pub binding_sha256: String,
}
