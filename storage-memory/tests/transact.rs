//! `transact_license`: locking, the closure contract, loading and all-or-nothing commits.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use common::*;
use licentia_core::model::{DeviceStatus, License, RuntimeBindingRequest};
use licentia_core::rules::{Binding, Denial, Mutation, activation};
use licentia_core::store::{
    AccessStore, AggregateQuery, CatalogStore, Decision, EventQuery, IdempotencyKey,
    LicenseSelector, LicenseStore, Limit, StoreError,
};
use licentia_storage_memory::MemoryStore;

/// Long enough that a healthy run never hits it; only a deadlock or a wrong wait does.
const PATIENCE: Duration = Duration::from_secs(20);

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn by_id(l: &License) -> AggregateQuery {
    AggregateQuery::new(LicenseSelector::Id(l.id.clone()))
}

async fn all_events(store: &MemoryStore) -> Vec<licentia_core::model::Event> {
    let q = EventQuery {
        limit: Limit::new(Some(200)),
        ..EventQuery::default()
    };
    store.list_events(&q).await.unwrap().events
}

#[tokio::test]
async fn an_unknown_license_is_not_found_and_the_closure_is_not_called() {
    let store = MemoryStore::new();
    licenses(&store, 1, 1).await;
    let called = AtomicUsize::new(0);
    let queries = [
        AggregateQuery::new(LicenseSelector::Id(parse("lic_9999"))),
        AggregateQuery::new(LicenseSelector::KeyHash(key_hash(9999))),
        AggregateQuery::default(),
    ];
    for q in queries {
        let r = store
            .transact_license(q, |_| {
                called.fetch_add(1, Ordering::SeqCst);
                Decision::nothing(())
            })
            .await;
        assert!(
            matches!(r, Err(StoreError::NotFound { entity: "license" })),
            "{r:?}"
        );
    }
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_closure_is_called_exactly_once_and_its_outcome_returned() {
    let store = MemoryStore::new();
    let l = licenses(&store, 1, 1).await.remove(0);
    let called = AtomicUsize::new(0);
    let out = store
        .transact_license(
            AggregateQuery::new(LicenseSelector::KeyHash(l.key_hash)),
            |loaded| {
                called.fetch_add(1, Ordering::SeqCst);
                Decision::nothing(loaded.aggregate.license.id.clone())
            },
        )
        .await
        .unwrap();
    assert_eq!(out, l.id);
    assert_eq!(called.load(Ordering::SeqCst), 1);

    // Also when the commit is refused.
    write(&store, &l, mutate(vec![])).await.unwrap();
    let called = AtomicUsize::new(0);
    let f = feature(&product(1), 1);
    for _ in 0..2 {
        let _ = store
            .transact_license(by_id(&l), |_| {
                called.fetch_add(1, Ordering::SeqCst);
                mutate(vec![Mutation::Consumption(consumption(&l, &f, "e-1"))])
            })
            .await;
    }
    assert_eq!(
        called.load(Ordering::SeqCst),
        2,
        "once per call, refused or not"
    );
}

#[tokio::test]
async fn the_aggregate_holds_what_the_query_names() {
    let store = MemoryStore::new();
    let l = licenses(&store, 1, 5).await.remove(0);
    let p = product(1);
    let f1 = feature(&p, 1);
    let f2 = feature(&p, 2);
    for f in [&f1, &f2] {
        store.insert_feature(f, vec![]).await.unwrap();
    }
    store
        .insert_version(&version(&p, 1, "1.0.0", at(10)), vec![])
        .await
        .unwrap();
    store
        .insert_version(&version(&p, 2, "1.1.0", at(20)), vec![])
        .await
        .unwrap();

    let active = device(&l, 1, DeviceStatus::Active, "b-active");
    let banned = device(&l, 2, DeviceStatus::Blacklisted, "b-banned");
    let gone = device(&l, 3, DeviceStatus::Deactivated, "b-gone");
    let reset = device(&l, 4, DeviceStatus::Reset, "b-asked");
    let live = lease(&l, 1);
    let mut ended = lease(&l, 2);
    write(
        &store,
        &l,
        mutate(vec![
            Mutation::Device(active.clone()),
            Mutation::Device(banned.clone()),
            Mutation::Device(gone.clone()),
            Mutation::Device(reset.clone()),
            Mutation::LicenseFeature(license_feature(&l, &f2)),
            Mutation::LicenseFeature(license_feature(&l, &f1)),
            Mutation::Lease(live.clone()),
            Mutation::Lease(ended.clone()),
            Mutation::Consumption(consumption(&l, &f1, "e-1")),
        ]),
    )
    .await
    .unwrap();
    ended.checked_in_at = Some(at(30));
    write(&store, &l, mutate(vec![Mutation::Lease(ended)]))
        .await
        .unwrap();
    let record = idempotency("license:lic_0001:activate", "k-1", "{}");
    write(
        &store,
        &l,
        Decision {
            idempotency: Some(record.clone()),
            ..Decision::nothing(())
        },
    )
    .await
    .unwrap();

    let query = AggregateQuery {
        binding_key: Some("b-asked".into()),
        app_version: Some(semver::Version::parse("1.0.0+build.7").unwrap()),
        consumption_event_id: Some("e-1".into()),
        idempotency: Some(record.key.clone()),
        ..by_id(&l)
    };
    let seen = store
        .transact_license(query, |loaded| {
            let a = loaded.aggregate;
            let devices: Vec<_> = a.devices.iter().map(|d| d.id.clone()).collect();
            let features: Vec<_> = a.features.iter().map(|f| f.feature_code.clone()).collect();
            let leases: Vec<_> = a.leases.iter().map(|x| x.id.clone()).collect();
            Decision::nothing((
                devices,
                features,
                leases,
                a.versions.clone(),
                a.consumption.clone(),
                loaded.idempotency.cloned(),
                a.policy.id.clone(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        seen.0,
        [active.id, banned.id, reset.id],
        "gone is not loaded"
    );
    assert_eq!(
        seen.1,
        [f1.code.clone(), f2.code.clone()],
        "by feature code"
    );
    assert_eq!(seen.2, [live.id], "checked-in leases are gone");
    assert!(seen.3.has_catalog);
    assert_eq!(seen.3.entry.map(|v| v.version), Some("1.0.0".to_owned()));
    assert_eq!(seen.4, Some(consumption(&l, &f1, "e-1")));
    assert_eq!(seen.5, Some(record));
    assert_eq!(seen.6, l.policy_id);

    // A version missing from the catalog, and no extras asked for.
    let query = AggregateQuery {
        app_version: Some(semver::Version::new(3, 0, 0)),
        ..by_id(&l)
    };
    let (versions, consumption, idem) = store
        .transact_license(query, |loaded| {
            Decision::nothing((
                loaded.aggregate.versions.clone(),
                loaded.aggregate.consumption.clone(),
                loaded.idempotency.is_some(),
            ))
        })
        .await
        .unwrap();
    assert!(versions.has_catalog && versions.entry.is_none());
    assert!(consumption.is_none() && !idem);
}

#[tokio::test]
async fn a_duplicate_consumption_event_id_applies_nothing() {
    let store = MemoryStore::new();
    let l = licenses(&store, 1, 5).await.remove(0);
    let f = feature(&product(1), 1);
    let mut counted = l.clone();
    counted.total_consumptions = 1;
    write(
        &store,
        &l,
        Decision {
            mutations: vec![
                Mutation::License(counted.clone()),
                Mutation::Consumption(consumption(&l, &f, "e-1")),
            ],
            events: vec![event("usage.consumed", "e-1")],
            ..Decision::nothing(())
        },
    )
    .await
    .unwrap();

    let mut twice = counted.clone();
    twice.total_consumptions = 2;
    let dev = device(&l, 1, DeviceStatus::Active, "b-1");
    let record = idempotency("s", "k", "{}");
    let r = write(
        &store,
        &l,
        Decision {
            mutations: vec![
                Mutation::Device(dev.clone()),
                Mutation::License(twice),
                Mutation::Consumption(consumption(&l, &f, "e-1")),
            ],
            events: vec![event("usage.consumed", "e-1 again")],
            idempotency: Some(record.clone()),
            outcome: (),
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Err(StoreError::AlreadyExists {
                entity: "consumption",
                constraint: "event_id"
            })
        ),
        "{r:?}"
    );
    assert_eq!(store.get_license(&l.id).await.unwrap(), counted);
    assert!(matches!(
        store.get_device(&l.id, &dev.id).await,
        Err(StoreError::NotFound { entity: "device" })
    ));
    assert_eq!(
        all_events(&store).await.len(),
        1,
        "the refused events are not appended"
    );
    let stored = store
        .transact_license(
            AggregateQuery {
                idempotency: Some(record.key),
                ..by_id(&l)
            },
            |loaded| Decision::nothing(loaded.idempotency.is_some()),
        )
        .await
        .unwrap();
    assert!(!stored, "the refused idempotency record is not stored");

    // The same event_id twice in one decision is refused as well.
    let r = write(
        &store,
        &l,
        mutate(vec![
            Mutation::Consumption(consumption(&l, &f, "e-2")),
            Mutation::Consumption(consumption(&l, &f, "e-2")),
        ]),
    )
    .await;
    assert!(matches!(r, Err(StoreError::AlreadyExists { .. })), "{r:?}");

    // The event_id is per license: another license may use it.
    let other = license(&store.get_policy(&l.policy_id).await.unwrap(), 2);
    store.insert_license(&other, vec![]).await.unwrap();
    write(
        &store,
        &other,
        mutate(vec![Mutation::Consumption(consumption(&other, &f, "e-1"))]),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_idempotency_record_is_stored_with_the_effect() {
    let store = MemoryStore::new();
    let l = licenses(&store, 1, 5).await.remove(0);
    let dev = device(&l, 1, DeviceStatus::Active, "b-1");
    let record = idempotency("license:lic_0001:activate", "k-1", r#"{"data":1}"#);
    write(
        &store,
        &l,
        Decision {
            mutations: vec![Mutation::Device(dev.clone())],
            events: vec![event("device.activated", "dev_0001")],
            idempotency: Some(record.clone()),
            outcome: (),
        },
    )
    .await
    .unwrap();
    assert_eq!(store.get_device(&l.id, &dev.id).await.unwrap(), dev);

    let query = AggregateQuery {
        idempotency: Some(record.key.clone()),
        ..by_id(&l)
    };
    let replay = store
        .transact_license(query.clone(), |loaded| {
            Decision::nothing(loaded.idempotency.cloned())
        })
        .await
        .unwrap();
    assert_eq!(replay, Some(record.clone()), "replayed byte for byte");

    // Storing the key again fails and applies nothing.
    let other_dev = device(&l, 2, DeviceStatus::Active, "b-2");
    let r = write(
        &store,
        &l,
        Decision {
            mutations: vec![Mutation::Device(other_dev.clone())],
            events: vec![event("device.activated", "dev_0002")],
            idempotency: Some(idempotency(&record.key.scope, &record.key.key, "other")),
            outcome: (),
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Err(StoreError::AlreadyExists {
                entity: "idempotency_record",
                ..
            })
        ),
        "{r:?}"
    );
    assert!(store.get_device(&l.id, &other_dev.id).await.is_err());
    assert_eq!(all_events(&store).await.len(), 1);

    // The key is unique within its scope across the store, whichever license stores it.
    let other = license(&store.get_policy(&l.policy_id).await.unwrap(), 2);
    store.insert_license(&other, vec![]).await.unwrap();
    let r = write(
        &store,
        &other,
        Decision {
            idempotency: Some(record.clone()),
            ..Decision::nothing(())
        },
    )
    .await;
    assert!(matches!(r, Err(StoreError::AlreadyExists { .. })), "{r:?}");

    // Another scope with the same key is another record.
    let elsewhere = IdempotencyKey {
        scope: "license:lic_0001:deactivate".into(),
        key: "k-1".into(),
    };
    write(
        &store,
        &l,
        Decision {
            idempotency: Some(idempotency(&elsewhere.scope, &elsewhere.key, "{}")),
            ..Decision::nothing(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_checked_in_lease_ends_and_a_removed_feature_goes() {
    let store = MemoryStore::new();
    let l = licenses(&store, 1, 5).await.remove(0);
    let f = feature(&product(1), 1);
    let mut lease1 = lease(&l, 1);
    write(
        &store,
        &l,
        mutate(vec![
            Mutation::Lease(lease1.clone()),
            Mutation::LicenseFeature(license_feature(&l, &f)),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .list_license_features(&l.id, Limit::default())
            .await
            .unwrap(),
        [license_feature(&l, &f)]
    );
    lease1.checked_in_at = Some(at(100));
    write(
        &store,
        &l,
        mutate(vec![
            Mutation::Lease(lease1),
            Mutation::RemoveLicenseFeature(f.id.clone()),
        ]),
    )
    .await
    .unwrap();
    let (leases, features) = store
        .transact_license(by_id(&l), |loaded| {
            Decision::nothing((
                loaded.aggregate.leases.len(),
                loaded.aggregate.features.len(),
            ))
        })
        .await
        .unwrap();
    assert_eq!((leases, features), (0, 0));
    assert!(
        store
            .list_license_features(&l.id, Limit::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_mutation_naming_another_license_is_refused() {
    let store = MemoryStore::new();
    let ls = licenses(&store, 2, 5).await;
    let foreign = device(&ls[1], 1, DeviceStatus::Active, "b-1");
    let r = write(
        &store,
        &ls[0],
        mutate(vec![Mutation::Device(foreign.clone())]),
    )
    .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
    assert!(store.get_device(&ls[1].id, &foreign.id).await.is_err());
    assert!(store.get_device(&ls[0].id, &foreign.id).await.is_err());
}

#[tokio::test]
async fn a_new_key_hash_moves_the_index_and_a_taken_one_is_refused() {
    let store = MemoryStore::new();
    let ls = licenses(&store, 2, 5).await;
    let mut rekeyed = ls[0].clone();
    rekeyed.key_hash = key_hash(77);
    write(
        &store,
        &ls[0],
        mutate(vec![Mutation::License(rekeyed.clone())]),
    )
    .await
    .unwrap();
    let by_key = |n| AggregateQuery::new(LicenseSelector::KeyHash(key_hash(n)));
    let found = store
        .transact_license(by_key(77), |l| {
            Decision::nothing(l.aggregate.license.id.clone())
        })
        .await
        .unwrap();
    assert_eq!(found, ls[0].id);
    let old = store
        .transact_license(by_key(1), |_| Decision::nothing(()))
        .await;
    assert!(matches!(old, Err(StoreError::NotFound { .. })), "{old:?}");

    let mut clash = rekeyed.clone();
    clash.key_hash = ls[1].key_hash;
    clash.times_activated = 9;
    let r = write(&store, &ls[0], mutate(vec![Mutation::License(clash)])).await;
    assert!(
        matches!(
            r,
            Err(StoreError::AlreadyExists {
                entity: "license",
                constraint: "key_hash"
            })
        ),
        "{r:?}"
    );
    assert_eq!(store.get_license(&ls[0].id).await.unwrap(), rekeyed);

    // A changed row must name records that exist.
    let mut dangling = rekeyed.clone();
    dangling.customer_id = Some(parse("cus_9999"));
    let r = write(&store, &ls[0], mutate(vec![Mutation::License(dangling)])).await;
    assert!(
        matches!(r, Err(StoreError::NotFound { entity: "customer" })),
        "{r:?}"
    );
}

#[test]
fn a_panicking_closure_poisons_nothing() {
    let store = MemoryStore::new();
    let ls = block_on(licenses(&store, 2, 5));
    let s = store.clone();
    let l = ls[0].clone();
    let crashed = thread::spawn(move || {
        block_on(s.transact_license(by_id(&l), |_| -> Decision<()> { panic!("a bug in a rule") }))
    })
    .join();
    assert!(crashed.is_err());
    for l in &ls {
        let d = device(l, 1, DeviceStatus::Active, "b-1");
        block_on(write(&store, l, mutate(vec![Mutation::Device(d)]))).unwrap();
    }
}

#[test]
fn a_transaction_in_flight_holds_only_its_own_license() {
    let store = MemoryStore::new();
    let ls = block_on(licenses(&store, 2, 5));
    let (a, b) = (ls[0].clone(), ls[1].clone());

    // Hold license A inside its closure until told to go on.
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let s = store.clone();
        let a = a.clone();
        thread::spawn(move || {
            block_on(s.transact_license(by_id(&a), move |_| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Decision {
                    events: vec![event("held", "a")],
                    ..Decision::nothing(())
                }
            }))
        })
    };
    entered_rx.recv_timeout(PATIENCE).unwrap();

    // License B, the catalog, the event log and A's committed row do not wait for A.
    let (done_tx, done_rx) = mpsc::channel();
    {
        let s = store.clone();
        let b = b.clone();
        let a_id = a.id.clone();
        thread::spawn(move || {
            let r = block_on(async {
                let d = device(&b, 1, DeviceStatus::Active, "b-1");
                write(&s, &b, mutate(vec![Mutation::Device(d)])).await?;
                s.insert_product(&product(2), vec![event("product.created", "p2")])
                    .await?;
                s.get_license(&a_id).await?;
                s.list_events(&EventQuery::default()).await?;
                Ok::<_, StoreError>(())
            });
            done_tx.send(r).unwrap();
        });
    }
    done_rx
        .recv_timeout(PATIENCE)
        .expect("calls on other records must not wait for license A")
        .unwrap();

    // A second transaction on A waits for the first.
    let (same_tx, same_rx) = mpsc::channel();
    {
        let s = store.clone();
        let a = a.clone();
        thread::spawn(move || {
            let r = block_on(s.transact_license(by_id(&a), |loaded| {
                Decision::nothing(loaded.aggregate.license.id.clone())
            }));
            same_tx.send(r).unwrap();
        });
    }
    assert_eq!(
        same_rx.recv_timeout(Duration::from_millis(200)).err(),
        Some(RecvTimeoutError::Timeout),
        "a second transaction on the same license must wait"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap().unwrap();
    assert_eq!(same_rx.recv_timeout(PATIENCE).unwrap().unwrap(), a.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_sequences_strictly_increase_under_concurrency() {
    let store = MemoryStore::new();
    let ls = licenses(&store, 4, 100).await;
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let s = store.clone();
        let l = ls[(i % 4) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let tag = format!("task-{i}");
            match i % 4 {
                // A transaction with two events and a write.
                0 | 1 => {
                    let d = device(&l, 100 + i, DeviceStatus::Active, &tag);
                    write(
                        &s,
                        &l,
                        Decision {
                            mutations: vec![Mutation::Device(d)],
                            events: vec![event("one", &tag), event("two", &tag)],
                            ..Decision::nothing(())
                        },
                    )
                    .await
                }
                2 => {
                    s.append_events(vec![event("one", &tag), event("two", &tag)])
                        .await
                }
                _ => {
                    s.insert_product(
                        &product(100 + i),
                        vec![event("one", &tag), event("two", &tag)],
                    )
                    .await
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let events = all_events(&store).await;
    assert_eq!(events.len(), 64);
    assert!(
        events.windows(2).all(|w| w[0].sequence > w[1].sequence),
        "newest first, strictly"
    );
    for i in 0..32 {
        let tag = format!("task-{i}");
        let mine: Vec<_> = events
            .iter()
            .filter(|e| e.resource_id.as_deref() == Some(tag.as_str()))
            .collect();
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[1].event_type, "one");
        assert_eq!(
            mine[0].sequence,
            mine[1].sequence + 1,
            "one write's events are appended together"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_never_exceed_the_seats() {
    const SEATS: u32 = 5;
    let store = MemoryStore::new();
    let l = licenses(&store, 1, SEATS).await.remove(0);
    let now = at(1000);
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let s = store.clone();
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            let req = RuntimeBindingRequest {
                fingerprint: Some(format!("machine-{i}")),
                ..Default::default()
            };
            let binding = Binding::from_request(&req).unwrap();
            let query = AggregateQuery {
                binding_key: Some(binding.key().to_owned()),
                ..by_id(&l)
            };
            let device_id = parse(&format!("dev_{i:04}"));
            s.transact_license(query, move |loaded| {
                match activation::activate(loaded.aggregate, &req, device_id, now) {
                    Ok(plan) => Decision {
                        mutations: plan.mutations,
                        events: vec![event("device.activated", "x")],
                        ..Decision::nothing(Ok(()))
                    },
                    Err(denial) => Decision::nothing(Err::<(), Denial>(denial)),
                }
            })
            .await
            .unwrap()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, SEATS);
    let devices = store.list_devices(&l.id, Limit::default()).await.unwrap();
    assert_eq!(devices.len(), SEATS as usize);
    let row = store.get_license(&l.id).await.unwrap();
    assert_eq!(row.active_device_count, SEATS);
    assert_eq!(all_events(&store).await.len(), SEATS as usize);
}

#[tokio::test]
async fn device_and_feature_reads_of_an_unknown_license_are_not_found() {
    let store = MemoryStore::new();
    let l = licenses(&store, 1, 1).await.remove(0);
    let missing = parse("lic_9999");
    assert!(matches!(
        store.list_devices(&missing, Limit::default()).await,
        Err(StoreError::NotFound { entity: "license" })
    ));
    assert!(matches!(
        store.get_device(&missing, &parse("dev_0001")).await,
        Err(StoreError::NotFound { entity: "license" })
    ));
    assert!(matches!(
        store
            .list_license_features(&missing, Limit::default())
            .await,
        Err(StoreError::NotFound { entity: "license" })
    ));
    assert!(matches!(
        store.get_device(&l.id, &parse("dev_0001")).await,
        Err(StoreError::NotFound { entity: "device" })
    ));

    // Devices list newest first.
    let d1 = device(&l, 1, DeviceStatus::Active, "b-1");
    let d2 = device(&l, 2, DeviceStatus::Deactivated, "b-2");
    write(
        &store,
        &l,
        mutate(vec![
            Mutation::Device(d1.clone()),
            Mutation::Device(d2.clone()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        store.list_devices(&l.id, Limit::default()).await.unwrap(),
        [d2.clone(), d1]
    );
    assert_eq!(
        store
            .list_devices(&l.id, Limit::new(Some(1)))
            .await
            .unwrap(),
        [d2]
    );
}
