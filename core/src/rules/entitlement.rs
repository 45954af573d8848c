//! What a client is entitled to right now: the body of every signed runtime response.

use chrono::{DateTime, Duration, Utc};

use crate::model::{
    DeviceId, FeatureEntitlement, FloatingOccupancy, Lease, License, LicenseFeature, Policy,
    RuntimeEntitlementData, Timestamp, VersionEligibility,
};

use super::{DenialCode, DenialReason, LicenseAggregate, period, status};

/// When the client should check again: `validation_interval_minutes` from `now`, but never
/// after the license stops being valid.
pub fn next_check_at(agg: &LicenseAggregate, now: DateTime<Utc>) -> DateTime<Utc> {
    next_check_of(&agg.license, &agg.policy, now)
}

fn next_check_of(license: &License, policy: &Policy, now: DateTime<Utc>) -> DateTime<Utc> {
    let interval = now + Duration::minutes(i64::from(policy.validation_interval_minutes));
    match status::valid_until(license, policy) {
        Some(end) if end < interval => end.max(now),
        _ => interval,
    }
}

/// Why the assigned feature `f` cannot be used at `now` (disabled, expired), as reasons about
/// the request's `feature_code`; none when it can.
pub(crate) fn unusable_feature_reasons(
    f: &LicenseFeature,
    now: DateTime<Utc>,
) -> impl Iterator<Item = DenialReason> {
    let disabled = (!f.enabled).then(|| {
        DenialReason::field(
            DenialCode::FeatureDisabled,
            "feature_code",
            "this feature is disabled",
        )
    });
    let expired = f.expires_at.is_some_and(|e| now >= e).then(|| {
        DenialReason::field(
            DenialCode::FeatureExpired,
            "feature_code",
            "this feature has expired",
        )
    });
    disabled.into_iter().chain(expired)
}

/// One assignment as the client sees it at `now` (periodic resets applied; a floating
/// feature's pool counted from `leases`).
pub fn feature_entitlement(
    f: &LicenseFeature,
    leases: &[Lease],
    now: DateTime<Utc>,
) -> FeatureEntitlement {
    let usage = period::usage_at(f, now);
    FeatureEntitlement {
        code: f.feature_code.clone(),
        enabled: f.enabled && f.expires_at.is_none_or(|e| now < e),
        quota: f.max_consumptions,
        consumed: f.max_consumptions.map(|_| usage),
        remaining: f.max_consumptions.map(|q| (q - usage).max(0)),
        floating: f.floating_seats.map(|seats| FloatingOccupancy {
            seats,
            in_use: u32::try_from(
                leases
                    .iter()
                    .filter(|l| {
                        l.is_live_at(now) && l.feature_code.as_ref() == Some(&f.feature_code)
                    })
                    .count(),
            )
            .unwrap_or(u32::MAX),
        }),
    }
}

/// Every assignment, ordered by code so the signed bytes do not depend on storage order.
pub fn feature_entitlements(
    features: &[LicenseFeature],
    leases: &[Lease],
    now: DateTime<Utc>,
) -> Vec<FeatureEntitlement> {
    let mut out: Vec<_> = features
        .iter()
        .map(|f| feature_entitlement(f, leases, now))
        .collect();
    out.sort_by(|a, b| a.code.cmp(&b.code));
    out
}

/// The signed data of activate, validate, check and consume.
pub fn entitlement_data(
    agg: &LicenseAggregate,
    device_id: &DeviceId,
    now: DateTime<Utc>,
    version_eligibility: Option<VersionEligibility>,
) -> RuntimeEntitlementData {
    entitlement_data_of(
        &agg.license,
        &agg.policy,
        &agg.features,
        &agg.leases,
        device_id,
        now,
        version_eligibility,
    )
}

/// [`entitlement_data`] from the only parts it reads, so a rule that changed the license or a
/// feature can describe the result without copying the whole aggregate (devices included).
pub(crate) fn entitlement_data_of(
    license: &License,
    policy: &Policy,
    features: &[LicenseFeature],
    leases: &[Lease],
    device_id: &DeviceId,
    now: DateTime<Utc>,
    version_eligibility: Option<VersionEligibility>,
) -> RuntimeEntitlementData {
    RuntimeEntitlementData {
        license_id: license.id.clone(),
        status: status::effective_status(license, policy, now),
        license_type: policy.license_type,
        entitlement_version: license.entitlement_version,
        issued_at: Timestamp::new(now),
        next_check_at: Timestamp::new(next_check_of(license, policy, now)),
        expires_at: license.expires_at.map(Timestamp::new),
        device_id: device_id.clone(),
        features: feature_entitlements(features, leases, now),
        version_eligibility,
    }
}
