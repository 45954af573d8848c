//! Rule-by-rule tests over a fake clock: every `now` is an argument, nothing sleeps.

use chrono::Duration;

use super::testing::{aggregate, hw, policy, product_version, t0};
use super::*;
use crate::model::*;

fn dev(n: u8) -> DeviceId {
    format!("dev_{n}").parse().unwrap()
}

/// Decides on the current aggregate, then applies the plan as a store would.
macro_rules! step {
    ($agg:ident, $plan:expr) => {{
        let plan = $plan.expect("plan");
        $agg.apply(&plan.mutations);
        plan.outcome
    }};
}

fn codes(d: &Denial) -> Vec<DenialCode> {
    d.reasons().iter().map(|r| r.code).collect()
}

fn feature(code: &str, quota: Option<i64>) -> (Feature, Option<i64>) {
    let f = Feature {
        id: format!("feat_{code}").parse().unwrap(),
        product_id: "prod_1".parse().unwrap(),
        code: code.parse().unwrap(),
        name: code.into(),
        metadata: Metadata::new(),
        created_at: t0(),
    };
    (f, quota)
}

fn assign(
    agg: &mut LicenseAggregate,
    (f, quota): (Feature, Option<i64>),
    extra: impl FnOnce(&mut FeatureAssignRequest),
) {
    let mut req = FeatureAssignRequest {
        feature_id: f.id.clone(),
        enabled: None,
        max_consumptions: quota,
        expires_at: None,
        metadata: None,
        allow_overages: None,
        max_overages: None,
        reset_period: None,
        allow_negative: None,
        floating_seats: None,
        floating_timeout_minutes: None,
    };
    extra(&mut req);
    let plan = lifecycle::assign_feature(agg, &f, &req, t0()).expect("assign");
    agg.apply(&plan.mutations);
}

fn consume_req(fp: &str, code: &str, amount: Option<i64>, event: &str) -> ConsumeRequest {
    ConsumeRequest {
        fingerprint: Some(fp.into()),
        feature_code: code.into(),
        amount,
        event_id: event.into(),
        ..Default::default()
    }
}

// ---- activation -------------------------------------------------------------------------

#[test]
fn activation_takes_a_seat_once_per_binding() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_activations = 2;
    let mut agg = aggregate(p);
    let a = step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    assert_eq!(a.device_id, dev(1));
    assert_eq!(agg.license.active_device_count, 1);
    // Same binding again: same device, no new seat, no event.
    let plan = activation::activate(&agg, &hw("A"), dev(9), t0()).unwrap();
    assert!(plan.events.is_empty());
    assert_eq!(plan.outcome.device_id, dev(1));
    agg.apply(&plan.mutations);
    assert_eq!(agg.license.active_device_count, 1);
    step!(agg, activation::activate(&agg, &hw("B"), dev(2), t0()));
    let err = activation::activate(&agg, &hw("C"), dev(3), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::ActivationLimitReached]);
    assert_eq!(agg.license.times_activated, 2);
}

#[test]
fn deactivation_frees_the_seat_and_reactivation_reuses_the_device() {
    let mut agg = aggregate(policy(LicenseType::Perpetual));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let d = step!(agg, activation::deactivate(&agg, &hw("A"), t0()));
    assert_eq!(d.device_id, dev(1));
    assert_eq!(agg.license.active_device_count, 0);
    let err = activation::deactivate(&agg, &hw("A"), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::DeviceNotActivated]);
    step!(agg, activation::activate(&agg, &hw("B"), dev(2), t0()));
    step!(agg, activation::deactivate(&agg, &hw("B"), t0()));
    let again = step!(agg, activation::activate(&agg, &hw("A"), dev(3), t0()));
    assert_eq!(
        again.device_id,
        dev(1),
        "a returning binding keeps its device id"
    );
}

#[test]
fn blacklisted_bindings_are_refused_forever() {
    let mut agg = aggregate(policy(LicenseType::Perpetual));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let d = step!(agg, activation::blacklist_device(&agg, &dev(1), t0()));
    assert_eq!(d.status, DeviceStatus::Blacklisted);
    assert_eq!(agg.license.active_device_count, 0);
    for later in [t0(), t0() + Duration::days(400)] {
        let err = activation::activate(&agg, &hw("A"), dev(2), later).unwrap_err();
        assert!(err.has(DenialCode::DeviceBlacklisted));
        let err = activation::validate(&agg, &hw("A"), later).unwrap_err();
        assert_eq!(codes(&err), vec![DenialCode::DeviceBlacklisted]);
    }
    // Resetting a blacklisted device does not lift the blacklist.
    step!(agg, activation::reset_device(&agg, &dev(1), t0()));
    assert!(activation::activate(&agg, &hw("A"), dev(2), t0()).is_err());
}

#[test]
fn admin_reset_frees_the_seat() {
    let mut agg = aggregate(policy(LicenseType::Perpetual));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let d = step!(agg, activation::reset_device(&agg, &dev(1), t0()));
    assert_eq!(d.status, DeviceStatus::Reset);
    assert_eq!(agg.license.active_device_count, 0);
    step!(agg, activation::activate(&agg, &hw("B"), dev(2), t0()));
    let err = activation::reset_device(&agg, &dev(7), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::DeviceNotFound]);
}

#[test]
fn vm_and_container_rules_and_container_limit() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_activations = 5;
    p.max_container_instances = Some(1);
    let mut agg = aggregate(p);
    let pod = |name: &str| RuntimeBindingRequest {
        is_container: true,
        namespace: Some("prod".into()),
        pod_name: Some(name.into()),
        ..Default::default()
    };
    step!(agg, activation::activate(&agg, &pod("a"), dev(1), t0()));
    let err = activation::activate(&agg, &pod("b"), dev(2), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::ContainerLimitReached]);
    // Hardware seats are still free.
    step!(agg, activation::activate(&agg, &hw("A"), dev(3), t0()));

    agg.policy.allow_vm = false;
    agg.policy.allow_container = false;
    let vm = RuntimeBindingRequest {
        is_vm: true,
        ..hw("V")
    };
    assert_eq!(
        codes(&activation::activate(&agg, &vm, dev(4), t0()).unwrap_err()),
        vec![DenialCode::VmNotAllowed]
    );
    let err = activation::activate(&agg, &pod("c"), dev(5), t0()).unwrap_err();
    assert!(err.has(DenialCode::ContainerNotAllowed));
    // An existing container device fails validation once containers are forbidden.
    assert!(
        activation::validate(&agg, &pod("a"), t0())
            .unwrap_err()
            .has(DenialCode::ContainerNotAllowed)
    );
}

#[test]
fn every_failing_rule_is_reported() {
    let mut p = policy(LicenseType::TimeLimited);
    p.allow_vm = false;
    p.max_activations = 0;
    let mut agg = aggregate(p);
    agg.license.status = LicenseStatus::Suspended;
    agg.versions = VersionCatalogView {
        has_catalog: true,
        entry: None,
    };
    let req = RuntimeBindingRequest {
        is_vm: true,
        app_version: Some("2.0.0".into()),
        ..hw("A")
    };
    let err = activation::activate(&agg, &req, dev(1), t0()).unwrap_err();
    assert_eq!(
        codes(&err),
        vec![
            DenialCode::LicenseSuspended,
            DenialCode::VmNotAllowed,
            DenialCode::VersionUnknown
        ]
    );
    let bad = RuntimeBindingRequest {
        app_version: Some("x".into()),
        ..Default::default()
    };
    let err = activation::activate(&agg, &bad, dev(1), t0()).unwrap_err();
    assert_eq!(err.primary().code.kind(), DenialKind::Invalid);
    assert!(err.has(DenialCode::FingerprintRequired) && err.has(DenialCode::InvalidAppVersion));
}

#[test]
fn check_of_one_feature_reports_only_it() {
    let mut agg = aggregate(policy(LicenseType::Perpetual));
    assign(&mut agg, feature("api", Some(5)), |_| {});
    assign(&mut agg, feature("free", None), |_| {});
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let all = activation::check(&agg, &hw("A"), None, t0())
        .unwrap()
        .outcome;
    assert_eq!(all.features.len(), 2);
    let one = activation::check(&agg, &hw("A"), Some("api"), t0())
        .unwrap()
        .outcome;
    assert_eq!(one.features.len(), 1);
    assert_eq!(
        (one.features[0].code.as_str(), one.features[0].quota),
        ("api", Some(5))
    );
    let err = activation::check(&agg, &hw("A"), Some("nope"), t0()).unwrap_err();
    assert_eq!(codes(&err), [DenialCode::FeatureNotAssigned]);
    // A device that is not activated says so, whatever feature it asks for.
    let err = activation::check(&agg, &hw("B"), Some("nope"), t0()).unwrap_err();
    assert!(!err.has(DenialCode::FeatureNotAssigned));
}

#[test]
fn validate_returns_its_touch_and_check_leaves_none() {
    let mut agg = aggregate(policy(LicenseType::Perpetual));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let later = t0() + Duration::minutes(5);
    let read = activation::check(&agg, &hw("A"), None, later).unwrap();
    assert!(read.touch.is_none(), "check leaves no trace");
    assert_eq!(read.outcome.issued_at, Timestamp::new(later));
    let read = activation::validate(&agg, &hw("A"), later).unwrap();
    assert_eq!(
        read.outcome.next_check_at,
        Timestamp::new(later + Duration::minutes(60))
    );
    let touch = read.touch.expect("validate records the validation");
    assert_eq!((touch.kind, touch.at), (TouchKind::Validated, later));
    assert_eq!(touch.device_id, agg.devices[0].id);
    assert_eq!(touch.event.event_type, "license.validated");
    touch.apply_to_device(&mut agg.devices[0]);
    touch.apply_to_license(&mut agg.license);
    assert_eq!(agg.devices[0].last_validated_at, Some(later));
    assert_eq!(agg.devices[0].last_seen_at, later);
    assert_eq!(agg.license.last_validated_at, Some(later));
    let earlier = Touch {
        at: t0(),
        ..touch.clone()
    };
    earlier.apply_to_device(&mut agg.devices[0]);
    earlier.apply_to_license(&mut agg.license);
    assert_eq!(
        (
            agg.devices[0].last_validated_at,
            agg.license.last_validated_at
        ),
        (Some(later), Some(later)),
        "a touch never moves a timestamp back"
    );
    let err = activation::check(&agg, &hw("B"), None, later).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::DeviceNotActivated]);
}

#[test]
fn next_check_never_passes_the_end_of_validity() {
    let mut p = policy(LicenseType::TimeLimited);
    p.grace_period_days = 1;
    p.validation_interval_minutes = 24 * 60;
    let mut agg = aggregate(p);
    agg.license.expires_at = Some(t0() + Duration::hours(2));
    let data = step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    assert_eq!(data.next_check_at, Timestamp::new(t0() + Duration::days(1)));
    assert_eq!(data.status, LicenseStatus::Active);
    let grace = activation::check(&agg, &hw("A"), None, t0() + Duration::hours(3))
        .unwrap()
        .outcome;
    assert_eq!(grace.status, LicenseStatus::GracePeriod);
    assert_eq!(
        grace.next_check_at,
        Timestamp::new(t0() + Duration::hours(26))
    );
}

// ---- floating ---------------------------------------------------------------------------

fn new_lease(n: u8) -> floating::NewLease {
    floating::NewLease {
        lease_id: format!("lease_{n}").parse().unwrap(),
        device_id: dev(100 + n),
        token: format!("lft_token{n}"),
        token_hash: SecretHash::from_bytes([n; 32]),
    }
}

#[test]
fn floating_pool_holds_its_limit_and_frees_slots_at_expiry() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = Some(2);
    p.floating_timeout_minutes = 10;
    p.max_activations = 0; // checkout needs no activation seat
    let mut agg = aggregate(p);
    let a = step!(
        agg,
        floating::checkout(&agg, &hw("A"), None, new_lease(1), t0())
    );
    assert_eq!(
        a.lease_expires_at,
        Timestamp::new(t0() + Duration::minutes(10))
    );
    step!(
        agg,
        floating::checkout(&agg, &hw("B"), None, new_lease(2), t0())
    );
    let err = floating::checkout(&agg, &hw("C"), None, new_lease(3), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::FloatingPoolExhausted]);
    // At the timeout both leases are gone without any job.
    let later = t0() + Duration::minutes(10);
    step!(
        agg,
        floating::checkout(&agg, &hw("C"), None, new_lease(3), later)
    );
    assert_eq!(agg.live_leases(later).count(), 1);
}

#[test]
fn same_binding_checkout_replaces_its_lease() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = Some(1);
    let mut agg = aggregate(p);
    let first = step!(
        agg,
        floating::checkout(&agg, &hw("A"), None, new_lease(1), t0())
    );
    let second = step!(
        agg,
        floating::checkout(&agg, &hw("A"), None, new_lease(2), t0())
    );
    assert_eq!(first.device_id, second.device_id);
    assert_eq!(agg.live_leases(t0()).count(), 1);
    assert!(
        floating::heartbeat(&agg, &SecretHash::from_bytes([1; 32]), None, t0()).is_err(),
        "the old token is dead"
    );
}

#[test]
fn heartbeat_extends_and_checkin_frees() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = Some(1);
    p.floating_timeout_minutes = 10;
    let mut agg = aggregate(p);
    step!(
        agg,
        floating::checkout(&agg, &hw("A"), None, new_lease(1), t0())
    );
    let t = t0() + Duration::minutes(9);
    let hb = step!(
        agg,
        floating::heartbeat(&agg, &SecretHash::from_bytes([1; 32]), None, t)
    );
    assert_eq!(
        hb.lease_expires_at,
        Timestamp::new(t + Duration::minutes(10))
    );
    assert!(hb.features.is_some());
    let t2 = t + Duration::minutes(9);
    assert!(agg.live_leases(t2).count() == 1);
    let ci = step!(
        agg,
        floating::checkin(&agg, &SecretHash::from_bytes([1; 32]), None, t2)
    );
    assert_eq!(ci.lease_expires_at, Timestamp::new(t2));
    assert_eq!(agg.live_leases(t2).count(), 0);
    let err = floating::checkin(&agg, &SecretHash::from_bytes([1; 32]), None, t2).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::LeaseNotFound]);
}

#[test]
fn require_heartbeat_decides_whether_a_timed_out_lease_can_come_back() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = Some(1);
    p.floating_timeout_minutes = 10;
    let mut strict = aggregate(p.clone());
    step!(
        strict,
        floating::checkout(&strict, &hw("A"), None, new_lease(1), t0())
    );
    let late = t0() + Duration::minutes(11);
    let err =
        floating::heartbeat(&strict, &SecretHash::from_bytes([1; 32]), None, late).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::LeaseExpired]);

    p.require_heartbeat = false;
    let mut lenient = aggregate(p);
    step!(
        lenient,
        floating::checkout(&lenient, &hw("A"), None, new_lease(1), t0())
    );
    let hb = step!(
        lenient,
        floating::heartbeat(&lenient, &SecretHash::from_bytes([1; 32]), None, late)
    );
    assert_eq!(
        hb.lease_expires_at,
        Timestamp::new(late + Duration::minutes(10))
    );
    // Unless someone else took the slot meanwhile.
    let mut p2 = lenient.policy.clone();
    p2.require_heartbeat = false;
    let mut taken = aggregate(p2);
    step!(
        taken,
        floating::checkout(&taken, &hw("A"), None, new_lease(1), t0())
    );
    step!(
        taken,
        floating::checkout(&taken, &hw("B"), None, new_lease(2), late)
    );
    assert!(floating::heartbeat(&taken, &SecretHash::from_bytes([1; 32]), None, late).is_err());
}

#[test]
fn non_floating_policies_refuse_checkout() {
    let agg = aggregate(policy(LicenseType::Perpetual));
    let err = floating::checkout(&agg, &hw("A"), None, new_lease(1), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::FloatingNotEnabled]);
}

// ---- metering ---------------------------------------------------------------------------

#[test]
fn consume_counts_against_the_quota_and_replays_count_once() {
    let mut agg = aggregate(policy(LicenseType::Consumption));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    assign(&mut agg, feature("api", Some(5)), |_| {});
    let d = step!(
        agg,
        metering::consume(&agg, &consume_req("A", "api", Some(3), "e1"), t0())
    );
    assert_eq!(d.features[0].remaining, Some(2));
    // Replay: same outcome, no second count.
    let replay = metering::consume(&agg, &consume_req("A", "api", Some(3), "e1"), t0()).unwrap();
    assert!(replay.is_read_only());
    assert_eq!(replay.outcome.features[0].consumed, Some(3));
    // Same event, other amount: conflict.
    let err = metering::consume(&agg, &consume_req("A", "api", Some(1), "e1"), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::EventIdConflict]);
    let err = metering::consume(&agg, &consume_req("A", "api", Some(3), "e2"), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::QuotaExceeded]);
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "api", None, "e3"), t0())
    );
    assert_eq!(agg.license.total_consumptions, 4);
}

#[test]
fn consume_refusals() {
    let mut agg = aggregate(policy(LicenseType::Consumption));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    assign(&mut agg, feature("off", Some(5)), |r| {
        r.enabled = Some(false)
    });
    assign(&mut agg, feature("old", Some(5)), |r| {
        r.expires_at = Some(t0())
    });
    let c = |code: &str, amount, fp: &str| {
        metering::consume(&agg, &consume_req(fp, code, amount, "e"), t0())
    };
    assert_eq!(
        codes(&c("nope", None, "A").unwrap_err()),
        vec![DenialCode::FeatureNotEntitled]
    );
    assert_eq!(
        codes(&c("off", None, "A").unwrap_err()),
        vec![DenialCode::FeatureDisabled]
    );
    assert_eq!(
        codes(&c("old", None, "A").unwrap_err()),
        vec![DenialCode::FeatureExpired]
    );
    assert_eq!(
        codes(&c("off", Some(0), "A").unwrap_err()),
        vec![DenialCode::InvalidAmount, DenialCode::FeatureDisabled]
    );
    assert_eq!(
        codes(&c("bad code", None, "A").unwrap_err()),
        vec![DenialCode::InvalidFeatureCode]
    );
    assert_eq!(
        codes(&c("nope", None, "Z").unwrap_err()),
        vec![
            DenialCode::DeviceNotActivated,
            DenialCode::FeatureNotEntitled
        ]
    );
    let mut empty_event = consume_req("A", "off", None, "");
    empty_event.event_id.clear();
    assert!(
        metering::consume(&agg, &empty_event, t0())
            .unwrap_err()
            .has(DenialCode::InvalidEventId)
    );
}

#[test]
fn overages_unlimited_negative_and_periodic_reset() {
    let mut agg = aggregate(policy(LicenseType::Consumption));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    assign(&mut agg, feature("over", Some(2)), |r| {
        r.allow_overages = Some(true);
        r.max_overages = Some(1);
    });
    assign(&mut agg, feature("free", None), |_| {});
    assign(&mut agg, feature("day", Some(1)), |r| {
        r.reset_period = Some(ResetPeriod::Day);
        r.allow_negative = Some(true);
    });
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "over", Some(3), "o1"), t0())
    );
    assert!(
        metering::consume(&agg, &consume_req("A", "over", Some(1), "o2"), t0())
            .unwrap_err()
            .has(DenialCode::QuotaExceeded)
    );
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "free", Some(1_000_000), "f1"), t0())
    );
    let d = step!(
        agg,
        metering::consume(&agg, &consume_req("A", "day", Some(1), "d1"), t0())
    );
    let day = d
        .features
        .iter()
        .find(|f| f.code.as_str() == "day")
        .unwrap();
    assert_eq!((day.consumed, day.remaining), (Some(1), Some(0)));
    // Credits back, but never below zero, and never where not allowed.
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "day", Some(-1), "d2"), t0())
    );
    assert!(
        metering::consume(&agg, &consume_req("A", "day", Some(-1), "d3"), t0())
            .unwrap_err()
            .has(DenialCode::InvalidAmount)
    );
    assert!(
        metering::consume(&agg, &consume_req("A", "over", Some(-1), "o3"), t0())
            .unwrap_err()
            .has(DenialCode::InvalidAmount)
    );
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "day", Some(1), "d4"), t0())
    );
    assert!(metering::consume(&agg, &consume_req("A", "day", Some(1), "d5"), t0()).is_err());
    // Next UTC day: the counter starts again.
    let tomorrow = t0() + Duration::hours(14);
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "day", Some(1), "d5"), tomorrow)
    );
}

#[test]
fn period_boundaries_are_utc() {
    use chrono::TimeZone;
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 26, 15, 30, 0)
        .unwrap(); // a Thursday
    let start = |p| metering::period_start(p, at).unwrap().to_rfc3339();
    assert_eq!(start(ResetPeriod::Day), "2026-11-26T00:00:00+00:00");
    assert_eq!(start(ResetPeriod::Week), "2026-11-23T00:00:00+00:00");
    assert_eq!(start(ResetPeriod::Month), "2026-11-01T00:00:00+00:00");
    assert_eq!(start(ResetPeriod::Year), "2026-01-01T00:00:00+00:00");
    assert_eq!(metering::period_start(ResetPeriod::Never, at), None);
}

#[test]
fn usage_reset_follows_the_contract() {
    let mut agg = aggregate(policy(LicenseType::Consumption));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    assign(&mut agg, feature("api", Some(5)), |_| {});
    step!(
        agg,
        metering::consume(&agg, &consume_req("A", "api", Some(5), "e1"), t0())
    );
    let by_code = |r: UsageResetRequest| UsageResetRequest {
        feature_code: Some("api".into()),
        ..r
    };
    let v = agg.license.entitlement_version;
    let out = step!(
        agg,
        metering::reset_usage(
            &agg,
            &by_code(UsageResetRequest {
                add_credits: Some(3),
                ..Default::default()
            }),
            t0()
        )
    );
    assert_eq!((out.max_consumptions, out.remaining), (Some(8), Some(3)));
    assert_eq!(agg.license.entitlement_version, v + 1);
    let out = step!(
        agg,
        metering::reset_usage(
            &agg,
            &by_code(UsageResetRequest {
                reset_consumed: true,
                ..Default::default()
            }),
            t0()
        )
    );
    assert_eq!(out.total_consumptions, 0);
    let out = step!(
        agg,
        metering::reset_usage(
            &agg,
            &by_code(UsageResetRequest {
                max_consumptions: Some(1),
                total_consumptions: Some(1),
                ..Default::default()
            }),
            t0()
        )
    );
    assert_eq!(out.remaining, Some(0));
    for bad in [
        UsageResetRequest {
            feature_code: Some("api".into()),
            ..Default::default()
        },
        UsageResetRequest {
            reset_consumed: true,
            ..Default::default()
        },
        UsageResetRequest {
            feature_id: Some("feat_api".into()),
            feature_code: Some("api".into()),
            reset_consumed: true,
            ..Default::default()
        },
        by_code(UsageResetRequest {
            reset_consumed: true,
            total_consumptions: Some(1),
            ..Default::default()
        }),
        by_code(UsageResetRequest {
            add_credits: Some(0),
            ..Default::default()
        }),
    ] {
        assert!(
            metering::reset_usage(&agg, &bad, t0())
                .unwrap_err()
                .has(DenialCode::UsageResetInvalid),
            "{bad:?}"
        );
    }
}

// ---- version ----------------------------------------------------------------------------

#[test]
fn activation_reports_version_eligibility() {
    let mut agg = aggregate(policy(LicenseType::TimeLimited));
    let req = RuntimeBindingRequest {
        app_version: Some("1.2.0".into()),
        ..hw("A")
    };
    let d = activation::activate(&agg, &req, dev(1), t0())
        .unwrap()
        .outcome;
    let v = d.version_eligibility.unwrap();
    assert!(v.is_entitled && !v.enforced);
    agg.versions = VersionCatalogView {
        has_catalog: true,
        entry: Some(product_version("1.2.0", t0() + Duration::days(31))),
    };
    let err = activation::activate(&agg, &req, dev(1), t0()).unwrap_err();
    assert_eq!(codes(&err), vec![DenialCode::VersionNotEntitled]);
}

// ---- lifecycle --------------------------------------------------------------------------

#[test]
fn renew_extends_from_expiry_while_active_else_from_now() {
    let mut agg = aggregate(policy(LicenseType::Subscription));
    let expiry = agg.license.expires_at.unwrap();
    let ext = RenewRequest {
        extend_by_days: Some(10),
        ..Default::default()
    };
    let l = step!(agg, lifecycle::renew(&agg, &ext, t0()));
    assert_eq!(l.expires_at, Some(expiry + Duration::days(10)));
    assert_eq!(l.entitlement_version, 2);
    let late = expiry + Duration::days(100);
    let l = step!(agg, lifecycle::renew(&agg, &ext, late));
    assert_eq!(l.expires_at, Some(late + Duration::days(10)));
    let both = RenewRequest {
        extend_by_days: Some(1),
        expires_at: Some(late),
        ..Default::default()
    };
    assert!(
        lifecycle::renew(&agg, &both, t0())
            .unwrap_err()
            .has(DenialCode::RenewFieldsInvalid)
    );
    assert!(lifecycle::renew(&agg, &RenewRequest::default(), t0()).is_err());
    let zero = RenewRequest {
        extend_by_days: Some(0),
        ..Default::default()
    };
    assert!(lifecycle::renew(&agg, &zero, t0()).is_err());
    let perpetual = aggregate(policy(LicenseType::Perpetual));
    assert!(
        lifecycle::renew(&perpetual, &ext, t0())
            .unwrap_err()
            .has(DenialCode::NotRenewable)
    );
}

#[test]
fn suspend_reinstate_revoke() {
    let mut agg = aggregate(policy(LicenseType::Perpetual));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    step!(agg, lifecycle::suspend(&agg, t0()));
    assert!(lifecycle::suspend(&agg, t0()).unwrap().is_read_only());
    assert!(
        activation::validate(&agg, &hw("A"), t0())
            .unwrap_err()
            .has(DenialCode::LicenseSuspended)
    );
    step!(agg, lifecycle::reinstate(&agg, t0()));
    assert!(activation::validate(&agg, &hw("A"), t0()).is_ok());
    assert_eq!(agg.license.entitlement_version, 3);
    step!(agg, lifecycle::revoke(&agg, t0()));
    assert_eq!(agg.license.active_device_count, 0);
    assert_eq!(agg.active_devices().count(), 0);
    assert!(
        lifecycle::reinstate(&agg, t0())
            .unwrap_err()
            .has(DenialCode::LicenseRevokedImmutable)
    );
    assert!(
        activation::activate(&agg, &hw("A"), dev(2), t0())
            .unwrap_err()
            .has(DenialCode::LicenseRevoked)
    );
}

#[test]
fn transfer_is_limited_and_can_reset_devices() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_transfers = 1;
    let mut agg = aggregate(p);
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let req = TransferRequest {
        customer_email: Some("new@example.com".into()),
        reset_devices: true,
        ..Default::default()
    };
    let l = step!(agg, lifecycle::transfer(&agg, &req, None, t0()));
    assert_eq!(l.customer_email.as_deref(), Some("new@example.com"));
    assert_eq!((l.times_transferred, l.active_device_count), (1, 0));
    assert_eq!(agg.active_devices().count(), 0);
    assert!(
        lifecycle::transfer(&agg, &req, None, t0())
            .unwrap_err()
            .has(DenialCode::TransferLimitReached)
    );
    assert!(
        lifecycle::transfer(&agg, &TransferRequest::default(), None, t0())
            .unwrap_err()
            .has(DenialCode::TransferEmpty)
    );
}

#[test]
fn offline_needs_the_policy_and_an_activated_device() {
    let mut agg = aggregate(policy(LicenseType::TimeLimited));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let o = offline::offline(&agg, &hw("A"), t0()).unwrap().outcome;
    assert_eq!(
        o.offline_expires_at,
        Timestamp::new(t0() + Duration::days(7))
    );
    assert_eq!(o.binding_sha256, offline::binding_sha256("A"));
    assert_eq!(o.binding_sha256.len(), 64);
    agg.policy.allow_offline_activation = false;
    let err = offline::offline(&agg, &hw("B"), t0()).unwrap_err();
    assert_eq!(
        codes(&err),
        vec![
            DenialCode::DeviceNotActivated,
            DenialCode::OfflineNotAllowed
        ]
    );
}

#[test]
fn policy_defaults_and_ranges() {
    let p = policy(LicenseType::Perpetual);
    assert_eq!(
        (
            p.max_activations,
            p.floating_timeout_minutes,
            p.validation_interval_minutes,
            p.max_transfers
        ),
        (1, 30, 60, 3)
    );
    assert!(p.allow_vm && p.allow_container && p.require_heartbeat && p.allow_offline_activation);
    let bad = PolicyDraft {
        max_activations: Some(-1),
        floating_timeout_minutes: Some(0),
        ..Default::default()
    };
    let err = policy::build(
        "pol_2".parse().unwrap(),
        "prod_1".parse().unwrap(),
        None,
        &bad,
        t0(),
    )
    .unwrap_err();
    let fields: Vec<_> = err.reasons().iter().filter_map(|r| r.field).collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "code",
            "license_type",
            "max_activations",
            "floating_timeout_minutes"
        ]
    );
    let upd = PolicyDraft {
        max_activations: Some(9),
        ..Default::default()
    };
    let q = policy::build(p.id.clone(), p.product_id.clone(), Some(&p), &upd, t0()).unwrap();
    assert_eq!((q.max_activations, q.code.as_str()), (9, "std"));
}

// ---- device heartbeats ------------------------------------------------------------------

fn heartbeat_policy(minutes: u32, grace: u32) -> Policy {
    let mut p = policy(LicenseType::Perpetual);
    p.max_activations = 2;
    p.device_heartbeat_minutes = Some(minutes);
    p.device_heartbeat_grace_minutes = grace;
    p
}

#[test]
fn a_heartbeat_moves_last_seen_and_says_when_the_next_is_due() {
    let mut agg = aggregate(heartbeat_policy(10, 5));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let at = t0() + Duration::minutes(7);
    let plan = device_heartbeat::heartbeat(&agg, &hw("A"), at).expect("an active device");
    assert!(
        plan.events.is_empty(),
        "a heartbeat is bookkeeping, not an event"
    );
    let data = step!(agg, Ok::<_, Denial>(plan));
    assert_eq!(data.device_id, dev(1));
    assert_eq!(
        data.next_heartbeat_at,
        Some(Timestamp::new(at + Duration::minutes(10)))
    );
    assert_eq!(
        data.release_at,
        Some(Timestamp::new(at + Duration::minutes(15)))
    );
    assert_eq!(agg.devices[0].last_seen_at, at);

    // Without a heartbeat policy the call is accepted and names no due time.
    let mut plain = aggregate(policy(LicenseType::Perpetual));
    step!(plain, activation::activate(&plain, &hw("A"), dev(1), t0()));
    let data = step!(plain, device_heartbeat::heartbeat(&plain, &hw("A"), at));
    assert_eq!((data.next_heartbeat_at, data.release_at), (None, None));
}

#[test]
fn a_heartbeat_is_refused_like_a_validation() {
    let mut agg = aggregate(heartbeat_policy(10, 0));
    let never = device_heartbeat::heartbeat(&agg, &hw("A"), t0()).unwrap_err();
    assert_eq!(codes(&never), vec![DenialCode::DeviceNotActivated]);
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    step!(agg, lifecycle::suspend(&agg, t0()));
    let suspended = device_heartbeat::heartbeat(&agg, &hw("A"), t0()).unwrap_err();
    assert!(codes(&suspended).contains(&DenialCode::LicenseSuspended));
}

#[test]
fn silence_past_interval_grace_and_margin_releases_the_seat() {
    let margin = Duration::minutes(2);
    let mut agg = aggregate(heartbeat_policy(10, 5));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    step!(agg, activation::activate(&agg, &hw("B"), dev(2), t0()));
    // B keeps beating; A falls silent after t0.
    let b_beat = t0() + Duration::minutes(10);
    step!(agg, device_heartbeat::heartbeat(&agg, &hw("B"), b_beat));

    // release_at(A) = t0 + 15 min; with the margin, released only after t0 + 17 min.
    let edge = t0() + Duration::minutes(17);
    let p = agg.policy.clone();
    assert!(!device_heartbeat::is_silent(
        &p,
        &agg.devices[0],
        margin,
        edge
    ));
    let none = device_heartbeat::release_silent(&agg, margin, edge);
    assert!(none.is_read_only() && none.outcome.is_empty(), "not yet");

    let later = edge + Duration::seconds(1);
    let plan = device_heartbeat::release_silent(&agg, margin, later);
    assert_eq!(plan.outcome.len(), 1);
    assert_eq!(plan.outcome[0].id, dev(1));
    assert_eq!(plan.outcome[0].status, DeviceStatus::Expired);
    assert_eq!(plan.events.len(), 1);
    let e = &plan.events[0];
    assert_eq!(
        (e.event_type, e.resource_id.as_str()),
        ("device.released", "dev_1")
    );
    assert_eq!(e.metadata["reason"], "heartbeat_missed");
    assert_eq!(e.metadata["previous_status"], "active");
    step!(agg, Ok::<_, Denial>(plan));
    assert_eq!(agg.license.active_device_count, 1, "only A's seat is freed");
    assert!(
        device_heartbeat::release_silent(&agg, margin, later).is_read_only(),
        "deciding again releases nothing: a second sweep is a no-op"
    );

    // A comes back: it activates again, with its old device id.
    let back = step!(agg, activation::activate(&agg, &hw("A"), dev(9), later));
    assert_eq!(back.device_id, dev(1));
    assert_eq!(agg.license.active_device_count, 2);
}

#[test]
fn several_silent_devices_go_in_one_plan_and_policies_without_heartbeats_never_release() {
    let mut agg = aggregate(heartbeat_policy(1, 0));
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    step!(agg, activation::activate(&agg, &hw("B"), dev(2), t0()));
    let much_later = t0() + Duration::days(30);
    let plan = device_heartbeat::release_silent(&agg, Duration::zero(), much_later);
    assert_eq!(plan.outcome.len(), 2);
    step!(agg, Ok::<_, Denial>(plan));
    assert_eq!(agg.license.active_device_count, 0);

    let mut plain = aggregate(policy(LicenseType::Perpetual));
    step!(plain, activation::activate(&plain, &hw("A"), dev(1), t0()));
    assert!(device_heartbeat::release_silent(&plain, Duration::zero(), much_later).is_read_only());
}

#[test]
fn heartbeat_policy_fields_are_validated_and_zero_turns_them_off() {
    let draft = PolicyDraft {
        name: Some("hb".into()),
        code: Some("hb".into()),
        license_type: Some(LicenseType::Perpetual),
        device_heartbeat_minutes: Some(30),
        device_heartbeat_grace_minutes: Some(10),
        ..PolicyDraft::default()
    };
    let id: PolicyId = "pol_hb".parse().unwrap();
    let product: ProductId = "prod_1".parse().unwrap();
    let p = policy::build(id.clone(), product.clone(), None, &draft, t0()).unwrap();
    assert_eq!(
        (p.device_heartbeat_minutes, p.device_heartbeat_grace_minutes),
        (Some(30), 10)
    );
    let keep = PolicyDraft::default();
    let kept = policy::build(id.clone(), product.clone(), Some(&p), &keep, t0()).unwrap();
    assert_eq!(kept.device_heartbeat_minutes, Some(30), "absent keeps it");
    let off = PolicyDraft {
        device_heartbeat_minutes: Some(0),
        ..PolicyDraft::default()
    };
    let off = policy::build(id.clone(), product.clone(), Some(&p), &off, t0()).unwrap();
    assert_eq!(off.device_heartbeat_minutes, None, "0 turns heartbeats off");
    let bad = PolicyDraft {
        device_heartbeat_minutes: Some(-1),
        device_heartbeat_grace_minutes: Some(525_601),
        ..PolicyDraft::default()
    };
    let refused = policy::build(id, product, Some(&p), &bad, t0()).unwrap_err();
    let fields: Vec<_> = refused.reasons().iter().map(|r| r.field).collect();
    assert_eq!(
        fields,
        vec![
            Some("device_heartbeat_minutes"),
            Some("device_heartbeat_grace_minutes")
        ]
    );
}

// ---- per-feature floating ---------------------------------------------------------------

/// A license without a pool of its own, with `render` floating over 2 seats (15 minutes).
fn feature_pool() -> LicenseAggregate {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = None;
    p.floating_timeout_minutes = 30;
    let mut agg = aggregate(p);
    assign(&mut agg, feature("render", None), |r| {
        r.floating_seats = Some(2);
        r.floating_timeout_minutes = Some(15);
    });
    assign(&mut agg, feature("export", None), |_| {});
    agg
}

fn pool_of(data: &[FeatureEntitlement], code: &str) -> Option<FloatingOccupancy> {
    data.iter().find(|f| f.code.as_str() == code)?.floating
}

#[test]
fn a_feature_pool_holds_its_limit_apart_from_the_license_pool() {
    let mut agg = feature_pool();
    let a = step!(
        agg,
        floating::checkout(&agg, &hw("A"), Some("render"), new_lease(1), t0())
    );
    assert_eq!(
        a.lease_expires_at,
        Timestamp::new(t0() + Duration::minutes(15)),
        "the feature's own timeout"
    );
    assert_eq!(
        pool_of(&a.features, "render"),
        Some(FloatingOccupancy {
            seats: 2,
            in_use: 1
        }),
        "the answer counts the lease it made"
    );
    assert_eq!(pool_of(&a.features, "export"), None, "not floating");
    step!(
        agg,
        floating::checkout(&agg, &hw("B"), Some("render"), new_lease(2), t0())
    );
    let full = floating::checkout(&agg, &hw("C"), Some("render"), new_lease(3), t0()).unwrap_err();
    assert_eq!(codes(&full), vec![DenialCode::FloatingPoolExhausted]);
    // The same binding again replaces its lease and takes no second slot.
    let again = step!(
        agg,
        floating::checkout(&agg, &hw("A"), Some("render"), new_lease(4), t0())
    );
    assert_eq!(pool_of(&again.features, "render").unwrap().in_use, 2);

    // The license's own pool is separate (and here not enabled); other features have none.
    let license_pool = floating::checkout(&agg, &hw("C"), None, new_lease(5), t0()).unwrap_err();
    assert_eq!(codes(&license_pool), vec![DenialCode::FloatingNotEnabled]);
    let not_floating =
        floating::checkout(&agg, &hw("C"), Some("export"), new_lease(5), t0()).unwrap_err();
    assert_eq!(codes(&not_floating), vec![DenialCode::FloatingNotEnabled]);
    let missing = floating::checkout(&agg, &hw("C"), Some("nope"), new_lease(5), t0()).unwrap_err();
    assert_eq!(codes(&missing), vec![DenialCode::FeatureNotAssigned]);

    // A check reports the pool; at the timeout the slots are free again.
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let seen = activation::check(&agg, &hw("A"), None, t0())
        .unwrap()
        .outcome;
    assert_eq!(
        pool_of(&seen.features, "render"),
        Some(FloatingOccupancy {
            seats: 2,
            in_use: 2
        })
    );
    let later = t0() + Duration::minutes(15);
    let seen = activation::check(&agg, &hw("A"), None, later)
        .unwrap()
        .outcome;
    assert_eq!(pool_of(&seen.features, "render").unwrap().in_use, 0);
    step!(
        agg,
        floating::checkout(&agg, &hw("C"), Some("render"), new_lease(6), later)
    );
}

#[test]
fn feature_leases_heartbeat_and_check_in_by_their_pool() {
    let mut agg = feature_pool();
    step!(
        agg,
        floating::checkout(&agg, &hw("A"), Some("render"), new_lease(1), t0())
    );
    let token = SecretHash::from_bytes([1; 32]);
    let later = t0() + Duration::minutes(10);
    let beat = step!(
        agg,
        floating::heartbeat(&agg, &token, Some("render"), later)
    );
    assert_eq!(
        beat.lease_expires_at,
        Timestamp::new(later + Duration::minutes(15)),
        "renewed by the feature's timeout"
    );
    assert_eq!(
        pool_of(beat.features.as_deref().unwrap(), "render")
            .unwrap()
            .in_use,
        1
    );
    // Naming another pool finds no lease.
    for other in [Some("export"), Some("nope")] {
        let wrong = floating::heartbeat(&agg, &token, other, later).unwrap_err();
        assert_eq!(codes(&wrong), vec![DenialCode::LeaseNotFound]);
    }
    step!(agg, floating::checkin(&agg, &token, Some("render"), later));
    let seen = aggregate_pool_in_use(&agg, later);
    assert_eq!(seen, 0, "checked in: the slot is free");
}

#[test]
fn a_pool_taken_away_ends_its_leases_heartbeats() {
    let mut agg = feature_pool();
    step!(
        agg,
        floating::checkout(&agg, &hw("A"), Some("render"), new_lease(1), t0())
    );
    assign(&mut agg, feature("render", None), |r| {
        r.floating_seats = Some(0)
    });
    let token = SecretHash::from_bytes([1; 32]);
    let refused = floating::heartbeat(&agg, &token, None, t0()).unwrap_err();
    assert_eq!(codes(&refused), vec![DenialCode::FloatingNotEnabled]);
    // Checking in is always allowed.
    step!(agg, floating::checkin(&agg, &token, None, t0()));
}

fn aggregate_pool_in_use(agg: &LicenseAggregate, now: chrono::DateTime<chrono::Utc>) -> usize {
    agg.live_leases(now)
        .filter(|l| {
            l.feature_code
                .as_ref()
                .is_some_and(|c| c.as_str() == "render")
        })
        .count()
}

// ---- floating borrow ----------------------------------------------------------------------

#[test]
fn a_borrowed_seat_holds_its_slot_until_the_borrow_ends() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = Some(1);
    p.floating_timeout_minutes = 10;
    p.max_borrow_hours = Some(48);
    let mut agg = aggregate(p);
    let b = step!(
        agg,
        floating::borrow(&agg, &hw("A"), None, 24, new_lease(1), t0())
    );
    let end = t0() + Duration::hours(24);
    assert_eq!(b.lease.lease_expires_at, Timestamp::new(end));
    assert_eq!(b.offline.offline_expires_at, Timestamp::new(end));
    assert_eq!(b.offline.binding_sha256, offline::binding_sha256("A"));
    assert_eq!(agg.leases[0].borrowed_until, Some(end));

    // Without any heartbeat the seat stays taken until the end, then frees itself.
    let full = floating::checkout(
        &agg,
        &hw("B"),
        None,
        new_lease(2),
        t0() + Duration::hours(23),
    )
    .unwrap_err();
    assert_eq!(codes(&full), vec![DenialCode::FloatingPoolExhausted]);
    step!(
        agg,
        floating::checkout(&agg, &hw("B"), None, new_lease(2), end)
    );

    // A heartbeat never shortens a borrow; returning it (a checkin) frees the seat early.
    let mut agg = aggregate(agg.policy.clone());
    step!(
        agg,
        floating::borrow(&agg, &hw("A"), None, 24, new_lease(3), t0())
    );
    let token = SecretHash::from_bytes([3; 32]);
    let beat = step!(
        agg,
        floating::heartbeat(&agg, &token, None, t0() + Duration::hours(1))
    );
    assert_eq!(beat.lease_expires_at, Timestamp::new(end));
    step!(
        agg,
        floating::checkin(&agg, &token, None, t0() + Duration::hours(2))
    );
    step!(
        agg,
        floating::checkout(
            &agg,
            &hw("B"),
            None,
            new_lease(4),
            t0() + Duration::hours(2)
        )
    );
}

#[test]
fn borrowing_is_refused_unless_the_policy_allows_that_long() {
    let mut p = policy(LicenseType::Perpetual);
    p.max_floating_users = Some(1);
    let agg = aggregate(p.clone());
    let off = floating::borrow(&agg, &hw("A"), None, 1, new_lease(1), t0()).unwrap_err();
    assert_eq!(codes(&off), vec![DenialCode::BorrowNotAllowed]);
    p.max_borrow_hours = Some(8);
    let agg = aggregate(p);
    for hours in [0, 9] {
        let bad = floating::borrow(&agg, &hw("A"), None, hours, new_lease(1), t0()).unwrap_err();
        assert_eq!(codes(&bad), vec![DenialCode::InvalidField], "{hours} h");
    }
    // A license that ends sooner ends the borrow with it.
    let mut agg = agg;
    agg.license.expires_at = Some(t0() + Duration::hours(3));
    agg.policy.license_type = LicenseType::TimeLimited;
    let b = floating::borrow(&agg, &hw("A"), None, 8, new_lease(2), t0()).unwrap();
    assert_eq!(
        b.outcome.lease.lease_expires_at,
        Timestamp::new(t0() + Duration::hours(3))
    );
}

#[test]
fn a_device_working_offline_is_not_released_before_its_offline_license_ends() {
    let mut p = heartbeat_policy(10, 0);
    p.allow_offline_activation = true;
    p.offline_grace_days = 2;
    let mut agg = aggregate(p);
    step!(agg, activation::activate(&agg, &hw("A"), dev(1), t0()));
    let read = offline::offline(&agg, &hw("A"), t0()).unwrap();
    read.touch
        .expect("an offline issue is noted")
        .apply_to_device(&mut agg.devices[0]);
    assert_eq!(agg.devices[0].offline_until, Some(t0() + Duration::days(2)));
    let margin = Duration::minutes(2);
    let policy = agg.policy.clone();
    assert!(!device_heartbeat::is_silent(
        &policy,
        &agg.devices[0],
        margin,
        t0() + Duration::days(1)
    ));
    assert!(device_heartbeat::is_silent(
        &policy,
        &agg.devices[0],
        margin,
        t0() + Duration::days(2) + margin + Duration::seconds(1)
    ));
    // Silence counts from the policy's last change at the earliest.
    let mut changed = policy.clone();
    changed.updated_at = t0() + Duration::days(3);
    assert!(!device_heartbeat::is_silent(
        &changed,
        &agg.devices[0],
        margin,
        t0() + Duration::days(3) + Duration::minutes(12)
    ));
}
