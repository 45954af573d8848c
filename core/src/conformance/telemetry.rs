//! Telemetry records: numbered in the order received, stored as given, paged newest first by
//! cursor, purged by age; concurrent inserts get distinct numbers.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value, json};

use crate::model::{LicenseId, LicenseType, NewTelemetry, TelemetryId};
use crate::store::{Limit, Store, StoreError};

use super::fixtures::{at, parse, seed};
use super::{Spawner, ok, run_concurrently};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

fn record(license: &LicenseId, seconds: i64, payload: Value) -> NewTelemetry {
    let payload: Map<String, Value> = payload.as_object().cloned().unwrap_or_default();
    let problems = crate::rules::telemetry::check(&payload);
    NewTelemetry {
        license_id: license.clone(),
        received_at: at(seconds),
        well_formed: problems.is_empty(),
        problems,
        payload,
    }
}

/// Inserted records come back equal, with increasing ids; a license's records page newest
/// first by cursor and never show another license's; a missing license is `NotFound`; the
/// purge deletes only records received before its cutoff, at most `limit` per call.
pub async fn telemetry_round_trips_pages_and_purges<S: Store>(store: S) {
    let one = seed(&store, 1, LicenseType::Perpetual, |_| {})
        .await
        .license
        .id;
    let two = seed(&store, 2, LicenseType::Perpetual, |_| {})
        .await
        .license
        .id;
    let sent = [
        record(
            &one,
            10,
            json!({"event": "app.started", "properties": {"n": 1}}),
        ),
        record(&two, 20, json!({"event": "other.license"})),
        record(
            &one,
            30,
            json!({"Event": 1, "nested": {"a": [1, 2, {"b": null}]}}),
        ),
        record(
            &one,
            40,
            json!({"event": "app.stopped", "occurred_at": "2026-11-22T10:00:40Z"}),
        ),
    ];
    let mut stored = Vec::new();
    for r in &sent {
        let s = ok(store.insert_telemetry(r.clone()).await, "insert_telemetry");
        assert_eq!(
            (
                &s.license_id,
                s.received_at,
                s.well_formed,
                &s.problems,
                &s.payload
            ),
            (
                &r.license_id,
                r.received_at,
                r.well_formed,
                &r.problems,
                &r.payload
            ),
            "a record is stored as given"
        );
        stored.push(s);
    }
    assert!(
        stored.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase in the order received"
    );
    assert!(!stored[2].well_formed && stored[2].problems.len() == 3);

    let first = ok(
        store.list_telemetry(&one, None, Limit::new(Some(2))).await,
        "list_telemetry",
    );
    assert_eq!(
        first.records,
        vec![stored[3].clone(), stored[2].clone()],
        "newest first"
    );
    assert_eq!(first.next_cursor, Some(stored[2].id));
    let second = ok(
        store
            .list_telemetry(&one, first.next_cursor, Limit::new(Some(2)))
            .await,
        "list_telemetry",
    );
    assert_eq!(second.records, vec![stored[0].clone()]);
    assert_eq!(second.next_cursor, None, "the last page has no cursor");
    let exact = ok(
        store.list_telemetry(&one, None, Limit::new(Some(3))).await,
        "list_telemetry",
    );
    assert_eq!(exact.next_cursor, None, "a full last page has no cursor");
    let unknown: LicenseId = parse("lic_9999");
    assert!(
        ok(
            store.list_telemetry(&unknown, None, Limit::new(None)).await,
            "list"
        )
        .records
        .is_empty()
    );
    match store
        .insert_telemetry(record(&unknown, 50, json!({"event": "x"})))
        .await
    {
        Err(StoreError::NotFound { entity: "license" }) => {}
        other => panic!("insert_telemetry for a missing license: expected NotFound, got {other:?}"),
    }

    assert_eq!(
        ok(store.purge_telemetry(at(30), 1).await, "purge_telemetry"),
        1,
        "limit"
    );
    assert_eq!(
        ok(store.purge_telemetry(at(30), 10).await, "purge_telemetry"),
        1
    );
    assert_eq!(
        ok(store.purge_telemetry(at(30), 10).await, "purge_telemetry"),
        0
    );
    let left = ok(
        store.list_telemetry(&one, None, Limit::new(None)).await,
        "list",
    );
    assert_eq!(
        left.records,
        vec![stored[3].clone(), stored[2].clone()],
        "only records received before the cutoff went"
    );
}

/// 32 tasks insert at once: 32 distinct ids, every record listed.
pub async fn concurrent_telemetry_inserts_get_distinct_ids<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let license = seed(&store, 1, LicenseType::Perpetual, |_| {})
        .await
        .license
        .id;
    let tasks: Vec<Boxed<TelemetryId>> = (0..32)
        .map(|i| {
            let store = store.clone();
            let r = record(
                &license,
                i,
                json!({"event": "tick", "properties": {"i": i}}),
            );
            Box::pin(async move { ok(store.insert_telemetry(r).await, "insert_telemetry").id })
                as Boxed<TelemetryId>
        })
        .collect();
    let mut ids = run_concurrently(&spawner, tasks).await;
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 32, "every insert got its own id");
    let listed = ok(
        store
            .list_telemetry(&license, None, Limit::new(Some(100)))
            .await,
        "list_telemetry",
    );
    assert_eq!(listed.records.len(), 32);
}
