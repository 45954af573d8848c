//! The read path takes no row lock: a snapshot is read while another session holds the
//! license row locked with an uncommitted change, exactly as a write in progress does, and it
//! shows the committed state. Snapshots asked for at once are read together, each reader
//! getting its own. The aggregate's devices are found by index whatever the license's device
//! history.

use std::time::Duration;

use licentia_core::conformance::fixtures::{activate, by_id, parse, seed, t0};
use licentia_core::model::LicenseType;
use licentia_core::rules::LicenseAggregate;
use licentia_core::store::{AggregateQuery, LicenseSelector, LicenseStore, StoreError};
use licentia_storage_postgres::testing::{fresh_database, fresh_store, store_on};
use sqlx::{Connection, PgConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_does_not_wait_for_a_license_locked_by_a_write() {
    let options = fresh_database().await;
    let store = store_on(options.clone()).await;
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    let id = &s.license.id;
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat is free");

    // Another session locks the license as transact_license does and changes it, uncommitted.
    let mut writer = PgConnection::connect_with(&options).await.unwrap();
    let mut tx = writer.begin().await.unwrap();
    sqlx::query("SELECT id FROM licenses WHERE id = $1 FOR UPDATE")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE devices SET status = 'deactivated' WHERE license_id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();

    // A liveness bound, not a timing claim: a read that waited for the lock would wait
    // until the rollback below, which never comes first.
    let snapshot = tokio::time::timeout(Duration::from_secs(30), store.read_license(&by_id(id)))
        .await
        .expect("read_license does not wait for the row lock of a write in progress")
        .expect("read_license");
    assert_eq!(
        snapshot.active_devices().count(),
        1,
        "the snapshot shows the committed state, not the write in progress"
    );
    tx.rollback().await.unwrap();
}

/// The licenses of [`many_readers`]: seeded, each with one active device, and each one's
/// aggregate as a read alone loads it (with and without its device's binding).
async fn seeded_licenses(
    store: &licentia_storage_postgres::PostgresStore,
    n: u32,
) -> Vec<(AggregateQuery, LicenseAggregate)> {
    let mut expected = Vec::new();
    for i in 1..=n {
        let s = seed(store, i, LicenseType::Perpetual, |p| p.max_activations = 2).await;
        let fingerprint = format!("fp-{i}");
        activate(
            store,
            &s.license.id,
            &fingerprint,
            parse(&format!("dev_{i:04}")),
            t0(),
        )
        .await
        .expect("a seat is free");
        let by_key = AggregateQuery {
            binding_key: Some(fingerprint),
            ..AggregateQuery::new(LicenseSelector::KeyHash(s.license.key_hash))
        };
        for query in [by_id(&s.license.id), by_key] {
            let alone = store.read_license(&query).await.expect("read_license");
            expected.push((query, alone));
        }
    }
    expected
}

/// Many snapshots at once over one read connection are read together (`snapshot_batch`: at
/// least two per statement on average; eight statements for the 400 when this was written);
/// each reader gets its own license's aggregate, by id or by key hash, and a license that
/// does not exist is `NotFound` without failing the others read with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_readers_at_once_each_get_their_own_aggregate() {
    let store = fresh_store().await.with_read_connections(1);
    let expected = std::sync::Arc::new(seeded_licenses(&store, 8).await);
    let before = store.read_path_stats();
    let readers: Vec<_> = (0..400)
        .map(|i| {
            let (store, expected) = (store.clone(), expected.clone());
            tokio::spawn(async move {
                if i % 10 == 9 {
                    let missing = by_id(&parse("lic_MISSING"));
                    let e = store
                        .read_license(&missing)
                        .await
                        .expect_err("no such license");
                    assert!(
                        matches!(e, StoreError::NotFound { entity: "license" }),
                        "{e:?}"
                    );
                } else {
                    let (query, alone) = &expected[i % expected.len()];
                    let together = store.read_license(query).await.expect("read_license");
                    assert_eq!(
                        &together, alone,
                        "reader {i} gets its own license's aggregate"
                    );
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.expect("the reader's checks hold");
    }
    let stats = store.read_path_stats();
    let (statements, snapshots) = (
        stats.statements - before.statements,
        stats.snapshots - before.snapshots,
    );
    assert_eq!(snapshots, 400, "every reader was read once");
    assert!(
        statements * 2 <= snapshots,
        "readers waiting for the one connection were read together: {statements} statements"
    );
}

/// Readers cancelled while they wait or while they read for others never cost the others
/// their answer: whoever was in a dropped batch queues again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_readers_do_not_lose_the_others_reads() {
    let store = fresh_store().await.with_read_connections(1);
    let expected = std::sync::Arc::new(seeded_licenses(&store, 4).await);
    for round in 0..5 {
        let readers: Vec<_> = (0..200)
            .map(|i| {
                let (store, expected) = (store.clone(), expected.clone());
                tokio::spawn(async move {
                    let (query, alone) = &expected[i % expected.len()];
                    let together = store.read_license(query).await.expect("read_license");
                    assert_eq!(&together, alone, "round {round}, reader {i}");
                })
            })
            .collect();
        tokio::task::yield_now().await;
        for reader in readers.iter().step_by(3) {
            reader.abort();
        }
        for (i, reader) in readers.into_iter().enumerate() {
            // A liveness bound, not a timing claim.
            match tokio::time::timeout(Duration::from_secs(60), reader).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_cancelled() && i % 3 == 0 => {}
                Ok(Err(e)) => panic!("round {round}, reader {i}: {e}"),
                Err(_) => panic!("round {round}, reader {i} never got its snapshot"),
            }
        }
    }
}

/// Device rows of the aggregate the generic plan reads and throws away for `license`.
async fn devices_read_and_dropped(conn: &mut PgConnection, license: &str) -> i64 {
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "PREPARE aggregate(text) AS SELECT a.* FROM licenses l CROSS JOIN LATERAL \
         licentia_aggregate(l.id, l.policy_id, l.product_id, ARRAY['active', 'blacklisted'], \
             'fp-none', NULL, NULL, NULL, NULL) a WHERE l.id = $1",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    // The id is the test's own (`lic_…`), not input: safe to inline.
    let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE aggregate('{license}')"
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query("DEALLOCATE aggregate")
        .execute(&mut *conn)
        .await
        .unwrap();
    fn dropped(node: &serde_json::Value) -> i64 {
        let own = match node["Relation Name"].as_str() {
            Some("devices") => {
                node["Rows Removed by Filter"].as_i64().unwrap_or(0)
                    + node["Rows Removed by Index Recheck"].as_i64().unwrap_or(0)
            }
            _ => 0,
        };
        own + node["Plans"]
            .as_array()
            .map_or(0, |plans| plans.iter().map(dropped).sum())
    }
    dropped(&plan[0]["Plan"])
}

/// A license with 300 deactivated devices and one active: the aggregate finds the active one
/// (and the queried binding) through `devices_held` without reading the history; without
/// that index it reads the 300 and drops them, which is what the check tells apart.
#[tokio::test]
async fn the_aggregate_does_not_read_a_license_s_device_history() {
    let options = fresh_database().await;
    let store = store_on(options.clone()).await;
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    let id = s.license.id.as_str();
    activate(&store, &s.license.id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat is free");
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    sqlx::query(
        "INSERT INTO devices (id, license_id, binding_key, status, created_at, body) \
         SELECT 'dev_h' || g, license_id, 'fp-h' || g, 'deactivated', created_at, body \
         FROM devices, generate_series(1, 300) g WHERE id = 'dev_0001'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE devices")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(devices_read_and_dropped(&mut conn, id).await, 0);
    let snapshot = store.read_license(&by_id(&s.license.id)).await.unwrap();
    assert_eq!(snapshot.devices.len(), 1, "the active device alone");

    sqlx::query("DROP INDEX devices_held")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        devices_read_and_dropped(&mut conn, id).await >= 300,
        "the check sees the history read without the index"
    );
}
