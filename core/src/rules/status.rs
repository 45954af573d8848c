//! Effective status: what a license's stored status, dates and policy mean at `now`.
//!
//! Only `active`, `suspended` and `revoked` are stored. `grace_period` and `expired` are
//! derived from `expires_at`, the policy's `grace_period_days` and `now`, so expiry needs no
//! background job and a license can never be "expired" in storage yet usable in fact.
//!
//! What each license type requires and allows:
//!
//! | type | `expires_at` | `maintenance_expires_at` | grace period |
//! |---|---|---|---|
//! | `perpetual` | forbidden | allowed | — |
//! | `time_limited` | required | forbidden | yes |
//! | `subscription` | required | forbidden | yes |
//! | `trial` | required | forbidden | no: a trial ends when it says |
//! | `consumption` | optional | forbidden | yes |

use chrono::{DateTime, Duration, Utc};

use crate::model::{License, LicenseStatus, LicenseType, Policy};

use super::{DenialCode, DenialReason};

/// The instant after which the license is no longer usable because of time: `expires_at` plus
/// the grace period where the type gets one. `None` when it never expires.
pub fn valid_until(license: &License, policy: &Policy) -> Option<DateTime<Utc>> {
    let expires_at = license.expires_at?;
    Some(expires_at + grace(policy, policy.license_type))
}

fn grace(policy: &Policy, license_type: LicenseType) -> Duration {
    if license_type.gets_grace_period() {
        Duration::days(i64::from(policy.grace_period_days))
    } else {
        Duration::zero()
    }
}

/// The status a client or an administrator sees at `now`.
pub fn effective_status(license: &License, policy: &Policy, now: DateTime<Utc>) -> LicenseStatus {
    match license.status {
        LicenseStatus::Revoked => LicenseStatus::Revoked,
        LicenseStatus::Suspended => LicenseStatus::Suspended,
        _ => match license.expires_at {
            None => LicenseStatus::Active,
            Some(expires_at) if now < expires_at => LicenseStatus::Active,
            Some(_) if valid_until(license, policy).is_some_and(|end| now < end) => {
                LicenseStatus::GracePeriod
            }
            Some(_) => LicenseStatus::Expired,
        },
    }
}

/// Every reason the license cannot serve a runtime operation at `now` (empty when it can).
pub fn usability_reasons(
    license: &License,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<DenialReason> {
    let mut reasons = Vec::new();
    match effective_status(license, policy, now) {
        LicenseStatus::Revoked => reasons.push(DenialReason::new(
            DenialCode::LicenseRevoked,
            "the license is revoked",
        )),
        LicenseStatus::Suspended => reasons.push(DenialReason::new(
            DenialCode::LicenseSuspended,
            "the license is suspended",
        )),
        LicenseStatus::Expired => reasons.push(DenialReason::new(
            DenialCode::LicenseExpired,
            "the license has expired",
        )),
        _ => {}
    }
    if license.starts_at.is_some_and(|s| now < s) {
        reasons.push(DenialReason::new(
            DenialCode::LicenseNotStarted,
            "the license's term has not started yet",
        ));
    }
    reasons
}

/// Checks the dates of a license against its type (see the module table) and each other.
pub fn check_dates(
    license_type: LicenseType,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    maintenance_expires_at: Option<DateTime<Utc>>,
) -> Vec<DenialReason> {
    let mut reasons = Vec::new();
    let bad = |field, message: String| {
        DenialReason::field(DenialCode::InvalidLicenseDates, field, message)
    };
    if license_type.requires_expiry() && expires_at.is_none() {
        reasons.push(bad(
            "expires_at",
            format!("a {license_type} license needs expires_at"),
        ));
    }
    if !license_type.allows_expiry() && expires_at.is_some() {
        reasons.push(bad(
            "expires_at",
            format!("a {license_type} license cannot expire"),
        ));
    }
    if !license_type.allows_maintenance_cutoff() && maintenance_expires_at.is_some() {
        reasons.push(bad(
            "maintenance_expires_at",
            "maintenance_expires_at is supported only for perpetual licenses".to_owned(),
        ));
    }
    if let (Some(s), Some(e)) = (starts_at, expires_at)
        && e <= s
    {
        reasons.push(bad(
            "expires_at",
            "expires_at must be after starts_at".to_owned(),
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{license, policy, t0};

    #[test]
    fn expiry_grace_and_expired() {
        let mut p = policy(LicenseType::TimeLimited);
        p.grace_period_days = 3;
        let mut l = license(&p);
        l.expires_at = Some(t0() + Duration::days(10));
        assert_eq!(effective_status(&l, &p, t0()), LicenseStatus::Active);
        assert_eq!(
            effective_status(&l, &p, t0() + Duration::days(10)),
            LicenseStatus::GracePeriod
        );
        assert_eq!(
            effective_status(&l, &p, t0() + Duration::days(13) - Duration::seconds(1)),
            LicenseStatus::GracePeriod
        );
        assert_eq!(
            effective_status(&l, &p, t0() + Duration::days(13)),
            LicenseStatus::Expired
        );
        assert!(usability_reasons(&l, &p, t0() + Duration::days(11)).is_empty());
        assert_eq!(
            usability_reasons(&l, &p, t0() + Duration::days(13))[0].code,
            DenialCode::LicenseExpired
        );
    }

    #[test]
    fn trials_get_no_grace() {
        let mut p = policy(LicenseType::Trial);
        p.grace_period_days = 3;
        let mut l = license(&p);
        l.expires_at = Some(t0() + Duration::days(1));
        assert_eq!(
            effective_status(&l, &p, t0() + Duration::days(1)),
            LicenseStatus::Expired
        );
    }

    #[test]
    fn stored_status_wins_over_dates() {
        let p = policy(LicenseType::Perpetual);
        let mut l = license(&p);
        l.status = LicenseStatus::Suspended;
        assert_eq!(effective_status(&l, &p, t0()), LicenseStatus::Suspended);
        l.status = LicenseStatus::Revoked;
        l.expires_at = Some(t0() - Duration::days(1));
        assert_eq!(effective_status(&l, &p, t0()), LicenseStatus::Revoked);
    }

    #[test]
    fn not_started_is_refused() {
        let p = policy(LicenseType::Perpetual);
        let mut l = license(&p);
        l.starts_at = Some(t0() + Duration::hours(1));
        assert_eq!(
            usability_reasons(&l, &p, t0())[0].code,
            DenialCode::LicenseNotStarted
        );
        assert!(usability_reasons(&l, &p, t0() + Duration::hours(1)).is_empty());
    }

    #[test]
    fn dates_follow_the_type() {
        let e = Some(t0());
        assert!(check_dates(LicenseType::Perpetual, None, None, e).is_empty());
        assert_eq!(check_dates(LicenseType::Perpetual, None, e, None).len(), 1);
        assert_eq!(
            check_dates(LicenseType::TimeLimited, None, None, None).len(),
            1
        );
        assert_eq!(check_dates(LicenseType::Trial, None, None, e).len(), 2);
        assert!(check_dates(LicenseType::Consumption, None, None, None).is_empty());
        assert!(check_dates(LicenseType::Subscription, None, e, None).is_empty());
        assert_eq!(check_dates(LicenseType::Subscription, e, e, None).len(), 1);
    }
}
