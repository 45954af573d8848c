//! Usage periods: where the period containing `now` starts, and what an assignment has used
//! in it. A leaf of the rules (no other rule module is needed), shared by metering and the
//! entitlement every runtime answer reports.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::model::{LicenseFeature, ResetPeriod};

/// The start of the period containing `now`, or `None` for [`ResetPeriod::Never`].
pub fn period_start(period: ResetPeriod, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let d = now.date_naive();
    let day = match period {
        ResetPeriod::Day => d,
        ResetPeriod::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        ResetPeriod::Month => NaiveDate::from_ymd_opt(d.year(), d.month(), 1)?,
        ResetPeriod::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1)?,
        _ => return None,
    };
    Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0)?))
}

/// Units consumed in the period containing `now`.
pub fn usage_at(f: &LicenseFeature, now: DateTime<Utc>) -> i64 {
    match (period_start(f.reset_period, now), f.period_started_at) {
        (Some(start), Some(started)) if started < start => 0,
        _ => f.total_consumptions,
    }
}

/// The assignment rolled forward to the period containing `now`.
pub fn rolled(f: &LicenseFeature, now: DateTime<Utc>) -> LicenseFeature {
    let mut f = f.clone();
    f.total_consumptions = usage_at(&f, now);
    if let Some(start) = period_start(f.reset_period, now) {
        f.period_started_at = Some(start);
    }
    f.remaining = f
        .max_consumptions
        .map(|q| (q - f.total_consumptions).max(0));
    f
}

/// The most a period may consume: quota plus allowed overage; `None` when unlimited.
pub fn ceiling(f: &LicenseFeature) -> Option<i64> {
    let quota = f.max_consumptions?;
    if !f.allow_overages {
        return Some(quota);
    }
    f.max_overages.map(|o| quota.saturating_add(o))
}
