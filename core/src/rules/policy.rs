//! Policy defaults and validation.
//!
//! The contract's policy create request carries only `name`, `code`, `license_type`,
//! `max_floating_users`, `floating_timeout_minutes`, `require_heartbeat` and `metadata`. Ours
//! accepts every [`Policy`] field as optional ([`PolicyDraft`]); omitted fields get these
//! defaults, chosen so a vendor that only knows the contract gets a usable, conventional
//! node-locked policy:
//!
//! | field | default | why |
//! |---|---|---|
//! | `max_activations` | 1 | node-locked, the common case (LicenseSpring, Cryptlex) |
//! | `max_floating_users` | absent | not floating until asked |
//! | `max_container_instances` | absent | only `max_activations` limits containers |
//! | `floating_timeout_minutes` | 30 | a crashed client frees its slot within half an hour |
//! | `grace_period_days` | 0 | a license ends when it says, unless the vendor grants grace |
//! | `validation_interval_minutes` | 60 | clients re-check hourly |
//! | `require_heartbeat` | true | leases time out without heartbeats |
//! | `allow_offline_activation` | true | the contract offers offline licenses to every client |
//! | `offline_grace_days` | 7 | an offline envelope lasts a week |
//! | `allow_vm` | true | most software runs in VMs; forbid it explicitly |
//! | `allow_container` | true | the contract's binding request describes containers as normal |
//! | `max_transfers` | 3 | a few ownership changes, not unlimited resale |
//! | `device_heartbeat_minutes` | absent (`0` on a request) | devices keep their seat until released |
//! | `device_heartbeat_grace_minutes` | 0 | released as soon as a heartbeat is missed |
//! | `max_borrow_hours` | absent (`0` on a request) | floating seats are not borrowed offline |
//!
//! Ranges: counts 0..=1 000 000; `floating_timeout_minutes` and
//! `validation_interval_minutes` 1..=525 600 (a year); `device_heartbeat_minutes` and
//! `device_heartbeat_grace_minutes` 0..=525 600; `max_borrow_hours` 0..=8 760; day counts
//! 0..=3 650.

use chrono::{DateTime, Utc};

use crate::model::{Policy, PolicyCode, PolicyDraft, PolicyId, ProductId};

use super::{Denial, DenialCode, DenialReason};

/// The documented defaults (see the module table).
pub const DEFAULT_MAX_ACTIVATIONS: u32 = 1;
/// Default `floating_timeout_minutes`.
pub const DEFAULT_FLOATING_TIMEOUT_MINUTES: u32 = 30;
/// Default `grace_period_days`.
pub const DEFAULT_GRACE_PERIOD_DAYS: u32 = 0;
/// Default `validation_interval_minutes`.
pub const DEFAULT_VALIDATION_INTERVAL_MINUTES: u32 = 60;
/// Default `offline_grace_days`.
pub const DEFAULT_OFFLINE_GRACE_DAYS: u32 = 7;
/// Default `max_transfers`.
pub const DEFAULT_MAX_TRANSFERS: u32 = 3;

const MAX_COUNT: i64 = 1_000_000;
const MAX_MINUTES: i64 = 525_600;
const MAX_DAYS: i64 = 3_650;
/// A borrow lasts at most a year.
const MAX_BORROW_HOURS: i64 = 8_760;

fn ranged(
    reasons: &mut Vec<DenialReason>,
    field: &'static str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Option<u32> {
    let v = value?;
    if range.contains(&v) {
        u32::try_from(v).ok()
    } else {
        reasons.push(DenialReason::field(
            DenialCode::InvalidPolicyField,
            field,
            format!(
                "{field} must be between {} and {}",
                range.start(),
                range.end()
            ),
        ));
        None
    }
}

/// Applies `draft` over `base` (an existing policy, for updates) or over the defaults (for
/// creates, where `name`, `code` and `license_type` are required).
pub fn build(
    id: PolicyId,
    product_id: ProductId,
    base: Option<&Policy>,
    draft: &PolicyDraft,
    now: DateTime<Utc>,
) -> Result<Policy, Denial> {
    let mut r = Vec::new();
    let code = match &draft.code {
        Some(c) => c
            .parse::<PolicyCode>()
            .map_err(|e| {
                r.push(DenialReason::field(
                    DenialCode::InvalidPolicyField,
                    "code",
                    e.to_string(),
                ))
            })
            .ok(),
        None => base.map(|b| b.code.clone()),
    };
    let name = draft.name.clone().or_else(|| base.map(|b| b.name.clone()));
    let license_type = draft.license_type.or(base.map(|b| b.license_type));
    if name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        r.push(DenialReason::field(
            DenialCode::InvalidPolicyField,
            "name",
            "name is required",
        ));
    }
    if code.is_none() && draft.code.is_none() {
        r.push(DenialReason::field(
            DenialCode::InvalidPolicyField,
            "code",
            "code is required",
        ));
    }
    if license_type.is_none() {
        r.push(DenialReason::field(
            DenialCode::InvalidPolicyField,
            "license_type",
            "license_type is required",
        ));
    }
    let max_activations = ranged(
        &mut r,
        "max_activations",
        draft.max_activations,
        0..=MAX_COUNT,
    );
    let max_floating_users = ranged(
        &mut r,
        "max_floating_users",
        draft.max_floating_users,
        0..=MAX_COUNT,
    );
    let max_container_instances = ranged(
        &mut r,
        "max_container_instances",
        draft.max_container_instances,
        0..=MAX_COUNT,
    );
    let floating_timeout = ranged(
        &mut r,
        "floating_timeout_minutes",
        draft.floating_timeout_minutes,
        1..=MAX_MINUTES,
    );
    let grace = ranged(
        &mut r,
        "grace_period_days",
        draft.grace_period_days,
        0..=MAX_DAYS,
    );
    let interval = ranged(
        &mut r,
        "validation_interval_minutes",
        draft.validation_interval_minutes,
        1..=MAX_MINUTES,
    );
    let offline_grace = ranged(
        &mut r,
        "offline_grace_days",
        draft.offline_grace_days,
        0..=MAX_DAYS,
    );
    let max_transfers = ranged(&mut r, "max_transfers", draft.max_transfers, 0..=MAX_COUNT);
    let heartbeat = ranged(
        &mut r,
        "device_heartbeat_minutes",
        draft.device_heartbeat_minutes,
        0..=MAX_MINUTES,
    );
    let borrow = ranged(
        &mut r,
        "max_borrow_hours",
        draft.max_borrow_hours,
        0..=MAX_BORROW_HOURS,
    );
    let heartbeat_grace = ranged(
        &mut r,
        "device_heartbeat_grace_minutes",
        draft.device_heartbeat_grace_minutes,
        0..=MAX_MINUTES,
    );
    Denial::check(r)?;
    let (Some(name), Some(code), Some(license_type)) = (name, code, license_type) else {
        unreachable!("missing required fields were reported above")
    };
    Ok(Policy {
        id,
        product_id,
        name,
        code,
        license_type,
        max_activations: max_activations
            .or(base.map(|b| b.max_activations))
            .unwrap_or(DEFAULT_MAX_ACTIVATIONS),
        max_floating_users: max_floating_users.or(base.and_then(|b| b.max_floating_users)),
        max_container_instances: max_container_instances
            .or(base.and_then(|b| b.max_container_instances)),
        floating_timeout_minutes: floating_timeout
            .or(base.map(|b| b.floating_timeout_minutes))
            .unwrap_or(DEFAULT_FLOATING_TIMEOUT_MINUTES),
        grace_period_days: grace
            .or(base.map(|b| b.grace_period_days))
            .unwrap_or(DEFAULT_GRACE_PERIOD_DAYS),
        validation_interval_minutes: interval
            .or(base.map(|b| b.validation_interval_minutes))
            .unwrap_or(DEFAULT_VALIDATION_INTERVAL_MINUTES),
        require_heartbeat: draft
            .require_heartbeat
            .or(base.map(|b| b.require_heartbeat))
            .unwrap_or(true),
        allow_offline_activation: draft
            .allow_offline_activation
            .or(base.map(|b| b.allow_offline_activation))
            .unwrap_or(true),
        offline_grace_days: offline_grace
            .or(base.map(|b| b.offline_grace_days))
            .unwrap_or(DEFAULT_OFFLINE_GRACE_DAYS),
        allow_vm: draft.allow_vm.or(base.map(|b| b.allow_vm)).unwrap_or(true),
        allow_container: draft
            .allow_container
            .or(base.map(|b| b.allow_container))
            .unwrap_or(true),
        max_transfers: max_transfers
            .or(base.map(|b| b.max_transfers))
            .unwrap_or(DEFAULT_MAX_TRANSFERS),
        // 0 on a request means off; absent keeps what the policy had.
        device_heartbeat_minutes: match heartbeat {
            Some(0) => None,
            Some(m) => Some(m),
            None => base.and_then(|b| b.device_heartbeat_minutes),
        },
        max_borrow_hours: match borrow {
            Some(0) => None,
            Some(h) => Some(h),
            None => base.and_then(|b| b.max_borrow_hours),
        },
        device_heartbeat_grace_minutes: heartbeat_grace
            .or(base.map(|b| b.device_heartbeat_grace_minutes))
            .unwrap_or(0),
        metadata: draft
            .metadata
            .clone()
            .or_else(|| base.map(|b| b.metadata.clone()))
            .unwrap_or_default(),
        created_at: base.map_or(now, |b| b.created_at),
        updated_at: now,
    })
}
