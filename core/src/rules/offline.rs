//! Offline licenses: what the signed payload inside an offline envelope says.
//!
//! Allowed only when the policy has `allow_offline_activation`, for a device already
//! activated on the license (the same checks as validate). The payload is the runtime
//! entitlement plus `offline_expires_at` (`issued_at` + `offline_grace_days`, never after the
//! license stops being valid) and `binding_sha256` (see [`Binding`](super::Binding)).
//! Sealing it is [`crypto`](crate::crypto)'s job.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::model::{OfflineEntitlementData, RuntimeBindingRequest, Timestamp};

use super::runtime_gate::bound;
use super::{
    Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Read, Touch, TouchKind, status,
};

pub use crate::crypto::binding_sha256;

/// Decides an offline license for the request's activated device.
pub fn offline(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<Read<OfflineEntitlementData>, Denial> {
    let bound = bound(agg, req, now);
    let mut reasons = bound
        .as_ref()
        .err()
        .map(|d| d.reasons().to_vec())
        .unwrap_or_default();
    if !agg.policy.allow_offline_activation {
        reasons.push(DenialReason::new(
            DenialCode::OfflineNotAllowed,
            "the policy does not allow offline licenses",
        ));
    }
    Denial::check(reasons)?;
    let (device, entitlement) = bound?;
    let mut until = now + Duration::days(i64::from(agg.policy.offline_grace_days));
    if let Some(end) = status::valid_until(&agg.license, &agg.policy) {
        until = until.min(end);
    }
    let data = OfflineEntitlementData {
        entitlement,
        offline_expires_at: Timestamp::new(until),
        binding_sha256: binding_sha256(&device.binding_key),
    };
    let event = DomainEvent::new(
        "license.offline_issued",
        "license",
        agg.license.id.as_str(),
        [
            ("device_id", json!(device.id)),
            ("offline_expires_at", json!(data.offline_expires_at)),
        ],
    );
    Ok(Read {
        outcome: data,
        touch: Some(Touch {
            kind: TouchKind::OfflineIssued,
            license_id: agg.license.id.clone(),
            device_id: device.id.clone(),
            at: now,
            offline_until: Some(until),
            event,
        }),
    })
}
