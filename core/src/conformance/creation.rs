//! Creating licenses in bulk: `insert_licenses` writes every license, its events and the
//! idempotency record together or nothing, and `find_idempotency` reads the record back;
//! concurrent creations under one idempotency key write once.

use std::future::Future;
use std::pin::Pin;

use crate::model::{License, LicenseType};
use crate::store::{
    EventQuery, IdempotencyKey, IdempotencyRecord, LicenseQuery, Limit, NewLicenses, Store,
    StoreError, StoreResult,
};

use super::fixtures::{license, seed, system_event, t0};
use super::{Spawner, expect_already_exists, ok, run_concurrently};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

fn record(key: &str, body: &[u8]) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey {
            scope: "create:api_key:key_1".into(),
            key: key.into(),
        },
        request_hash: [7; 32],
        status: 201,
        body: body.to_vec(),
        created_at: t0(),
    }
}

fn events_for(licenses: &[License]) -> Vec<crate::store::NewEvent> {
    licenses
        .iter()
        .map(|l| system_event("license.created", "license", l.id.as_str(), t0()))
        .collect()
}

async fn count<S: Store>(store: &S) -> usize {
    ok(
        store
            .list_licenses(&LicenseQuery {
                limit: Limit::new(Some(200)),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses",
    )
    .len()
}

async fn event_count<S: Store>(store: &S) -> usize {
    let q = EventQuery {
        event_type: Some("license.created".into()),
        limit: Limit::new(Some(200)),
        ..EventQuery::default()
    };
    ok(store.list_events(&q).await, "list_events").events.len()
}

/// Licenses inserted together are all there with their events and record, whose body reads
/// back as written; a batch with one taken key hash, one taken idempotency key or one missing
/// reference writes none of its licenses, events or record.
pub async fn insert_licenses_is_all_or_nothing<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let batch: Vec<License> = (10..13).map(|n| license(&s.policy, n)).collect();
    let secret_body = br#"{"data":[{"license_key":"lsk_secret"}]}"#;
    ok(
        store
            .insert_licenses(
                NewLicenses::of(&batch),
                events_for(&batch),
                Some(record("k-1", secret_body)),
            )
            .await,
        "insert_licenses",
    );
    assert_eq!(
        count(&store).await,
        4,
        "every license of the batch is stored"
    );
    for l in &batch {
        assert_eq!(&ok(store.get_license(&l.id).await, "get_license"), l);
    }
    assert_eq!(event_count(&store).await, 3, "with its events");
    let found = ok(
        store.find_idempotency(&record("k-1", b"").key).await,
        "find_idempotency",
    );
    assert_eq!(
        found,
        Some(record("k-1", secret_body)),
        "the record reads back as written, body included"
    );
    assert_eq!(
        ok(
            store.find_idempotency(&record("k-none", b"").key).await,
            "find_idempotency"
        ),
        None
    );

    // A taken key hash in the batch: nothing of it.
    let mut clash = license(&s.policy, 20);
    clash.key_hash = batch[0].key_hash;
    let partial = vec![license(&s.policy, 21), clash];
    expect_already_exists(
        store
            .insert_licenses(
                NewLicenses::of(&partial),
                events_for(&partial),
                Some(record("k-2", b"x")),
            )
            .await,
        "insert_licenses with a taken key hash",
    );
    // Two of the batch sharing one id: nothing either.
    let twice = vec![license(&s.policy, 22), license(&s.policy, 22)];
    expect_already_exists(
        store
            .insert_licenses(NewLicenses::of(&twice), vec![], None)
            .await,
        "insert_licenses with one id twice",
    );
    // A taken idempotency key: nothing.
    let fresh = vec![license(&s.policy, 23)];
    match store
        .insert_licenses(
            NewLicenses::of(&fresh),
            events_for(&fresh),
            Some(record("k-1", b"other")),
        )
        .await
    {
        Err(StoreError::AlreadyExists {
            entity: "idempotency_record",
            ..
        }) => {}
        other => {
            panic!("a taken idempotency key is AlreadyExists idempotency_record, got {other:?}")
        }
    }
    // A missing policy: nothing.
    let mut orphan = license(&s.policy, 24);
    orphan.policy_id = super::fixtures::parse("pol_9999");
    let orphans = vec![license(&s.policy, 25), orphan];
    match store
        .insert_licenses(NewLicenses::of(&orphans), vec![], None)
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("a missing reference is NotFound, got {other:?}"),
    }
    assert_eq!(count(&store).await, 4, "no refused batch wrote a license");
    assert_eq!(event_count(&store).await, 3, "nor an event");
    assert!(
        ok(
            store.find_idempotency(&record("k-2", b"").key).await,
            "find_idempotency"
        )
        .is_none(),
        "nor its idempotency record"
    );
    assert_eq!(
        ok(
            store.find_idempotency(&record("k-1", b"").key).await,
            "find_idempotency"
        ),
        Some(record("k-1", secret_body)),
        "a refused batch leaves the record it collided with as it was"
    );
}

/// Concurrent batches under one idempotency key: exactly one is written.
pub async fn concurrent_creations_under_one_key_write_once<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const TASKS: u32 = 32;
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let tasks: Vec<Boxed<StoreResult<()>>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let batch: Vec<License> = (0..3)
                .map(|j| license(&s.policy, 100 + i * 3 + j))
                .collect();
            Box::pin(async move {
                store
                    .insert_licenses(
                        NewLicenses::of(&batch),
                        events_for(&batch),
                        Some(record("race", b"body")),
                    )
                    .await
            }) as Boxed<_>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let mut written = 0;
    for r in results {
        match r {
            Ok(()) => written += 1,
            Err(StoreError::AlreadyExists {
                entity: "idempotency_record",
                ..
            }) => {}
            Err(e) => panic!("each batch is written or refuses the taken key, got {e:?}"),
        }
    }
    assert_eq!(written, 1, "one batch under one key");
    assert_eq!(count(&store).await, 1 + 3, "and only its licenses");
    assert_eq!(event_count(&store).await, 3, "and only its events");
}

/// Feature assignments inserted with their licenses are part of each one's aggregate.
pub async fn licenses_inserted_with_features_load_them<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let f = super::fixtures::feature(&s.product, 1, "export");
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    let batch: Vec<License> = (10..12).map(|n| license(&s.policy, n)).collect();
    let assigned: Vec<_> = batch
        .iter()
        .map(|l| super::fixtures::license_feature(l, &f, Some(5)))
        .collect();
    ok(
        store
            .insert_licenses(
                NewLicenses::of(&batch).with_features(&assigned),
                vec![],
                None,
            )
            .await,
        "insert_licenses with features",
    );
    for (l, a) in batch.iter().zip(&assigned) {
        let agg = super::fixtures::load(&store, super::fixtures::by_id(&l.id)).await;
        assert_eq!(
            agg.features,
            vec![a.clone()],
            "each license has its own assignment"
        );
    }
    // An assignment of a license not in the batch: nothing.
    let stray = super::fixtures::license_feature(&s.license, &f, None);
    let more = vec![license(&s.policy, 13)];
    match store
        .insert_licenses(NewLicenses::of(&more).with_features(&[stray]), vec![], None)
        .await
    {
        Err(StoreError::NotFound { .. }) | Err(StoreError::Conflict { .. }) => {}
        other => panic!("an assignment of a license outside the batch is refused, got {other:?}"),
    }
    assert_eq!(count(&store).await, 3, "and its batch is not written");
}

/// Templates round trip, list per product newest first, need their product and policy, and
/// keep them from being deleted.
pub async fn templates_round_trip_and_hold_their_references<S: Store>(store: S) {
    use crate::model::LicenseTemplate;
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let f = super::fixtures::feature(&s.product, 1, "export");
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    // A policy only templates use, so deleting it conflicts because of them alone.
    let unused = super::fixtures::policy(&s.product, 2, LicenseType::Perpetual);
    ok(store.insert_policy(&unused, vec![]).await, "insert_policy");
    let template = |n: u32| LicenseTemplate {
        id: super::fixtures::parse(&format!("ltpl_{n:04}")),
        product_id: s.product.id.clone(),
        name: format!("Template {n}"),
        policy_id: unused.id.clone(),
        duration_days: Some(30),
        features: vec![super::fixtures::assign_request(&f, Some(10))],
        metadata: super::fixtures::metadata(n),
        custom_fields: Vec::new(),
        created_at: super::fixtures::at(n.into()),
        updated_at: super::fixtures::at(n.into()),
    };
    let (a, b) = (template(1), template(2));
    for t in [&a, &b] {
        ok(store.insert_template(t, vec![]).await, "insert_template");
    }
    assert_eq!(ok(store.get_template(&a.id).await, "get_template"), a);
    let listed = ok(
        store
            .list_templates(&s.product.id, Limit::new(Some(10)))
            .await,
        "list_templates",
    );
    assert_eq!(listed, vec![b.clone(), a.clone()], "newest first");
    let mut changed = a.clone();
    changed.name = "Renamed".into();
    changed.duration_days = None;
    ok(
        store.update_template(&changed, vec![]).await,
        "update_template",
    );
    assert_eq!(ok(store.get_template(&a.id).await, "get_template"), changed);
    expect_already_exists(
        store.insert_template(&a, vec![]).await,
        "insert_template twice",
    );
    let mut orphan = template(3);
    orphan.policy_id = super::fixtures::parse("pol_9999");
    super::expect_not_found(
        store.insert_template(&orphan, vec![]).await,
        "insert_template",
    );
    super::expect_not_found(
        store
            .get_template(&super::fixtures::parse("ltpl_9999"))
            .await,
        "get_template",
    );
    super::expect_not_found(
        store.update_template(&template(4), vec![]).await,
        "update_template of a missing template",
    );
    super::expect_conflict(
        store.delete_policy(&unused.id, vec![]).await,
        "delete_policy used by a template",
    );
    ok(
        store.delete_template(&a.id, vec![]).await,
        "delete_template",
    );
    ok(
        store.delete_template(&b.id, vec![]).await,
        "delete_template",
    );
    super::expect_not_found(
        store.delete_template(&a.id, vec![]).await,
        "delete_template twice",
    );
    ok(
        store.delete_policy(&unused.id, vec![]).await,
        "delete_policy once no template uses it",
    );
}

/// Custom field values inserted with their licenses are listed on each; a value of a missing
/// definition, or of a license not in the batch, writes none of the batch.
pub async fn licenses_inserted_with_custom_values_list_them<S: Store>(store: S) {
    use super::fixtures::{custom_field, custom_value};
    use crate::model::{CustomFieldResourceType, CustomFieldValueType, CustomValue};

    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let tier = custom_field(
        &s.product,
        1,
        "tier",
        CustomFieldResourceType::License,
        CustomFieldValueType::String,
    );
    ok(
        store.insert_custom_field(&tier, vec![]).await,
        "insert_custom_field",
    );
    let batch: Vec<License> = (10..12).map(|n| license(&s.policy, n)).collect();
    let values: Vec<_> = batch
        .iter()
        .map(|l| {
            custom_value(
                &tier,
                l.id.as_str(),
                CustomValue::String("gold".into()),
                t0(),
            )
        })
        .collect();
    ok(
        store
            .insert_licenses(
                NewLicenses::of(&batch).with_custom_values(&values),
                vec![],
                None,
            )
            .await,
        "insert_licenses with custom values",
    );
    for (l, v) in batch.iter().zip(&values) {
        let listed = ok(
            store
                .list_custom_values(
                    CustomFieldResourceType::License,
                    l.id.as_str(),
                    Limit::default(),
                )
                .await,
            "list_custom_values",
        );
        assert_eq!(
            listed,
            std::slice::from_ref(v),
            "each license has its value"
        );
    }

    let more: Vec<License> = (12..14).map(|n| license(&s.policy, n)).collect();
    let mut missing = custom_value(
        &tier,
        more[0].id.as_str(),
        CustomValue::String("x".into()),
        t0(),
    );
    missing.definition_id = super::fixtures::parse("cf_missing");
    match store
        .insert_licenses(
            NewLicenses::of(&more).with_custom_values(&[missing]),
            vec![],
            None,
        )
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("a value of a missing definition is NotFound, got {other:?}"),
    }
    let stray = custom_value(
        &tier,
        "lic_elsewhere",
        CustomValue::String("x".into()),
        t0(),
    );
    match store
        .insert_licenses(
            NewLicenses::of(&more).with_custom_values(&[stray]),
            vec![],
            None,
        )
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("a value of a license not in the batch is NotFound, got {other:?}"),
    }
    assert_eq!(count(&store).await, 3, "neither batch wrote a license");
}
