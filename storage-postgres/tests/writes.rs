//! The runtime write path's cost on the database: a license's row is updated heap-only when
//! no indexed value changes (its counters and timestamps live in the body), and the runtime
//! pools hand out a connection used moments ago without a round trip to check it, while one
//! that sat idle is checked, so a connection the server dropped meanwhile is replaced.

use std::time::Duration;

use licentia_core::conformance::fixtures::{activate, by_id, parse, seed, t0};
use licentia_core::model::LicenseType;
use licentia_core::store::LicenseStore;
use licentia_storage_postgres::testing::{fresh_database, store_on};
use sqlx::{Connection, PgConnection};

/// Heap-only updates of `licenses` counted in the current transaction of `conn`.
async fn hot_updates(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT pg_stat_get_xact_tuples_hot_updated('licenses'::regclass)")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_change_of_a_license_body_is_a_heap_only_update() {
    let options = fresh_database().await;
    let store = store_on(options.clone()).await;
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let id = s.license.id.as_str();
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let mut tx = conn.begin().await.unwrap();

    // What a consume writes: the body with new counters, every typed column unchanged.
    sqlx::query(
        "UPDATE licenses SET body = jsonb_set(body, '{total_consumptions}', '7'), \
             status = status, key_hash = key_hash WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        hot_updates(&mut tx).await,
        1,
        "no index may be computed from the body: that makes every license update rewrite \
         all of the table's index entries"
    );

    // Assigning a user changes an indexed value: that update is not heap-only, and the
    // license is found by its user.
    sqlx::query(
        "UPDATE licenses SET body = jsonb_set(body, '{users}', \
             '[{\"user_id\": \"usr_1\", \"max_activations\": 1, \
                \"assigned_at\": \"2026-11-22T10:00:00Z\"}]') WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(hot_updates(&mut tx).await, 1, "the users are indexed");
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM licenses WHERE assigned_users @> '[{\"user_id\": \"usr_1\"}]'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(found, vec![id.to_owned()]);
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_connections_dropped_by_the_server_are_replaced_after_an_idle_pause() {
    let options = fresh_database().await;
    let store = store_on(options.clone()).await;
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    let id = &s.license.id;
    // Open a connection of each runtime pool: a write and a read.
    activate(&store, id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat is free");
    store.read_license(&by_id(id)).await.expect("a snapshot");

    // The database ends every other session of this database (a restart or a failover looks
    // the same to the pools).
    let mut admin = PgConnection::connect_with(&options).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        ended.len() >= 2,
        "the runtime sessions were open: {ended:?}"
    );

    // Idle longer than the pools hand out unchecked: each is checked, found gone, replaced.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store
        .read_license(&by_id(id))
        .await
        .expect("the read path opens a new connection");
    activate(&store, id, "fp-2", parse("dev_0002"), t0())
        .await
        .expect("the write path opens a new connection");
    let snapshot = store.read_license(&by_id(id)).await.unwrap();
    assert_eq!(snapshot.active_devices().count(), 2);
}
