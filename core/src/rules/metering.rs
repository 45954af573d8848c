//! Metered consumption and usage administration.
//!
//! - `consume` takes `amount` (default 1) of an assigned, enabled, unexpired feature from the
//!   request's activated device.
//! - The quota is `max_consumptions` per period; an assignment without one is unmetered
//!   (unlimited). With `allow_overages`, consumption may go `max_overages` past the quota
//!   (without bound when `max_overages` is absent).
//! - `reset_period` (`day`, `week`, `month`, `year`) starts the counter again at UTC boundaries
//!   (weeks start on Monday). The reset is computed from `now` when the assignment is next
//!   read or written: no background job.
//! - An `event_id` is counted once. Replaying it with the same feature and amount returns the
//!   current entitlement without counting again; with another feature or amount it is refused
//!   with `EVENT_ID_CONFLICT`.
//! - A negative amount gives credits back, only where the assignment has `allow_negative`,
//!   and never takes the period's counter below zero.
//! - Consumption does not change `entitlement_version`: balances are reported in every
//!   response, while the version tracks what the client is entitled to.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::{
    ConsumeRequest, ConsumptionRecord, FeatureCode, LicenseFeature, RuntimeEntitlementData,
    UsageResetRequest,
};

use super::runtime_gate::bound;
use super::{
    Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Mutation, Plan, entitlement,
};

pub use super::period::{ceiling, period_start, rolled, usage_at};

/// Longest accepted `event_id`, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// Refuses an `amount` beyond ±(2^53 − 1): every integer in signed data and in canonical
/// request bytes must be exact in an IEEE double (DESIGN 4.1), so a larger one is a client
/// error (`INVALID_AMOUNT`), never an internal one.
pub fn amount_out_of_range(amount: i64) -> Option<DenialReason> {
    (amount.unsigned_abs() > crate::crypto::MAX_SAFE_INTEGER.unsigned_abs()).then(|| {
        DenialReason::field(
            DenialCode::InvalidAmount,
            "amount",
            "amount must be between -(2^53 - 1) and 2^53 - 1",
        )
    })
}

/// Consumes from a metered feature.
pub fn consume(
    agg: &LicenseAggregate,
    req: &ConsumeRequest,
    now: DateTime<Utc>,
) -> Result<Plan<RuntimeEntitlementData>, Denial> {
    let mut reasons = Vec::new();
    let amount = req.amount.unwrap_or(1);
    let code = req.feature_code.parse::<FeatureCode>().map_err(|e| {
        reasons.push(DenialReason::field(
            DenialCode::InvalidFeatureCode,
            "feature_code",
            e.to_string(),
        ))
    });
    if req.event_id.is_empty()
        || req.event_id.len() > MAX_EVENT_ID_LEN
        || req.event_id.chars().any(char::is_control)
    {
        reasons.push(DenialReason::field(
            DenialCode::InvalidEventId,
            "event_id",
            format!("event_id must be 1 to {MAX_EVENT_ID_LEN} bytes without control characters"),
        ));
    }
    let feature = code
        .as_ref()
        .ok()
        .and_then(|c| agg.features.iter().find(|f| &f.feature_code == c));

    // A replay is judged against what was recorded, before anything about the present state:
    // the first attempt's effect already happened.
    if let (Some(prior), Some(f)) = (&agg.consumption, feature)
        && prior.event_id == req.event_id
    {
        if prior.feature_id == f.feature_id && prior.amount == amount {
            let (device, _) = bound(agg, &req.binding(), now)?;
            let data = entitlement::entitlement_data(agg, &device.id, now, None);
            return Ok(Plan::read_only(data));
        }
        return Err(Denial::one(event_conflict()));
    }
    if agg
        .consumption
        .as_ref()
        .is_some_and(|p| p.event_id == req.event_id)
        && feature.is_none()
    {
        reasons.push(event_conflict());
    }

    if let Some(reason) = amount_out_of_range(amount) {
        reasons.push(reason);
    }
    if amount == 0 {
        reasons.push(DenialReason::field(
            DenialCode::InvalidAmount,
            "amount",
            "amount must not be zero",
        ));
    }
    let device = match bound(agg, &req.binding(), now) {
        Ok((d, _)) => Some(d),
        Err(d) => {
            reasons.extend(d.reasons().iter().cloned());
            None
        }
    };
    let mut updated = None;
    match (feature, code.is_ok()) {
        (None, true) => reasons.push(DenialReason::field(
            DenialCode::FeatureNotEntitled,
            "feature_code",
            "this feature is not assigned to the license",
        )),
        (Some(f), _) => {
            let f = rolled(f, now);
            reasons.extend(entitlement::unusable_feature_reasons(&f, now));
            if amount < 0 && !f.allow_negative {
                reasons.push(DenialReason::field(
                    DenialCode::InvalidAmount,
                    "amount",
                    "negative amounts are not allowed for this feature",
                ));
            }
            match f.total_consumptions.checked_add(amount) {
                Some(total) if total < 0 && amount < 0 => reasons.push(DenialReason::field(
                    DenialCode::InvalidAmount,
                    "amount",
                    "credits back cannot exceed what this period consumed",
                )),
                Some(total) if ceiling(&f).is_some_and(|c| total > c) => {
                    reasons.push(DenialReason::field(
                        DenialCode::QuotaExceeded,
                        "amount",
                        "this would exceed the feature's quota",
                    ))
                }
                Some(total) => updated = Some((f, total)),
                None => reasons.push(DenialReason::field(
                    DenialCode::InvalidAmount,
                    "amount",
                    "amount is out of range",
                )),
            }
        }
        (None, false) => {}
    }
    Denial::check(reasons)?;
    let (Some(device), Some((mut f, total))) = (device, updated) else {
        unreachable!("no reasons means a bound device and a feature to update")
    };

    f.total_consumptions = total;
    f.remaining = f.max_consumptions.map(|q| (q - total).max(0));
    let mut license = agg.license.clone();
    license.total_consumptions = license.total_consumptions.saturating_add(amount);
    license.updated_at = now;
    let record = ConsumptionRecord::new(
        &license,
        f.feature_id.clone(),
        f.feature_code.clone(),
        req.event_id.clone(),
        amount,
        now,
    );
    let event = DomainEvent::new(
        "usage.consumed",
        "license",
        license.id.as_str(),
        [
            ("feature_code", json!(f.feature_code)),
            ("amount", json!(amount)),
            ("event_id", json!(req.event_id)),
            ("device_id", json!(device.id)),
        ],
    );
    // The response describes the license after the change: the new row and this feature's
    // new counter (the rest of the aggregate is not read, so it is not copied).
    let features: Vec<LicenseFeature> = agg
        .features
        .iter()
        .map(|x| {
            if x.feature_id == f.feature_id {
                f.clone()
            } else {
                x.clone()
            }
        })
        .collect();
    let data = entitlement::entitlement_data_of(
        &license,
        &agg.policy,
        &features,
        &agg.leases,
        &device.id,
        now,
        None,
    );
    Ok(Plan {
        mutations: vec![
            Mutation::LicenseFeature(f),
            Mutation::License(license),
            Mutation::Consumption(record),
        ],
        events: vec![event],
        outcome: data,
    })
}

fn event_conflict() -> DenialReason {
    DenialReason::field(
        DenialCode::EventIdConflict,
        "event_id",
        "this event_id was already used with another feature or amount",
    )
}

/// The contract's usage reset. The assignment is selected by exactly one of the request's
/// `feature_id` or `feature_code`. Mutations apply in this order: `max_consumptions`,
/// `add_credits` (raises the quota; an unmetered feature stays unmetered),
/// `total_consumptions`, `reset_consumed`.
pub fn reset_usage(
    agg: &LicenseAggregate,
    req: &UsageResetRequest,
    now: DateTime<Utc>,
) -> Result<Plan<LicenseFeature>, Denial> {
    let mut reasons = Vec::new();
    let invalid = |m: &str| DenialReason::new(DenialCode::UsageResetInvalid, m);
    if req.feature_id.is_some() == req.feature_code.is_some() {
        reasons.push(invalid(
            "select the feature with exactly one of feature_id or feature_code",
        ));
    }
    if req.add_credits.is_none()
        && req.max_consumptions.is_none()
        && req.total_consumptions.is_none()
        && !req.reset_consumed
    {
        reasons.push(invalid(
            "provide at least one of add_credits, max_consumptions, total_consumptions or reset_consumed",
        ));
    }
    if req.add_credits.is_some_and(|n| n < 1) {
        reasons.push(DenialReason::field(
            DenialCode::UsageResetInvalid,
            "add_credits",
            "add_credits must be at least 1",
        ));
    }
    if req.max_consumptions.is_some_and(|n| n < 0) || req.total_consumptions.is_some_and(|n| n < 0)
    {
        reasons.push(invalid(
            "max_consumptions and total_consumptions must not be negative",
        ));
    }
    if req.reset_consumed && req.total_consumptions.is_some() {
        reasons.push(invalid(
            "reset_consumed and total_consumptions cannot be combined",
        ));
    }
    Denial::check(reasons)?;
    let feature = agg
        .features
        .iter()
        .find(|f| {
            req.feature_id
                .as_deref()
                .is_some_and(|id| f.feature_id.as_str() == id)
                || req
                    .feature_code
                    .as_deref()
                    .is_some_and(|c| f.feature_code.as_str() == c)
        })
        .ok_or_else(|| {
            Denial::one(DenialReason::new(
                DenialCode::FeatureNotAssigned,
                "this feature is not assigned to the license",
            ))
        })?;

    let mut f = rolled(feature, now);
    let before = (f.max_consumptions, f.total_consumptions);
    if let Some(max) = req.max_consumptions {
        f.max_consumptions = Some(max);
    }
    if let Some(credits) = req.add_credits {
        f.max_consumptions = f.max_consumptions.map(|q| q.saturating_add(credits));
    }
    if let Some(total) = req.total_consumptions {
        f.total_consumptions = total;
    }
    if req.reset_consumed {
        f.total_consumptions = 0;
    }
    f.remaining = f
        .max_consumptions
        .map(|q| (q - f.total_consumptions).max(0));
    let mut license = agg.license.clone();
    license.entitlement_version += 1;
    license.updated_at = now;
    let event = DomainEvent::new(
        "usage.reset",
        "license",
        license.id.as_str(),
        [
            ("feature_code", json!(f.feature_code)),
            ("previous_max_consumptions", json!(before.0)),
            ("previous_total_consumptions", json!(before.1)),
            ("max_consumptions", json!(f.max_consumptions)),
            ("total_consumptions", json!(f.total_consumptions)),
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
