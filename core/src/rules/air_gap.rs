//! Air-gapped activation (an extension): a request file takes a seat exactly as an online
//! activation does and is answered with the device's offline license in the same decision; a
//! release file signed with the device's release key gives the seat back. The files are
//! [`crypto::air_gap`](crate::crypto::air_gap)'s.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{
    Denial, DenialCode, DenialReason, LicenseAggregate, Mutation, Plan, activation, offline,
};
use crate::crypto::air_gap::{ActivationRequestFile, ReleaseFile};
use crate::model::{Device, DeviceId, DeviceStatus, OfflineEntitlementData};

/// How far ahead of the server's clock a request may be dated.
pub const MAX_REQUEST_SKEW: Duration = Duration::minutes(5);

/// How old a request may be: an older one is refused, so a file found in a drawer a year
/// later does not take a seat.
pub const MAX_REQUEST_AGE: Duration = Duration::days(30);

fn invalid(field: &'static str, message: &str) -> Denial {
    Denial::one(DenialReason::field(
        DenialCode::InvalidField,
        field,
        message,
    ))
}

/// Activates the device of `req` on `agg` and issues its offline license at `now`: the seat
/// rules are activate's, the offline rules offline's, and the device keeps the request's
/// release key.
///
/// # Errors
///
/// `INVALID_FIELD` for a malformed file, a request for another license key, or one dated
/// more than [`MAX_REQUEST_SKEW`] ahead or [`MAX_REQUEST_AGE`] behind; `OFFLINE_NOT_ALLOWED`;
/// every refusal of activate.
pub fn activate(
    agg: &LicenseAggregate,
    req: &ActivationRequestFile,
    new_device_id: DeviceId,
    now: DateTime<Utc>,
) -> Result<Plan<OfflineEntitlementData>, Denial> {
    if req.check().is_err() {
        return Err(invalid(
            "format",
            "not an activation request file (format, nonce or release_key malformed)",
        ));
    }
    if req.license_key_sha256 != agg.license.key_hash {
        return Err(invalid(
            "license_key_sha256",
            "the request was written with another license key",
        ));
    }
    if req.created_at > now + MAX_REQUEST_SKEW {
        return Err(invalid(
            "created_at",
            "the request is dated in the future: check the device's clock",
        ));
    }
    if req.created_at < now - MAX_REQUEST_AGE {
        return Err(invalid(
            "created_at",
            "the request is older than 30 days: write a new one",
        ));
    }
    if !agg.policy.allow_offline_activation {
        return Err(Denial::one(DenialReason::new(
            DenialCode::OfflineNotAllowed,
            "the policy does not allow offline licenses",
        )));
    }
    let plan = activation::activate(agg, &req.binding, new_device_id, now)?;
    let mut after = agg.clone();
    after.apply(&plan.mutations);
    let read = offline::offline(&after, &req.binding, now)?;
    let mut mutations = plan.mutations;
    let mut events = plan.events;
    if let Some(touch) = read.touch {
        for m in &mut mutations {
            if let Mutation::Device(d) = m
                && d.id == touch.device_id
            {
                touch.apply_to_device(d);
                d.release_key = Some(req.release_key.clone());
            }
        }
        events.push(touch.event);
    }
    Ok(Plan {
        mutations,
        events,
        outcome: read.outcome,
    })
}

/// Frees the seat of the device `file` names when the file is signed with that device's
/// release key; releasing a device that holds no seat changes nothing.
///
/// # Errors
///
/// `DEVICE_NOT_FOUND`; `INVALID_FIELD` for a file of another license, a device not activated
/// by a request file, or a signature that does not verify.
pub fn release(
    agg: &LicenseAggregate,
    file: &ReleaseFile,
    now: DateTime<Utc>,
) -> Result<Plan<Device>, Denial> {
    if file.license_id != agg.license.id {
        return Err(invalid("license_id", "the release is for another license"));
    }
    let device = activation::find_device(agg, &file.device_id)?;
    let Some(key) = &device.release_key else {
        return Err(invalid(
            "device_id",
            "this device was not activated by a request file",
        ));
    };
    if file.verify(key).is_err() {
        return Err(invalid(
            "signature",
            "the release is not signed with the device's release key",
        ));
    }
    if device.status != DeviceStatus::Active {
        return Ok(Plan::read_only(device.clone()));
    }
    let mut plan = activation::release(
        agg,
        device,
        DeviceStatus::Deactivated,
        "device.deactivated",
        now,
    );
    for e in &mut plan.events {
        e.metadata.insert("reason".into(), json!("release_file"));
    }
    let mut updated = device.clone();
    updated.status = DeviceStatus::Deactivated;
    updated.updated_at = now;
    Ok(plan.map(|()| updated))
}
