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
//! - A policy with `max_borrow_hours` (an extension) lets a client borrow a seat for up to
//!   that many hours ([`borrow`]): the lease holds its slot until the borrow ends without
//!   heartbeats, and comes with an offline payload valid until then; checkin (`return`)
//!   frees it early.
//! - A feature may have its own pool (`floating_seats` on its assignment, an extension), with
//!   its own timeout (`floating_timeout_minutes`, else the policy's): checkout with
//!   `feature_code` takes a slot of that pool only, refused with `FEATURE_NOT_ASSIGNED`,
//!   `FEATURE_DISABLED`, `FEATURE_EXPIRED` or `FLOATING_NOT_ENABLED` (no pool) as the feature
//!   says, and `FLOATING_POOL_EXHAUSTED` when it is full. The pools are independent: a
//!   feature's lease takes no slot of the license's pool, which the license need not have.
//!   Check, validate and every answer listing features report each pool's `seats` and
//!   `in_use`. A heartbeat or checkin naming a `feature_code` finds only that pool's lease.
//!
//! The engine mints the lease id, the device id for a binding never seen, and the token (with
//! its hash), so the rules stay free of randomness.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::model::{
    DeviceId, FeatureCode, FloatingCheckoutData, FloatingLeaseData, Lease, LeaseId,
    OfflineEntitlementData, RuntimeBindingRequest, SecretHash, Timestamp,
};

use super::offline::binding_sha256;

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

/// A floating pool: the license's own (`max_floating_users`), or a feature's
/// (`floating_seats` of its assignment).
struct Pool<'a> {
    /// The feature whose pool it is; `None` for the license's.
    code: Option<&'a FeatureCode>,
    seats: u32,
    timeout_minutes: u32,
}

impl<'a> Pool<'a> {
    /// Its leases holding a slot at `now`.
    fn live(
        &self,
        agg: &'a LicenseAggregate,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Lease> + use<'a> {
        let code = self.code;
        agg.live_leases(now)
            .filter(move |l| l.feature_code.as_ref() == code)
    }

    /// When a lease taken or renewed at `now` ends: the pool's timeout later, never past the
    /// license's own validity.
    fn lease_end(&self, agg: &LicenseAggregate, now: DateTime<Utc>) -> DateTime<Utc> {
        let end = now + Duration::minutes(i64::from(self.timeout_minutes));
        match status::valid_until(&agg.license, &agg.policy) {
            Some(valid_until) => end.min(valid_until),
            None => end,
        }
    }
}

/// The pool `feature` names (the license's when `None`), with every reason it cannot be used.
fn pool<'a>(
    agg: &'a LicenseAggregate,
    feature: Option<&str>,
    now: DateTime<Utc>,
    reasons: &mut Vec<DenialReason>,
) -> Option<Pool<'a>> {
    let Some(code) = feature else {
        let seats = agg.policy.max_floating_users.unwrap_or(0);
        if seats == 0 {
            reasons.push(DenialReason::new(
                DenialCode::FloatingNotEnabled,
                "the policy allows no floating leases",
            ));
        }
        return Some(Pool {
            code: None,
            seats,
            timeout_minutes: agg.policy.floating_timeout_minutes,
        });
    };
    let Some(f) = agg
        .features
        .iter()
        .find(|f| f.feature_code.as_str() == code)
    else {
        reasons.push(DenialReason::field(
            DenialCode::FeatureNotAssigned,
            "feature_code",
            "this feature is not assigned to the license",
        ));
        return None;
    };
    reasons.extend(entitlement::unusable_feature_reasons(f, now));
    let seats = f.floating_seats.unwrap_or(0);
    if seats == 0 {
        reasons.push(DenialReason::field(
            DenialCode::FloatingNotEnabled,
            "feature_code",
            "this feature has no floating pool",
        ));
    }
    Some(Pool {
        code: Some(&f.feature_code),
        seats,
        timeout_minutes: f
            .floating_timeout_minutes
            .unwrap_or(agg.policy.floating_timeout_minutes),
    })
}

/// The aggregate's leases with `changed` in place of its earlier state (or added).
fn leases_with(agg: &LicenseAggregate, changed: &[&Lease]) -> Vec<Lease> {
    let mut leases: Vec<Lease> = agg
        .leases
        .iter()
        .filter(|l| !changed.iter().any(|c| c.id == l.id))
        .cloned()
        .collect();
    leases.extend(changed.iter().map(|l| (*l).clone()));
    leases
}

/// Checks out a lease for the request's binding, of the license's pool or (with `feature`) of
/// that feature's own pool.
pub fn checkout(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    feature: Option<&str>,
    new: NewLease,
    now: DateTime<Utc>,
) -> Result<Plan<FloatingCheckoutData>, Denial> {
    take(agg, req, feature, new, None, now).map(|p| p.map(|(lease, _)| lease))
}

/// What a borrow decided: the lease, as a checkout describes it, and the offline payload the
/// engine seals for it (valid until the borrow ends).
#[derive(Debug, Clone)]
pub struct Borrowed {
    /// The lease; its `lease_expires_at` is when the borrow ends.
    pub lease: FloatingCheckoutData,
    /// The entitlement for offline use until then.
    pub offline: OfflineEntitlementData,
}

/// Borrows a floating seat for `hours` (an extension): a lease like a checkout's that holds
/// its slot until the borrow ends without heartbeats (a heartbeat never shortens it), with an
/// offline payload valid until then. Refused with `BORROW_NOT_ALLOWED` when the policy has no
/// `max_borrow_hours`, `OFFLINE_NOT_ALLOWED` when it forbids offline licenses,
/// `INVALID_FIELD` (`hours`) outside 1 to the maximum, and as a checkout.
///
/// Returning a borrow early (a checkin) frees the seat at once, but the envelope already
/// issued stays valid offline until the borrow's end: nothing can recall it from a machine
/// that is offline. Returning trusts the client to drop its envelope, as `licentia-client`'s
/// `return_borrowed` says; a vendor who cannot trust that sets a short `max_borrow_hours`.
pub fn borrow(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    feature: Option<&str>,
    hours: u32,
    new: NewLease,
    now: DateTime<Utc>,
) -> Result<Plan<Borrowed>, Denial> {
    take(agg, req, feature, new, Some(hours), now).map(|p| {
        p.map(|(lease, offline)| Borrowed {
            lease,
            offline: offline.unwrap_or_else(|| unreachable!("a borrow has an offline payload")),
        })
    })
}

/// A checkout, or (with `borrow_hours`) a borrow.
fn take(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    feature: Option<&str>,
    new: NewLease,
    borrow_hours: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Plan<(FloatingCheckoutData, Option<OfflineEntitlementData>)>, Denial> {
    let mut reasons = Vec::new();
    if let Some(hours) = borrow_hours {
        // A borrow hands out an offline envelope: a policy without offline licenses has none.
        if !agg.policy.allow_offline_activation {
            reasons.push(DenialReason::new(
                DenialCode::OfflineNotAllowed,
                "the policy does not allow offline licenses",
            ));
        }
        match agg.policy.max_borrow_hours {
            None => reasons.push(DenialReason::new(
                DenialCode::BorrowNotAllowed,
                "the policy does not allow borrowing floating seats",
            )),
            Some(max) if !(1..=max).contains(&hours) => {
                reasons.push(DenialReason::field(
                    DenialCode::InvalidField,
                    "hours",
                    format!("hours must be between 1 and {max}"),
                ));
            }
            Some(_) => {}
        }
    }
    let pool = pool(agg, feature, now, &mut reasons);
    let admitted = match admit(agg, req, now) {
        Ok(a) => Some(a),
        Err(r) => {
            reasons.extend(r);
            None
        }
    };
    let replaced = pool
        .as_ref()
        .zip(admitted.as_ref())
        .and_then(|(p, a)| p.live(agg, now).find(|l| l.binding_key == a.binding.key()));
    if let Some(p) = &pool {
        let live = p.live(agg, now).count();
        if p.seats > 0 && replaced.is_none() && live >= p.seats as usize {
            let max = p.seats;
            reasons.push(DenialReason::new(
                DenialCode::FloatingPoolExhausted,
                match p.code {
                    None => format!("all {max} floating leases are taken"),
                    Some(code) => format!("all {max} floating leases of {code} are taken"),
                },
            ));
        }
    }
    Denial::check(reasons)?;
    let (Some(pool), Some(admitted)) = (pool, admitted) else {
        unreachable!("a pool and an admitted request when there are no reasons")
    };

    let device_id = agg
        .active_device(admitted.binding.key())
        .map(|d| d.id.clone())
        .or_else(|| replaced.map(|l| l.device_id.clone()))
        .unwrap_or(new.device_id);
    let borrowed_until = borrow_hours.map(|h| {
        let end = now + Duration::hours(i64::from(h));
        status::valid_until(&agg.license, &agg.policy).map_or(end, |v| end.min(v))
    });
    let lease = Lease {
        id: new.lease_id,
        license_id: agg.license.id.clone(),
        device_id: device_id.clone(),
        binding_key: admitted.binding.key().to_owned(),
        token_hash: new.token_hash,
        app_version: admitted.version.as_ref().map(|v| v.app_version.clone()),
        feature_code: pool.code.cloned(),
        checked_out_at: now,
        last_heartbeat_at: now,
        borrowed_until,
        expires_at: borrowed_until.unwrap_or_else(|| pool.lease_end(agg, now)),
        checked_in_at: None,
    };
    let mut mutations = Vec::new();
    let mut changed = vec![&lease];
    let old = replaced.map(|old| {
        let mut old = old.clone();
        old.checked_in_at = Some(now);
        old
    });
    if let Some(old) = &old {
        mutations.push(Mutation::Lease(old.clone()));
        changed.push(old);
    }
    mutations.push(Mutation::Lease(lease.clone()));
    let event = DomainEvent::new(
        if borrowed_until.is_some() {
            "floating.borrowed"
        } else {
            "floating.checked_out"
        },
        "lease",
        lease.id.as_str(),
        [
            ("license_id", json!(agg.license.id)),
            ("device_id", json!(device_id)),
            ("feature_code", json!(lease.feature_code)),
            ("lease_expires_at", json!(Timestamp::new(lease.expires_at))),
            ("replaced_lease_id", json!(replaced.map(|l| l.id.clone()))),
        ],
    );
    // The pools as they are after this checkout.
    let base = entitlement::entitlement_data_of(
        &agg.license,
        &agg.policy,
        &agg.features,
        &leases_with(agg, &changed),
        &device_id,
        now,
        admitted.version,
    );
    let offline = borrowed_until.map(|until| OfflineEntitlementData {
        entitlement: base.clone(),
        offline_expires_at: Timestamp::new(until),
        binding_sha256: binding_sha256(&lease.binding_key),
    });
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
        outcome: (data, offline),
    })
}

/// Extends the lease whose token hashes to `token_hash` (of `feature`'s pool, when the
/// request names one).
pub fn heartbeat(
    agg: &LicenseAggregate,
    token_hash: &SecretHash,
    feature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Plan<FloatingLeaseData>, Denial> {
    let lease = find_lease(agg, token_hash, feature)?;
    let mut reasons = status::usability_reasons(&agg.license, &agg.policy, now);
    // A feature's pool that was removed or turned off since the checkout holds no lease.
    let pool = pool(
        agg,
        lease.feature_code.as_ref().map(FeatureCode::as_str),
        now,
        &mut reasons,
    );
    if let Some(pool) = &pool
        && !lease.is_live_at(now)
    {
        let slot_free = pool.live(agg, now).count() < pool.seats as usize;
        if agg.policy.require_heartbeat || !slot_free {
            reasons.push(DenialReason::new(
                DenialCode::LeaseExpired,
                "the lease timed out",
            ));
        }
    }
    Denial::check(reasons)?;
    let pool = pool.unwrap_or_else(|| unreachable!("a pool when there are no reasons"));
    let mut renewed = lease.clone();
    renewed.last_heartbeat_at = now;
    // A borrowed lease keeps its slot until the borrow ends, whatever the heartbeats.
    renewed.expires_at = pool
        .lease_end(agg, now)
        .max(lease.borrowed_until.unwrap_or(DateTime::<Utc>::MIN_UTC));
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
            ("feature_code", json!(renewed.feature_code)),
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
    feature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Plan<FloatingLeaseData>, Denial> {
    let lease = find_lease(agg, token_hash, feature)?;
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
            ("feature_code", json!(ended.feature_code)),
        ],
    );
    Ok(Plan {
        mutations: vec![Mutation::Lease(ended)],
        events: vec![event],
        outcome: data,
    })
}

/// The lease not checked in whose token hashes to `token_hash`; with `feature`, only if it is
/// of that feature's pool (another pool's token is not found, not a different refusal).
fn find_lease<'a>(
    agg: &'a LicenseAggregate,
    token_hash: &SecretHash,
    feature: Option<&str>,
) -> Result<&'a Lease, Denial> {
    agg.leases
        .iter()
        .find(|l| {
            l.checked_in_at.is_none()
                && &l.token_hash == token_hash
                && feature
                    .is_none_or(|f| l.feature_code.as_ref().map(FeatureCode::as_str) == Some(f))
        })
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
        features: with_features.then(|| {
            entitlement::feature_entitlements(&agg.features, &leases_with(agg, &[lease]), now)
        }),
        version_eligibility: version.flatten(),
    }
}
