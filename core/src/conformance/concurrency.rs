//! Many tasks on one license at once, released together through a [`Spawner`]: never more
//! seats, leases or units than the limit, replays and idempotent requests applied once,
//! unrelated licenses independent, unique codes and event sequences kept under contention.
//!
//! Every task runs its rule inside `transact_license`, exactly as the engine does; the
//! closure is counted so a backend that retries it is caught.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::model::{DeviceStatus, FloatingCheckoutData, LicenseType, RuntimeEntitlementData};
use crate::rules::{Denial, DenialCode, activation, device_heartbeat};
use crate::store::{AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, Limit, Store};

use super::fixtures::{
    activate, at, binding, by_id, consume, events_of_type, lease_token, license, load,
    metered_feature, parse, product, seed, system_event, t0,
};
use super::{Spawner, decision, ok, run_concurrently};

/// How many tasks each concurrent check starts at once.
pub const TASKS: u32 = 32;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type Runtime = Result<RuntimeEntitlementData, Denial>;

/// 32 tasks each activate a distinct device with `max_activations = 10`: exactly 10
/// succeed, every acknowledged activation is stored, and the count matches.
pub async fn concurrent_activations_never_exceed_max_activations<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = 10
    })
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<Boxed<(u32, Runtime)>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let id = s.license.id.clone();
            let calls = Arc::clone(&calls);
            Box::pin(async move {
                let fp = format!("fp-{i}");
                let req = binding(&fp);
                let device = parse(&format!("dev_{i:04}"));
                let query = AggregateQuery {
                    binding_key: Some(fp.clone()),
                    ..by_id(&id)
                };
                let now = t0();
                let r = ok(
                    store
                        .transact_license(query, move |l| {
                            calls.fetch_add(1, Ordering::SeqCst);
                            decision(
                                l.aggregate,
                                now,
                                activation::activate(l.aggregate, &req, device, now),
                            )
                        })
                        .await,
                    "transact_license (activate)",
                );
                (i, r)
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        TASKS as usize,
        "each transact_license calls its closure exactly once, also under contention"
    );
    let mut acknowledged = Vec::new();
    for (i, r) in &results {
        match r {
            Ok(data) => acknowledged.push(data.device_id.clone()),
            Err(d) => assert!(
                d.has(DenialCode::ActivationLimitReached),
                "task {i}: the only acceptable refusal is ACTIVATION_LIMIT_REACHED, got {d}"
            ),
        }
    }
    assert_eq!(
        acknowledged.len(),
        10,
        "exactly max_activations (10) of 32 concurrent activations succeed"
    );
    let license = ok(store.get_license(&s.license.id).await, "get_license");
    assert_eq!(license.active_device_count, 10);
    assert_eq!(license.times_activated, 10);
    let devices = ok(
        store
            .list_devices(&s.license.id, Limit::new(Some(200)))
            .await,
        "list_devices",
    );
    let mut active: Vec<_> = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(active.len(), 10, "exactly 10 active devices are stored");
    assert_eq!(devices.len(), 10, "refused activations store no device");
    active.sort();
    acknowledged.sort();
    assert_eq!(
        active, acknowledged,
        "every acknowledged activation is stored, and only those"
    );
    assert_eq!(
        events_of_type(&store, "device.activated").await.len(),
        10,
        "one event per successful activation"
    );
}

/// 32 tasks at once on a license whose 5 seats are taken: half deactivate one of the 5
/// bindings, half activate a new one. However they interleave, the license's
/// `active_device_count` equals the active devices stored, never above 5, and
/// `times_activated` counts every acknowledged activation.
pub async fn concurrent_activations_and_deactivations_keep_the_count_true<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    for i in 0..5u32 {
        activate(
            &store,
            &s.license.id,
            &format!("fp-{i}"),
            parse(&format!("dev_{i:04}")),
            t0(),
        )
        .await
        .expect("a free seat");
    }
    let tasks: Vec<Boxed<(bool, bool)>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let id = s.license.id.clone();
            Box::pin(async move {
                if i % 2 == 0 {
                    let fp = format!("fp-{}", (i / 2) % 5);
                    let r = super::fixtures::deactivate(&store, &id, &fp, at(60)).await;
                    (false, r.is_ok())
                } else {
                    let fp = format!("fp-new-{i}");
                    let r =
                        activate(&store, &id, &fp, parse(&format!("dev_n{i:04}")), at(60)).await;
                    if let Err(d) = &r {
                        assert!(
                            d.has(DenialCode::ActivationLimitReached),
                            "the only acceptable refusal is ACTIVATION_LIMIT_REACHED, got {d}"
                        );
                    }
                    (true, r.is_ok())
                }
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let activated = results.iter().filter(|(act, won)| *act && *won).count();
    let deactivated = results.iter().filter(|(act, won)| !*act && *won).count();
    assert_eq!(
        deactivated, 5,
        "each of the 5 original bindings is deactivated exactly once (later attempts find no active device)"
    );
    let license = ok(store.get_license(&s.license.id).await, "get_license");
    let devices = ok(
        store
            .list_devices(&s.license.id, Limit::new(Some(200)))
            .await,
        "list_devices",
    );
    let active = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .count();
    assert_eq!(
        license.active_device_count as usize, active,
        "the license's active_device_count equals the active devices stored"
    );
    assert!(
        active <= 5,
        "never more than max_activations active devices"
    );
    assert_eq!(active, 5 - deactivated + activated);
    assert_eq!(
        license.times_activated as usize,
        5 + activated,
        "times_activated counts every acknowledged activation once"
    );
}

/// 32 tasks check out a floating lease with `max_floating_users = 5`: exactly 5 live
/// leases.
pub async fn concurrent_checkouts_never_exceed_max_floating_users<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_floating_users = Some(5);
    })
    .await;
    let tasks: Vec<Boxed<Result<FloatingCheckoutData, Denial>>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let id = s.license.id.clone();
            Box::pin(async move {
                super::fixtures::checkout(&store, &id, &format!("fp-{i}"), i, t0()).await
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let mut won = 0;
    for r in &results {
        match r {
            Ok(_) => won += 1,
            Err(d) => assert!(
                d.has(DenialCode::FloatingPoolExhausted),
                "the only acceptable refusal is FLOATING_POOL_EXHAUSTED, got {d}"
            ),
        }
    }
    assert_eq!(
        won, 5,
        "exactly max_floating_users (5) of 32 concurrent checkouts succeed"
    );
    let agg = load(&store, by_id(&s.license.id)).await;
    assert_eq!(
        agg.live_leases(t0()).count(),
        5,
        "exactly 5 live leases are stored"
    );
    // Each winner's token works; a loser's does not.
    for (i, r) in results.iter().enumerate() {
        let hash = crate::crypto::SecretHash::of(&lease_token(i as u32));
        let found = agg.leases.iter().any(|l| l.token_hash == hash);
        assert_eq!(
            found,
            r.is_ok(),
            "checkout {i}: a lease exists iff it was acknowledged"
        );
    }
}

async fn consumer_license<S: Store + Clone + Send + Sync + 'static>(
    store: &S,
    quota: i64,
) -> super::fixtures::Seeded {
    let s = seed(store, 1, LicenseType::Consumption, |_| {}).await;
    activate(store, &s.license.id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a fresh license activates");
    metered_feature(store, &s, 1, "api.calls", Some(quota), |_| {}).await;
    s
}

/// 32 tasks consume 1 unit each (distinct `event_id`s) on a quota of 20: exactly 20
/// succeed and the stored total is 20.
pub async fn concurrent_consumption_never_exceeds_the_quota<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = consumer_license(&store, 20).await;
    let tasks: Vec<Boxed<Runtime>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let id = s.license.id.clone();
            Box::pin(async move {
                consume(
                    &store,
                    &id,
                    "fp-1",
                    "api.calls",
                    1,
                    &format!("evt-{i}"),
                    at(60),
                )
                .await
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let mut won = 0;
    for r in &results {
        match r {
            Ok(_) => won += 1,
            Err(d) => assert!(
                d.has(DenialCode::QuotaExceeded),
                "the only acceptable refusal is QUOTA_EXCEEDED, got {d}"
            ),
        }
    }
    assert_eq!(won, 20, "exactly the quota (20) of 32 consumptions succeed");
    let features = ok(
        store
            .list_license_features(&s.license.id, Limit::default())
            .await,
        "list_license_features",
    );
    assert_eq!(
        features[0].total_consumptions, 20,
        "the stored total is the quota"
    );
    assert_eq!(
        ok(store.get_license(&s.license.id).await, "get_license").total_consumptions,
        20
    );
    assert_eq!(events_of_type(&store, "usage.consumed").await.len(), 20);
}

/// 32 tasks replay the same `event_id` at once: it is counted exactly once and every task
/// gets an answer.
pub async fn concurrent_replays_of_one_event_id_count_once<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = consumer_license(&store, 100).await;
    let tasks: Vec<Boxed<Runtime>> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            let id = s.license.id.clone();
            Box::pin(async move {
                consume(&store, &id, "fp-1", "api.calls", 3, "evt-same", at(60)).await
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    for r in &results {
        let data = r.as_ref().unwrap_or_else(|d| {
            panic!("a replay of an already counted event_id is answered, not refused: {d}")
        });
        assert_eq!(
            data.features[0].consumed,
            Some(3),
            "every answer shows the event counted once"
        );
    }
    let features = ok(
        store
            .list_license_features(&s.license.id, Limit::default())
            .await,
        "list_license_features",
    );
    assert_eq!(
        features[0].total_consumptions, 3,
        "32 concurrent replays of one event_id count once"
    );
    assert_eq!(events_of_type(&store, "usage.consumed").await.len(), 1);
}

/// 32 tasks send the same idempotent request at once: the first stores its effect with the
/// record, every other sees the record and replays; the effect happens once.
pub async fn concurrent_idempotent_requests_apply_once<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let key = IdempotencyKey {
        scope: format!("license:{}:touch", s.license.id),
        key: "same-key".into(),
    };
    let tasks: Vec<Boxed<_>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let id = s.license.id.clone();
            let key = key.clone();
            Box::pin(async move {
                let query = AggregateQuery {
                    idempotency: Some(key.clone()),
                    ..by_id(&id)
                };
                ok(
                    store
                        .transact_license(query, move |l| {
                            if let Some(prior) = l.idempotency {
                                return Decision::nothing(prior.body.clone());
                            }
                            let mut license = l.aggregate.license.clone();
                            license.entitlement_version += 1;
                            let body = format!("answered by {i}").into_bytes();
                            Decision {
                                mutations: vec![crate::rules::Mutation::License(license)],
                                events: vec![system_event(
                                    "license.touched",
                                    "license",
                                    id.as_str(),
                                    at(60),
                                )],
                                idempotency: Some(IdempotencyRecord {
                                    key,
                                    request_hash: [3; 32],
                                    status: 200,
                                    body: body.clone(),
                                    created_at: at(60),
                                }),
                                outcome: body,
                            }
                        })
                        .await,
                    "transact_license (idempotent)",
                )
            }) as Boxed<_>
        })
        .collect();
    let bodies = run_concurrently(&spawner, tasks).await;
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every request gets the first answer, byte for byte"
    );
    assert_eq!(
        ok(store.get_license(&s.license.id).await, "get_license").entitlement_version,
        2,
        "the effect happened once"
    );
    assert_eq!(events_of_type(&store, "license.touched").await.len(), 1);
}

/// 8 licenses with 3 seats each, 8 tasks per license, all at once: each license gets
/// exactly its 3 seats.
pub async fn distinct_licenses_do_not_interfere<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 3).await;
    let mut licenses = vec![s.license.clone()];
    for n in 2..=8 {
        let l = license(&s.policy, n);
        ok(store.insert_license(&l, vec![]).await, "insert_license");
        licenses.push(l);
    }
    let mut tasks: Vec<Boxed<_>> = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        let l = licenses[(i % 8) as usize].id.clone();
        tasks.push(Box::pin(async move {
            let r = activate(
                &store,
                &l,
                &format!("fp-{i}"),
                parse(&format!("dev_{i:04}")),
                t0(),
            )
            .await;
            (l, r.is_ok())
        }));
    }
    let results = run_concurrently(&spawner, tasks).await;
    for l in &licenses {
        let won = results
            .iter()
            .filter(|(id, okd)| id == &l.id && *okd)
            .count();
        assert_eq!(won, 3, "{}: exactly its 3 seats", l.id);
        assert_eq!(
            ok(store.get_license(&l.id).await, "get_license").active_device_count,
            3
        );
        let devices = ok(
            store.list_devices(&l.id, Limit::default()).await,
            "list_devices",
        );
        assert_eq!(devices.len(), 3, "{}: only its own devices", l.id);
        assert!(devices.iter().all(|d| d.license_id == l.id));
    }
}

/// 32 tasks insert products with the same code at once: exactly one succeeds, the others
/// get `AlreadyExists`.
pub async fn concurrent_inserts_of_one_code_create_one_record<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let tasks: Vec<Boxed<_>> = (1..=TASKS)
        .map(|n| {
            let store = store.clone();
            Box::pin(async move {
                let mut p = product(n);
                p.code = parse("contended");
                let ev = system_event("product.created", "product", p.id.as_str(), p.created_at);
                store.insert_product(&p, vec![ev]).await
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let mut won = 0;
    for r in results {
        match r {
            Ok(()) => won += 1,
            Err(e) => super::expect_already_exists(
                Err::<(), _>(e),
                "concurrent insert_product with one code",
            ),
        }
    }
    assert_eq!(
        won, 1,
        "exactly one of 32 concurrent inserts of one code succeeds"
    );
    assert_eq!(
        ok(store.list_products(Limit::default()).await, "list_products").len(),
        1
    );
    assert_eq!(
        events_of_type(&store, "product.created").await.len(),
        1,
        "only the winner's event is appended"
    );
}

/// 32 tasks append 5 events each at once: 160 events with distinct, strictly ordered
/// sequences, each task's events in its own order.
pub async fn concurrent_appends_get_distinct_sequences<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let tasks: Vec<Boxed<_>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            Box::pin(async move {
                let events = (0..5)
                    .map(|j| {
                        system_event(&format!("step.{j}"), "task", &format!("task-{i}"), at(1))
                    })
                    .collect();
                ok(store.append_events(events).await, "append_events");
            }) as Boxed<_>
        })
        .collect();
    run_concurrently(&spawner, tasks).await;
    let all = super::fixtures::all_events(&store).await;
    assert_eq!(all.len(), 160, "every appended event is stored once");
    for w in all.windows(2) {
        assert!(
            w[0].sequence < w[1].sequence,
            "sequences are distinct and strictly increasing"
        );
    }
    for i in 0..TASKS {
        let mine: Vec<_> = all
            .iter()
            .filter(|e| e.resource_id.as_deref() == Some(format!("task-{i}").as_str()))
            .map(|e| e.event_type.clone())
            .collect();
        assert_eq!(
            mine,
            (0..5).map(|j| format!("step.{j}")).collect::<Vec<_>>(),
            "one append's events keep their order"
        );
    }
}

/// 32 sweeps at once over two licenses with silent devices (as several instances' sweeps
/// race): each lists the silent licenses and releases under the license's lock. Every
/// device is released exactly once: one `device.released` each, the seats freed, and the
/// counts right.
pub async fn concurrent_sweeps_release_each_silent_device_once<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const DEVICES: u32 = 6;
    let heartbeat = |p: &mut crate::model::Policy| {
        p.max_activations = DEVICES;
        p.device_heartbeat_minutes = Some(5);
    };
    let licenses = [
        seed(&store, 1, LicenseType::Perpetual, heartbeat)
            .await
            .license
            .id,
        seed(&store, 2, LicenseType::Perpetual, heartbeat)
            .await
            .license
            .id,
    ];
    for (l, id) in licenses.iter().enumerate() {
        for i in 0..DEVICES {
            let n = l as u32 * DEVICES + i;
            let device = parse(&format!("dev_{n:04}"));
            activate(&store, id, &format!("fp-{n}"), device, t0())
                .await
                .expect("activate");
        }
    }
    let margin = chrono::Duration::minutes(1);
    let later = at(3600);
    let tasks: Vec<Boxed<usize>> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            Box::pin(async move {
                let ids = ok(
                    store.silent_device_licenses(later, margin, 10).await,
                    "silent_device_licenses",
                );
                let mut released = 0;
                for id in ids {
                    let devices = ok(
                        store
                            .transact_license(by_id(&id), move |l| {
                                let plan =
                                    device_heartbeat::release_silent(l.aggregate, margin, later);
                                decision(l.aggregate, later, Ok(plan))
                            })
                            .await,
                        "transact_license",
                    )
                    .unwrap_or_default();
                    released += devices.len();
                }
                released
            }) as Boxed<usize>
        })
        .collect();
    let released: usize = run_concurrently(&spawner, tasks).await.into_iter().sum();
    assert_eq!(
        released,
        2 * DEVICES as usize,
        "every silent device released once across all sweeps"
    );
    assert_eq!(
        events_of_type(&store, "device.released").await.len(),
        2 * DEVICES as usize,
        "one device.released per device"
    );
    for id in &licenses {
        let license = ok(store.get_license(id).await, "get_license");
        assert_eq!(
            license.active_device_count, 0,
            "every seat freed, counted once"
        );
        let devices = ok(
            store.list_devices(id, Limit::new(Some(50))).await,
            "list_devices",
        );
        assert!(devices.iter().all(|d| d.status == DeviceStatus::Expired));
    }
    assert!(
        ok(
            store.silent_device_licenses(later, margin, 10).await,
            "listed"
        )
        .is_empty(),
        "nothing left to release"
    );
}

/// 32 concurrent checkouts, half of a feature's own pool of 2 and half of the license's pool
/// of 5: exactly 2 and 5 succeed, the pools never borrow from each other, and the stored
/// leases say which pool each holds.
pub async fn concurrent_checkouts_hold_each_pool_apart<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_floating_users = Some(5);
    })
    .await;
    metered_feature(&store, &s, 1, "render", None, |r| {
        r.floating_seats = Some(2);
    })
    .await;
    let tasks: Vec<Boxed<(bool, Result<FloatingCheckoutData, Denial>)>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let id = s.license.id.clone();
            let in_feature = i % 2 == 0;
            Box::pin(async move {
                let feature = in_feature.then_some("render");
                let fp = format!("fp-{i}");
                let r = super::fixtures::checkout_in(&store, &id, &fp, i, feature, t0()).await;
                (in_feature, r)
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let (mut feature_won, mut license_won) = (0, 0);
    for (in_feature, r) in &results {
        match r {
            Ok(_) if *in_feature => feature_won += 1,
            Ok(_) => license_won += 1,
            Err(d) => assert!(
                d.has(DenialCode::FloatingPoolExhausted),
                "the only acceptable refusal is FLOATING_POOL_EXHAUSTED, got {d}"
            ),
        }
    }
    assert_eq!(feature_won, 2, "exactly the feature's 2 seats");
    assert_eq!(license_won, 5, "exactly the license's 5 seats");
    let agg = load(&store, by_id(&s.license.id)).await;
    let in_pool = |feature: bool| {
        agg.live_leases(t0())
            .filter(|l| l.feature_code.is_some() == feature)
            .count()
    };
    assert_eq!((in_pool(true), in_pool(false)), (2, 5), "stored by pool");
}
