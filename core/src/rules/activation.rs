//! Activation seats: activate, validate, check, deactivate, and the administrator's reset and
//! blacklist.
//!
//! - Activating a binding that is already active returns the same device and takes no seat.
//! - A binding that was deactivated or reset comes back as the same device record.
//! - A blacklisted binding is refused forever (only a new device record could lift it, and
//!   none is ever created for it).
//! - `max_activations` bounds active devices of both kinds; `max_container_instances`
//!   additionally bounds active container devices.
//! - Validate and check change nothing; validate returns the [`Touch`] that records the
//!   validation (timestamps and event), written behind by the host. Device details (hostname,
//!   OS, VM and container fields) are refreshed by activate: activating an active binding
//!   again updates them without taking a seat.
//!
//! Activations do not change `entitlement_version`: seats are not entitlements.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::{
    DeactivationData, Device, DeviceId, DeviceStatus, Metadata, RuntimeBindingRequest,
    RuntimeEntitlementData, Timestamp,
};

use super::runtime_gate::{admit, bound, denial, not_activated};
use super::{
    Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Mutation, Plan, Read, Touch,
    TouchKind, entitlement, status,
};

/// Activates the request's binding. `new_device_id` is used only if the binding has never
/// been seen on this license.
pub fn activate(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    new_device_id: DeviceId,
    now: DateTime<Utc>,
) -> Result<Plan<RuntimeEntitlementData>, Denial> {
    let admitted = admit(agg, req, now).map_err(denial)?;
    let binding = &admitted.binding;

    if let Some(existing) = agg.active_device(binding.key()) {
        let mut device = existing.clone();
        refresh_details(&mut device, req, now);
        let data = entitlement::entitlement_data(agg, &device.id, now, admitted.version);
        return Ok(Plan {
            mutations: vec![Mutation::Device(device)],
            events: vec![],
            outcome: data,
        });
    }

    let mut reasons = Vec::new();
    let active = agg.active_devices().count();
    if active >= agg.policy.max_activations as usize {
        reasons.push(DenialReason::new(
            DenialCode::ActivationLimitReached,
            format!(
                "all {} activation seats are taken",
                agg.policy.max_activations
            ),
        ));
    }
    if binding.is_container()
        && let Some(max) = agg.policy.max_container_instances
    {
        let containers = agg.active_devices().filter(|d| d.is_container).count();
        if containers >= max as usize {
            reasons.push(DenialReason::new(
                DenialCode::ContainerLimitReached,
                format!("all {max} container seats are taken"),
            ));
        }
    }
    Denial::check(reasons)?;

    let previous = agg
        .devices
        .iter()
        .find(|d| d.binding_key == binding.key() && d.status != DeviceStatus::Blacklisted);
    let mut device = match previous {
        Some(d) => d.clone(),
        None => Device {
            id: new_device_id,
            license_id: agg.license.id.clone(),
            binding_kind: binding.kind(),
            binding_key: binding.key().to_owned(),
            fingerprint: None,
            hostname: None,
            os: None,
            ip_address: None,
            is_vm: false,
            is_container: false,
            container_id: None,
            cluster_id: None,
            namespace: None,
            pod_name: None,
            status: DeviceStatus::Active,
            first_seen_at: now,
            last_seen_at: now,
            last_validated_at: None,
            offline_until: None,
            user_id: None,
            release_key: None,
            metadata: Metadata::new(),
            created_at: now,
            updated_at: now,
        },
    };
    device.status = DeviceStatus::Active;
    refresh_details(&mut device, req, now);

    let mut license = agg.license.clone();
    license.active_device_count = (active + 1) as u32;
    license.times_activated = license.times_activated.saturating_add(1);
    license.updated_at = now;

    let event = DomainEvent::new(
        "device.activated",
        "device",
        device.id.as_str(),
        [
            ("license_id", json!(license.id)),
            ("binding_kind", json!(device.binding_kind)),
            ("is_vm", json!(device.is_vm)),
            ("is_container", json!(device.is_container)),
        ],
    );
    // The response describes the license after the change; only the license row changed.
    let data = entitlement::entitlement_data_of(
        &license,
        &agg.policy,
        &agg.features,
        &agg.leases,
        &device.id,
        now,
        admitted.version,
    );
    Ok(Plan {
        mutations: vec![Mutation::Device(device), Mutation::License(license)],
        events: vec![event],
        outcome: data,
    })
}

/// Validates an activated binding. Read-only: the validation's bookkeeping (the device's and
/// license's validation timestamps, the `license.validated` event) is the returned
/// [`Touch`], which a host writes behind, coalesced per device.
pub fn validate(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<Read<RuntimeEntitlementData>, Denial> {
    let (device, data) = bound(agg, req, now)?;
    let event = DomainEvent::new(
        "license.validated",
        "license",
        agg.license.id.as_str(),
        [("device_id", json!(device.id))],
    );
    Ok(Read {
        outcome: data,
        touch: Some(Touch {
            kind: TouchKind::Validated,
            license_id: agg.license.id.clone(),
            device_id: device.id.clone(),
            at: now,
            offline_until: None,
            event,
        }),
    })
}

/// Reports the entitlement of an activated binding without changing anything; with
/// `feature`, only that feature's (refused with `FEATURE_NOT_ASSIGNED` when the license
/// does not have it, after every other rule: a refused license says why first).
pub fn check(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    feature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Read<RuntimeEntitlementData>, Denial> {
    let (_, mut data) = bound(agg, req, now)?;
    if let Some(code) = feature {
        data.features.retain(|f| f.code.as_str() == code);
        if data.features.is_empty() {
            return Err(Denial::one(DenialReason::new(
                DenialCode::FeatureNotAssigned,
                "this feature is not assigned to the license",
            )));
        }
    }
    Ok(Read::untraced(data))
}

/// Releases the request's seat. Allowed whatever the license's status, so a customer can
/// always free a seat.
pub fn deactivate(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<Plan<DeactivationData>, Denial> {
    let binding = super::Binding::from_request(req).map_err(denial)?;
    let device = agg
        .active_device(binding.key())
        .ok_or_else(|| Denial::one(not_activated()))?;
    let plan = release(
        agg,
        device,
        DeviceStatus::Deactivated,
        "device.deactivated",
        now,
    );
    let license = plan
        .mutations
        .iter()
        .find_map(|m| match m {
            Mutation::License(l) => Some(l.clone()),
            _ => None,
        })
        .unwrap_or_else(|| agg.license.clone());
    let data = DeactivationData {
        license_id: license.id.clone(),
        status: status::effective_status(&license, &agg.policy, now),
        license_type: agg.policy.license_type,
        entitlement_version: license.entitlement_version,
        issued_at: Timestamp::new(now),
        device_id: device.id.clone(),
        expires_at: license.expires_at.map(Timestamp::new),
    };
    Ok(plan.map(|()| data))
}

/// An administrator releases a device's seat (`reset`).
pub fn reset_device(
    agg: &LicenseAggregate,
    device_id: &DeviceId,
    now: DateTime<Utc>,
) -> Result<Plan<Device>, Denial> {
    let device = find_device(agg, device_id)?;
    if device.status != DeviceStatus::Active {
        return Ok(Plan::read_only(device.clone()));
    }
    let plan = release(agg, device, DeviceStatus::Reset, "device.reset", now);
    let mut updated = device.clone();
    updated.status = DeviceStatus::Reset;
    updated.updated_at = now;
    Ok(plan.map(|()| updated))
}

/// An administrator blacklists a device: its seat is freed and its binding refused forever.
pub fn blacklist_device(
    agg: &LicenseAggregate,
    device_id: &DeviceId,
    now: DateTime<Utc>,
) -> Result<Plan<Device>, Denial> {
    let device = find_device(agg, device_id)?;
    if device.status == DeviceStatus::Blacklisted {
        return Ok(Plan::read_only(device.clone()));
    }
    let plan = release(
        agg,
        device,
        DeviceStatus::Blacklisted,
        "device.blacklisted",
        now,
    );
    let mut updated = device.clone();
    updated.status = DeviceStatus::Blacklisted;
    updated.updated_at = now;
    Ok(plan.map(|()| updated))
}

/// Moves `device` to `to`, freeing its seat if it held one.
pub(crate) fn release(
    agg: &LicenseAggregate,
    device: &Device,
    to: DeviceStatus,
    event_type: &'static str,
    now: DateTime<Utc>,
) -> Plan<()> {
    let mut d = device.clone();
    let held_seat = d.status == DeviceStatus::Active;
    d.status = to;
    d.updated_at = now;
    let mut mutations = vec![Mutation::Device(d)];
    if held_seat {
        let mut license = agg.license.clone();
        license.active_device_count = license.active_device_count.saturating_sub(1);
        license.updated_at = now;
        mutations.push(Mutation::License(license));
    }
    let event = DomainEvent::new(
        event_type,
        "device",
        device.id.as_str(),
        [
            ("license_id", json!(agg.license.id)),
            ("previous_status", json!(device.status)),
        ],
    );
    Plan {
        mutations,
        events: vec![event],
        outcome: (),
    }
}

pub(crate) fn find_device<'a>(
    agg: &'a LicenseAggregate,
    id: &DeviceId,
) -> Result<&'a Device, Denial> {
    agg.devices.iter().find(|d| &d.id == id).ok_or_else(|| {
        Denial::one(DenialReason::new(
            DenialCode::DeviceNotFound,
            "no such device on this license",
        ))
    })
}

fn refresh_details(device: &mut Device, req: &RuntimeBindingRequest, now: DateTime<Utc>) {
    device.fingerprint = req.fingerprint.clone().or(device.fingerprint.take());
    device.hostname = req.hostname.clone().or(device.hostname.take());
    device.os = req.os.clone().or(device.os.take());
    device.is_vm = req.is_vm;
    device.is_container = req.is_container;
    device.container_id = req.container_id.clone().or(device.container_id.take());
    device.cluster_id = req.cluster_id.clone().or(device.cluster_id.take());
    device.namespace = req.namespace.clone().or(device.namespace.take());
    device.pod_name = req.pod_name.clone().or(device.pod_name.take());
    device.last_seen_at = now;
    device.updated_at = now;
}
