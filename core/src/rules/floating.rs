//! Floating leases: checkout, heartbeat, checkin.
//!
//! - A policy with no `max_floating_users` (or zero) is not floating: checkout is refused with
//!   `FLOATING_NOT_ENABLED`.
//! - Checkout needs no prior activation and takes no activation seat. It takes one of
//!   `max_floating_users` slots. The same binding checking out again while its lease is live
//!   gets a fresh lease that replaces the old one (lease tokens are shown once, so the old
//!   token cannot be handed out again) and takes no second slot.
//! - A lease lives `floating_timeout_minutes` after checkout or its last heartbeat, never
//!   past the license's own validity. Once past its expiry it holds no slot at that `now`:
//!   no background job is needed to free it.
//! - `require_heartbeat: true` (the default): a lease that timed out is gone; its heartbeat
//!   gets `LEASE_EXPIRED`. `require_heartbeat: false`: heartbeats are a courtesy, and one that
//!   arrives after the timeout revives the lease if a slot is free.
//! - Checkin ends the lease and frees its slot at once.
//!
//! The engine mints the lease id, the device id for a binding never seen, and the token (with
//! its hash), so the rules stay free of randomness.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::model::{
    DeviceId, FloatingCheckoutData, FloatingLeaseData, Lease, LeaseId, RuntimeBindingRequest,
    SecretHash, Timestamp,
};

use super::runtime_gate::admit;
use super::{
    Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Mutation, Plan, entitlement,
    status,
};

/// What the engine minted for a checkout.
#[derive(Debug, Clone)]
pub struct NewLease {
    /// Id of the lease record.
    pub lease_id: LeaseId,
    /// Device id to report when the binding has no active device.
    pub device_id: DeviceId,
    /// The token to return to the client (shown once).
    pub token: String,
    /// SHA-256 of `token`, the only form stored.
    pub token_hash: SecretHash,
}

fn lease_end(agg: &LicenseAggregate, now: DateTime<Utc>) -> DateTime<Utc> {
    let end = now + Duration::minutes(i64::from(agg.policy.floating_timeout_minutes));
    match status::valid_until(&agg.license, &agg.policy) {
        Some(valid_until) => end.min(valid_until),
        None => end,
    }
}

/// Checks out a lease for the request's binding.
pub fn checkout(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    new: NewLease,
    now: DateTime<Utc>,
) -> Result<Plan<FloatingCheckoutData>, Denial> {
    let mut reasons = Vec::new();
    let max = agg.policy.max_floating_users.unwrap_or(0);
    if max == 0 {
        reasons.push(DenialReason::new(
            DenialCode::FloatingNotEnabled,
            "the policy allows no floating leases",
        ));
    }
    let admitted = match admit(agg, req, now) {
        Ok(a) => Some(a),
        Err(r) => {
            reasons.extend(r);
            None
        }
    };
    let replaced = admitted.as_ref().and_then(|a| {
        agg.live_leases(now)
            .find(|l| l.binding_key == a.binding.key())
    });
    let live = agg.live_leases(now).count();
    if max > 0 && replaced.is_none() && live >= max as usize {
        reasons.push(DenialReason::new(
            DenialCode::FloatingPoolExhausted,
            format!("all {max} floating leases are taken"),
        ));
    }
    Denial::check(reasons)?;
    let admitted = admitted.expect("admitted when there are no reasons");

    let device_id = agg
        .active_device(admitted.binding.key())
        .map(|d| d.id.clone())
        .or_else(|| replaced.map(|l| l.device_id.clone()))
        .unwrap_or(new.device_id);
    let lease = Lease {
        id: new.lease_id,
        license_id: agg.license.id.clone(),
        device_id: device_id.clone(),
        binding_key: admitted.binding.key().to_owned(),
        token_hash: new.token_hash,
        app_version: admitted.version.as_ref().map(|v| v.app_version.clone()),
        checked_out_at: now,
        last_heartbeat_at: now,
        expires_at: lease_end(agg, now),
        checked_in_at: None,
    };
    let mut mutations = Vec::new();
    if let Some(old) = replaced {
        let mut old = old.clone();
        old.checked_in_at = Some(now);
        mutations.push(Mutation::Lease(old));
    }
    mutations.push(Mutation::Lease(lease.clone()));
    let event = DomainEvent::new(
        "floating.checked_out",
        "lease",
        lease.id.as_str(),
        [
            ("license_id", json!(agg.license.id)),
            ("device_id", json!(device_id)),
            ("lease_expires_at", json!(Timestamp::new(lease.expires_at))),
            ("replaced_lease_id", json!(replaced.map(|l| l.id.clone()))),
        ],
    );
    let base = entitlement::entitlement_data(agg, &device_id, now, admitted.version);
    let data = FloatingCheckoutData {
        license_id: base.license_id,
        status: base.status,
        license_type: base.license_type,
        entitlement_version: base.entitlement_version,
        issued_at: base.issued_at,
        expires_at: base.expires_at,
        device_id,
        lease_token: new.token,
        lease_expires_at: Timestamp::new(lease.expires_at),
        features: base.features,
        version_eligibility: base.version_eligibility,
    };
    Ok(Plan {
        mutations,
        events: vec![event],
        outcome: data,
    })
}

/// Extends the lease whose token hashes to `token_hash`.
pub fn heartbeat(
    agg: &LicenseAggregate,
    token_hash: &SecretHash,
    now: DateTime<Utc>,
) -> Result<Plan<FloatingLeaseData>, Denial> {
    let lease = find_lease(agg, token_hash)?;
    let mut reasons = status::usability_reasons(&agg.license, &agg.policy, now);
    if !lease.is_live_at(now) {
        let slot_free =
            agg.live_leases(now).count() < agg.policy.max_floating_users.unwrap_or(0) as usize;
        if agg.policy.require_heartbeat || !slot_free {
            reasons.push(DenialReason::new(
                DenialCode::LeaseExpired,
                "the lease timed out",
            ));
        }
    }
    Denial::check(reasons)?;
    let mut renewed = lease.clone();
    renewed.last_heartbeat_at = now;
    renewed.expires_at = lease_end(agg, now);
    let version = renewed.app_version.as_deref().and_then(|v| {
        let v = semver::Version::parse(v).ok()?;
        Some(
            super::version::eligibility(&agg.license, agg.policy.license_type, &agg.versions, &v).0,
        )
    });
    let data = lease_data(agg, &renewed, renewed.expires_at, now, Some(version));
    let event = DomainEvent::new(
        "floating.heartbeat",
        "lease",
        renewed.id.as_str(),
        [
            ("license_id", json!(agg.license.id)),
            ("lease_expires_at", json!(data.lease_expires_at)),
        ],
    );
    Ok(Plan {
        mutations: vec![Mutation::Lease(renewed)],
        events: vec![event],
        outcome: data,
    })
}

/// Ends the lease whose token hashes to `token_hash`, freeing its slot. Allowed whatever the
/// license's status, so a client can always give a slot back.
pub fn checkin(
    agg: &LicenseAggregate,
    token_hash: &SecretHash,
    now: DateTime<Utc>,
) -> Result<Plan<FloatingLeaseData>, Denial> {
    let lease = find_lease(agg, token_hash)?;
    let mut ended = lease.clone();
    ended.checked_in_at = Some(now);
    let data = lease_data(agg, &ended, now.min(lease.expires_at), now, None);
    let event = DomainEvent::new(
        "floating.checked_in",
        "lease",
        ended.id.as_str(),
        [
            ("license_id", json!(agg.license.id)),
            ("device_id", json!(ended.device_id)),
        ],
    );
    Ok(Plan {
        mutations: vec![Mutation::Lease(ended)],
        events: vec![event],
        outcome: data,
    })
}

fn find_lease<'a>(agg: &'a LicenseAggregate, token_hash: &SecretHash) -> Result<&'a Lease, Denial> {
    agg.leases
        .iter()
        .find(|l| l.checked_in_at.is_none() && &l.token_hash == token_hash)
        .ok_or_else(|| {
            Denial::one(DenialReason::new(
                DenialCode::LeaseNotFound,
                "no such lease",
            ))
        })
}

fn lease_data(
    agg: &LicenseAggregate,
    lease: &Lease,
    lease_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    version: Option<Option<crate::model::VersionEligibility>>,
) -> FloatingLeaseData {
    // Heartbeats report the current entitlement; checkins only confirm the release.
    let with_features = version.is_some();
    FloatingLeaseData {
        license_id: agg.license.id.clone(),
        status: status::effective_status(&agg.license, &agg.policy, now),
        license_type: agg.policy.license_type,
        entitlement_version: agg.license.entitlement_version,
        issued_at: Timestamp::new(now),
        expires_at: agg.license.expires_at.map(Timestamp::new),
        device_id: lease.device_id.clone(),
        lease_expires_at: Timestamp::new(lease_expires_at),
        features: with_features.then(|| entitlement::feature_entitlements(&agg.features, now)),
        version_eligibility: version.flatten(),
    }
}
