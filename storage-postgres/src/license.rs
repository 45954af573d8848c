//! [`LicenseStore`]: licenses and the per-license transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use licentia_core::model::{
    ConsumptionRecord, Device, DeviceId, DeviceStatus, FeatureId, Lease, LeaseId, License,
    LicenseFeature, LicenseId, Policy, ProductVersion, SecretHash,
};
use licentia_core::rules::version::precedence_key;
use licentia_core::rules::{LicenseAggregate, Mutation, VersionCatalogView};
use licentia_core::store::{
    AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, LicenseQuery, LicenseSelector,
    LicenseStore, Limit, Loaded, NewEvent, StoreError, StoreResult, TouchRecord,
};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::PostgresStore;
use crate::access::hash_bytes;
use crate::error::map;
use crate::rows::{LICENSE_EXISTS, page, require};

/// A license row: the record (without its secret-derived fields) and those fields.
type LicenseRow = (Json<License>, Vec<u8>, Option<DateTime<Utc>>);

fn license_from_row((body, key_hash, last_validated_at): LicenseRow) -> StoreResult<License> {
    let mut license = body.0;
    license.key_hash = SecretHash::from_bytes(hash_bytes(&key_hash)?);
    license.last_validated_at = last_validated_at;
    Ok(license)
}

/// Everything of the aggregate but the license, loaded in one statement.
#[derive(sqlx::FromRow)]
struct AggregateRow {
    policy: Json<Policy>,
    devices: Json<Vec<Device>>,
    features: Json<Vec<LicenseFeature>>,
    leases: Json<Vec<Lease>>,
    has_catalog: bool,
    version_entry: Option<Json<ProductVersion>>,
    consumption: Option<Json<ConsumptionRecord>>,
    idem_request_hash: Option<Vec<u8>>,
    idem_status: Option<i32>,
    idem_body: Option<Vec<u8>>,
    idem_created_at: Option<DateTime<Utc>>,
}

/// The aggregate's columns beside the license, for the license `lic` of the FROM clause.
/// Parameters: $2 the device statuses always loaded, $3 the queried binding key, $4 the
/// queried version's precedence key, $5 the queried consumption `event_id`, $6 and $7 the
/// idempotency scope and key.
const AGGREGATE_COLUMNS: &str = "\
p.body AS policy, d.devices, f.features, s.leases, v.has_catalog, v.version_entry, \
c.body AS consumption, \
i.request_hash AS idem_request_hash, i.status AS idem_status, i.body AS idem_body, \
i.created_at AS idem_created_at";

const AGGREGATE_JOINS: &str = "\
JOIN policies p ON p.id = lic.policy_id \
CROSS JOIN LATERAL ( \
    SELECT coalesce(jsonb_agg(body ORDER BY created_at, id), '[]'::jsonb) AS devices \
    FROM devices \
    WHERE license_id = lic.id AND (status = ANY($2) OR binding_key = $3)) d \
CROSS JOIN LATERAL ( \
    SELECT coalesce(jsonb_agg(body ORDER BY feature_code, feature_id), '[]'::jsonb) AS features \
    FROM license_features WHERE license_id = lic.id) f \
CROSS JOIN LATERAL ( \
    SELECT coalesce(jsonb_agg(body ORDER BY checked_out_at, id), '[]'::jsonb) AS leases \
    FROM leases WHERE license_id = lic.id) s \
CROSS JOIN LATERAL ( \
    SELECT EXISTS (SELECT 1 FROM product_versions WHERE product_id = lic.product_id) AS has_catalog, \
           (SELECT body FROM product_versions \
            WHERE product_id = lic.product_id AND precedence = $4 \
            ORDER BY released_at DESC, id DESC LIMIT 1) AS version_entry) v \
LEFT JOIN consumptions c ON c.license_id = lic.id AND c.event_id = $5 \
LEFT JOIN idempotency_records i ON i.scope = $6 AND i.key = $7";

/// Loads the rest of the aggregate of the locked license $1. Run after the row lock is held:
/// in READ COMMITTED each statement takes a new snapshot, so this one sees every commit made
/// on the license before the lock was granted.
static LOAD_AGGREGATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {AGGREGATE_COLUMNS} FROM (SELECT id, policy_id, product_id FROM licenses WHERE id = $1) lic \
         {AGGREGATE_JOINS}"
    )
});

/// The whole aggregate, license included, in ONE statement: under READ COMMITTED a single
/// statement reads one snapshot, so it never shows half of a transaction, and it takes no
/// row lock (the read path). `$1` is the license id or key hash, as the suffix says.
fn snapshot_sql(by: &str) -> String {
    format!(
        "SELECT lic.body AS license, lic.key_hash, lic.last_validated_at, {AGGREGATE_COLUMNS} \
         FROM (SELECT id, policy_id, product_id, body, key_hash, last_validated_at \
               FROM licenses WHERE {by} = $1) lic \
         {AGGREGATE_JOINS}"
    )
}
static SNAPSHOT_BY_ID: LazyLock<String> = LazyLock::new(|| snapshot_sql("id"));
static SNAPSHOT_BY_KEY_HASH: LazyLock<String> = LazyLock::new(|| snapshot_sql("key_hash"));

/// A snapshot: the license row and the rest of its aggregate.
#[derive(sqlx::FromRow)]
struct SnapshotRow {
    license: Json<License>,
    key_hash: Vec<u8>,
    last_validated_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    rest: AggregateRow,
}

/// Devices a runtime decision must see whatever binding it names: the ones holding or
/// refusing a seat.
const ALWAYS_LOADED_DEVICES: [DeviceStatus; 2] = [DeviceStatus::Active, DeviceStatus::Blacklisted];

impl PostgresStore {
    /// Locks the license `selector` names (`SELECT … FOR UPDATE`) and returns its row.
    async fn lock_license(
        conn: &mut PgConnection,
        selector: &LicenseSelector,
    ) -> StoreResult<License> {
        let row: Option<LicenseRow> = match selector {
            LicenseSelector::Id(id) => {
                sqlx::query_as("SELECT body, key_hash, last_validated_at FROM licenses WHERE id = $1 FOR UPDATE")
                .bind(id.as_str())
                .fetch_optional(conn)
                .await
            }
            // A key replaced while we waited for the lock no longer matches: the re-check
            // of the locked row's new version finds nothing, so the caller gets NotFound.
            LicenseSelector::KeyHash(hash) => {
                sqlx::query_as("SELECT body, key_hash, last_validated_at FROM licenses WHERE key_hash = $1 FOR UPDATE")
                .bind(&hash.as_bytes()[..])
                .fetch_optional(conn)
                .await
            }
        }
        .map_err(map)?;
        license_from_row(row.ok_or(StoreError::not_found("license"))?)
    }

    /// Builds the aggregate `query` asks for around the locked `license`.
    async fn load(
        conn: &mut PgConnection,
        license: License,
        query: &AggregateQuery,
    ) -> StoreResult<(LicenseAggregate, Option<IdempotencyRecord>)> {
        let row: AggregateRow = bind_aggregate(
            sqlx::query_as(LOAD_AGGREGATE.as_str()).bind(license.id.as_str()),
            query,
        )
        .fetch_optional(conn)
        .await
        .map_err(map)?
        .ok_or(StoreError::not_found("policy"))?;
        assemble(license, row, query)
    }

    /// The aggregate `query` names, read in one statement without a lock.
    async fn snapshot(&self, query: &AggregateQuery) -> StoreResult<LicenseAggregate> {
        let selector = query
            .selector
            .as_ref()
            .ok_or(StoreError::not_found("license"))?;
        let query = AggregateQuery {
            idempotency: None,
            ..query.clone()
        };
        let mut conn = self.conn_read().await?;
        let row: Option<SnapshotRow> = match selector {
            LicenseSelector::Id(id) => {
                bind_aggregate(
                    sqlx::query_as(SNAPSHOT_BY_ID.as_str()).bind(id.as_str()),
                    &query,
                )
                .fetch_optional(&mut *conn)
                .await
            }
            LicenseSelector::KeyHash(hash) => {
                bind_aggregate(
                    sqlx::query_as(SNAPSHOT_BY_KEY_HASH.as_str()).bind(&hash.as_bytes()[..]),
                    &query,
                )
                .fetch_optional(&mut *conn)
                .await
            }
        }
        .map_err(map)?;
        // No row: no such license (a license always has its policy).
        let row = row.ok_or(StoreError::not_found("license"))?;
        let license = license_from_row((row.license, row.key_hash, row.last_validated_at))?;
        Ok(assemble(license, row.rest, &query)?.0)
    }
}

/// Binds parameters $2.. of [`AGGREGATE_JOINS`] for `query`.
fn bind_aggregate<'q, O>(
    q: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    query: &'q AggregateQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let statuses: Vec<&'static str> = ALWAYS_LOADED_DEVICES.iter().map(|s| s.as_str()).collect();
    q.bind(statuses)
        .bind(query.binding_key.as_deref())
        .bind(
            query
                .app_version
                .as_ref()
                .map(|v| precedence_key(v).to_string()),
        )
        .bind(query.consumption_event_id.as_deref())
        .bind(query.idempotency.as_ref().map(|k| k.scope.as_str()))
        .bind(query.idempotency.as_ref().map(|k| k.key.as_str()))
}

/// The aggregate around `license` from its loaded columns, and the idempotency record.
fn assemble(
    license: License,
    row: AggregateRow,
    query: &AggregateQuery,
) -> StoreResult<(LicenseAggregate, Option<IdempotencyRecord>)> {
    let idempotency = match (query.idempotency.as_ref(), row.idem_request_hash) {
        (Some(key), Some(request_hash)) => Some(IdempotencyRecord {
            key: key.clone(),
            request_hash: hash_bytes(&request_hash)?,
            status: u16::try_from(row.idem_status.unwrap_or_default())
                .map_err(crate::error::backend)?,
            body: row.idem_body.unwrap_or_default(),
            created_at: row.idem_created_at.unwrap_or_default(),
        }),
        _ => None,
    };
    let aggregate = LicenseAggregate {
        license,
        policy: row.policy.0,
        devices: row.devices.0,
        features: row.features.0,
        leases: row.leases.0,
        versions: VersionCatalogView {
            has_catalog: row.has_catalog,
            entry: row.version_entry.map(|j| j.0),
        },
        consumption: row.consumption.map(|j| j.0),
    };
    Ok((aggregate, idempotency))
}

/// What a decision's mutations touch, by key, so each touched row is written once with its
/// state after [`LicenseAggregate::apply`].
#[derive(Default)]
struct Touched<'a> {
    license: bool,
    devices: BTreeSet<&'a DeviceId>,
    leases: BTreeSet<&'a LeaseId>,
    features: BTreeSet<&'a FeatureId>,
    consumptions: Vec<&'a ConsumptionRecord>,
}

impl<'a> Touched<'a> {
    fn of(mutations: &'a [Mutation]) -> Self {
        let mut t = Self::default();
        for m in mutations {
            match m {
                Mutation::License(_) => t.license = true,
                Mutation::Device(d) => {
                    t.devices.insert(&d.id);
                }
                Mutation::Lease(l) => {
                    t.leases.insert(&l.id);
                }
                Mutation::LicenseFeature(f) => {
                    t.features.insert(&f.feature_id);
                }
                Mutation::RemoveLicenseFeature(id) => {
                    t.features.insert(id);
                }
                Mutation::Consumption(c) => t.consumptions.push(c),
                _ => {}
            }
        }
        t
    }
}

/// Writes the decision's effect: every touched row as the applied aggregate has it.
async fn write_decision(
    conn: &mut PgConnection,
    before: &License,
    after: &LicenseAggregate,
    touched: &Touched<'_>,
) -> StoreResult<()> {
    if touched.license && after.license != *before {
        update_license(conn, &after.license).await?;
    }
    for id in &touched.devices {
        if let Some(d) = after.devices.iter().find(|d| &&d.id == id) {
            upsert_device(conn, d).await?;
        }
    }
    for id in &touched.leases {
        match after.leases.iter().find(|l| &&l.id == id) {
            Some(l) => upsert_lease(conn, l).await?,
            None => delete_lease(conn, id).await?,
        }
    }
    for id in &touched.features {
        match after.features.iter().find(|f| &&f.feature_id == id) {
            Some(f) => upsert_feature(conn, f).await?,
            None => delete_feature(conn, &after.license.id, id).await?,
        }
    }
    for c in &touched.consumptions {
        sqlx::query(
            "INSERT INTO consumptions (license_id, event_id, feature_id, amount, recorded_at, body, \
                 feature_code, product_id, customer_id, order_id, subscription_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.license_id.as_str())
        .bind(&c.event_id)
        .bind(c.feature_id.as_str())
        .bind(c.amount)
        .bind(c.recorded_at)
        .bind(Json(c))
        .bind(c.feature_code.as_str())
        .bind(c.product_id.as_str())
        .bind(c.customer_id.as_ref().map(|v| v.as_str()))
        .bind(c.order_id.as_ref().map(|v| v.as_str()))
        .bind(c.subscription_id.as_ref().map(|v| v.as_str()))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
    }
    Ok(())
}

async fn update_license(conn: &mut PgConnection, l: &License) -> StoreResult<()> {
    sqlx::query(
        "UPDATE licenses SET product_id = $2, policy_id = $3, customer_id = $4, order_id = $5, \
                             subscription_id = $6, key_hash = $7, status = $8, expires_at = $9, \
                             last_validated_at = $10, body = $11 \
         WHERE id = $1",
    )
    .bind(l.id.as_str())
    .bind(l.product_id.as_str())
    .bind(l.policy_id.as_str())
    .bind(l.customer_id.as_ref().map(|x| x.as_str()))
    .bind(l.order_id.as_ref().map(|x| x.as_str()))
    .bind(l.subscription_id.as_ref().map(|x| x.as_str()))
    .bind(&l.key_hash.as_bytes()[..])
    .bind(l.status.as_str())
    .bind(l.expires_at)
    .bind(l.last_validated_at)
    .bind(Json(l))
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

async fn upsert_device(conn: &mut PgConnection, d: &Device) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO devices (id, license_id, binding_key, status, created_at, body) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET binding_key = EXCLUDED.binding_key, \
                                        status = EXCLUDED.status, body = EXCLUDED.body \
         WHERE devices.license_id = EXCLUDED.license_id",
    )
    .bind(d.id.as_str())
    .bind(d.license_id.as_str())
    .bind(&d.binding_key)
    .bind(d.status.as_str())
    .bind(d.created_at)
    .bind(Json(d))
    .execute(conn)
    .await
    .map_err(map)
    .and_then(|done| {
        // A device id of another license: the update's WHERE refused it.
        crate::rows::touched(done.rows_affected(), "device")
            .map_err(|_| StoreError::already_exists("device", "id"))
    })
}

async fn upsert_lease(conn: &mut PgConnection, l: &Lease) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO leases (id, license_id, token_hash, checked_out_at, body) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, \
                                        checked_out_at = EXCLUDED.checked_out_at, \
                                        body = EXCLUDED.body \
         WHERE leases.license_id = EXCLUDED.license_id",
    )
    .bind(l.id.as_str())
    .bind(l.license_id.as_str())
    .bind(&l.token_hash.as_bytes()[..])
    .bind(l.checked_out_at)
    .bind(Json(l))
    .execute(conn)
    .await
    .map_err(map)
    .and_then(|done| {
        crate::rows::touched(done.rows_affected(), "lease")
            .map_err(|_| StoreError::already_exists("lease", "id"))
    })
}

async fn delete_lease(conn: &mut PgConnection, id: &LeaseId) -> StoreResult<()> {
    sqlx::query("DELETE FROM leases WHERE id = $1")
        .bind(id.as_str())
        .execute(conn)
        .await
        .map_err(map)?;
    Ok(())
}

async fn upsert_feature(conn: &mut PgConnection, f: &LicenseFeature) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO license_features (license_id, feature_id, feature_code, body) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (license_id, feature_id) DO UPDATE SET feature_code = EXCLUDED.feature_code, \
                                                            body = EXCLUDED.body",
    )
    .bind(f.license_id.as_str())
    .bind(f.feature_id.as_str())
    .bind(f.feature_code.as_str())
    .bind(Json(f))
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

async fn delete_feature(
    conn: &mut PgConnection,
    license: &LicenseId,
    feature: &FeatureId,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM license_features WHERE license_id = $1 AND feature_id = $2")
        .bind(license.as_str())
        .bind(feature.as_str())
        .execute(conn)
        .await
        .map_err(map)?;
    Ok(())
}

async fn insert_idempotency(conn: &mut PgConnection, r: &IdempotencyRecord) -> StoreResult<()> {
    let IdempotencyKey { scope, key } = &r.key;
    sqlx::query(
        "INSERT INTO idempotency_records (scope, key, request_hash, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(scope)
    .bind(key)
    .bind(&r.request_hash[..])
    .bind(i32::from(r.status))
    .bind(&r.body)
    .bind(r.created_at)
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

impl LicenseStore for PostgresStore {
    async fn insert_license(&self, l: &License, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO licenses (id, product_id, policy_id, customer_id, order_id, \
                                   subscription_id, key_hash, status, expires_at, \
                                   last_validated_at, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(l.id.as_str())
        .bind(l.product_id.as_str())
        .bind(l.policy_id.as_str())
        .bind(l.customer_id.as_ref().map(|x| x.as_str()))
        .bind(l.order_id.as_ref().map(|x| x.as_str()))
        .bind(l.subscription_id.as_ref().map(|x| x.as_str()))
        .bind(&l.key_hash.as_bytes()[..])
        .bind(l.status.as_str())
        .bind(l.expires_at)
        .bind(l.last_validated_at)
        .bind(l.created_at)
        .bind(Json(l))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_license(&self, id: &LicenseId) -> StoreResult<License> {
        let mut conn = self.conn().await?;
        let row: Option<LicenseRow> =
            sqlx::query_as("SELECT body, key_hash, last_validated_at FROM licenses WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map)?;
        license_from_row(row.ok_or(StoreError::not_found("license"))?)
    }

    async fn list_licenses(&self, q: &LicenseQuery) -> StoreResult<Vec<License>> {
        let mut conn = self.conn().await?;
        let (after_at, after_id) = match &q.after {
            Some((at, id)) => (Some(*at), Some(id.as_str())),
            None => (None, None),
        };
        let rows: Vec<LicenseRow> = sqlx::query_as(
            "SELECT body, key_hash, last_validated_at FROM licenses \
             WHERE ($1::text IS NULL OR product_id = $1) \
               AND ($2::text IS NULL OR policy_id = $2) \
               AND ($3::text IS NULL OR customer_id = $3) \
               AND ($4::text IS NULL OR order_id = $4) \
               AND ($5::text IS NULL OR subscription_id = $5) \
               AND ($6::timestamptz IS NULL OR expires_at < $6) \
               AND ($7::timestamptz IS NULL OR expires_at > $7) \
               AND ($8::text IS NULL OR status = $8) \
               AND ($9::timestamptz IS NULL OR (created_at, id) < ($9, $10::text)) \
             ORDER BY created_at DESC, id DESC \
             LIMIT $11",
        )
        .bind(q.product_id.as_ref().map(|x| x.as_str()))
        .bind(q.policy_id.as_ref().map(|x| x.as_str()))
        .bind(q.customer_id.as_ref().map(|x| x.as_str()))
        .bind(q.order_id.as_ref().map(|x| x.as_str()))
        .bind(q.subscription_id.as_ref().map(|x| x.as_str()))
        .bind(q.expires_before)
        .bind(q.expires_after)
        .bind(q.stored_status.map(|s| s.as_str()))
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(q.limit.get()))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        rows.into_iter().map(license_from_row).collect()
    }

    async fn transact_license<T, F>(&self, query: AggregateQuery, decide: F) -> StoreResult<T>
    where
        T: Send,
        F: FnOnce(Loaded<'_>) -> Decision<T> + Send,
    {
        let selector = query
            .selector
            .as_ref()
            .ok_or(StoreError::not_found("license"))?;
        let mut tx = self.begin_runtime().await?;
        let license = Self::lock_license(&mut tx, selector).await?;
        let (mut aggregate, idempotency) = Self::load(&mut tx, license, &query).await?;
        let Decision {
            mutations,
            events,
            idempotency: record,
            outcome,
        } = decide(Loaded {
            aggregate: &aggregate,
            idempotency: idempotency.as_ref(),
        });

        let id = aggregate.license.id.clone();
        if mutations
            .iter()
            .any(|m| m.license_id().is_some_and(|owner| owner != &id))
        {
            return Err(StoreError::Conflict {
                reason: "a mutation names another license than the one locked",
            });
        }
        if mutations.is_empty() && events.is_empty() && record.is_none() {
            // Nothing to write: release the lock without a commit round trip's work.
            tx.rollback().await.map_err(map)?;
            return Ok(outcome);
        }
        let before = aggregate.license.clone();
        aggregate.apply(&mutations);
        write_decision(&mut tx, &before, &aggregate, &Touched::of(&mutations)).await?;
        if let Some(record) = &record {
            insert_idempotency(&mut tx, record).await?;
        }
        self.commit(tx, events).await?;
        Ok(outcome)
    }

    async fn read_license(&self, query: &AggregateQuery) -> StoreResult<LicenseAggregate> {
        self.snapshot(query).await
    }

    async fn purge_idempotency(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        // SKIP LOCKED: instances purging at once take disjoint rows instead of waiting.
        let done = sqlx::query(
            "DELETE FROM idempotency_records WHERE (scope, key) IN ( \
                 SELECT scope, key FROM idempotency_records WHERE created_at < $1 \
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(created_before)
        .bind(i64::from(limit))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn record_touches(&self, touches: Vec<TouchRecord>) -> StoreResult<()> {
        if touches.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_runtime().await?;
        // Licenses first, in id order, then their devices: the order transact_license locks
        // in (one license, then what hangs off it), so a flush never deadlocks with a write
        // or with another instance's flush.
        let mut license_ids: Vec<&str> = touches
            .iter()
            .map(|t| t.touch.license_id.as_str())
            .collect();
        license_ids.sort_unstable();
        license_ids.dedup();
        let rows: Vec<LicenseRow> = sqlx::query_as(
            "SELECT body, key_hash, last_validated_at FROM licenses WHERE id = ANY($1) \
             ORDER BY id FOR UPDATE",
        )
        .bind(&license_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        let mut device_ids: Vec<&str> =
            touches.iter().map(|t| t.touch.device_id.as_str()).collect();
        device_ids.sort_unstable();
        device_ids.dedup();
        let found: Vec<Json<Device>> = sqlx::query_scalar(
            "SELECT body FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&device_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;

        // Applied with the rules' own semantics (timestamps only move forward).
        let mut licenses: BTreeMap<LicenseId, License> = rows
            .into_iter()
            .map(|r| license_from_row(r).map(|l| (l.id.clone(), l)))
            .collect::<StoreResult<_>>()?;
        let mut devices: BTreeMap<DeviceId, Device> =
            found.into_iter().map(|j| (j.0.id.clone(), j.0)).collect();
        let mut changed_licenses = BTreeSet::new();
        let mut events = Vec::with_capacity(touches.len());
        for TouchRecord { touch, event } in touches {
            let Some(device) = devices
                .get_mut(&touch.device_id)
                .filter(|d| d.license_id == touch.license_id)
            else {
                continue;
            };
            let Some(license) = licenses.get_mut(&touch.license_id) else {
                continue;
            };
            touch.apply_to_device(device);
            let before = license.last_validated_at;
            touch.apply_to_license(license);
            if license.last_validated_at != before {
                changed_licenses.insert(touch.license_id.clone());
            }
            events.push(event);
        }
        let (device_ids, bodies): (Vec<&str>, Vec<Json<&Device>>) =
            devices.values().map(|d| (d.id.as_str(), Json(d))).unzip();
        let (license_ids, ats): (Vec<&str>, Vec<Option<DateTime<Utc>>>) = changed_licenses
            .iter()
            .map(|id| (id.as_str(), licenses[id].last_validated_at))
            .unzip();
        // Both updates in one statement (one round trip).
        sqlx::query(
            "WITH touched_devices AS ( \
                 UPDATE devices SET body = d.body \
                 FROM UNNEST($1::text[], $2::jsonb[]) AS d(id, body) WHERE devices.id = d.id) \
             UPDATE licenses SET last_validated_at = l.at \
             FROM UNNEST($3::text[], $4::timestamptz[]) AS l(id, at) WHERE licenses.id = l.id",
        )
        .bind(&device_ids)
        .bind(&bodies)
        .bind(&license_ids)
        .bind(&ats)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn list_devices(&self, license: &LicenseId, limit: Limit) -> StoreResult<Vec<Device>> {
        let mut conn = self.conn().await?;
        require(&mut conn, LICENSE_EXISTS, license.as_str(), "license").await?;
        page(
            &mut conn,
            "SELECT body FROM devices WHERE license_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(license.as_str()),
            limit,
        )
        .await
    }

    async fn get_device(&self, license: &LicenseId, device: &DeviceId) -> StoreResult<Device> {
        let mut conn = self.conn().await?;
        require(&mut conn, LICENSE_EXISTS, license.as_str(), "license").await?;
        sqlx::query_scalar::<_, Json<Device>>(
            "SELECT body FROM devices WHERE license_id = $1 AND id = $2",
        )
        .bind(license.as_str())
        .bind(device.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?
        .map(|j| j.0)
        .ok_or(StoreError::not_found("device"))
    }

    async fn list_license_features(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> StoreResult<Vec<LicenseFeature>> {
        let mut conn = self.conn().await?;
        require(&mut conn, LICENSE_EXISTS, license.as_str(), "license").await?;
        page(
            &mut conn,
            "SELECT body FROM license_features WHERE license_id = $1 \
             ORDER BY feature_code, feature_id LIMIT $2",
            Some(license.as_str()),
            limit,
        )
        .await
    }
}
