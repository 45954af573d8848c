//! Fresh databases for tests (feature `testing`).
//!
//! Every test gets its own database, created from `DATABASE_URL` (which names any database
//! on the server, used only to create the new one; [`DEFAULT_DATABASE_URL`], the machine's
//! local server, when it is unset) and migrated. Databases are named
//! `licentia_test_…`; `scripts/test` drops leftovers before each run.
//!
//! When the server cannot be reached, these helpers panic with a
//! message that says how to start PostgreSQL: a test that needs the database never passes
//! without one.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::PostgresStore;

/// Connections in a test pool: enough for the conformance suite's concurrency checks to run
/// on at least 8 real connections at once.
pub const TEST_POOL_SIZE: u32 = 10;

const HOW_TO_START: &str = "start the local server with \
`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
(or run the tests through scripts/test, which starts it and sets DATABASE_URL)";

/// The server tests use when `DATABASE_URL` is unset: the local PostgreSQL.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server `DATABASE_URL` names ([`DEFAULT_DATABASE_URL`] when it is unset or empty).
///
/// # Panics
///
/// When `DATABASE_URL` is malformed.
pub fn server_options() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("DATABASE_URL is not a PostgreSQL URL ({e})"))
}

/// Creates and migrates a new, empty database; returns how to connect to it.
///
/// # Panics
///
/// When the server cannot be reached (with a message that says how to start it) or refuses
/// to create the database.
pub async fn fresh_database() -> PgConnectOptions {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server = server_options();
    let mut admin = server.connect().await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {}:{} ({e}); {HOW_TO_START}",
            server.get_host(),
            server.get_port()
        )
    });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let name = format!(
        "licentia_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
    admin.close().await.ok();

    let options = server.database(&name);
    let store = PostgresStore::from_pool(
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {name}: {e}")),
    );
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrations failed on {name}: {e:?}"));
    store.pool().close().await;
    options
}

/// A store on a fresh database, with a pool of [`TEST_POOL_SIZE`] connections.
pub async fn fresh_store() -> PostgresStore {
    let options = fresh_database().await;
    store_on(options).await
}

/// Another store (its own pool of [`TEST_POOL_SIZE`]) on the database `options` names, as a
/// second server instance would have.
pub async fn store_on(options: PgConnectOptions) -> PostgresStore {
    let pool = PgPoolOptions::new()
        .max_connections(TEST_POOL_SIZE)
        .min_connections(TEST_POOL_SIZE)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}; {HOW_TO_START}"));
    PostgresStore::from_pool(pool)
}
