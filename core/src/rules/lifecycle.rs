//! License lifecycle: create, renew, suspend, reinstate, revoke, transfer, and feature
//! assignment.
//!
//! `entitlement_version` increases on every change to what a client is entitled to: renew,
//! suspend, reinstate, revoke, transfer, feature assignment or removal, usage reset. It does
//! not change on activations or consumption (see [`activation`](super::activation) and [`metering`]).
//!
//! Renewal takes exactly one of `expires_at` and `extend_by_days`. Extending starts from the
//! stored expiry while the license has not yet expired (so an early renewal loses no time),
//! and from `now` once it has (so a lapsed customer does not pay for the gap, and grace days
//! are not handed out twice). Renewal keeps a suspended license suspended and cannot touch a
//! revoked one. Perpetual licenses cannot be renewed.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::model::{
    CustomerId, DeviceStatus, Feature, FeatureAssignRequest, License, LicenseFeature, LicenseId,
    LicenseStatus, LicenseTerms, LicenseType, Metadata, Policy, ProductId, RenewRequest,
    ResetPeriod, SecretHash, Timestamp, TransferRequest,
};

use super::activation::release;
use super::{
    Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Mutation, Plan, metering,
    status,
};

/// Secret-derived display fields of a new license key, computed by the engine.
#[derive(Debug, Clone)]
pub struct KeyDisplay {
    /// SHA-256 of the key.
    pub hash: SecretHash,
    /// The first characters of the key, for display.
    pub prefix: String,
    /// The last four characters of the key, for display.
    pub last4: String,
}

/// Builds a new license from checked terms. The engine has already resolved and checked the
/// customer, order and subscription links.
pub fn create_license(
    id: LicenseId,
    product_id: ProductId,
    policy: &Policy,
    terms: LicenseTerms,
    key: KeyDisplay,
    now: DateTime<Utc>,
) -> Result<Plan<License>, Denial> {
    Denial::check(status::check_dates(
        policy.license_type,
        terms.starts_at,
        terms.expires_at,
        terms.maintenance_expires_at,
    ))?;
    let license = License {
        id,
        product_id,
        policy_id: policy.id.clone(),
        customer_id: terms.customer_id,
        order_id: terms.order_id,
        subscription_id: terms.subscription_id,
        pool: None,
        contract_id: None,
        users: Vec::new(),
        status: LicenseStatus::Active,
        license_key_prefix: key.prefix,
        license_key_last4: key.last4,
        customer_email: terms.customer_email,
        customer_name: terms.customer_name,
        active_device_count: 0,
        times_activated: 0,
        times_transferred: 0,
        total_consumptions: 0,
        entitlement_version: 1,
        starts_at: terms.starts_at,
        expires_at: terms.expires_at,
        maintenance_expires_at: terms.maintenance_expires_at,
        metadata: terms.metadata,
        created_at: now,
        updated_at: now,
        key_hash: key.hash,
        last_validated_at: None,
    };
    let event = DomainEvent::new(
        "license.created",
        "license",
        license.id.as_str(),
        [
            ("policy_id", json!(license.policy_id)),
            ("license_type", json!(policy.license_type)),
            ("expires_at", json!(license.expires_at)),
        ],
    );
    Ok(Plan {
        mutations: vec![Mutation::License(license.clone())],
        events: vec![event],
        outcome: license,
    })
}

fn bumped(agg: &LicenseAggregate, now: DateTime<Utc>) -> License {
    let mut l = agg.license.clone();
    l.entitlement_version += 1;
    l.updated_at = now;
    l
}

fn refuse_revoked(agg: &LicenseAggregate) -> Result<(), Denial> {
    if agg.license.status == LicenseStatus::Revoked {
        return Err(Denial::one(DenialReason::new(
            DenialCode::LicenseRevokedImmutable,
            "the license is revoked and cannot change",
        )));
    }
    Ok(())
}

/// Renews the license.
pub fn renew(
    agg: &LicenseAggregate,
    req: &RenewRequest,
    now: DateTime<Utc>,
) -> Result<Plan<License>, Denial> {
    refuse_revoked(agg)?;
    let mut reasons = Vec::new();
    if agg.policy.license_type == LicenseType::Perpetual {
        reasons.push(DenialReason::new(
            DenialCode::NotRenewable,
            "perpetual licenses do not expire",
        ));
    }
    let new_expiry = match (req.expires_at, req.extend_by_days) {
        (Some(at), None) => {
            if at <= now {
                reasons.push(DenialReason::field(
                    DenialCode::RenewFieldsInvalid,
                    "expires_at",
                    "expires_at must be in the future",
                ));
            }
            Some(at)
        }
        (None, Some(days)) if (1..=36_600).contains(&days) => {
            let base = match agg.license.expires_at {
                Some(e) if now < e => e,
                _ => now,
            };
            Some(base + Duration::days(days))
        }
        (None, Some(_)) => {
            reasons.push(DenialReason::field(
                DenialCode::RenewFieldsInvalid,
                "extend_by_days",
                "extend_by_days must be between 1 and 36600",
            ));
            None
        }
        _ => {
            reasons.push(DenialReason::new(
                DenialCode::RenewFieldsInvalid,
                "provide exactly one of expires_at or extend_by_days",
            ));
            None
        }
    };
    Denial::check(reasons)?;
    let mut license = bumped(agg, now);
    license.expires_at = new_expiry;
    let event = DomainEvent::new(
        "license.renewed",
        "license",
        license.id.as_str(),
        [
            ("previous_expires_at", json!(agg.license.expires_at)),
            ("expires_at", json!(license.expires_at)),
            ("order_id", json!(req.order_id)),
            ("subscription_id", json!(req.subscription_id)),
        ],
    );
    Ok(Plan {
        mutations: vec![Mutation::License(license.clone())],
        events: vec![event],
        outcome: license,
    })
}

fn set_status(
    agg: &LicenseAggregate,
    to: LicenseStatus,
    event_type: &'static str,
    now: DateTime<Utc>,
) -> Result<Plan<License>, Denial> {
    refuse_revoked(agg)?;
    if agg.license.status == to {
        return Ok(Plan::read_only(agg.license.clone()));
    }
    let mut license = bumped(agg, now);
    license.status = to;
    let event = DomainEvent::new(
        event_type,
        "license",
        license.id.as_str(),
        [("previous_status", json!(agg.license.status))],
    );
    Ok(Plan {
        mutations: vec![Mutation::License(license.clone())],
        events: vec![event],
        outcome: license,
    })
}

/// Suspends the license. Suspending a suspended license changes nothing.
pub fn suspend(agg: &LicenseAggregate, now: DateTime<Utc>) -> Result<Plan<License>, Denial> {
    set_status(agg, LicenseStatus::Suspended, "license.suspended", now)
}

/// Reinstates a suspended license. Reinstating an active license changes nothing.
pub fn reinstate(agg: &LicenseAggregate, now: DateTime<Utc>) -> Result<Plan<License>, Denial> {
    set_status(agg, LicenseStatus::Active, "license.reinstated", now)
}

/// Revokes the license for good: every seat and lease is released.
pub fn revoke(agg: &LicenseAggregate, now: DateTime<Utc>) -> Result<Plan<License>, Denial> {
    if agg.license.status == LicenseStatus::Revoked {
        return Ok(Plan::read_only(agg.license.clone()));
    }
    let mut plan = release_everything(agg, DeviceStatus::Expired, now);
    let mut license = bumped(agg, now);
    license.status = LicenseStatus::Revoked;
    license.active_device_count = 0;
    plan.mutations.push(Mutation::License(license.clone()));
    plan.events.push(DomainEvent::new(
        "license.revoked",
        "license",
        license.id.as_str(),
        [("previous_status", json!(agg.license.status))],
    ));
    Ok(plan.map(|()| license))
}

fn release_everything(agg: &LicenseAggregate, to: DeviceStatus, now: DateTime<Utc>) -> Plan<()> {
    let mut plan = Plan::read_only(());
    for d in agg.active_devices() {
        let p = release(agg, d, to, "device.released", now);
        // `release` also rewrites the license count; the caller writes the final license row.
        plan.mutations.extend(
            p.mutations
                .into_iter()
                .filter(|m| matches!(m, Mutation::Device(_))),
        );
        plan.events.extend(p.events);
    }
    for l in agg.leases.iter().filter(|l| l.checked_in_at.is_none()) {
        let mut ended = l.clone();
        ended.checked_in_at = Some(now);
        plan.mutations.push(Mutation::Lease(ended));
    }
    plan
}

/// Transfers ownership. `customer` is the engine's resolution of `customer_id`: `Some(None)`
/// clears the link (the request sent `""`), `None` leaves it.
pub fn transfer(
    agg: &LicenseAggregate,
    req: &TransferRequest,
    customer: Option<Option<CustomerId>>,
    now: DateTime<Utc>,
) -> Result<Plan<License>, Denial> {
    refuse_revoked(agg)?;
    let mut reasons = Vec::new();
    if customer.is_none()
        && req.customer_email.is_none()
        && req.customer_name.is_none()
        && !req.reset_devices
    {
        reasons.push(DenialReason::new(
            DenialCode::TransferEmpty,
            "provide at least one of customer_id, customer_email, customer_name or reset_devices",
        ));
    }
    if agg.license.times_transferred >= agg.policy.max_transfers {
        reasons.push(DenialReason::new(
            DenialCode::TransferLimitReached,
            format!(
                "all {} allowed transfers are used",
                agg.policy.max_transfers
            ),
        ));
    }
    Denial::check(reasons)?;
    let mut plan = if req.reset_devices {
        release_everything(agg, DeviceStatus::Reset, now)
    } else {
        Plan::read_only(())
    };
    let mut license = bumped(agg, now);
    if let Some(c) = customer {
        // A license given to a customer has left its pool, however it was given.
        if c.is_some() {
            license.pool = None;
        }
        license.customer_id = c;
    }
    if let Some(e) = &req.customer_email {
        license.customer_email = Some(e.clone());
    }
    if let Some(n) = &req.customer_name {
        license.customer_name = Some(n.clone());
    }
    if req.reset_devices {
        license.active_device_count = 0;
    }
    license.times_transferred += 1;
    plan.mutations.push(Mutation::License(license.clone()));
    plan.events.push(DomainEvent::new(
        "license.transferred",
        "license",
        license.id.as_str(),
        [
            ("previous_customer_id", json!(agg.license.customer_id)),
            ("customer_id", json!(license.customer_id)),
            ("reset_devices", json!(req.reset_devices)),
            ("times_transferred", json!(license.times_transferred)),
        ],
    ));
    Ok(plan.map(|()| license))
}

/// Assigns (or re-assigns) a feature of the license's product. Re-assigning keeps the usage
/// counter and replaces the given settings.
pub fn assign_feature(
    agg: &LicenseAggregate,
    feature: &Feature,
    req: &FeatureAssignRequest,
    now: DateTime<Utc>,
) -> Result<Plan<LicenseFeature>, Denial> {
    let mut reasons = Vec::new();
    let bad = |field, m: &str| DenialReason::field(DenialCode::InvalidAmount, field, m);
    if req.max_consumptions.is_some_and(|n| n < 0) {
        reasons.push(bad(
            "max_consumptions",
            "max_consumptions must not be negative",
        ));
    }
    if req.max_overages.is_some_and(|n| n < 0) {
        reasons.push(bad("max_overages", "max_overages must not be negative"));
    }
    let floating = |field: &'static str, value: Option<i64>, max: i64| match value {
        Some(n) if !(0..=max).contains(&n) => Err(DenialReason::field(
            DenialCode::InvalidField,
            field,
            format!("{field} must be between 0 and {max}"),
        )),
        // 0 turns it off (seats) or back to the policy's (timeout).
        Some(n) => Ok(Some(u32::try_from(n).ok().filter(|n| *n > 0))),
        None => Ok(None),
    };
    let seats = floating("floating_seats", req.floating_seats, 1_000_000)
        .map_err(|r| reasons.push(r))
        .ok()
        .flatten();
    let timeout = floating(
        "floating_timeout_minutes",
        req.floating_timeout_minutes,
        525_600,
    )
    .map_err(|r| reasons.push(r))
    .ok()
    .flatten();
    Denial::check(reasons)?;
    let existing = agg.features.iter().find(|f| f.feature_id == feature.id);
    let mut f = match existing {
        Some(f) => metering::rolled(f, now),
        None => LicenseFeature {
            license_id: agg.license.id.clone(),
            feature_id: feature.id.clone(),
            feature_code: feature.code.clone(),
            feature_name: feature.name.clone(),
            enabled: true,
            max_consumptions: None,
            total_consumptions: 0,
            remaining: None,
            expires_at: None,
            metadata: Metadata::new(),
            allow_overages: false,
            max_overages: None,
            reset_period: ResetPeriod::Never,
            period_started_at: None,
            allow_negative: false,
            floating_seats: None,
            floating_timeout_minutes: None,
        },
    };
    f.enabled = req.enabled.unwrap_or(f.enabled);
    if req.max_consumptions.is_some() {
        f.max_consumptions = req.max_consumptions;
    }
    if req.expires_at.is_some() {
        f.expires_at = req.expires_at;
    }
    if let Some(m) = &req.metadata {
        f.metadata = m.clone();
    }
    f.allow_overages = req.allow_overages.unwrap_or(f.allow_overages);
    if req.max_overages.is_some() {
        f.max_overages = req.max_overages;
    }
    if let Some(p) = req.reset_period {
        f.reset_period = p;
        f.period_started_at = metering::period_start(p, now);
    }
    f.allow_negative = req.allow_negative.unwrap_or(f.allow_negative);
    if let Some(seats) = seats {
        f.floating_seats = seats;
    }
    if let Some(timeout) = timeout {
        f.floating_timeout_minutes = timeout;
    }
    f.remaining = f
        .max_consumptions
        .map(|q| (q - f.total_consumptions).max(0));
    let license = bumped(agg, now);
    let event = DomainEvent::new(
        "license.feature_assigned",
        "license",
        license.id.as_str(),
        [
            ("feature_code", json!(f.feature_code)),
            ("enabled", json!(f.enabled)),
            ("max_consumptions", json!(f.max_consumptions)),
            ("expires_at", json!(f.expires_at.map(Timestamp::new))),
        ],
    );
    Ok(Plan {
        mutations: vec![
            Mutation::LicenseFeature(f.clone()),
            Mutation::License(license),
        ],
        events: vec![event],
        outcome: f,
    })
}

/// Removes a feature assignment.
pub fn remove_feature(
    agg: &LicenseAggregate,
    feature_id: &crate::model::FeatureId,
    now: DateTime<Utc>,
) -> Result<Plan<()>, Denial> {
    let Some(f) = agg.features.iter().find(|f| &f.feature_id == feature_id) else {
        return Err(Denial::one(DenialReason::new(
            DenialCode::FeatureNotAssigned,
            "this feature is not assigned to the license",
        )));
    };
    let license = bumped(agg, now);
    let event = DomainEvent::new(
        "license.feature_removed",
        "license",
        license.id.as_str(),
        [("feature_code", json!(f.feature_code))],
    );
    Ok(Plan {
        mutations: vec![
            Mutation::RemoveLicenseFeature(feature_id.clone()),
            Mutation::License(license),
        ],
        events: vec![event],
        outcome: (),
    })
}
