//! The rules stay true through the store as `now` moves: expiry and grace, trials, floating
//! lease timeouts and heartbeats, consumption periods, seats freed and bindings remembered,
//! lifecycle changes. No check sleeps: each passes a later `now` to the rules.

use chrono::{Duration, TimeZone, Utc};

use crate::model::{DeviceStatus, LicenseStatus, LicenseType, RenewRequest, ResetPeriod};
use crate::rules::{Denial, DenialCode, activation, device_heartbeat, lifecycle};
use crate::store::{Limit, Store};

use super::fixtures::{
    activate, at, by_id, checkin, checkout, consume, event_types_of, events_of_type, heartbeat,
    load, metered_feature, parse, run, seed, t0, validate,
};
use super::ok;

#[track_caller]
fn denied_with<T: std::fmt::Debug>(r: Result<T, Denial>, code: DenialCode, what: &str) {
    match r {
        Err(d) if d.has(code) => {}
        other => panic!("{what}: expected a denial with {code}, got {other:?}"),
    }
}

/// A time-limited license validates before expiry (`active`), during grace
/// (`grace_period`), and is refused with `LICENSE_EXPIRED` after; a renewal persists and makes
/// it valid again.
pub async fn expiry_and_grace_follow_now<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::TimeLimited, |p| {
        p.grace_period_days = 3;
    })
    .await;
    let id = &s.license.id;
    let expires = s.license.expires_at.expect("time-limited licenses expire");
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a fresh license activates");

    let before = validate(&store, id, "fp-1", expires - Duration::seconds(1))
        .await
        .expect("valid before expiry");
    assert_eq!(before.status, LicenseStatus::Active);
    let grace_at = expires + Duration::days(2);
    let grace = validate(&store, id, "fp-1", grace_at)
        .await
        .expect("usable during the grace period");
    assert_eq!(grace.status, LicenseStatus::GracePeriod);
    denied_with(
        validate(&store, id, "fp-1", expires + Duration::days(3)).await,
        DenialCode::LicenseExpired,
        "validate after the grace period",
    );
    let stored = ok(store.get_license(id).await, "get_license");
    assert_eq!(
        stored.last_validated_at,
        Some(grace_at),
        "the last successful validation is stored; the refused one wrote nothing"
    );
    assert_eq!(
        ok(store.get_device(id, &parse("dev_0001")).await, "get_device").last_validated_at,
        Some(grace_at)
    );
    assert_eq!(
        events_of_type(&store, "license.validated").await.len(),
        2,
        "one event per successful validation"
    );

    let renewed_at = expires + Duration::days(10);
    let req = RenewRequest {
        extend_by_days: Some(30),
        ..RenewRequest::default()
    };
    let renewed = run(&store, by_id(id), renewed_at, |agg| {
        lifecycle::renew(agg, &req, renewed_at)
    })
    .await
    .expect("an expired license can be renewed");
    assert_eq!(renewed.expires_at, Some(renewed_at + Duration::days(30)));
    assert_eq!(
        ok(store.get_license(id).await, "get_license").expires_at,
        renewed.expires_at,
        "the renewal is stored"
    );
    let again = validate(&store, id, "fp-1", renewed_at + Duration::days(1))
        .await
        .expect("valid again after renewal");
    assert_eq!(again.status, LicenseStatus::Active);
}

/// A trial ends exactly at `expires_at`: no grace period.
pub async fn trials_end_without_grace<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Trial, |p| p.grace_period_days = 3).await;
    let id = &s.license.id;
    let expires = s.license.expires_at.expect("trials expire");
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a fresh trial activates");
    validate(&store, id, "fp-1", expires - Duration::seconds(1))
        .await
        .expect("valid until the last second");
    denied_with(
        validate(&store, id, "fp-1", expires).await,
        DenialCode::LicenseExpired,
        "validate at a trial's expiry",
    );
    denied_with(
        activate(
            &store,
            id,
            "fp-2",
            parse("dev_0002"),
            expires + Duration::hours(1),
        )
        .await,
        DenialCode::LicenseExpired,
        "activate after a trial's expiry",
    );
}

/// A lease past its expiry holds no slot at a later `now`: another binding checks out with
/// no job having run; the timed-out lease's heartbeat is refused.
pub async fn floating_lease_timeout_frees_the_slot<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_floating_users = Some(1);
        p.floating_timeout_minutes = 30;
    })
    .await;
    let id = &s.license.id;
    let a = checkout(&store, id, "fp-a", 1, t0())
        .await
        .expect("the pool has a free slot");
    assert_eq!(a.lease_expires_at.get(), t0() + Duration::minutes(30));
    denied_with(
        checkout(&store, id, "fp-b", 2, t0() + Duration::minutes(10)).await,
        DenialCode::FloatingPoolExhausted,
        "checkout while the only lease is live",
    );
    checkout(&store, id, "fp-b", 2, t0() + Duration::minutes(30))
        .await
        .expect("a timed-out lease frees its slot without any job");
    denied_with(
        heartbeat(&store, id, 1, t0() + Duration::minutes(31)).await,
        DenialCode::LeaseExpired,
        "heartbeat of a timed-out lease",
    );
    checkin(&store, id, 2, t0() + Duration::minutes(35))
        .await
        .expect("checkin of a live lease");
    checkout(&store, id, "fp-c", 3, t0() + Duration::minutes(36))
        .await
        .expect("a checked-in lease frees its slot at once");
    let agg = load(&store, by_id(id)).await;
    assert_eq!(
        agg.live_leases(t0() + Duration::minutes(36)).count(),
        1,
        "exactly one live lease"
    );
}

/// Heartbeats extend a lease: it keeps its slot past the first timeout and frees it only
/// `floating_timeout_minutes` after the last heartbeat.
pub async fn heartbeats_keep_a_lease_alive<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_floating_users = Some(1);
        p.floating_timeout_minutes = 30;
    })
    .await;
    let id = &s.license.id;
    checkout(&store, id, "fp-a", 1, t0())
        .await
        .expect("the pool has a free slot");
    for minutes in [20, 40] {
        let beat = heartbeat(&store, id, 1, t0() + Duration::minutes(minutes))
            .await
            .expect("heartbeat of a live lease");
        assert_eq!(
            beat.lease_expires_at.get(),
            t0() + Duration::minutes(minutes + 30)
        );
    }
    denied_with(
        checkout(&store, id, "fp-b", 2, t0() + Duration::minutes(65)).await,
        DenialCode::FloatingPoolExhausted,
        "checkout while a heartbeated lease is live",
    );
    checkout(&store, id, "fp-b", 2, t0() + Duration::minutes(70))
        .await
        .expect("free once the last heartbeat's timeout passed");
    assert_eq!(
        event_types_of(&store, "lease_0001").await,
        [
            "floating.checked_out",
            "floating.heartbeat",
            "floating.heartbeat"
        ]
    );
}

/// A daily quota: used up today, refused for the rest of the day, available again from the
/// next UTC midnight; replays stay counted once.
pub async fn consumption_resumes_in_the_next_period<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Consumption, |_| {}).await;
    let id = &s.license.id;
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a fresh license activates");
    metered_feature(&store, &s, 1, "api.calls", Some(3), |r| {
        r.reset_period = Some(ResetPeriod::Day);
    })
    .await;
    for n in 1..=3 {
        consume(
            &store,
            id,
            "fp-1",
            "api.calls",
            1,
            &format!("evt-{n}"),
            t0() + Duration::hours(n),
        )
        .await
        .expect("within today's quota");
    }
    denied_with(
        consume(&store, id, "fp-1", "api.calls", 1, "evt-4", at(5 * 3600)).await,
        DenialCode::QuotaExceeded,
        "consume past today's quota",
    );
    let midnight = Utc
        .with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
        .single()
        .expect("a valid instant");
    denied_with(
        consume(
            &store,
            id,
            "fp-1",
            "api.calls",
            1,
            "evt-4",
            midnight - Duration::seconds(1),
        )
        .await,
        DenialCode::QuotaExceeded,
        "consume in the last second of the day",
    );
    let next = consume(&store, id, "fp-1", "api.calls", 1, "evt-4", midnight)
        .await
        .expect("the quota starts again at the next UTC midnight");
    assert_eq!(next.features[0].consumed, Some(1));
    let replay = consume(&store, id, "fp-1", "api.calls", 1, "evt-1", midnight)
        .await
        .expect("a replay of an earlier event_id is answered");
    assert_eq!(
        replay.features[0].consumed,
        Some(1),
        "a replay counts nothing"
    );
    let features = ok(
        store.list_license_features(id, Limit::default()).await,
        "list_license_features",
    );
    assert_eq!(features[0].total_consumptions, 1);
    assert_eq!(features[0].period_started_at, Some(midnight));
    assert_eq!(
        ok(store.get_license(id).await, "get_license").total_consumptions,
        4,
        "the license's lifetime total counts every consumption once"
    );
    assert_eq!(events_of_type(&store, "usage.consumed").await.len(), 4);
}

/// Deactivation frees a seat for another binding; the binding that comes back gets its old
/// device record (the store loads it by binding key), never a second one.
pub async fn deactivation_frees_the_seat_and_keeps_the_device<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    let id = &s.license.id;
    for (fp, dev) in [("fp-a", "dev_0001"), ("fp-b", "dev_0002")] {
        activate(&store, id, fp, parse(dev), t0())
            .await
            .expect("a free seat");
    }
    denied_with(
        activate(&store, id, "fp-c", parse("dev_0003"), at(60)).await,
        DenialCode::ActivationLimitReached,
        "a third activation on two seats",
    );
    super::fixtures::deactivate(&store, id, "fp-a", t0() + Duration::hours(1))
        .await
        .expect("fp-a is active");
    activate(
        &store,
        id,
        "fp-c",
        parse("dev_0003"),
        t0() + Duration::hours(2),
    )
    .await
    .expect("the freed seat is available");
    super::fixtures::deactivate(&store, id, "fp-c", t0() + Duration::hours(3))
        .await
        .expect("fp-c is active");
    let back = activate(
        &store,
        id,
        "fp-a",
        parse("dev_0099"),
        t0() + Duration::days(1),
    )
    .await
    .expect("a free seat");
    assert_eq!(
        back.device_id.as_str(),
        "dev_0001",
        "a returning binding keeps its device: the store loads devices with the query's binding key"
    );
    let devices = ok(
        store.list_devices(id, Limit::default()).await,
        "list_devices",
    );
    assert_eq!(devices.len(), 3, "no second record for a returning binding");
    assert_eq!(
        devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Active)
            .count(),
        2
    );
    let license = ok(store.get_license(id).await, "get_license");
    assert_eq!(license.active_device_count, 2);
    assert_eq!(license.times_activated, 4);
}

/// A blacklisted binding is refused forever (the store loads blacklisted devices), and its
/// seat is freed.
pub async fn blacklisted_bindings_stay_refused<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 1).await;
    let id = &s.license.id;
    activate(&store, id, "fp-a", parse("dev_0001"), t0())
        .await
        .expect("a free seat");
    let dev = parse("dev_0001");
    run(&store, by_id(id), at(60), |agg| {
        activation::blacklist_device(agg, &dev, at(60))
    })
    .await
    .expect("the device exists");
    for later in [at(61), t0() + Duration::days(400)] {
        denied_with(
            activate(&store, id, "fp-a", parse("dev_0002"), later).await,
            DenialCode::DeviceBlacklisted,
            "activate a blacklisted binding",
        );
    }
    activate(&store, id, "fp-b", parse("dev_0003"), at(62))
        .await
        .expect("the blacklisted device's seat is free");
    assert_eq!(
        ok(store.get_device(id, &dev).await, "get_device").status,
        DeviceStatus::Blacklisted
    );
}

/// Suspend, reinstate and revoke are stored: the rules see them at every later `now`.
pub async fn suspend_reinstate_and_revoke_persist<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = 3;
        p.max_floating_users = Some(2);
    })
    .await;
    let id = &s.license.id;
    activate(&store, id, "fp-a", parse("dev_0001"), t0())
        .await
        .expect("a free seat");
    checkout(&store, id, "fp-f", 1, t0())
        .await
        .expect("a free slot");
    run(&store, by_id(id), at(10), |agg| {
        lifecycle::suspend(agg, at(10))
    })
    .await
    .expect("suspend");
    denied_with(
        validate(&store, id, "fp-a", at(20)).await,
        DenialCode::LicenseSuspended,
        "validate a suspended license",
    );
    run(&store, by_id(id), at(30), |agg| {
        lifecycle::reinstate(agg, at(30))
    })
    .await
    .expect("reinstate");
    validate(&store, id, "fp-a", at(40))
        .await
        .expect("valid once reinstated");
    run(&store, by_id(id), at(50), |agg| {
        lifecycle::revoke(agg, at(50))
    })
    .await
    .expect("revoke");
    denied_with(
        validate(&store, id, "fp-a", at(60)).await,
        DenialCode::LicenseRevoked,
        "validate a revoked license",
    );
    let license = ok(store.get_license(id).await, "get_license");
    assert_eq!(license.status, LicenseStatus::Revoked);
    assert_eq!(license.active_device_count, 0);
    assert_eq!(
        license.entitlement_version, 4,
        "suspend, reinstate and revoke each raised the entitlement version"
    );
    assert_eq!(
        ok(store.get_device(id, &parse("dev_0001")).await, "get_device").status,
        DeviceStatus::Expired,
        "revocation released every seat"
    );
    let agg = load(&store, by_id(id)).await;
    assert_eq!(
        agg.live_leases(at(60)).count(),
        0,
        "revocation ended every lease"
    );
    assert_eq!(
        event_types_of(&store, id.as_str()).await,
        [
            "license.suspended",
            "license.reinstated",
            "license.validated",
            "license.revoked"
        ]
    );
}

/// `silent_device_licenses` selects by exactly `device_heartbeat::is_silent`: a device past
/// its policy's interval + grace + margin, active, under a policy that requires heartbeats,
/// with the `last_seen_at` touches moved forward; licenses silent longest first, each once,
/// at most `limit`. Releasing through the rule takes the license off the list.
pub async fn silent_devices_are_listed_by_the_heartbeat_rule<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let minutes = |m: i64| t0() + Duration::minutes(m);
    let margin = Duration::minutes(2);
    let listed = |now| {
        let store = store.clone();
        async move {
            ok(
                store.silent_device_licenses(now, margin, 10).await,
                "silent_device_licenses",
            )
        }
    };
    let beating = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = 5;
        p.device_heartbeat_minutes = Some(10);
        p.device_heartbeat_grace_minutes = 5;
        p.updated_at = t0() - Duration::hours(1);
    })
    .await;
    let plain = seed(&store, 2, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    let strict = seed(&store, 3, LicenseType::Perpetual, |p| {
        p.max_activations = 5;
        p.device_heartbeat_minutes = Some(10);
        p.updated_at = t0() - Duration::hours(1);
    })
    .await;
    // Working offline with a license valid a day; and a policy changed at t0 + 30 min.
    let offline = seed(&store, 4, LicenseType::Perpetual, |p| {
        p.device_heartbeat_minutes = Some(10);
        p.updated_at = t0() - Duration::hours(1);
    })
    .await;
    let changed = seed(&store, 5, LicenseType::Perpetual, |p| {
        p.device_heartbeat_minutes = Some(10);
        p.updated_at = minutes(30);
    })
    .await;
    let (l4, l5) = (&offline.license.id, &changed.license.id);
    activate(&store, l4, "fp-f", parse("dev_0006"), t0())
        .await
        .expect("activate");
    activate(&store, l5, "fp-g", parse("dev_0007"), t0())
        .await
        .expect("activate");
    let offline_issue = crate::rules::Touch {
        kind: crate::rules::TouchKind::OfflineIssued,
        license_id: l4.clone(),
        device_id: parse("dev_0006"),
        at: t0(),
        offline_until: Some(t0() + Duration::days(1)),
        event: crate::rules::DomainEvent::new("license.offline_issued", "license", l4.as_str(), []),
    };
    ok(
        store
            .record_touches(vec![crate::store::TouchRecord::new(
                offline_issue,
                &crate::store::Actor::system(),
            )])
            .await,
        "record_touches",
    );
    assert_eq!(
        ok(store.get_device(l4, &parse("dev_0006")).await, "get_device").offline_until,
        Some(t0() + Duration::days(1)),
        "an offline issue's touch stores how long the license lasts"
    );
    let (l1, l2, l3) = (&beating.license.id, &plain.license.id, &strict.license.id);
    activate(&store, l1, "fp-a", parse("dev_0001"), t0())
        .await
        .expect("activate");
    activate(&store, l1, "fp-b", parse("dev_0002"), minutes(10))
        .await
        .expect("activate");
    activate(&store, l2, "fp-c", parse("dev_0003"), t0())
        .await
        .expect("activate");
    activate(&store, l3, "fp-d", parse("dev_0004"), t0())
        .await
        .expect("activate");
    super::fixtures::deactivate(&store, l3, "fp-d", t0())
        .await
        .expect("deactivate");
    activate(&store, l3, "fp-e", parse("dev_0005"), minutes(1))
        .await
        .expect("activate");

    // fp-a: released at t0 + 15 min, listed only once that plus the margin has passed.
    assert_eq!(
        listed(minutes(17)).await,
        vec![l3.clone()],
        "at release + margin exactly a device is not yet silent; a deactivated one never is"
    );
    let past = minutes(17) + Duration::seconds(1);
    assert_eq!(
        listed(past).await,
        vec![l1.clone(), l3.clone()],
        "silent longest first; the license without heartbeats is never listed"
    );
    assert_eq!(
        ok(store.silent_device_licenses(past, margin, 1).await, "limit"),
        vec![l1.clone()],
        "at most `limit`"
    );
    assert_eq!(
        listed(past + Duration::days(30)).await.len(),
        4,
        "a license with two silent devices is listed once; the offline one once its license ended"
    );
    assert!(
        !listed(t0() + Duration::hours(23)).await.contains(l4),
        "never while its offline license is valid"
    );
    assert!(
        !listed(minutes(42)).await.contains(l5),
        "silence counts from the policy's change"
    );
    assert!(
        listed(minutes(42) + Duration::seconds(1))
            .await
            .contains(l5)
    );

    // A validation is a sign of life: its touch moves last_seen_at.
    validate(&store, l1, "fp-a", minutes(17))
        .await
        .expect("validate");
    assert_eq!(listed(past).await, vec![l3.clone()]);

    // Released by the rule (as the engine's sweep does): off the list, seat freed.
    let later = minutes(40);
    let released = run(&store, by_id(l3), later, |agg| {
        Ok(device_heartbeat::release_silent(agg, margin, later))
    })
    .await
    .expect("release_silent");
    assert_eq!(released.len(), 1);
    assert_eq!(
        ok(store.get_device(l3, &parse("dev_0005")).await, "get_device").status,
        DeviceStatus::Expired
    );
    assert_eq!(
        ok(store.get_license(l3).await, "get_license").active_device_count,
        0
    );
    assert_eq!(listed(later).await, vec![l1.clone()]);
    let events = events_of_type(&store, "device.released").await;
    assert_eq!(events.len(), 1, "one device.released per released device");
    assert_eq!(events[0].metadata["reason"], "heartbeat_missed");
}
