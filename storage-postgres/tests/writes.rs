//! The runtime write path on the database: a write decided on a snapshot is written in one
//! statement unless its license changed first, and then decided again under the lock, so
//! limits stay exact across instances and a touch written in between is kept. A license's
//! row is updated heap-only when no indexed value changes (its counters and timestamps live
//! in the body), and the runtime pools hand out a connection used moments ago without a
//! round trip to check it, while one that sat idle is checked, so a connection the server
//! dropped meanwhile is replaced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Duration as Minutes;
use licentia_core::conformance::decision;
use licentia_core::conformance::fixtures::{activate, binding, by_id, parse, seed, t0, validate};
use licentia_core::model::{DeviceId, LicenseType};
use licentia_core::rules::{DenialCode, Mutation, activation};
use licentia_core::store::{AggregateQuery, Decision, LicenseStore};
use licentia_storage_postgres::testing::{fresh_database, store_on};
use licentia_storage_postgres::{PostgresStore, WritePathStats};
use sqlx::{Connection, PgConnection};

/// Runs `f` to completion on this multi-threaded test runtime from inside a (synchronous)
/// transaction closure: what another instance does while this one decides.
fn meanwhile<F: std::future::Future>(f: F) -> F::Output {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(f))
}

/// One seat. Instance A decides on its snapshot to give it to fp-1; before A writes,
/// instance B gives it to fp-2. A's write finds the license changed, writes nothing, and A
/// decides again under the lock: no seat left. Exactly one device holds the seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optimistic_decision_that_lost_a_race_is_taken_again_under_the_lock() {
    let options = fresh_database().await;
    let (a, b) = (store_on(options.clone()).await, store_on(options).await);
    let s = seed(&a, 1, LicenseType::Perpetual, |p| p.max_activations = 1).await;
    let id = s.license.id.clone();
    let query = AggregateQuery {
        binding_key: Some("fp-1".into()),
        ..by_id(&id)
    };
    let (req, now) = (binding("fp-1"), t0());
    let calls = AtomicUsize::new(0);
    let answer = a
        .transact_license(query, |l| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                meanwhile(activate(&b, &id, "fp-2", parse("dev_0002"), now))
                    .expect("B takes the seat");
            }
            let device: DeviceId = parse("dev_0001");
            decision(
                l.aggregate,
                now,
                activation::activate(l.aggregate, &req, device, now),
            )
        })
        .await
        .expect("the store answers");
    let denial = answer.expect_err("no seat is left for A");
    assert!(denial.has(DenialCode::ActivationLimitReached), "{denial}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "decided on the snapshot, then locked"
    );
    assert_eq!(
        a.write_path_stats(),
        WritePathStats {
            optimistic: 0,
            lost: 1,
            locked: 0
        }
    );
    let stored = a.read_license(&by_id(&id)).await.unwrap();
    let holders: Vec<&str> = stored.active_devices().map(|d| d.id.as_str()).collect();
    assert_eq!(holders, ["dev_0002"]);
    assert_eq!(stored.license.active_device_count, 1);
}

/// A touch (the read path's bookkeeping) flushed between A's snapshot and A's write moves
/// the revision on too: A decides again on the touched device, and its write keeps the
/// touch instead of writing the device back as the snapshot had it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_flushed_before_an_optimistic_write_is_kept() {
    let options = fresh_database().await;
    let (a, b) = (store_on(options.clone()).await, store_on(options).await);
    let s = seed(&a, 1, LicenseType::Perpetual, |_| {}).await;
    let id = s.license.id.clone();
    activate(&a, &id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat");
    let seen = t0() + Minutes::minutes(10);
    let query = AggregateQuery {
        binding_key: Some("fp-1".into()),
        ..by_id(&id)
    };
    let calls = AtomicUsize::new(0);
    a.transact_license(query, |l| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            meanwhile(validate(&b, &id, "fp-1", seen)).expect("B validates and touches");
        }
        let mut device = l.aggregate.devices[0].clone();
        device.hostname = Some("renamed".into());
        Decision {
            mutations: vec![Mutation::Device(device)],
            ..Decision::nothing(())
        }
    })
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let device = b.get_device(&id, &parse("dev_0001")).await.unwrap();
    assert_eq!(device.hostname.as_deref(), Some("renamed"), "A's change");
    assert_eq!(device.last_seen_at, seen, "B's touch, not undone by A");
}

/// Writes nobody races take the optimistic path, one statement each, and their effects are
/// all there; a lost race sends the next two writes of that license to the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncontended_writes_are_optimistic_and_a_loss_locks_the_next_two() {
    let options = fresh_database().await;
    let (a, b) = (store_on(options.clone()).await, store_on(options).await);
    let s = seed(&a, 1, LicenseType::Perpetual, |p| p.max_activations = 10).await;
    let id = s.license.id.clone();
    for n in 1..=3 {
        let device = parse(&format!("dev_{n:04}"));
        activate(&a, &id, &format!("fp-{n}"), device, t0())
            .await
            .expect("a seat");
    }
    assert_eq!(
        a.write_path_stats(),
        WritePathStats {
            optimistic: 3,
            lost: 0,
            locked: 0
        }
    );
    assert_eq!(
        a.read_license(&by_id(&id))
            .await
            .unwrap()
            .active_devices()
            .count(),
        3
    );

    lose_once(&a, &b, &id).await;
    for n in 4..=6 {
        let device = parse(&format!("dev_{n:04}"));
        activate(&a, &id, &format!("fp-{n}"), device, t0())
            .await
            .expect("a seat");
    }
    assert_eq!(
        a.write_path_stats(),
        WritePathStats {
            optimistic: 4,
            lost: 1,
            locked: 2
        },
        "after the loss: two writes locked, then optimistic again"
    );
    let stored = a.read_license(&by_id(&id)).await.unwrap();
    assert_eq!(
        stored.active_devices().count(),
        6 + 1,
        "B's write is there too"
    );
}

/// A write on `a` whose optimistic decision loses to a write on `b`.
async fn lose_once(a: &PostgresStore, b: &PostgresStore, id: &licentia_core::model::LicenseId) {
    let first = AtomicUsize::new(0);
    a.transact_license(by_id(id), |l| {
        if first.fetch_add(1, Ordering::SeqCst) == 0 {
            meanwhile(activate(b, id, "fp-b", parse("dev_0099"), t0())).expect("B's seat");
        }
        // A write (of the license as it is): it must check the revision.
        Decision {
            mutations: vec![Mutation::License(l.aggregate.license.clone())],
            ..Decision::nothing(())
        }
    })
    .await
    .unwrap();
}

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
