//! The checks every runtime operation shares: a well-formed binding, a usable license, a
//! binding the policy and blacklist allow, and an entitled `app_version`; and the active
//! device they lead to ([`bound`]), which validate, check, offline and consume all start from.

use chrono::{DateTime, Utc};

use crate::model::{Device, RuntimeBindingRequest, RuntimeEntitlementData, VersionEligibility};

use super::{Binding, Denial, DenialCode, DenialReason, LicenseAggregate, status, version};

/// A request that passed the shared checks.
#[derive(Debug, Clone)]
pub(crate) struct Admitted {
    pub(crate) binding: Binding,
    pub(crate) version: Option<VersionEligibility>,
}

/// Runs every shared check and returns all failures at once.
pub(crate) fn admit(
    agg: &LicenseAggregate,
    req: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<Admitted, Vec<DenialReason>> {
    let mut reasons = Vec::new();
    let binding = Binding::from_request(req)
        .map_err(|r| reasons.extend(r))
        .ok();
    let parsed_version = req
        .app_version
        .as_deref()
        .map(version::parse_app_version)
        .transpose()
        .map_err(|r| reasons.push(r))
        .ok()
        .flatten();

    reasons.extend(status::usability_reasons(&agg.license, &agg.policy, now));
    if let Some(b) = &binding {
        if agg.is_blacklisted(b.key()) {
            reasons.push(DenialReason::new(
                DenialCode::DeviceBlacklisted,
                "this device is blacklisted",
            ));
        }
        if b.is_vm() && !agg.policy.allow_vm {
            reasons.push(DenialReason::field(
                DenialCode::VmNotAllowed,
                "is_vm",
                "the policy does not allow virtual machines",
            ));
        }
        if b.is_container() && !agg.policy.allow_container {
            reasons.push(DenialReason::field(
                DenialCode::ContainerNotAllowed,
                "is_container",
                "the policy does not allow containers",
            ));
        }
    }
    let version = parsed_version.map(|v| {
        let (data, refusal) =
            version::eligibility(&agg.license, agg.policy.license_type, &agg.versions, &v);
        reasons.extend(refusal);
        data
    });
    match binding {
        Some(binding) if reasons.is_empty() => Ok(Admitted { binding, version }),
        _ => Err(reasons),
    }
}

/// The active device for the request, after every shared check; all failures at once.
pub(crate) fn bound<'a>(
    agg: &'a LicenseAggregate,
    req: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<(&'a Device, RuntimeEntitlementData), Denial> {
    let admitted = admit(agg, req, now);
    let key = match &admitted {
        Ok(a) => Some(a.binding.key().to_owned()),
        Err(_) => Binding::from_request(req).ok().map(|b| b.key().to_owned()),
    };
    let device = key.as_deref().and_then(|k| agg.active_device(k));
    match (admitted, device) {
        (Ok(a), Some(device)) => {
            let data = super::entitlement::entitlement_data(agg, &device.id, now, a.version);
            Ok((device, data))
        }
        (admitted, device) => {
            let mut reasons = admitted.err().unwrap_or_default();
            if device.is_none()
                && key.is_some()
                && !agg.is_blacklisted(key.as_deref().unwrap_or_default())
            {
                reasons.push(not_activated());
            }
            Err(denial(reasons))
        }
    }
}

pub(crate) fn not_activated() -> DenialReason {
    DenialReason::new(
        DenialCode::DeviceNotActivated,
        "this device is not activated on this license",
    )
}

pub(crate) fn denial(reasons: Vec<DenialReason>) -> Denial {
    Denial::check(reasons).expect_err("callers pass at least one reason")
}
