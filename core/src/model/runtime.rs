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
    /// Extension: the feature's floating pool now; absent when the feature is not floating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating: Option<FloatingOccupancy>,
}

/// How much of a floating pool is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingOccupancy {
    /// The pool's size.
    pub seats: u32,
    /// Leases holding a slot now.
    pub in_use: u32,
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

/// `data` of device heartbeat responses (an extension: `POST /api/v1/license/device-heartbeat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHeartbeatData {
    /// The license.
    pub license_id: LicenseId,
    /// The effective status at `issued_at`.
    pub status: LicenseStatus,
    /// The license type.
    pub license_type: LicenseType,
    /// The entitlement version.
    pub entitlement_version: i64,
    /// When this response was decided, and the device was last heard from.
    pub issued_at: Timestamp,
    /// When the license expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The device that was heard from.
    pub device_id: DeviceId,
    /// When the next heartbeat is due; absent when the policy requires none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_heartbeat_at: Option<Timestamp>,
    /// When the seat is released if the device stays silent (the due time plus the policy's
    /// grace); absent when the policy requires no heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_at: Option<Timestamp>,
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

/// `data` of floating borrow responses (an extension): the checkout's data, and the offline
/// envelope that carries the entitlement until the borrow ends (open it as any offline
/// envelope, with the license key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingBorrowData {
    /// The lease, as a checkout describes it; `lease_expires_at` is when the borrow ends.
    #[serde(flatten)]
    pub lease: FloatingCheckoutData,
    /// `{kid, salt, nonce, ciphertext}`, valid offline until the borrow ends.
    pub offline: crate::crypto::OfflineEnvelope,
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
///
/// Read through a flat wire struct, not `#[serde(flatten)]`: flatten buffers every field into
/// an intermediate tree first, which made reading the payload cost as much as decrypting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OfflineWire")]
pub struct OfflineEntitlementData {
    /// The runtime entitlement at issue time.
    #[serde(flatten)]
    pub entitlement: RuntimeEntitlementData,
    /// `issued_at` + the policy's `offline_grace_days`.
    pub offline_expires_at: Timestamp,
    /// Lowercase hex SHA-256 of the device binding key.
    pub binding_sha256: String,
}

/// The wire form of [`OfflineEntitlementData`]: the entitlement's fields and the offline ones
/// side by side (unknown fields are ignored, as with flatten). Building the entitlement from
/// it names every field, so a field added to [`RuntimeEntitlementData`] fails to compile here
/// until it is read.
#[derive(Deserialize)]
struct OfflineWire {
    license_id: LicenseId,
    status: LicenseStatus,
    license_type: LicenseType,
    entitlement_version: i64,
    issued_at: Timestamp,
    next_check_at: Timestamp,
    #[serde(default)]
    expires_at: Option<Timestamp>,
    device_id: DeviceId,
    features: Vec<FeatureEntitlement>,
    #[serde(default)]
    version_eligibility: Option<VersionEligibility>,
    offline_expires_at: Timestamp,
    binding_sha256: String,
}

impl From<OfflineWire> for OfflineEntitlementData {
    fn from(w: OfflineWire) -> Self {
        Self {
            entitlement: RuntimeEntitlementData {
                license_id: w.license_id,
                status: w.status,
                license_type: w.license_type,
                entitlement_version: w.entitlement_version,
                issued_at: w.issued_at,
                next_check_at: w.next_check_at,
                expires_at: w.expires_at,
                device_id: w.device_id,
                features: w.features,
                version_eligibility: w.version_eligibility,
            },
            offline_expires_at: w.offline_expires_at,
            binding_sha256: w.binding_sha256,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(h: u32) -> Timestamp {
        Timestamp::new(Utc.with_ymd_and_hms(2026, 11, 22, h, 0, 0).unwrap())
    }

    fn offline(full: bool) -> OfflineEntitlementData {
        OfflineEntitlementData {
            entitlement: RuntimeEntitlementData {
                license_id: "lic_aaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
                status: LicenseStatus::Active,
                license_type: LicenseType::Subscription,
                entitlement_version: 7,
                issued_at: at(10),
                next_check_at: at(11),
                expires_at: full.then(|| at(23)),
                device_id: "dev_aaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
                features: vec![FeatureEntitlement {
                    code: "export".parse().unwrap(),
                    enabled: true,
                    quota: full.then_some(10),
                    consumed: full.then_some(3),
                    remaining: full.then_some(7),
                    floating: None,
                }],
                version_eligibility: full.then(|| VersionEligibility {
                    app_version: "2.4.1".into(),
                    is_entitled: true,
                    enforced: true,
                    released_at: Some(at(1)),
                    eligible_through: None,
                }),
            },
            offline_expires_at: at(12),
            binding_sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn offline_data_reads_back_what_it_writes_with_and_without_optional_fields() {
        for full in [true, false] {
            let data = offline(full);
            let bytes = serde_json::to_vec(&data).unwrap();
            let back: OfflineEntitlementData = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, data);
            // Flat on the wire: the entitlement's fields beside the offline ones.
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["license_id"], "lic_aaaaaaaaaaaaaaaaaaaaaaaaaa");
            assert_eq!(v["binding_sha256"], "ab".repeat(32));
        }
    }

    #[test]
    fn offline_data_ignores_unknown_fields_and_requires_the_offline_ones() {
        let mut v = serde_json::to_value(offline(false)).unwrap();
        v["added_later"] = serde_json::json!({"x": 1});
        let back: OfflineEntitlementData = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, offline(false));
        v.as_object_mut().unwrap().remove("binding_sha256");
        assert!(serde_json::from_value::<OfflineEntitlementData>(v).is_err());
    }
}
