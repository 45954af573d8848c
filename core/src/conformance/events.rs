//! The event log: sequences strictly increase, pages are newest first by `before` cursor with
//! `next_cursor` `None` on the last page, filters are exact, every write appends its events
//! exactly once and a failed write appends none.

use std::collections::BTreeMap;

use crate::model::{
    AuditActorType, ConsumptionRecord, CustomFieldResourceType, CustomFieldValueType, CustomValue,
    Event, KeyStatus, LicenseType,
};
use crate::rules::Mutation;
use crate::store::{
    AggregateQuery, Decision, EventQuery, IdempotencyKey, IdempotencyRecord, LicenseSelector,
    Limit, NewEvent, Store,
};

use super::fixtures::{
    all_events, api_key, at, by_id, custom_field, custom_value, customer, events_of_type, feature,
    license, order, parse, policy, product, seed, signing_key, subscription, system_event, t0,
    version, webhook,
};
use super::{expect_already_exists, expect_conflict, expect_not_found, ok};

fn numbered(n: u32) -> NewEvent {
    let kinds = ["license", "device", "product"];
    let mut e = system_event(
        &format!("test.event_{}", n % 3),
        kinds[(n % 3) as usize],
        &format!("res_{}", n % 4),
        at(n.into()),
    );
    if n.is_multiple_of(2) {
        e.actor_type = AuditActorType::ApiKey;
        e.actor_id = "key_0001".into();
    }
    e.metadata.insert("n".into(), n.into());
    e
}

async fn page<S: Store>(store: &S, query: &EventQuery) -> (Vec<Event>, Option<i64>) {
    let p = ok(store.list_events(query).await, "list_events");
    (p.events, p.next_cursor)
}

fn assert_newest_first(events: &[Event]) {
    for w in events.windows(2) {
        assert!(
            w[0].sequence > w[1].sequence,
            "events are listed newest first (strictly decreasing sequence): {} then {}",
            w[0].sequence,
            w[1].sequence
        );
    }
}

/// What was appended is read back equal; sequences strictly increase in append order, also
/// across calls.
pub async fn appended_events_round_trip_with_increasing_sequences<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    ok(store.append_events(vec![]).await, "append_events(empty)");
    let mut first = numbered(1);
    first.ip_address = Some("203.0.113.7".into());
    let mut third = numbered(3);
    third.resource_id = None;
    let batch = vec![first, numbered(2), third];
    ok(store.append_events(batch.clone()).await, "append_events");
    let stored = all_events(&store).await;
    assert_eq!(stored.len(), 3, "every appended event is stored once");
    for (new, got) in batch.iter().zip(&stored) {
        assert_eq!(
            got,
            &new.clone().into_event(got.sequence),
            "an event reads back as appended, with the store's sequence"
        );
    }
    for w in stored.windows(2) {
        assert!(
            w[0].sequence < w[1].sequence,
            "sequences strictly increase in append order"
        );
    }
    let last = stored[2].sequence;
    ok(
        store.append_events(vec![numbered(4), numbered(5)]).await,
        "append_events",
    );
    let stored = all_events(&store).await;
    assert_eq!(stored.len(), 5);
    assert!(
        stored[3].sequence > last && stored[4].sequence > stored[3].sequence,
        "a later append gets higher sequences"
    );
    assert_newest_first(
        &ok(
            store.list_events(&EventQuery::default()).await,
            "list_events",
        )
        .events,
    );
}

/// Pages of 3 over 7 events: 3, 3, 1, newest first, the last with `next_cursor: None`.
pub async fn events_page_newest_first_by_cursor<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    ok(
        store.append_events((1..=7).map(numbered).collect()).await,
        "append_events",
    );
    let everything = all_events(&store).await;
    let mut expected: Vec<i64> = everything.iter().map(|e| e.sequence).collect();
    expected.reverse();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut query = EventQuery {
        limit: Limit::new(Some(3)),
        ..EventQuery::default()
    };
    loop {
        let (events, next) = page(&store, &query).await;
        assert_newest_first(&events);
        if let Some(before) = query.before {
            assert!(
                events.iter().all(|e| e.sequence < before),
                "`before` returns only lower sequences"
            );
        }
        sizes.push(events.len());
        seen.extend(events.iter().map(|e| e.sequence));
        match next {
            Some(cursor) => {
                assert!(sizes.len() < 10, "paging must end");
                query.before = Some(cursor);
            }
            None => break,
        }
    }
    assert_eq!(
        sizes,
        [3, 3, 1],
        "7 events in pages of 3; next_cursor is None on the last page"
    );
    assert_eq!(
        seen, expected,
        "paging visits every event exactly once, newest first"
    );

    // An arbitrary cursor.
    let (events, _) = page(
        &store,
        &EventQuery {
            before: Some(expected[4]),
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        expected[5..],
        "`before` is exclusive"
    );
}

/// When the last page is exactly full, its `next_cursor` is already `None`.
pub async fn next_cursor_is_none_when_the_last_page_is_full<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let (events, next) = page(&store, &EventQuery::default()).await;
    assert!(
        events.is_empty() && next.is_none(),
        "an empty log is one empty last page"
    );
    ok(
        store.append_events((1..=6).map(numbered).collect()).await,
        "append_events",
    );
    let (events, next) = page(
        &store,
        &EventQuery {
            limit: Limit::new(Some(6)),
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(events.len(), 6);
    assert_eq!(
        next, None,
        "a page holding the oldest event is the last page: next_cursor is None"
    );
    let (events, next) = page(
        &store,
        &EventQuery {
            limit: Limit::new(Some(3)),
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(events.len(), 3);
    let cursor = next.expect("more events remain after the first page");
    let (events, next) = page(
        &store,
        &EventQuery {
            before: Some(cursor),
            limit: Limit::new(Some(3)),
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        next, None,
        "the second of two full pages is the last page: next_cursor is None"
    );
}

/// `event_type`, `resource_type`, `resource_id` and `actor_type` filter exactly, combine, and
/// page with the cursor.
pub async fn events_filter_by_type_resource_and_actor<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let appended: Vec<NewEvent> = (1..=24).map(numbered).collect();
    ok(store.append_events(appended).await, "append_events");
    let everything = all_events(&store).await;
    let filters = [
        EventQuery {
            event_type: Some("test.event_1".into()),
            ..EventQuery::default()
        },
        EventQuery {
            resource_type: Some("device".into()),
            ..EventQuery::default()
        },
        EventQuery {
            resource_id: Some("res_2".into()),
            ..EventQuery::default()
        },
        EventQuery {
            actor_type: Some(AuditActorType::ApiKey),
            ..EventQuery::default()
        },
        EventQuery {
            actor_type: Some(AuditActorType::License),
            ..EventQuery::default()
        },
        EventQuery {
            event_type: Some("test.event_0".into()),
            resource_id: Some("res_3".into()),
            actor_type: Some(AuditActorType::System),
            ..EventQuery::default()
        },
        EventQuery {
            event_type: Some("test.event_0".into()),
            resource_type: Some("license".into()),
            ..EventQuery::default()
        },
        EventQuery {
            event_type: Some("test.event".into()),
            ..EventQuery::default()
        },
    ];
    for filter in filters {
        let mut expected: Vec<i64> = everything
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.sequence)
            .collect();
        expected.reverse();
        let (events, next) = page(&store, &filter).await;
        assert_eq!(
            events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            expected,
            "{filter:?} returns exactly the matching events, newest first"
        );
        assert!(next.is_none());
        // Paging one by one through the filtered events visits the same ones.
        let mut query = EventQuery {
            limit: Limit::new(Some(1)),
            ..filter.clone()
        };
        let mut seen = Vec::new();
        loop {
            let (events, next) = page(&store, &query).await;
            seen.extend(events.iter().map(|e| e.sequence));
            match next {
                Some(c) if seen.len() <= expected.len() => query.before = Some(c),
                Some(_) => panic!("paging {filter:?} does not end"),
                None => break,
            }
        }
        assert_eq!(seen, expected, "filtered paging by cursor ({filter:?})");
    }
}

/// 210 events: the default page is 50, a request for 500 gets 200.
pub async fn event_lists_default_to_50_and_clamp_to_200<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    ok(
        store.append_events((1..=210).map(numbered).collect()).await,
        "append_events",
    );
    let (events, next) = page(&store, &EventQuery::default()).await;
    assert_eq!(events.len(), 50, "the default page size is 50");
    assert!(next.is_some());
    let (events, next) = page(
        &store,
        &EventQuery {
            limit: Limit::new(Some(500)),
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(events.len(), 200, "a limit above 200 is clamped to 200");
    assert_newest_first(&events);
    let (rest, last) = page(
        &store,
        &EventQuery {
            before: next,
            limit: Limit::new(Some(500)),
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(rest.len(), 10);
    assert!(last.is_none());
}

fn pair(tag: &str) -> Vec<NewEvent> {
    vec![
        system_event(&format!("write.{tag}.1"), "test", tag, at(1)),
        system_event(&format!("write.{tag}.2"), "test", tag, at(1)),
    ]
}

/// Every write method appends the events it is given exactly once, in order.
pub async fn write_methods_append_their_events_exactly_once<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let p = product(1);
    ok(
        store.insert_product(&p, pair("insert_product")).await,
        "insert_product",
    );
    ok(
        store.update_product(&p, pair("update_product")).await,
        "update_product",
    );
    let v = version(&p, 1, "1.0.0", t0());
    ok(
        store.insert_version(&v, pair("insert_version")).await,
        "insert_version",
    );
    let pol = policy(&p, 1, LicenseType::Perpetual);
    ok(
        store.insert_policy(&pol, pair("insert_policy")).await,
        "insert_policy",
    );
    ok(
        store.update_policy(&pol, pair("update_policy")).await,
        "update_policy",
    );
    let spare = policy(&p, 2, LicenseType::Trial);
    ok(store.insert_policy(&spare, vec![]).await, "insert_policy");
    ok(
        store.delete_policy(&spare.id, pair("delete_policy")).await,
        "delete_policy",
    );
    let f = feature(&p, 1, "sso");
    ok(
        store.insert_feature(&f, pair("insert_feature")).await,
        "insert_feature",
    );
    let d = custom_field(
        &p,
        1,
        "tier",
        CustomFieldResourceType::Customer,
        CustomFieldValueType::String,
    );
    ok(
        store
            .insert_custom_field(&d, pair("insert_custom_field"))
            .await,
        "insert_custom_field",
    );
    ok(
        store
            .update_custom_field(&d, pair("update_custom_field"))
            .await,
        "update_custom_field",
    );
    let c = customer(1);
    ok(
        store.insert_customer(&c, pair("insert_customer")).await,
        "insert_customer",
    );
    ok(
        store.update_customer(&c, pair("update_customer")).await,
        "update_customer",
    );
    let value = custom_value(&d, c.id.as_str(), CustomValue::String("x".into()), at(2));
    ok(
        store
            .put_custom_value(&d.id, c.id.as_str(), Some(&value), pair("put_custom_value"))
            .await,
        "put_custom_value",
    );
    ok(
        store
            .put_custom_value(&d.id, c.id.as_str(), None, pair("clear_custom_value"))
            .await,
        "put_custom_value(None)",
    );
    ok(
        store
            .delete_custom_field(&d.id, pair("delete_custom_field"))
            .await,
        "delete_custom_field",
    );
    let c2 = customer(2);
    ok(store.insert_customer(&c2, vec![]).await, "insert_customer");
    ok(
        store.delete_customer(&c2.id, pair("delete_customer")).await,
        "delete_customer",
    );
    let o = order(&p, 1);
    ok(
        store.insert_order(&o, pair("insert_order")).await,
        "insert_order",
    );
    ok(
        store.update_order(&o, pair("update_order")).await,
        "update_order",
    );
    let s = subscription(&p, 1);
    ok(
        store
            .insert_subscription(&s, pair("insert_subscription"))
            .await,
        "insert_subscription",
    );
    ok(
        store
            .update_subscription(&s, pair("update_subscription"))
            .await,
        "update_subscription",
    );
    let k = api_key(1);
    ok(
        store.insert_api_key(&k, pair("insert_api_key")).await,
        "insert_api_key",
    );
    let w = webhook(1);
    ok(
        store
            .insert_webhook(&w, "whsec_1", pair("insert_webhook"))
            .await,
        "insert_webhook",
    );
    ok(
        store.update_webhook(&w, None, pair("update_webhook")).await,
        "update_webhook",
    );
    ok(
        store.delete_webhook(&w.id, pair("delete_webhook")).await,
        "delete_webhook",
    );
    ok(
        store
            .replace_signing_keys(
                None,
                None,
                &[signing_key("kid_1", 1, KeyStatus::Active)],
                pair("replace_signing_keys"),
            )
            .await,
        "replace_signing_keys",
    );
    let l = license(&pol, 1);
    ok(
        store.insert_license(&l, pair("insert_license")).await,
        "insert_license",
    );
    ok(
        store
            .transact_license(by_id(&l.id), |_| Decision {
                events: pair("transact_license"),
                ..Decision::nothing(())
            })
            .await,
        "transact_license",
    );
    ok(
        store.append_events(pair("append_events")).await,
        "append_events",
    );
    let p2 = product(2);
    ok(store.insert_product(&p2, vec![]).await, "insert_product");
    ok(
        store.delete_product(&p2.id, pair("delete_product")).await,
        "delete_product",
    );

    let tags = [
        "insert_product",
        "update_product",
        "insert_version",
        "insert_policy",
        "update_policy",
        "delete_policy",
        "insert_feature",
        "insert_custom_field",
        "update_custom_field",
        "insert_customer",
        "update_customer",
        "put_custom_value",
        "clear_custom_value",
        "delete_custom_field",
        "delete_customer",
        "insert_order",
        "update_order",
        "insert_subscription",
        "update_subscription",
        "insert_api_key",
        "insert_webhook",
        "update_webhook",
        "delete_webhook",
        "replace_signing_keys",
        "insert_license",
        "transact_license",
        "append_events",
        "delete_product",
    ];
    let stored = all_events(&store).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &stored {
        *counts.entry(e.event_type.as_str()).or_default() += 1;
    }
    let expected: Vec<String> = tags
        .iter()
        .flat_map(|t| [format!("write.{t}.1"), format!("write.{t}.2")])
        .collect();
    for t in &expected {
        assert_eq!(
            counts.get(t.as_str()).copied().unwrap_or(0),
            1,
            "the event {t} of a successful write appears exactly once"
        );
    }
    assert_eq!(
        stored
            .iter()
            .map(|e| e.event_type.clone())
            .collect::<Vec<_>>(),
        expected,
        "events appear in the order of their writes and in the order given"
    );
}

fn marker(what: &str) -> Vec<NewEvent> {
    vec![system_event(
        "conformance.must_not_appear",
        "test",
        what,
        at(9),
    )]
}

/// A write that fails (NotFound, AlreadyExists, Conflict) appends none of its events.
pub async fn failed_writes_append_no_events<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let p = &s.product;
    let f = feature(p, 1, "sso");
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    let c = customer(1);
    ok(store.insert_customer(&c, vec![]).await, "insert_customer");
    let k = api_key(1);
    ok(store.insert_api_key(&k, vec![]).await, "insert_api_key");
    let v = version(p, 1, "1.0.0", t0());
    ok(store.insert_version(&v, vec![]).await, "insert_version");
    let o = order(p, 1);
    ok(store.insert_order(&o, vec![]).await, "insert_order");
    let d = custom_field(
        p,
        1,
        "tier",
        CustomFieldResourceType::License,
        CustomFieldValueType::String,
    );
    ok(
        store.insert_custom_field(&d, vec![]).await,
        "insert_custom_field",
    );

    // AlreadyExists.
    let mut dup_product = product(2);
    dup_product.code = p.code.clone();
    expect_already_exists(
        store.insert_product(&dup_product, marker("p")).await,
        "insert_product",
    );
    let mut dup_policy = policy(p, 2, LicenseType::Trial);
    dup_policy.code = s.policy.code.clone();
    expect_already_exists(
        store.insert_policy(&dup_policy, marker("pol")).await,
        "insert_policy",
    );
    expect_already_exists(
        store
            .insert_feature(&feature(p, 2, "sso"), marker("f"))
            .await,
        "insert_feature",
    );
    let mut dup_customer = customer(2);
    dup_customer.code = c.code.clone();
    expect_already_exists(
        store.insert_customer(&dup_customer, marker("c")).await,
        "insert_customer",
    );
    let mut dup_key = api_key(2);
    dup_key.token_hash = k.token_hash;
    expect_already_exists(
        store.insert_api_key(&dup_key, marker("k")).await,
        "insert_api_key",
    );
    expect_already_exists(
        store
            .insert_version(&version(p, 2, "1.0.0", t0()), marker("v"))
            .await,
        "insert_version",
    );
    let mut dup_order = order(p, 2);
    dup_order.external_id = o.external_id.clone();
    expect_already_exists(
        store.insert_order(&dup_order, marker("o")).await,
        "insert_order",
    );
    let mut dup_license = license(&s.policy, 2);
    dup_license.key_hash = s.license.key_hash;
    expect_already_exists(
        store.insert_license(&dup_license, marker("l")).await,
        "insert_license",
    );
    let mut dup_field = custom_field(
        p,
        2,
        "tier",
        CustomFieldResourceType::License,
        CustomFieldValueType::Integer,
    );
    dup_field.name = "dup".into();
    expect_already_exists(
        store.insert_custom_field(&dup_field, marker("cf")).await,
        "insert_custom_field",
    );

    // NotFound.
    expect_not_found(
        store.update_product(&product(9), marker("p9")).await,
        "update_product",
    );
    expect_not_found(
        store.delete_customer(&customer(9).id, marker("c9")).await,
        "delete_customer",
    );
    expect_not_found(
        store.update_webhook(&webhook(9), None, marker("w9")).await,
        "update_webhook",
    );
    expect_not_found(
        store.delete_webhook(&webhook(9).id, marker("w9")).await,
        "delete_webhook",
    );
    let value = custom_value(&d, "lic_0001", CustomValue::String("x".into()), at(3));
    expect_not_found(
        store
            .put_custom_value(&parse("cf_9999"), "lic_0001", Some(&value), marker("cv"))
            .await,
        "put_custom_value",
    );
    let missing = AggregateQuery::new(LicenseSelector::Id(parse("lic_9999")));
    expect_not_found(
        store
            .transact_license(missing, |_| Decision {
                events: marker("transact"),
                ..Decision::nothing(())
            })
            .await,
        "transact_license of a missing license",
    );

    // Conflict.
    expect_conflict(
        store.delete_product(&p.id, marker("p1")).await,
        "delete_product",
    );
    expect_conflict(
        store.delete_policy(&s.policy.id, marker("pol1")).await,
        "delete_policy",
    );
    expect_conflict(
        store
            .replace_signing_keys(
                None,
                Some("kid_none"),
                &[signing_key("kid_1", 1, KeyStatus::Active)],
                marker("keys"),
            )
            .await,
        "replace_signing_keys",
    );

    // A transaction refused for a duplicate consumption.
    let record = ConsumptionRecord::new(
        &s.license,
        f.id.clone(),
        f.code.clone(),
        "evt-1".into(),
        1,
        t0(),
    );
    ok(
        store
            .transact_license(by_id(&s.license.id), |_| Decision {
                mutations: vec![Mutation::Consumption(record.clone())],
                ..Decision::nothing(())
            })
            .await,
        "transact_license recording a consumption",
    );
    expect_already_exists(
        store
            .transact_license(by_id(&s.license.id), |_| Decision {
                mutations: vec![Mutation::Consumption(record.clone())],
                events: marker("consumption"),
                ..Decision::nothing(())
            })
            .await,
        "transact_license with a duplicate consumption event_id",
    );
    let idem = IdempotencyRecord {
        key: IdempotencyKey {
            scope: "test".into(),
            key: "k1".into(),
        },
        request_hash: [1; 32],
        status: 200,
        body: b"{}".to_vec(),
        created_at: t0(),
    };
    ok(
        store
            .transact_license(by_id(&s.license.id), |_| Decision {
                idempotency: Some(idem.clone()),
                ..Decision::nothing(())
            })
            .await,
        "transact_license storing an idempotency record",
    );
    expect_already_exists(
        store
            .transact_license(by_id(&s.license.id), |_| Decision {
                idempotency: Some(idem.clone()),
                events: marker("idempotency"),
                ..Decision::nothing(())
            })
            .await,
        "transact_license with a duplicate idempotency key",
    );

    let leaked = events_of_type(&store, "conformance.must_not_appear").await;
    assert!(
        leaked.is_empty(),
        "failed writes appended events: {:?}",
        leaked
            .iter()
            .map(|e| e.resource_id.clone())
            .collect::<Vec<_>>()
    );
}
