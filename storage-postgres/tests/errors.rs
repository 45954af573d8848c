//! Backend failures become domain errors: a closed port, a connection dropped between calls
//! and one dropped in the middle of a transaction are `Unavailable`; nothing half-written
//! survives; the store recovers by itself once the database answers again.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use licentia_core::model::{Product, ProductId};
use licentia_core::store::{CatalogStore, Decision, StoreError};
use licentia_storage_postgres::PostgresStore;
use licentia_storage_postgres::testing::{fresh_database, server_options};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

fn product(id: &str, code: &str) -> Product {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    Product {
        id: id.parse().unwrap(),
        name: "Editor".into(),
        code: code.parse().unwrap(),
        metadata: Default::default(),
        signing: Default::default(),
        created_at: at,
        updated_at: at,
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Terminates every other session on the database `options` names, as a failover or an
/// administrator would.
async fn drop_connections(options: &PgConnectOptions) {
    let db = options.get_database().unwrap().to_owned();
    let mut admin = server_options().connect().await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db)
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.ok();
}

/// A one-connection store that does not test connections before use, so a dropped one is
/// seen by the next call instead of being replaced silently.
async fn single_connection_store(options: PgConnectOptions) -> PostgresStore {
    PostgresStore::from_pool(
        PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port());
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { .. }),
        "connect: {err:?}"
    );

    // A lazy pool finds out on first use, within its acquire timeout.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy(&url)
        .unwrap();
    let store = PostgresStore::from_pool(pool);
    let err = store
        .get_product(&"prod_1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { .. }),
        "read: {err:?}"
    );
    let err = store.ping().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { .. }),
        "ping: {err:?}"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_unavailable_then_recovers() {
    let options = fresh_database().await;
    let store = single_connection_store(options.clone()).await;
    store
        .insert_product(&product("prod_1", "editor"), vec![])
        .await
        .unwrap();

    drop_connections(&options).await;
    let err = store
        .get_product(&"prod_1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { .. }),
        "the call on the dropped connection: {err:?}"
    );

    // The pool replaces the broken connection: the next call works, the data is intact.
    let id: ProductId = "prod_1".parse().unwrap();
    assert_eq!(
        store.get_product(&id).await.unwrap().code.as_str(),
        "editor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_transaction_writes_nothing() {
    use licentia_core::store::{AggregateQuery, LicenseSelector, LicenseStore};

    let options = fresh_database().await;
    let store = single_connection_store(options.clone()).await;
    let (license, _) = seed_license(&store).await;

    let before = store.get_license(&license).await.unwrap();
    let terminate_options = options.clone();
    let result = store
        .transact_license(
            AggregateQuery::new(LicenseSelector::Id(license.clone())),
            move |loaded| {
                // The license row is locked; the connection dies before the commit.
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(drop_connections(&terminate_options))
                });
                let mut changed = loaded.aggregate.license.clone();
                changed.times_activated += 1;
                Decision {
                    mutations: vec![licentia_core::rules::Mutation::License(changed)],
                    events: vec![],
                    idempotency: None,
                    outcome: (),
                }
            },
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "commit on a dropped connection: {result:?}"
    );
    // Every connection to the database was dropped (the store's other pools' too): read what
    // was committed through a new store.
    let reader = single_connection_store(options).await;
    assert_eq!(reader.get_license(&license).await.unwrap(), before);
}

/// A product, policy and license written straight to the store.
async fn seed_license(
    store: &PostgresStore,
) -> (
    licentia_core::model::LicenseId,
    licentia_core::model::PolicyId,
) {
    use licentia_core::engine::requests::{LicenseCreate, ProductCreate};
    use licentia_core::engine::{Actor, Engine, ManualClock};
    use licentia_core::model::{LicenseType, PolicyDraft};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::sync::Arc;

    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    ));
    let engine = Engine::start(store.clone(), clock, ChaCha20Rng::from_seed([3; 32]))
        .await
        .unwrap();
    let admin = Actor::system();
    let product = engine
        .create_product(
            &admin,
            ProductCreate {
                name: "Editor".into(),
                code: "editor".into(),
                metadata: None,
                signing: None,
            },
        )
        .await
        .unwrap();
    let policy = engine
        .create_policy(
            &admin,
            product.id.as_str(),
            PolicyDraft {
                name: Some("Pro".into()),
                code: Some("pro".into()),
                license_type: Some(LicenseType::Perpetual),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let created = engine
        .create_license(
            &admin,
            LicenseCreate {
                product_id: product.id.to_string(),
                policy_id: policy.id.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (created.license.id, policy.id)
}
