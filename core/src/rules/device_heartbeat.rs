//! Device heartbeats (an extension): a policy with `device_heartbeat_minutes` requires its
//! activated devices to be heard from that often; a device silent for longer than that plus
//! `device_heartbeat_grace_minutes` loses its seat to the release sweep.
//!
//! A device is heard from when it activates, validates, fetches an offline license or sends a
//! heartbeat ([`heartbeat`]): each moves its `last_seen_at`. Validations and offline issues are
//! written behind (coalesced per device for up to the engine's touch interval), so the stored
//! `last_seen_at` may lag the device; the sweep therefore releases only past an extra `margin`
//! that covers that lag ([`is_silent`]), and a device that keeps to its interval through any of
//! those calls never loses its seat. A heartbeat is written at once, under the license's lock.
//!
//! A device holding a valid offline license is never released before that license ends
//! (it may be working offline, as its policy allows), and the silence counts from the
//! policy's last change at the earliest.
//!
//! The sweep ([`release_silent`]) moves every silent device of a license to `expired`, frees
//! its seat and records `device.released` with `reason: "heartbeat_missed"`. It is decided per
//! license under the license's lock, so several instances sweeping at once release each
//! device once. A released device that comes back activates again (its seat is free, and it
//! gets the same device id), like one a customer deactivated.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::model::{
    Device, DeviceHeartbeatData, DeviceStatus, Policy, RuntimeBindingRequest, Timestamp,
};

use super::activation::release;
use super::runtime_gate::bound;
use super::{Denial, LicenseAggregate, Mutation, Plan};

/// The device's heartbeat: it must be an activated device of a usable license (the checks of
/// validate); its `last_seen_at` moves to `now`. Accepted when the policy requires no
/// heartbeats too (the answer then carries no due time). No event: heartbeats are bookkeeping,
/// and a release is what the events feed records.
pub fn heartbeat(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<Plan<DeviceHeartbeatData>, Denial> {
    let (device, entitlement) = bound(agg, req, now)?;
    let mut heard = device.clone();
    heard.last_seen_at = heard.last_seen_at.max(now);
    let data = DeviceHeartbeatData {
        license_id: entitlement.license_id,
        status: entitlement.status,
        license_type: entitlement.license_type,
        entitlement_version: entitlement.entitlement_version,
        issued_at: entitlement.issued_at,
        expires_at: entitlement.expires_at,
        device_id: device.id.clone(),
        next_heartbeat_at: due_at(&agg.policy, now).map(Timestamp::new),
        release_at: release_at(&agg.policy, now).map(Timestamp::new),
    };
    Ok(Plan {
        mutations: vec![Mutation::Device(heard)],
        events: Vec::new(),
        outcome: data,
    })
}

/// When a device last heard from at `last_seen` must be heard from again, if the policy
/// requires heartbeats.
pub fn due_at(policy: &Policy, last_seen: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let minutes = policy.device_heartbeat_minutes?;
    last_seen.checked_add_signed(Duration::minutes(i64::from(minutes)))
}

/// When a device last heard from at `last_seen` loses its seat: the due time plus the grace.
pub fn release_at(policy: &Policy, last_seen: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let grace = Duration::minutes(i64::from(policy.device_heartbeat_grace_minutes));
    due_at(policy, last_seen)?.checked_add_signed(grace)
}

/// Whether the sweep releases `device` at `now`: it is active, its policy requires
/// heartbeats, `release_at(max(last_seen_at, the policy's updated_at)) + margin < now` (the
/// silence is counted from the policy's last change at the earliest, so turning heartbeats on
/// does not release at once every device seen before), and no offline license it holds is
/// still valid (`offline_until + margin < now`, or none). A store that lists candidates for the
/// sweep selects by exactly this condition.
pub fn is_silent(policy: &Policy, device: &Device, margin: Duration, now: DateTime<Utc>) -> bool {
    let past = |at: Option<DateTime<Utc>>| {
        at.and_then(|at| at.checked_add_signed(margin))
            .is_some_and(|at| at < now)
    };
    device.status == DeviceStatus::Active
        && past(release_at(
            policy,
            device.last_seen_at.max(policy.updated_at),
        ))
        && (device.offline_until.is_none() || past(device.offline_until))
}

/// Releases every silent device of the license (see the [module docs](self)); the outcome is
/// the devices released, none when nothing is silent (a plan that changes nothing).
pub fn release_silent(
    agg: &LicenseAggregate,
    margin: Duration,
    now: DateTime<Utc>,
) -> Plan<Vec<Device>> {
    let silent: Vec<&Device> = agg
        .active_devices()
        .filter(|d| is_silent(&agg.policy, d, margin, now))
        .collect();
    if silent.is_empty() {
        return Plan::read_only(Vec::new());
    }
    let mut plan = Plan::read_only(Vec::new());
    for device in &silent {
        let released = release(agg, device, DeviceStatus::Expired, "device.released", now);
        // `release` rewrites the license count for one device; the count for all is written
        // once below.
        for m in released.mutations {
            if let Mutation::Device(d) = m {
                plan.outcome.push(d.clone());
                plan.mutations.push(Mutation::Device(d));
            }
        }
        plan.events.extend(released.events.into_iter().map(|mut e| {
            e.metadata
                .insert("reason".into(), json!("heartbeat_missed"));
            e.metadata.insert(
                "last_seen_at".into(),
                json!(Timestamp::new(device.last_seen_at)),
            );
            e
        }));
    }
    let mut license = agg.license.clone();
    license.active_device_count = license
        .active_device_count
        .saturating_sub(u32::try_from(silent.len()).unwrap_or(u32::MAX));
    license.updated_at = now;
    plan.mutations.push(Mutation::License(license));
    plan
}
