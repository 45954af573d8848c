//! [`LicenseStore`](crate::store::LicenseStore): licenses round-trip and filter; key hashes
//! are unique; `transact_license` loads what the contract names, calls the closure exactly
//! once, and applies mutations, events and the idempotency record all together or not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use semver::Version;

use crate::crypto::SecretHash;
use crate::model::{
    AssignedUser, ConsumptionRecord, Device, DeviceStatus, LicenseFeature, LicenseStatus,
    LicenseType, UserId,
};
use crate::rules::{LicenseAggregate, Mutation, activation};
use crate::store::{
    AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, LicenseQuery, LicenseSelector,
    Limit, Store,
};

use super::fixtures::{
    Seeded, activate, all_events, at, by_id, customer, deactivate, device, event_types_of, feature,
    lease, license, license_feature, license_key, load, order, parse, policy, product, run, seed,
    subscription, system_event, t0, version,
};
use super::{expect_already_exists, expect_not_found, ok};

fn ids<T>(items: &[T], id: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().map(id).collect()
}

/// Insert, get and list licenses with every filter of [`LicenseQuery`] (the assigned user's
/// too) and the `after` cursor.
pub async fn licenses_round_trip_and_filter<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let timed = policy(&s.product, 2, LicenseType::TimeLimited);
    ok(store.insert_policy(&timed, vec![]).await, "insert_policy");
    let other_product = product(3);
    ok(
        store.insert_product(&other_product, vec![]).await,
        "insert_product",
    );
    let other_policy = policy(&other_product, 3, LicenseType::Perpetual);
    ok(
        store.insert_policy(&other_policy, vec![]).await,
        "insert_policy",
    );
    let c = customer(1);
    ok(store.insert_customer(&c, vec![]).await, "insert_customer");
    let o = order(&s.product, 1);
    ok(store.insert_order(&o, vec![]).await, "insert_order");
    let sub = subscription(&s.product, 1);
    ok(
        store.insert_subscription(&sub, vec![]).await,
        "insert_subscription",
    );

    let mut l2 = license(&timed, 2);
    l2.customer_id = Some(c.id.clone());
    l2.order_id = Some(o.id.clone());
    l2.expires_at = Some(t0() + Duration::days(10));
    l2.status = LicenseStatus::Suspended;
    l2.customer_name = Some("Ada".into());
    l2.starts_at = Some(t0() - Duration::days(1));
    l2.last_validated_at = Some(at(5));
    l2.entitlement_version = 4;
    let (u1, u2): (UserId, UserId) = (parse("usr_0001"), parse("usr_0002"));
    let seat = |user: &UserId, max_activations| AssignedUser {
        user_id: user.clone(),
        max_activations,
        assigned_at: at(3),
    };
    l2.users = vec![seat(&u1, 1), seat(&u2, 3)];
    let mut l3 = license(&timed, 3);
    l3.subscription_id = Some(sub.id.clone());
    l3.expires_at = Some(t0() + Duration::days(40));
    // Shown parts of the key that no other fixture license has, for the key search.
    l3.license_key_prefix = "lsk_ZZ33".into();
    l3.license_key_last4 = "Q3Q3".into();
    l3.users = vec![seat(&u2, 2)];
    let mut l4 = license(&other_policy, 4);
    l4.status = LicenseStatus::Revoked;
    l4.maintenance_expires_at = Some(t0() + Duration::days(365));
    for l in [&l2, &l3, &l4] {
        let ev = system_event("license.created", "license", l.id.as_str(), l.created_at);
        ok(store.insert_license(l, vec![ev]).await, "insert_license");
    }
    let all = vec![l4.clone(), l3.clone(), l2.clone(), s.license.clone()];
    for l in &all {
        assert_eq!(
            &ok(store.get_license(&l.id).await, "get_license"),
            l,
            "get_license returns every field as inserted (key hash and last validation too)"
        );
    }
    let list = |q: LicenseQuery| {
        let store = store.clone();
        async move { ok(store.list_licenses(&q).await, "list_licenses") }
    };
    assert_eq!(
        list(LicenseQuery::default()).await,
        all,
        "licenses are listed newest first"
    );
    let queries = [
        LicenseQuery {
            product_id: Some(s.product.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            policy_id: Some(timed.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            customer_id: Some(c.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            order_id: Some(o.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            subscription_id: Some(sub.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            expires_before: Some(t0() + Duration::days(20)),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            expires_after: Some(t0() + Duration::days(20)),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            expires_before: Some(t0() + Duration::days(10)),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            stored_status: Some(LicenseStatus::Suspended),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            stored_status: Some(LicenseStatus::Active),
            product_id: Some(s.product.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            stored_status: Some(LicenseStatus::Revoked),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            after: Some((l3.created_at, l3.id.clone())),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            after: Some((l3.created_at, l3.id.clone())),
            limit: Limit::new(Some(1)),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            product_id: Some(s.product.id.clone()),
            after: Some((l2.created_at, l2.id.clone())),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            key_hint: Some(l2.license_key_prefix.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            key_hint: Some("lsk_NONE".into()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            user_id: Some(u1.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            user_id: Some(u2.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            user_id: Some(u2.clone()),
            product_id: Some(other_product.id.clone()),
            ..LicenseQuery::default()
        },
        LicenseQuery {
            user_id: Some(parse("usr_0003")),
            ..LicenseQuery::default()
        },
    ];
    assert_eq!(
        ids(
            &list(LicenseQuery {
                user_id: Some(u2.clone()),
                ..LicenseQuery::default()
            })
            .await,
            |l| l.id.to_string()
        ),
        [l3.id.to_string(), l2.id.to_string()],
        "list_licenses by an assigned user finds exactly its licenses"
    );
    for hint in [&l3.license_key_prefix, &l3.license_key_last4] {
        assert_eq!(
            ids(
                &list(LicenseQuery {
                    key_hint: Some(hint.clone()),
                    ..LicenseQuery::default()
                })
                .await,
                |l| l.id.to_string()
            ),
            [l3.id.to_string()],
            "list_licenses by the key's prefix or last four characters ({hint}) finds that license"
        );
    }
    for q in queries {
        let expected: Vec<_> = all
            .iter()
            .filter(|l| q.matches(l) && q.is_after_cursor(l))
            .take(q.limit.as_usize())
            .cloned()
            .collect();
        let got = list(q.clone()).await;
        assert_eq!(
            ids(&got, |l| l.id.to_string()),
            ids(&expected, |l| l.id.to_string()),
            "list_licenses({q:?})"
        );
    }
    assert_eq!(
        event_types_of(&store, l2.id.as_str()).await,
        ["license.created"]
    );
}

/// A license key hash is unique.
pub async fn license_key_hash_is_unique<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let mut dup = license(&s.policy, 2);
    dup.key_hash = s.license.key_hash;
    expect_already_exists(
        store.insert_license(&dup, vec![]).await,
        "insert_license with a taken key hash",
    );
    expect_not_found(
        store.get_license(&dup.id).await,
        "get_license of a refused insert",
    );
    let found = load(
        &store,
        AggregateQuery::new(LicenseSelector::KeyHash(s.license.key_hash)),
    )
    .await;
    assert_eq!(
        found.license.id, s.license.id,
        "the key hash still selects the first license"
    );
}

/// `get_license`, `get_device` and `transact_license` of missing records are `NotFound`;
/// `transact_license` does not call the closure then.
pub async fn missing_licenses_are_not_found_without_calling_the_closure<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    expect_not_found(store.get_license(&parse("lic_9999")).await, "get_license");
    let calls = AtomicUsize::new(0);
    for selector in [
        LicenseSelector::Id(parse("lic_9999")),
        LicenseSelector::KeyHash(SecretHash::of("lsk_not_a_license_key")),
    ] {
        expect_not_found(
            store
                .transact_license(AggregateQuery::new(selector), |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Decision::nothing(())
                })
                .await,
            "transact_license of a missing license",
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "transact_license must not call the closure when the license does not exist"
    );

    let other = license(&s.policy, 2);
    ok(store.insert_license(&other, vec![]).await, "insert_license");
    activate(&store, &other.id, "fp-other", parse("dev_0001"), t0())
        .await
        .expect("a free seat");
    expect_not_found(
        store.get_device(&s.license.id, &parse("dev_9999")).await,
        "get_device of an unknown device",
    );
    expect_not_found(
        store.get_device(&s.license.id, &parse("dev_0001")).await,
        "get_device of another license's device",
    );
}

/// The closure runs exactly once per call and its outcome is returned; the license is
/// selected by id or by the SHA-256 of its key.
pub async fn transact_calls_the_closure_once_by_id_and_by_key_hash<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let second = license(&s.policy, 2);
    ok(
        store.insert_license(&second, vec![]).await,
        "insert_license",
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let selectors = [
        (LicenseSelector::Id(s.license.id.clone()), &s.license),
        (
            LicenseSelector::KeyHash(SecretHash::of(&license_key(1))),
            &s.license,
        ),
        (LicenseSelector::Id(second.id.clone()), &second),
        (
            LicenseSelector::KeyHash(SecretHash::of(&license_key(2))),
            &second,
        ),
    ];
    for (i, (selector, expected)) in selectors.into_iter().enumerate() {
        let counter = Arc::clone(&calls);
        let (license, policy, marker) = ok(
            store
                .transact_license(AggregateQuery::new(selector.clone()), move |l| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Decision::nothing((
                        l.aggregate.license.clone(),
                        l.aggregate.policy.clone(),
                        i * 10,
                    ))
                })
                .await,
            "transact_license",
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            i + 1,
            "transact_license calls the closure exactly once ({selector:?})"
        );
        assert_eq!(marker, i * 10, "the closure's outcome is returned");
        assert_eq!(&license, expected, "{selector:?} selects its license");
        assert_eq!(policy, s.policy, "the aggregate holds the license's policy");
    }
}

/// The aggregate holds the license, its policy, every active or blacklisted device, every
/// device with the query's binding key, every feature assignment and every lease not checked
/// in (expired ones included).
pub async fn transact_loads_the_aggregate_the_contract_names<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = 10;
        p.max_floating_users = Some(5);
    })
    .await;
    let other = license(&s.policy, 2);
    ok(store.insert_license(&other, vec![]).await, "insert_license");
    let l = &s.license;
    let active_a = device(l, 1, "fp-a", DeviceStatus::Active, at(10));
    let active_b = device(l, 2, "fp-b", DeviceStatus::Active, at(11));
    let blacklisted = device(l, 3, "fp-c", DeviceStatus::Blacklisted, at(12));
    let deactivated = device(l, 4, "fp-d", DeviceStatus::Deactivated, at(13));
    let reset = device(l, 5, "fp-e", DeviceStatus::Reset, at(14));
    let foreign = device(&other, 6, "fp-d", DeviceStatus::Active, at(15));
    let f1 = feature(&s.product, 1, "sso");
    let f2 = feature(&s.product, 2, "api");
    for f in [&f1, &f2] {
        ok(store.insert_feature(f, vec![]).await, "insert_feature");
    }
    let lf1 = license_feature(l, &f1, None);
    let lf2 = license_feature(l, &f2, Some(100));
    let live = lease(l, 1, "fp-x", t0(), 30);
    let mut checked_in = lease(l, 2, "fp-y", t0(), 30);
    checked_in.checked_in_at = Some(t0() + Duration::minutes(5));
    let expired = lease(l, 3, "fp-z", t0() - Duration::hours(2), 30);
    let mut license_row = l.clone();
    license_row.active_device_count = 2;
    let mutations = vec![
        Mutation::Device(active_a.clone()),
        Mutation::Device(active_b.clone()),
        Mutation::Device(blacklisted.clone()),
        Mutation::Device(deactivated.clone()),
        Mutation::Device(reset.clone()),
        Mutation::LicenseFeature(lf1.clone()),
        Mutation::LicenseFeature(lf2.clone()),
        Mutation::Lease(live.clone()),
        Mutation::Lease(checked_in.clone()),
        Mutation::Lease(expired.clone()),
        Mutation::License(license_row.clone()),
    ];
    ok(
        store
            .transact_license(by_id(&l.id), move |_| Decision {
                mutations,
                ..Decision::nothing(())
            })
            .await,
        "transact_license",
    );
    ok(
        store
            .transact_license(by_id(&other.id), |_| Decision {
                mutations: vec![Mutation::Device(foreign.clone())],
                ..Decision::nothing(())
            })
            .await,
        "transact_license",
    );

    let has = |agg: &LicenseAggregate, d: &Device| agg.devices.iter().any(|x| x == d);
    let agg = load(&store, by_id(&l.id)).await;
    assert_eq!(
        agg.license, license_row,
        "the aggregate holds the stored license"
    );
    assert_eq!(
        agg.policy, s.policy,
        "the aggregate holds the license's policy"
    );
    for d in [&active_a, &active_b, &blacklisted] {
        assert!(
            has(&agg, d),
            "the aggregate holds every active and blacklisted device, as stored: missing {} ({})",
            d.id,
            d.status
        );
    }
    assert!(
        agg.devices.iter().all(|d| d.license_id == l.id),
        "the aggregate holds only the license's own devices"
    );
    assert_eq!(
        agg.devices.iter().filter(|d| d.id == active_a.id).count(),
        1,
        "each device appears once"
    );
    let mut features = agg.features.clone();
    features.sort_by(|a, b| a.feature_id.cmp(&b.feature_id));
    assert_eq!(
        features,
        vec![lf1, lf2],
        "the aggregate holds every feature assignment"
    );
    for x in [&live, &expired] {
        assert!(
            agg.leases.iter().any(|y| y == x),
            "the aggregate holds every lease not checked in, expired ones too: missing {}",
            x.id
        );
    }
    assert!(
        agg.leases
            .iter()
            .all(|x| x.id != checked_in.id || x.checked_in_at.is_some()),
        "a checked-in lease never comes back as live"
    );
    assert_eq!(agg.live_leases(t0()).count(), 1);
    assert!(agg.consumption.is_none(), "no consumption was asked for");

    for d in [&deactivated, &reset] {
        let agg = load(
            &store,
            AggregateQuery {
                binding_key: Some(d.binding_key.clone()),
                ..by_id(&l.id)
            },
        )
        .await;
        assert!(
            has(&agg, d),
            "the aggregate holds the device with the query's binding key whatever its status ({})",
            d.status
        );
        assert!(
            !agg.devices.iter().any(|x| x.id == foreign.id),
            "another license's device with the same binding key is not loaded"
        );
    }
    let by_key = load(
        &store,
        AggregateQuery {
            binding_key: Some("fp-a".into()),
            ..AggregateQuery::new(LicenseSelector::KeyHash(l.key_hash))
        },
    )
    .await;
    assert!(
        has(&by_key, &active_a),
        "selected by key hash, the aggregate is the same"
    );
}

/// The catalog lookup: `has_catalog` says whether the license's product has any version;
/// `entry` is the version equal (by semver precedence) to the query's `app_version`.
pub async fn transact_looks_up_the_queried_version<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let with = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let without = seed(&store, 2, LicenseType::Perpetual, |_| {}).await;
    let elsewhere = product(3);
    ok(
        store.insert_product(&elsewhere, vec![]).await,
        "insert_product",
    );
    let v1 = version(&with.product, 1, "1.0.0", t0());
    let v12 = version(&with.product, 2, "1.2.0", t0() + Duration::days(3));
    let v2 = version(&with.product, 3, "2.0.0+build.7", t0() + Duration::days(9));
    let v3 = version(&elsewhere, 4, "3.0.0", t0());
    for v in [&v1, &v12, &v2, &v3] {
        ok(store.insert_version(v, vec![]).await, "insert_version");
    }
    let lookup = |s: &Seeded, v: &str| {
        let store = store.clone();
        let query = AggregateQuery {
            app_version: Some(Version::parse(v).expect("valid semver")),
            ..by_id(&s.license.id)
        };
        async move { load(&store, query).await.versions }
    };
    let found = lookup(&with, "1.2.0").await;
    assert!(found.has_catalog, "a product with versions has a catalog");
    assert_eq!(
        found.entry,
        Some(v12),
        "the catalog entry of the queried version"
    );
    let unknown = lookup(&with, "9.9.9").await;
    assert!(unknown.has_catalog && unknown.entry.is_none());
    assert_eq!(
        lookup(&with, "2.0.0").await.entry,
        Some(v2),
        "versions are equal by semver precedence: build metadata is ignored"
    );
    assert_eq!(
        lookup(&with, "3.0.0").await.entry,
        None,
        "another product's version is not in this catalog"
    );
    let none = lookup(&without, "1.0.0").await;
    assert!(
        !none.has_catalog && none.entry.is_none(),
        "a product without versions has no catalog (versions are not enforced)"
    );
}

fn idempotency(scope: &str, key: &str, status: u16) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey {
            scope: scope.to_owned(),
            key: key.to_owned(),
        },
        request_hash: [7; 32],
        status,
        body: br#"{"data":{"ok":true}}"#.to_vec(),
        created_at: t0(),
    }
}

fn consumption(
    l: &crate::model::License,
    event_id: &str,
    f: &crate::model::Feature,
) -> ConsumptionRecord {
    ConsumptionRecord::new(
        l,
        f.id.clone(),
        f.code.clone(),
        event_id.to_owned(),
        3,
        at(30),
    )
}

/// The aggregate holds the consumption with the query's `event_id` and `Loaded` the
/// idempotency record with the query's scope and key; nothing else.
pub async fn transact_loads_the_named_consumption_and_idempotency_records<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let second = license(&s.policy, 2);
    ok(
        store.insert_license(&second, vec![]).await,
        "insert_license",
    );
    let f = feature(&s.product, 1, "api");
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    let mine = consumption(&s.license, "evt-1", &f);
    let mut theirs = consumption(&second, "evt-1", &f);
    theirs.amount = 9;
    let scope = format!("license:{}:consume", s.license.id);
    let idem = idempotency(&scope, "key-1", 201);
    let (m, i) = (mine.clone(), idem.clone());
    ok(
        store
            .transact_license(by_id(&s.license.id), move |_| Decision {
                mutations: vec![Mutation::Consumption(m)],
                idempotency: Some(i),
                ..Decision::nothing(())
            })
            .await,
        "transact_license",
    );
    let t = theirs.clone();
    ok(
        store
            .transact_license(by_id(&second.id), move |_| Decision {
                mutations: vec![Mutation::Consumption(t)],
                ..Decision::nothing(())
            })
            .await,
        "transact_license with an event_id another license used (unique per license only)",
    );

    let look = |event: Option<&str>, key: Option<(&str, &str)>| {
        let store = store.clone();
        let query = AggregateQuery {
            consumption_event_id: event.map(str::to_owned),
            idempotency: key.map(|(scope, key)| IdempotencyKey {
                scope: scope.to_owned(),
                key: key.to_owned(),
            }),
            ..by_id(&s.license.id)
        };
        async move {
            ok(
                store
                    .transact_license(query, |l| {
                        Decision::nothing((l.aggregate.consumption.clone(), l.idempotency.cloned()))
                    })
                    .await,
                "transact_license",
            )
        }
    };
    assert_eq!(
        look(Some("evt-1"), Some((&scope, "key-1"))).await,
        (Some(mine), Some(idem)),
        "the named consumption (this license's) and idempotency record are loaded as stored"
    );
    assert_eq!(
        look(Some("evt-2"), Some((&scope, "key-2"))).await,
        (None, None),
        "unknown event_id and key load nothing"
    );
    assert_eq!(
        look(None, Some(("license:lic_0002:consume", "key-1"))).await,
        (None, None),
        "an idempotency key is looked up within its scope"
    );
}

/// Mutations of every kind, events and the idempotency record of one decision are all
/// applied, and the outcome returned.
pub async fn transact_applies_mutations_events_and_idempotency_together<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_floating_users = Some(3)
    })
    .await;
    let l = &s.license;
    let f = feature(&s.product, 1, "api");
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    let mut changed = l.clone();
    changed.active_device_count = 1;
    changed.times_activated = 1;
    changed.metadata.insert("touched".into(), true.into());
    changed.updated_at = at(40);
    let d = device(l, 1, "fp-1", DeviceStatus::Active, at(40));
    let lf = license_feature(l, &f, Some(10));
    let ls = lease(l, 1, "fp-1", at(40), 30);
    let c = consumption(l, "evt-1", &f);
    let scope = format!("license:{}:activate", l.id);
    let idem = idempotency(&scope, "key-1", 200);
    let events = vec![
        system_event("combined.first", "license", l.id.as_str(), at(40)),
        system_event("combined.second", "license", l.id.as_str(), at(40)),
    ];
    let decision = Decision {
        mutations: vec![
            Mutation::License(changed.clone()),
            Mutation::Device(d.clone()),
            Mutation::LicenseFeature(lf.clone()),
            Mutation::Lease(ls.clone()),
            Mutation::Consumption(c.clone()),
        ],
        events,
        idempotency: Some(idem.clone()),
        outcome: "applied",
    };
    let outcome = ok(
        store
            .transact_license(by_id(&l.id), move |_| decision)
            .await,
        "transact_license",
    );
    assert_eq!(outcome, "applied");
    assert_eq!(ok(store.get_license(&l.id).await, "get_license"), changed);
    assert_eq!(ok(store.get_device(&l.id, &d.id).await, "get_device"), d);
    assert_eq!(
        ok(
            store.list_license_features(&l.id, Limit::default()).await,
            "list_license_features"
        ),
        vec![lf]
    );
    let (agg, loaded_idem) = ok(
        store
            .transact_license(
                AggregateQuery {
                    consumption_event_id: Some("evt-1".into()),
                    idempotency: Some(idem.key.clone()),
                    ..by_id(&l.id)
                },
                |l| Decision::nothing((l.aggregate.clone(), l.idempotency.cloned())),
            )
            .await,
        "transact_license",
    );
    assert_eq!(agg.leases, vec![ls], "the lease was stored");
    assert_eq!(agg.consumption, Some(c), "the consumption was recorded");
    assert_eq!(
        loaded_idem,
        Some(idem),
        "the idempotency record is stored with the effect"
    );
    assert_eq!(
        event_types_of(&store, l.id.as_str()).await,
        ["combined.first", "combined.second"],
        "the decision's events are appended once, in order"
    );
}

/// Snapshot of everything a transaction on `license` can change.
async fn snapshot<S: Store>(
    store: &S,
    query: AggregateQuery,
) -> (LicenseAggregate, Vec<Device>, Vec<LicenseFeature>, usize) {
    let id = match &query.selector {
        Some(LicenseSelector::Id(id)) => id.clone(),
        _ => unreachable!("snapshots select by id"),
    };
    let mut agg = load(store, query).await;
    agg.devices.sort_by(|a, b| a.id.cmp(&b.id));
    agg.features.sort_by(|a, b| a.feature_id.cmp(&b.feature_id));
    agg.leases.sort_by(|a, b| a.id.cmp(&b.id));
    let devices = ok(
        store.list_devices(&id, Limit::new(Some(200))).await,
        "list_devices",
    );
    let features = ok(
        store
            .list_license_features(&id, Limit::new(Some(200)))
            .await,
        "list_license_features",
    );
    (agg, devices, features, all_events(store).await.len())
}

/// A decision recording a consumption whose `event_id` exists fails with `AlreadyExists`
/// and applies nothing of itself: no mutation, no event, no idempotency record.
pub async fn duplicate_consumption_event_id_applies_nothing<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let l = &s.license;
    let f = feature(&s.product, 1, "api");
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    let lf = license_feature(l, &f, Some(10));
    let first = consumption(l, "evt-1", &f);
    let (m1, m2) = (lf.clone(), first.clone());
    ok(
        store
            .transact_license(by_id(&l.id), move |_| Decision {
                mutations: vec![Mutation::LicenseFeature(m1), Mutation::Consumption(m2)],
                ..Decision::nothing(())
            })
            .await,
        "transact_license recording evt-1",
    );
    let scope = format!("license:{}:consume", l.id);
    let query = AggregateQuery {
        consumption_event_id: Some("evt-1".into()),
        idempotency: Some(IdempotencyKey {
            scope: scope.clone(),
            key: "fresh".into(),
        }),
        ..by_id(&l.id)
    };
    let before = snapshot(&store, query.clone()).await;

    let mut changed = l.clone();
    changed.total_consumptions = 99;
    changed.updated_at = at(50);
    let mut used = lf.clone();
    used.total_consumptions = 5;
    used.remaining = Some(5);
    let mut replay = first.clone();
    replay.amount = 5;
    replay.recorded_at = at(50);
    let new_device = device(l, 1, "fp-1", DeviceStatus::Active, at(50));
    for consumption_first in [false, true] {
        let mut mutations = vec![
            Mutation::License(changed.clone()),
            Mutation::Device(new_device.clone()),
            Mutation::LicenseFeature(used.clone()),
            Mutation::Lease(lease(l, 1, "fp-1", at(50), 30)),
        ];
        let dup = Mutation::Consumption(replay.clone());
        if consumption_first {
            mutations.insert(0, dup);
        } else {
            mutations.push(dup);
        }
        let calls = AtomicUsize::new(0);
        let result = store
            .transact_license(by_id(&l.id), |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                Decision {
                    mutations,
                    events: vec![system_event(
                        "conformance.must_not_appear",
                        "license",
                        l.id.as_str(),
                        at(50),
                    )],
                    idempotency: Some(idempotency(&scope, "fresh", 200)),
                    outcome: (),
                }
            })
            .await;
        expect_already_exists(
            result,
            "transact_license recording a consumption event_id that exists",
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let after = snapshot(&store, query.clone()).await;
        assert_eq!(
            after,
            before,
            "a transaction refused with AlreadyExists applies nothing (consumption listed {})",
            if consumption_first { "first" } else { "last" }
        );
        let idem = ok(
            store
                .transact_license(query.clone(), |l| Decision::nothing(l.idempotency.cloned()))
                .await,
            "transact_license",
        );
        assert_eq!(idem, None, "nor its idempotency record");
    }
    expect_not_found(
        store.get_device(&l.id, &new_device.id).await,
        "get_device of a device from a refused transaction",
    );
}

/// A decision storing an idempotency record whose scope and key exist fails with
/// `AlreadyExists` and applies nothing.
pub async fn duplicate_idempotency_key_applies_nothing<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    let l = &s.license;
    let scope = format!("license:{}:activate", l.id);
    let first = idempotency(&scope, "key-1", 200);
    let i = first.clone();
    ok(
        store
            .transact_license(by_id(&l.id), move |_| Decision {
                idempotency: Some(i),
                ..Decision::nothing(())
            })
            .await,
        "transact_license storing key-1",
    );
    let query = AggregateQuery {
        idempotency: Some(first.key.clone()),
        ..by_id(&l.id)
    };
    let before = snapshot(&store, query.clone()).await;
    let mut changed = l.clone();
    changed.active_device_count = 1;
    let new_device = device(l, 1, "fp-1", DeviceStatus::Active, at(50));
    let mut second = idempotency(&scope, "key-1", 409);
    second.request_hash = [9; 32];
    second.body = b"other".to_vec();
    let result = store
        .transact_license(by_id(&l.id), |_| Decision {
            mutations: vec![
                Mutation::License(changed.clone()),
                Mutation::Device(new_device.clone()),
            ],
            events: vec![system_event(
                "conformance.must_not_appear",
                "license",
                l.id.as_str(),
                at(50),
            )],
            idempotency: Some(second),
            outcome: (),
        })
        .await;
    expect_already_exists(
        result,
        "transact_license storing an idempotency key that exists in its scope",
    );
    assert_eq!(
        snapshot(&store, query.clone()).await,
        before,
        "a transaction refused with AlreadyExists applies nothing"
    );
    let stored = ok(
        store
            .transact_license(query, |l| Decision::nothing(l.idempotency.cloned()))
            .await,
        "transact_license",
    );
    assert_eq!(
        stored,
        Some(first),
        "the first record is kept, never overwritten"
    );
    // The same key in another scope is another record.
    ok(
        store
            .transact_license(by_id(&l.id), |_| Decision {
                idempotency: Some(idempotency(&format!("{scope}:other"), "key-1", 200)),
                ..Decision::nothing(())
            })
            .await,
        "transact_license storing the same key in another scope",
    );
}

/// A decision without mutations, events or idempotency record (a check, a denial, a replay)
/// changes nothing.
pub async fn read_only_decisions_write_nothing<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 1).await;
    let l = &s.license;
    activate(&store, &l.id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a free seat");
    let query = by_id(&l.id);
    let before = snapshot(&store, query.clone()).await;

    ok(
        store
            .transact_license(query.clone(), |_| Decision::nothing(()))
            .await,
        "transact_license(nothing)",
    );
    let denied = activate(&store, &l.id, "fp-2", parse("dev_0002"), at(60)).await;
    assert!(denied.is_err(), "the only seat is taken");
    let checked = run(
        &store,
        AggregateQuery {
            binding_key: Some("fp-1".into()),
            ..by_id(&l.id)
        },
        at(61),
        |agg| {
            activation::check(agg, &super::fixtures::binding("fp-1"), None, at(61))
                .map(|read| crate::rules::Plan::read_only(read.outcome))
        },
    )
    .await;
    assert!(checked.is_ok(), "check of an activated device succeeds");
    assert_eq!(
        snapshot(&store, query).await,
        before,
        "read-only decisions (nothing, a denial, a check) write nothing"
    );
}

/// Devices and leases are upserted by id, feature assignments by feature and removed by
/// `RemoveLicenseFeature`; a checked-in lease leaves the aggregate.
pub async fn mutations_upsert_and_remove_by_key<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_floating_users = Some(2)
    })
    .await;
    let l = &s.license;
    let f1 = feature(&s.product, 1, "a");
    let f2 = feature(&s.product, 2, "b");
    for f in [&f1, &f2] {
        ok(store.insert_feature(f, vec![]).await, "insert_feature");
    }
    let d = device(l, 1, "fp-1", DeviceStatus::Active, at(10));
    let lf1 = license_feature(l, &f1, Some(5));
    let lf2 = license_feature(l, &f2, None);
    let ls = lease(l, 1, "fp-1", at(10), 30);
    let apply = |mutations: Vec<Mutation>| {
        let store = store.clone();
        let id = l.id.clone();
        async move {
            ok(
                store
                    .transact_license(by_id(&id), move |_| Decision {
                        mutations,
                        ..Decision::nothing(())
                    })
                    .await,
                "transact_license",
            )
        }
    };
    apply(vec![
        Mutation::Device(d.clone()),
        Mutation::LicenseFeature(lf1.clone()),
        Mutation::LicenseFeature(lf2.clone()),
        Mutation::Lease(ls.clone()),
    ])
    .await;

    let mut d2 = d.clone();
    d2.status = DeviceStatus::Deactivated;
    d2.hostname = None;
    d2.last_validated_at = Some(at(20));
    d2.updated_at = at(20);
    let mut lf1b = lf1.clone();
    lf1b.total_consumptions = 4;
    lf1b.remaining = Some(1);
    lf1b.enabled = false;
    let mut ls2 = ls.clone();
    ls2.last_heartbeat_at = at(20);
    ls2.expires_at = at(20) + Duration::minutes(30);
    apply(vec![
        Mutation::Device(d2.clone()),
        Mutation::LicenseFeature(lf1b.clone()),
        Mutation::Lease(ls2.clone()),
    ])
    .await;
    assert_eq!(
        ok(
            store.list_devices(&l.id, Limit::default()).await,
            "list_devices"
        ),
        vec![d2.clone()],
        "a device mutation replaces the device with the same id"
    );
    assert_eq!(
        ok(
            store.list_license_features(&l.id, Limit::default()).await,
            "list_license_features"
        ),
        vec![lf1b.clone(), lf2.clone()],
        "a feature mutation replaces the assignment of the same feature"
    );
    let agg = load(
        &store,
        AggregateQuery {
            binding_key: Some("fp-1".into()),
            ..by_id(&l.id)
        },
    )
    .await;
    assert_eq!(
        agg.leases,
        vec![ls2.clone()],
        "a lease mutation replaces the lease with the same id"
    );
    assert_eq!(agg.devices, vec![d2]);

    let mut ended = ls2.clone();
    ended.checked_in_at = Some(at(25));
    apply(vec![
        Mutation::Lease(ended),
        Mutation::RemoveLicenseFeature(f2.id.clone()),
    ])
    .await;
    let agg = load(&store, by_id(&l.id)).await;
    assert!(
        agg.live_leases(at(25)).next().is_none(),
        "a checked-in lease holds no slot"
    );
    assert!(
        agg.leases.iter().all(|x| x.checked_in_at.is_some()),
        "a checked-in lease is not loaded as a lease not checked in"
    );
    assert_eq!(
        ok(
            store.list_license_features(&l.id, Limit::default()).await,
            "list_license_features"
        ),
        vec![lf1b],
        "RemoveLicenseFeature removes the assignment"
    );
}

/// `list_devices` and `get_device` read one license's devices; `list_license_features` is
/// ordered by feature code.
pub async fn devices_and_license_features_list<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    let other = license(&s.policy, 2);
    ok(store.insert_license(&other, vec![]).await, "insert_license");
    let l = &s.license;
    for (n, fp) in [(1u32, "fp-1"), (2, "fp-2"), (3, "fp-3")] {
        activate(
            &store,
            &l.id,
            fp,
            parse(&format!("dev_{n:04}")),
            at(n.into()),
        )
        .await
        .expect("a free seat");
    }
    activate(&store, &other.id, "fp-9", parse("dev_0009"), at(9))
        .await
        .expect("a free seat");
    deactivate(&store, &l.id, "fp-2", at(20))
        .await
        .expect("fp-2 is active");
    let devices = ok(
        store.list_devices(&l.id, Limit::default()).await,
        "list_devices",
    );
    assert_eq!(
        ids(&devices, |d| d.id.to_string()),
        ["dev_0003", "dev_0002", "dev_0001"],
        "every device of the license, whatever its status, newest first"
    );
    assert_eq!(devices[1].status, DeviceStatus::Deactivated);
    for d in &devices {
        assert_eq!(&ok(store.get_device(&l.id, &d.id).await, "get_device"), d);
    }
    assert_eq!(
        ok(store.get_license(&l.id).await, "get_license").active_device_count,
        2,
        "the license row carries the count the rules wrote"
    );

    for (n, code) in [(1u32, "zeta"), (2, "alpha"), (3, "mid")] {
        let f = feature(&s.product, n, code);
        ok(store.insert_feature(&f, vec![]).await, "insert_feature");
        super::fixtures::assign(
            &store,
            &l.id,
            &f,
            &super::fixtures::assign_request(&f, None),
            at(30),
        )
        .await
        .expect("assign");
        if n == 1 {
            super::fixtures::assign(
                &store,
                &other.id,
                &f,
                &super::fixtures::assign_request(&f, None),
                at(30),
            )
            .await
            .expect("assign");
        }
    }
    assert_eq!(
        ids(
            &ok(
                store.list_license_features(&l.id, Limit::default()).await,
                "list_license_features"
            ),
            |f| f.feature_code.to_string()
        ),
        ["alpha", "mid", "zeta"],
        "license features are ordered by feature code, other licenses' excluded"
    );
}

/// `purge_idempotency` deletes only records older than its cutoff, at most `limit` a call,
/// and a purged key is unknown afterwards (it can be stored anew).
pub async fn idempotency_records_expire<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let l = &s.license;
    let scope = format!("license:{}:activate", l.id);
    for (key, secs) in [("old-1", 0), ("old-2", 10), ("new", 20)] {
        let mut record = idempotency(&scope, key, 200);
        record.created_at = t0() + Duration::seconds(secs);
        ok(
            store
                .transact_license(by_id(&l.id), move |_| Decision {
                    idempotency: Some(record),
                    ..Decision::nothing(())
                })
                .await,
            "transact_license storing a key",
        );
    }
    let stored = async |key: &str| {
        let query = AggregateQuery {
            idempotency: Some(IdempotencyKey {
                scope: scope.clone(),
                key: key.to_owned(),
            }),
            ..by_id(&l.id)
        };
        ok(
            store
                .transact_license(query, |a| Decision::nothing(a.idempotency.is_some()))
                .await,
            "transact_license",
        )
    };
    let cutoff = t0() + Duration::seconds(15);
    assert_eq!(
        ok(
            store.purge_idempotency(cutoff, 1).await,
            "purge_idempotency"
        ),
        1,
        "at most limit"
    );
    assert_eq!(
        ok(
            store.purge_idempotency(cutoff, 10).await,
            "purge_idempotency"
        ),
        1
    );
    assert_eq!(
        ok(
            store.purge_idempotency(cutoff, 10).await,
            "purge_idempotency"
        ),
        0,
        "nothing older left"
    );
    assert!(
        !stored("old-1").await && !stored("old-2").await,
        "older records are gone"
    );
    assert!(stored("new").await, "a record at or after the cutoff stays");
    // A purged key is a new request: it can be stored again.
    let again = idempotency(&scope, "old-1", 201);
    ok(
        store
            .transact_license(by_id(&l.id), move |_| Decision {
                idempotency: Some(again),
                ..Decision::nothing(())
            })
            .await,
        "transact_license storing a purged key again",
    );
    assert!(stored("old-1").await);
}
