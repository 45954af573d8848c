//! The read path takes no row lock: a snapshot is read while another session holds the
//! license row locked with an uncommitted change, exactly as a write in progress does, and it
//! shows the committed state.

use std::time::Duration;

use licentia_core::conformance::fixtures::{activate, by_id, parse, seed, t0};
use licentia_core::model::LicenseType;
use licentia_core::store::LicenseStore;
use licentia_storage_postgres::testing::{fresh_database, store_on};
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
