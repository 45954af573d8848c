//! PostgreSQL storage backend for licentia.
//!
//! [`PostgresStore`] implements every storage trait of [`licentia_core::store`], so it is a
//! [`Store`](licentia_core::store::Store). Use it when one process is not enough: any number
//! of engines (server instances) may share one database, and every guarantee of the storage
//! contract comes from the database — row locks, constraints and transactions — not from
//! process memory. It runs the same conformance suite as the in-memory backend.
//!
//! # Example
//!
//! ```no_run
//! use licentia_storage_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/licentia").await?;
//! store.migrate().await?; // applies `MIGRATOR`; safe to run at every start
//! // hand `store` to `licentia_core::engine::Engine::start` …
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! The migrations in `migrations/` (exposed as [`MIGRATOR`]) keep every record whole as its
//! contract JSON in a `jsonb` column, beside typed columns for what the database must check
//! or find: primary and foreign keys, the unique values of the contract (product codes,
//! policy and feature codes per product, custom field codes per product and resource type,
//! customer codes, external order and subscription ids per product, license key hashes,
//! API token hashes, lease token hashes, one live device per binding per license,
//! idempotency keys per scope, consumption `event_id`s per license), `timestamptz` columns
//! for ordering and filtering, and indexes for every hot-path lookup (license by key hash,
//! devices by binding, events by sequence, type and resource). The webhook outbox
//! (`webhook_deliveries`, `webhook_delivery_attempts`, migration 0005) is written by the
//! statement that appends events, and claimed with `FOR UPDATE SKIP LOCKED` under a lease.
//!
//! # Transactions
//!
//! [`LicenseStore::transact_license`](licentia_core::store::LicenseStore::transact_license)
//! runs in one transaction of four round trips: `BEGIN`; one call of
//! `licentia_lock_aggregate` (migration 0007), which takes `FOR UPDATE` on the license row
//! (by id or key hash) and then loads the rest of the aggregate (policy, devices, feature
//! assignments, leases, the catalog lookup, the consumption and idempotency records asked
//! for) in a statement whose snapshot is taken after the lock, so it sees every earlier
//! commit on that license; one statement that writes the whole decision; `COMMIT`. The
//! closure runs once; its mutations are applied to the aggregate with
//! [`LicenseAggregate::apply`](licentia_core::rules::LicenseAggregate::apply) (the meaning
//! of a mutation lives in core) and each touched row is written, with the consumptions, the
//! idempotency record and the events, by one data-modifying common table expression per
//! kind of row. A unique violation anywhere rolls everything back. A decision with nothing
//! to write rolls back instead of committing.
//!
//! Other writes are single transactions too, each appending its events before it commits.
//!
//! # The read path
//!
//! [`LicenseStore::read_license`](licentia_core::store::LicenseStore::read_license) is ONE
//! statement (license, policy, devices, features, leases, catalog lookup) outside any
//! transaction: under READ COMMITTED a statement reads one snapshot, so it never sees half of
//! a write, and it takes no row lock, so validations never wait for a write or for each other.
//! Snapshots asked for while every read connection is busy wait in a queue, and the next
//! caller to get a connection reads all of them (at most 64) in that one statement, each
//! license by its own id or key hash: a batch only forms from requests that were waiting
//! anyway (nothing waits on purpose), and each aggregate in it is as consistent as a read
//! alone. Under load this halves what a validate costs the database and the server in round
//! trips (`benches/README.md`); [`PostgresStore::read_path_stats`] tells how many snapshots a
//! statement read.
//! [`LicenseStore::record_touches`](licentia_core::store::LicenseStore::record_touches) writes
//! a batch of read bookkeeping in one transaction: it locks the batch's licenses in id order,
//! then their devices (the order `transact_license` locks in, so a flush never deadlocks with
//! a write), applies each touch with the rules' own
//! [`Touch`](licentia_core::rules::Touch) semantics (timestamps only move forward), and
//! appends the touches' events.
//!
//! # Pools
//!
//! Besides the pool it is given (management, lists, migrations), the store opens two lazily:
//! runtime writes (twice [`default_read_connections`], at most the given pool's size) and
//! reads ([`default_read_connections`], [`PostgresStore::with_read_connections`]). Their
//! sessions plan with `plan_cache_mode = force_generic_plan`: the runtime statements are
//! equality lookups whose generic plan is the custom one, and planning the aggregate each time
//! cost more than running it. Small pools measured faster on a small machine sharing its cores
//! with the database (`benches/README.md`). A runtime connection used again within a second is
//! handed out without the pool's check (a round trip); one idle longer is checked first, and
//! one that broke meanwhile fails its statement as `Unavailable` and is replaced.
//!
//! # Errors
//!
//! sqlx errors are mapped by SQLSTATE and constraint name, never stringified: a unique
//! violation is `AlreadyExists { entity, constraint }`, a reference to a missing record is
//! `NotFound` for that record, deleting a record others reference is `Conflict`; a refused,
//! lost or timed-out connection (I/O, TLS, pool timeout, SQLSTATE class 08, 53300,
//! 57P01–57P03) is `Unavailable`; anything else is `Backend` with its source attached.
//!
//! # Decisions where the contract is silent
//!
//! Same as the in-memory backend (see `licentia-storage-memory`'s crate docs), plus:
//! - Times in typed columns have PostgreSQL's microsecond precision; the records themselves
//!   (in `jsonb`) keep every digit. Events are stored in typed columns, so an event's
//!   `created_at` is rounded to the microsecond.
//! - Event sequences come from an identity column. Under concurrent writers a sequence is
//!   assigned before its transaction commits, so a reader may briefly see sequence `n + 1`
//!   before `n`; sequences still strictly increase and are never reused.
//! - Signing seeds, webhook secrets (deliveries are signed with the secret itself, so it
//!   cannot be hashed) and users' TOTP secrets are sealed under a master key when one is given
//!   ([`PostgresStore::with_master_key`]; AES-256-GCM with the kid, the endpoint id or the
//!   user id as associated data); without one they are stored as they are, and a host should refuse to
//!   run that way unless told to (the server: `LICENTIA_ALLOW_PLAINTEXT_KEYS=1`). Whatever is
//!   still in the clear is sealed by [`PostgresStore::seal_clear_secrets`] (the server runs
//!   it at start). A sealed seed or secret read without the master key is `Backend`.

mod access;
pub use access::SealedSecrets;
pub use snapshot_batch::ReadPathStats;
mod allocation;
mod artifact;
mod catalog;
mod commerce;
mod customer;
mod delivery;
mod error;
mod events;
mod license;
mod registration;
mod report;
mod rows;
mod snapshot_batch;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod user;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use licentia_core::crypto::MasterKey;
use licentia_core::store::{NewEvent, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

/// The schema migrations (`storage-postgres/migrations/`). Hosts run them at start
/// ([`PostgresStore::migrate`]); running them again is a no-op.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Connections a pool opens at most by default ([`PostgresStore::connect`]).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;
/// How long a call waits for a free connection by default before it is `Unavailable`.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-path connections by default: the machine's parallelism (at least 2).
pub fn default_read_connections() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(2)
        .max(2)
}

/// How long a runtime connection may sit idle before the pool checks it with a round trip
/// when it is handed out again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A lazily connecting pool of `size` to `pool`'s database whose sessions use generic plans.
///
/// sqlx checks every connection it hands out with a round trip by default; on the runtime
/// path that was one round trip in five of a write and one in two of a read. A connection
/// used again within [`PING_AFTER_IDLE`] is handed out unchecked: one that broke meanwhile
/// fails its statement as `Unavailable` and is dropped, as a connection that breaks during a
/// statement always is.
fn generic_plan_pool(pool: &PgPool, size: u32) -> PgPool {
    let options = (*pool.connect_options())
        .clone()
        .options([("plan_cache_mode", "force_generic_plan")]);
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options)
}

/// The `LISTEN`/`NOTIFY` channel a signing key change is announced on.
pub const KEYS_CHANNEL: &str = "licentia_keys";

/// Signing key changes made by any instance on the database ([`PostgresStore::key_changes`]).
#[derive(Debug)]
pub struct KeyChanges(sqlx::postgres::PgListener);

impl KeyChanges {
    /// Waits for the next change.
    ///
    /// # Errors
    ///
    /// The listening connection was lost (`Unavailable`); take a new [`KeyChanges`] and
    /// re-read the keys, since a change may have been missed meanwhile.
    pub async fn next(&mut self) -> StoreResult<()> {
        self.0.try_recv().await.map_err(error::map)?.map_or_else(
            || {
                Err(licentia_core::store::StoreError::Unavailable {
                    source: "the key change listener lost its connection".into(),
                })
            },
            |_| Ok(()),
        )
    }
}

/// Why [`PostgresStore::connect`] failed: what it tried and the driver's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// What was tried, e.g. `PostgreSQL at 127.0.0.1:5432, database licentia, role postgres`.
    pub target: String,
    /// The driver's reason.
    pub cause: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.target, self.cause)
    }
}

impl std::error::Error for ConnectError {}

/// A [`Store`](licentia_core::store::Store) on PostgreSQL.
///
/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The runtime writes' pool (transactions on one license, touches): the same database,
    /// its sessions planning with `plan_cache_mode = force_generic_plan`. Their statements are
    /// equality lookups whose generic plan is the custom one, and planning them each time cost
    /// more than running them (about 0.9 ms against 0.25 ms for the aggregate); the catch-all
    /// list queries of the main pool keep custom plans.
    runtime: PgPool,
    /// The read path's pool (validate, check, offline snapshots), generic plans too. Small by
    /// default ([`default_read_connections`]): a read holds its connection for one statement,
    /// and fewer sessions mean fewer context switches where the database shares the machine.
    reads: PgPool,
    /// The read path's queue: snapshots asked for while `reads` is busy are read together.
    snapshots: Arc<snapshot_batch::SnapshotBatcher>,
    master: Option<Arc<MasterKey>>,
}

impl PostgresStore {
    /// Connects a pool of up to [`DEFAULT_MAX_CONNECTIONS`] to `url`
    /// (`postgres://user@host:port/database`). Does not migrate.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the database cannot be reached, `Backend` for a malformed URL or a
    /// refused login.
    ///
    /// The error's source is a [`ConnectError`] naming the host, port, database and role
    /// tried and the driver's reason, so a host can print what to fix. Sessions are opened
    /// with `client_min_messages = warning`, so the server's notices (a migration table that
    /// already exists, say) are not logged as information on every start.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let parsed = if scheme_ok {
            url.parse::<sqlx::postgres::PgConnectOptions>()
                .map_err(|e| e.to_string())
        } else {
            Err(format!(
                "the scheme is `{}`, not postgres:// or postgresql://",
                url.split_once("://").map_or("(none)", |(scheme, _)| scheme)
            ))
        };
        let options = parsed.map_err(|e| licentia_core::store::StoreError::Backend {
            source: Box::new(ConnectError {
                target: "DATABASE_URL".into(),
                cause: format!(
                    "not a PostgreSQL URL (postgres://user[:password]@host:port/database): {e}"
                ),
            }),
        })?;
        let options = options.options([("client_min_messages", "warning")]);
        let target = format!(
            "PostgreSQL at {}:{}, database {}, role {}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(the role's name)"),
            options.get_username()
        );
        let pool = PgPoolOptions::new()
            .max_connections(DEFAULT_MAX_CONNECTIONS)
            .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| {
                let cause = e.to_string();
                let boxed: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(ConnectError { target, cause });
                match error::map(e) {
                    licentia_core::store::StoreError::Unavailable { .. } => {
                        licentia_core::store::StoreError::Unavailable { source: boxed }
                    }
                    _ => licentia_core::store::StoreError::Backend { source: boxed },
                }
            })?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (to choose its size and timeouts). The runtime path gets
    /// two more pools to the same database with the same timeouts, opened lazily: writes with
    /// twice [`default_read_connections`] (at most the pool's size), reads with
    /// [`default_read_connections`] (see [`Self::with_read_connections`]). Measured on two
    /// cores with the database on the same machine, small pools beat large ones for both
    /// (`benches/README.md`).
    pub fn from_pool(pool: PgPool) -> Self {
        let writes = pool
            .options()
            .get_max_connections()
            .min(2 * default_read_connections());
        let runtime = generic_plan_pool(&pool, writes);
        let reads = generic_plan_pool(&pool, default_read_connections());
        let snapshots = Arc::new(snapshot_batch::SnapshotBatcher::new(
            default_read_connections(),
        ));
        Self {
            pool,
            runtime,
            reads,
            snapshots,
            master: None,
        }
    }

    /// How many statements the read path has run and how many snapshots they read (see the
    /// crate docs on the read path); counted from when the read connections were set.
    pub fn read_path_stats(&self) -> ReadPathStats {
        self.snapshots.stats()
    }

    /// The same store with at most `n` (at least 1) connections for the read path.
    pub fn with_read_connections(mut self, n: u32) -> Self {
        self.reads = generic_plan_pool(&self.pool, n.max(1));
        self.snapshots = Arc::new(snapshot_batch::SnapshotBatcher::new(n));
        self
    }

    /// Seals signing seeds and webhook secrets under `master` when they are written (see
    /// [`MasterKey`]), and opens sealed ones when they are read. Those written without a
    /// master key are still read as they are, and sealed by
    /// [`PostgresStore::seal_clear_secrets`] (or, for seeds, at the next rotation).
    pub fn with_master_key(mut self, master: MasterKey) -> Self {
        self.master = Some(Arc::new(master));
        self
    }

    /// Applies [`MIGRATOR`].
    ///
    /// # Errors
    ///
    /// `Unavailable` when the database cannot be reached, `Backend` when a migration fails.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => error::map(e),
            other => error::backend(other),
        })
    }

    /// The pool, for hosts that run their own queries (health checks, say).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Which database the store talks to, for logs: `database D on HOST:PORT`, never the
    /// password.
    pub fn describe(&self) -> String {
        let o = self.pool.connect_options();
        format!(
            "database {} on {}:{}",
            o.get_database().unwrap_or("(default)"),
            o.get_host(),
            o.get_port()
        )
    }

    /// Listens for signing key changes committed by any instance (`replace_signing_keys`
    /// notifies [`KEYS_CHANNEL`] in its transaction), on a connection of its own.
    ///
    /// # Errors
    ///
    /// The database cannot be reached.
    pub async fn key_changes(&self) -> StoreResult<KeyChanges> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(error::map)?;
        listener.listen(KEYS_CHANNEL).await.map_err(error::map)?;
        Ok(KeyChanges(listener))
    }

    /// Open and idle connections of each pool (`main`, `runtime`, `reads`), for gauges.
    pub fn pool_stats(&self) -> [(&'static str, u32, u32); 3] {
        let stat = |p: &PgPool| (p.size(), u32::try_from(p.num_idle()).unwrap_or(u32::MAX));
        let (m, r, d) = (stat(&self.pool), stat(&self.runtime), stat(&self.reads));
        [
            ("main", m.0, m.1),
            ("runtime", r.0, r.1),
            ("reads", d.0, d.1),
        ]
    }

    /// Whether the database answers a trivial query (for readiness probes).
    ///
    /// # Errors
    ///
    /// `Unavailable` when it does not.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(error::map)
    }

    async fn conn(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(error::map)
    }

    /// A transaction on the runtime writes' pool.
    async fn begin_runtime(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.runtime.begin().await.map_err(error::map)
    }

    /// A connection of the read path's pool.
    async fn conn_read(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.reads.acquire().await.map_err(error::map)
    }

    /// Appends the events of a write to its transaction and commits both.
    async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        events::append(&mut tx, events).await?;
        tx.commit().await.map_err(error::map)
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .field("seals_seeds", &self.master.is_some())
            .finish_non_exhaustive()
    }
}
