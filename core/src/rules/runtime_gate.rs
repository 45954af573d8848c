//! The checks every runtime operation shares: a well-formed binding, a usable license, a
//! binding the policy and blacklist allow, and an entitled `app_version`.

use chrono::{DateTime, Utc};

use crate::model::{RuntimeBindingRequest, VersionEligibility};

use super::{Binding, DenialCode, DenialReason, LicenseAggregate, status, version};

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
