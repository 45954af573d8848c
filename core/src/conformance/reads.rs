//! The read path: [`read_license`](crate::store::LicenseStore::read_license) snapshots and
//! [`record_touches`](crate::store::LicenseStore::record_touches) bookkeeping.
//!
//! A snapshot holds exactly what `transact_license` would load, never half of a write, even
//! while writers commit on the same license; touches move timestamps forward only and never
//! change anything a write decided.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::model::{DeviceStatus, LicenseType};
use crate::rules::{DomainEvent, Touch, TouchKind};
use crate::store::{AggregateQuery, LicenseSelector, Store, TouchRecord};

use super::fixtures::{
    activate, at, by_id, checkout, deactivate, events_of_type, license_key, load, metered_feature,
    parse, seed, t0,
};
use super::{Spawner, expect_not_found, license_actor, ok, run_concurrently};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

fn touch(
    kind: TouchKind,
    license: &crate::model::LicenseId,
    device: &str,
    at: DateTime<Utc>,
) -> Touch {
    Touch {
        kind,
        license_id: license.clone(),
        device_id: parse(device),
        at,
        offline_until: None,
        event: DomainEvent::new(
            "license.validated",
            "license",
            license.as_str(),
            [("device_id", serde_json::json!(device))],
        ),
    }
}

/// `read_license` returns the aggregate `transact_license` loads for the same query (by id
/// and by key hash): license, policy, active and blacklisted devices plus the queried
/// binding, features, leases; it loads no idempotency record.
pub async fn read_license_loads_what_transact_loads<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = 5;
        p.max_floating_users = Some(3);
    })
    .await;
    let id = &s.license.id;
    for (i, fp) in ["fp-a", "fp-b", "fp-c"].iter().enumerate() {
        activate(&store, id, fp, parse(&format!("dev_{:04}", i + 1)), t0())
            .await
            .expect("a seat is free");
    }
    deactivate(&store, id, "fp-b", at(10))
        .await
        .expect("an active device deactivates");
    let feature = metered_feature(&store, &s, 1, "seats", Some(100), |_| {}).await;
    checkout(&store, id, "fp-l", 1, at(20))
        .await
        .expect("a floating slot is free");

    for binding in [None, Some("fp-b".to_owned())] {
        let query = AggregateQuery {
            binding_key: binding.clone(),
            ..by_id(id)
        };
        let snapshot = ok(store.read_license(&query).await, "read_license");
        let locked = load(&store, query).await;
        assert_eq!(
            snapshot, locked,
            "read_license (binding {binding:?}) loads what transact_license loads"
        );
    }
    let by_key = AggregateQuery {
        binding_key: Some("fp-b".into()),
        ..AggregateQuery::new(LicenseSelector::KeyHash(s.license.key_hash))
    };
    let snapshot = ok(
        store.read_license(&by_key).await,
        "read_license by key hash",
    );
    assert_eq!(snapshot.license.id, *id, "the key hash names the license");
    assert_eq!(
        snapshot.devices.len(),
        3,
        "two active devices plus the queried deactivated one"
    );
    assert_eq!(snapshot.features.len(), 1, "the assigned feature");
    assert_eq!(snapshot.features[0].feature_id, feature.id);
    assert_eq!(snapshot.leases.len(), 1, "the live lease");
}

/// A selector that names no license is `NotFound`, by id and by key hash.
pub async fn read_license_of_a_missing_license_is_not_found<S: Store>(store: S) {
    seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    expect_not_found(
        store
            .read_license(&AggregateQuery::new(LicenseSelector::Id(parse("lic_9999"))))
            .await,
        "read_license (missing id)",
    );
    let hash = crate::model::SecretHash::of(&license_key(9999));
    expect_not_found(
        store
            .read_license(&AggregateQuery::new(LicenseSelector::KeyHash(hash)))
            .await,
        "read_license (unknown key hash)",
    );
    expect_not_found(
        store.read_license(&AggregateQuery::default()).await,
        "read_license (no selector)",
    );
}

/// A validation touch moves the device's `last_seen_at` and `last_validated_at` and the
/// license's `last_validated_at` forward; an older touch changes nothing; an offline touch
/// moves only `last_seen_at`; a late touch never undoes a write (a deactivated device stays
/// deactivated, the seat count stays).
pub async fn touches_move_timestamps_forward_only<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    let id = &s.license.id;
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat is free");
    let actor = crate::store::Actor::license(id, None);
    let record = |t: Touch| TouchRecord::new(t, &actor);

    let apply = |ts: Vec<Touch>| {
        let batch: Vec<TouchRecord> = ts.into_iter().map(record).collect();
        store.record_touches(batch)
    };
    ok(
        apply(vec![touch(TouchKind::Validated, id, "dev_0001", at(100))]).await,
        "record_touches",
    );
    let device = ok(store.get_device(id, &parse("dev_0001")).await, "get_device");
    assert_eq!(
        device.last_seen_at,
        at(100),
        "a validation moves last_seen_at"
    );
    assert_eq!(device.last_validated_at, Some(at(100)));
    assert_eq!(
        ok(store.get_license(id).await, "get_license").last_validated_at,
        Some(at(100)),
        "and the license's last_validated_at"
    );

    ok(
        apply(vec![
            touch(TouchKind::Validated, id, "dev_0001", at(50)),
            touch(TouchKind::OfflineIssued, id, "dev_0001", at(200)),
        ])
        .await,
        "record_touches",
    );
    let device = ok(store.get_device(id, &parse("dev_0001")).await, "get_device");
    assert_eq!(
        device.last_seen_at,
        at(200),
        "an offline issue moves last_seen_at"
    );
    assert_eq!(
        device.last_validated_at,
        Some(at(100)),
        "an older validation never moves a timestamp back; an offline issue is no validation"
    );
    assert_eq!(
        ok(store.get_license(id).await, "get_license").last_validated_at,
        Some(at(100))
    );

    deactivate(&store, id, "fp-1", at(300))
        .await
        .expect("the device deactivates");
    ok(
        apply(vec![touch(TouchKind::Validated, id, "dev_0001", at(250))]).await,
        "record_touches (late)",
    );
    let device = ok(store.get_device(id, &parse("dev_0001")).await, "get_device");
    assert_eq!(
        device.status,
        DeviceStatus::Deactivated,
        "a late touch never changes a device's status"
    );
    assert_eq!(device.last_validated_at, Some(at(250)));
    let license = ok(store.get_license(id).await, "get_license");
    assert_eq!(license.active_device_count, 0, "nor the seat count");
    let agg = load(&store, by_id(id)).await;
    assert_eq!(agg.active_devices().count(), 0);
}

/// Each touch's event is appended with it; a touch naming a device that does not exist is
/// skipped with its event, and the rest of the batch is applied.
pub async fn touches_append_their_events_and_skip_missing_records<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    let id = &s.license.id;
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat is free");
    let actor = license_actor(&load(&store, by_id(id)).await);
    let batch = vec![
        TouchRecord::new(touch(TouchKind::Validated, id, "dev_0001", at(10)), &actor),
        TouchRecord::new(touch(TouchKind::Validated, id, "dev_9999", at(11)), &actor),
        TouchRecord::new(touch(TouchKind::Validated, id, "dev_0001", at(12)), &actor),
    ];
    ok(store.record_touches(batch).await, "record_touches");
    let events = events_of_type(&store, "license.validated").await;
    assert_eq!(
        events.len(),
        2,
        "one event per applied touch; the missing device's is skipped"
    );
    assert!(
        events.iter().all(|e| e.actor_id == id.as_str()),
        "events keep their actor"
    );
    let device = ok(store.get_device(id, &parse("dev_0001")).await, "get_device");
    assert_eq!(device.last_validated_at, Some(at(12)));
    ok(store.record_touches(vec![]).await, "an empty batch");
}

/// Writers activate and deactivate devices on one license while readers take snapshots:
/// every snapshot shows a whole write or none of it (the license's seat count always equals
/// its active devices, each written in the same transaction).
pub async fn snapshots_never_show_half_a_write<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const WRITERS: u32 = 8;
    const CYCLES: u32 = 10;
    const READERS: u32 = 8;
    const READS: u32 = 60;
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = WRITERS
    })
    .await;
    let mut tasks: Vec<Boxed<u32>> = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let id = s.license.id.clone();
        tasks.push(Box::pin(async move {
            let fp = format!("fp-{w}");
            for c in 0..CYCLES {
                let now = at(i64::from(c));
                activate(&store, &id, &fp, parse(&format!("dev_{w:04}")), now)
                    .await
                    .expect("every writer has its own seat");
                deactivate(&store, &id, &fp, now)
                    .await
                    .expect("its device is active");
            }
            0
        }));
    }
    for r in 0..READERS {
        let store = store.clone();
        let id = s.license.id.clone();
        tasks.push(Box::pin(async move {
            let mut busy = 0;
            for i in 0..READS {
                let query = AggregateQuery {
                    binding_key: Some(format!("fp-{}", (r + i) % WRITERS)),
                    ..by_id(&id)
                };
                let agg = ok(store.read_license(&query).await, "read_license");
                let active = agg.active_devices().count();
                assert_eq!(
                    agg.license.active_device_count as usize, active,
                    "a snapshot shows a write whole: the seat count and the active devices agree"
                );
                assert!(active <= WRITERS as usize, "never more seats than writers");
                busy += u32::from(active > 0);
            }
            busy
        }));
    }
    run_concurrently(&spawner, tasks).await;
    let agg = load(&store, by_id(&s.license.id)).await;
    assert_eq!(
        agg.active_devices().count(),
        0,
        "every cycle ended deactivated"
    );
    assert_eq!(agg.license.active_device_count, 0);
    assert_eq!(
        agg.license.times_activated,
        WRITERS * CYCLES,
        "every activation counted"
    );
}
