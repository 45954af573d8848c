//! [`LicenseStore`]: licenses and the per-license transaction.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use licentia_core::model::{
    ConsumptionRecord, Device, DeviceId, DeviceStatus, FeatureId, Lease, LeaseId, License,
    LicenseFeature, LicenseId, Policy, ProductVersion, SecretHash,
};
use licentia_core::rules::version::precedence_key;
use licentia_core::rules::{LicenseAggregate, Mutation, VersionCatalogView};
use licentia_core::store::{
    AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, LicenseQuery, LicenseSelector,
    LicenseStore, Limit, Loaded, NewEvent, NewLicenses, StoreError, StoreResult, TouchRecord,
};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::PostgresStore;
use crate::access::hash_bytes;
use crate::error::{backend, map};
use crate::rows::{LICENSE_EXISTS, page, require};

/// A license row: the record (without its secret-derived fields) and those fields.
pub(crate) type LicenseRow = (Json<License>, Vec<u8>, Option<DateTime<Utc>>);

pub(crate) fn license_from_row(
    (body, key_hash, last_validated_at): LicenseRow,
) -> StoreResult<License> {
    let mut license = body.0;
    license.key_hash = SecretHash::from_bytes(hash_bytes(&key_hash)?);
    license.last_validated_at = last_validated_at;
    Ok(license)
}

/// Everything of the aggregate but the license, loaded in one statement.
#[derive(sqlx::FromRow)]
pub(crate) struct AggregateRow {
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

/// Locks the license (`$1` its id, or when NULL `$2` its key hash) and loads its aggregate
/// after the lock is granted, in one round trip (migration 0007 says why that is consistent).
const LOCK_AGGREGATE: &str =
    "SELECT * FROM licentia_lock_aggregate($1, $2, $3, $4, $5, $6, $7, $8)";

/// A license row and the rest of its aggregate, as the snapshot and the lock read them.
#[derive(sqlx::FromRow)]
pub(crate) struct SnapshotRow {
    pub(crate) license: Json<License>,
    pub(crate) key_hash: Vec<u8>,
    pub(crate) last_validated_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub(crate) rest: AggregateRow,
}

/// Devices a runtime decision must see whatever binding it names: the ones holding or
/// refusing a seat.
const ALWAYS_LOADED_DEVICES: [DeviceStatus; 2] = [DeviceStatus::Active, DeviceStatus::Blacklisted];

/// [`ALWAYS_LOADED_DEVICES`] as the aggregate's `text[]` parameter.
pub(crate) fn always_loaded_statuses() -> Vec<&'static str> {
    ALWAYS_LOADED_DEVICES.iter().map(|s| s.as_str()).collect()
}

impl PostgresStore {
    /// Locks the license `query` names (`FOR UPDATE`) and loads its aggregate, with the
    /// idempotency record it asks for.
    async fn lock_aggregate(
        conn: &mut PgConnection,
        selector: &LicenseSelector,
        query: &AggregateQuery,
    ) -> StoreResult<(LicenseAggregate, Option<IdempotencyRecord>)> {
        let (id, hash) = match selector {
            LicenseSelector::Id(id) => (Some(id.as_str()), None),
            LicenseSelector::KeyHash(hash) => (None, Some(&hash.as_bytes()[..])),
        };
        let row: SnapshotRow =
            bind_aggregate(sqlx::query_as(LOCK_AGGREGATE).bind(id).bind(hash), query)
                .fetch_optional(conn)
                .await
                .map_err(map)?
                .ok_or(StoreError::not_found("license"))?;
        let license = license_from_row((row.license, row.key_hash, row.last_validated_at))?;
        assemble(license, row.rest, query)
    }
}

/// Binds the aggregate's parameters after the license's (`licentia_aggregate`'s from its
/// fourth on) for `query`.
fn bind_aggregate<'q, O>(
    q: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    query: &'q AggregateQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    q.bind(always_loaded_statuses())
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
pub(crate) fn assemble(
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

/// The common table expressions of one statement, separated as they are pushed.
struct Ctes<'q> {
    q: &'q mut QueryBuilder<Postgres>,
    any: bool,
}

impl Ctes<'_> {
    /// Starts the next expression: `name AS (` follows, the caller pushes its body and `)`.
    fn next(&mut self, name: &str) -> &mut QueryBuilder<Postgres> {
        if self.any {
            self.q.push(", ");
        }
        self.any = true;
        self.q.push(name).push(" AS (")
    }
}

/// Writes the decision's effect (every touched row as the applied aggregate has it), its
/// idempotency record and its events in ONE statement: a data-modifying common table
/// expression per kind of row that has something to write, fed by arrays. One round trip
/// where a statement per row took six to eight, and nothing opened for a table the
/// decision does not touch; a decision's shape (which kinds it writes) is one of a few SQL
/// texts, each prepared once per connection. The rows and the order within each table are
/// those the per-row statements wrote. The statement returns how many device and lease
/// upserts were applied: an upsert of an id of another license is refused by its WHERE.
async fn write_decision(
    conn: &mut PgConnection,
    before: &License,
    after: &LicenseAggregate,
    touched: &Touched<'_>,
    record: Option<&IdempotencyRecord>,
    events: Vec<NewEvent>,
) -> StoreResult<()> {
    let id = after.license.id.as_str();
    let devices: Vec<&Device> = touched
        .devices
        .iter()
        .filter_map(|id| after.devices.iter().find(|d| &&d.id == id))
        .collect();
    let (mut leases, mut leases_gone) = (Vec::new(), Vec::new());
    for lease_id in &touched.leases {
        match after.leases.iter().find(|l| &&l.id == lease_id) {
            Some(lease) => leases.push(lease),
            None => leases_gone.push(lease_id.as_str()),
        }
    }
    let (mut features, mut features_gone) = (Vec::new(), Vec::new());
    for feature_id in &touched.features {
        match after.features.iter().find(|f| &&f.feature_id == feature_id) {
            Some(f) => features.push(f),
            None => features_gone.push(feature_id.as_str()),
        }
    }
    let (expect_devices, expect_leases) = (devices.len(), leases.len());

    let mut q = QueryBuilder::new("WITH ");
    let mut ctes = Ctes {
        q: &mut q,
        any: false,
    };
    if touched.license && after.license != *before {
        push_license_update(ctes.next("lic"), &after.license);
        ctes.q.push(")");
    }
    if !devices.is_empty() {
        let q = ctes.next("dev");
        q.push(
            "INSERT INTO devices (id, license_id, binding_key, status, created_at, body) \
             SELECT id, ",
        );
        q.push_bind(id).push(
            ", binding_key, status, created_at, body \
             FROM UNNEST(",
        );
        q.push_bind(devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>());
        q.push("::text[], ");
        q.push_bind(
            devices
                .iter()
                .map(|d| d.binding_key.as_str())
                .collect::<Vec<_>>(),
        );
        q.push("::text[], ");
        q.push_bind(
            devices
                .iter()
                .map(|d| d.status.as_str())
                .collect::<Vec<_>>(),
        );
        q.push("::text[], ");
        q.push_bind(devices.iter().map(|d| d.created_at).collect::<Vec<_>>());
        q.push("::timestamptz[], ");
        q.push_bind(devices.iter().map(|d| Json(*d)).collect::<Vec<_>>());
        q.push(
            "::jsonb[]) WITH ORDINALITY AS t(id, binding_key, status, created_at, body, n) \
             ORDER BY n \
             ON CONFLICT (id) DO UPDATE SET binding_key = EXCLUDED.binding_key, \
                 status = EXCLUDED.status, body = EXCLUDED.body \
             WHERE devices.license_id = EXCLUDED.license_id \
             RETURNING 1)",
        );
    }
    if !leases.is_empty() {
        let q = ctes.next("lse");
        q.push("INSERT INTO leases (id, license_id, token_hash, checked_out_at, body) SELECT id, ");
        q.push_bind(id)
            .push(", token_hash, checked_out_at, body FROM UNNEST(");
        q.push_bind(leases.iter().map(|l| l.id.as_str()).collect::<Vec<_>>());
        q.push("::text[], ");
        q.push_bind(
            leases
                .iter()
                .map(|l| l.token_hash.as_bytes().to_vec())
                .collect::<Vec<_>>(),
        );
        q.push("::bytea[], ");
        q.push_bind(leases.iter().map(|l| l.checked_out_at).collect::<Vec<_>>());
        q.push("::timestamptz[], ");
        q.push_bind(leases.iter().map(|l| Json(*l)).collect::<Vec<_>>());
        q.push(
            "::jsonb[]) WITH ORDINALITY AS t(id, token_hash, checked_out_at, body, n) \
             ORDER BY n \
             ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, \
                 checked_out_at = EXCLUDED.checked_out_at, body = EXCLUDED.body \
             WHERE leases.license_id = EXCLUDED.license_id \
             RETURNING 1)",
        );
    }
    if !leases_gone.is_empty() {
        let q = ctes.next("lsd");
        q.push("DELETE FROM leases WHERE license_id = ");
        q.push_bind(id).push(" AND id = ANY(");
        q.push_bind(leases_gone).push("::text[]))");
    }
    if !features.is_empty() {
        let q = ctes.next("fup");
        q.push("INSERT INTO license_features (license_id, feature_id, feature_code, body) SELECT ");
        q.push_bind(id)
            .push(", feature_id, feature_code, body FROM UNNEST(");
        q.push_bind(
            features
                .iter()
                .map(|f| f.feature_id.as_str())
                .collect::<Vec<_>>(),
        );
        q.push("::text[], ");
        q.push_bind(
            features
                .iter()
                .map(|f| f.feature_code.as_str())
                .collect::<Vec<_>>(),
        );
        q.push("::text[], ");
        q.push_bind(features.iter().map(|f| Json(*f)).collect::<Vec<_>>());
        q.push(
            "::jsonb[]) WITH ORDINALITY AS t(feature_id, feature_code, body, n) \
             ORDER BY n \
             ON CONFLICT (license_id, feature_id) DO UPDATE \
                 SET feature_code = EXCLUDED.feature_code, body = EXCLUDED.body)",
        );
    }
    if !features_gone.is_empty() {
        let q = ctes.next("fdl");
        q.push("DELETE FROM license_features WHERE license_id = ");
        q.push_bind(id).push(" AND feature_id = ANY(");
        q.push_bind(features_gone).push("::text[]))");
    }
    if !touched.consumptions.is_empty() {
        push_consumptions(ctes.next("con"), id, &touched.consumptions);
    }
    if let Some(r) = record {
        let q = ctes.next("idm");
        q.push(
            "INSERT INTO idempotency_records (scope, key, request_hash, status, body, created_at) \
             VALUES (",
        );
        let mut values = q.separated(", ");
        values.push_bind(r.key.scope.as_str());
        values.push_bind(r.key.key.as_str());
        values.push_bind(&r.request_hash[..]);
        values.push_bind(i32::from(r.status));
        values.push_bind(r.body.as_slice());
        values.push_bind(r.created_at);
        q.push("))");
    }
    if !events.is_empty() {
        if ctes.any {
            ctes.q.push(", ");
        }
        crate::events::push_append(ctes.q, events);
        ctes.any = true;
    }
    if !ctes.any {
        return Ok(());
    }
    let count = |name: &str, n: usize| match n {
        0 => "0::bigint".to_owned(),
        _ => format!("(SELECT count(*) FROM {name})"),
    };
    q.push(format!(
        " SELECT {}, {}",
        count("dev", expect_devices),
        count("lse", expect_leases)
    ));
    let (devices_written, leases_written): (i64, i64) =
        q.build_query_as().fetch_one(conn).await.map_err(map)?;
    if usize::try_from(devices_written).ok() != Some(expect_devices) {
        return Err(StoreError::already_exists("device", "id"));
    }
    if usize::try_from(leases_written).ok() != Some(expect_leases) {
        return Err(StoreError::already_exists("lease", "id"));
    }
    Ok(())
}

/// The body of the `lic` expression: the license row rewritten from `l`.
pub(crate) fn push_license_update(q: &mut QueryBuilder<Postgres>, l: &License) {
    q.push("UPDATE licenses SET ");
    let mut set = q.separated(", ");
    set.push("product_id = ")
        .push_bind_unseparated(l.product_id.as_str());
    set.push("policy_id = ")
        .push_bind_unseparated(l.policy_id.as_str());
    set.push("customer_id = ")
        .push_bind_unseparated(l.customer_id.as_ref().map(|x| x.as_str()));
    set.push("order_id = ")
        .push_bind_unseparated(l.order_id.as_ref().map(|x| x.as_str()));
    set.push("subscription_id = ")
        .push_bind_unseparated(l.subscription_id.as_ref().map(|x| x.as_str()));
    set.push("key_hash = ")
        .push_bind_unseparated(&l.key_hash.as_bytes()[..]);
    set.push("status = ")
        .push_bind_unseparated(l.status.as_str());
    set.push("expires_at = ")
        .push_bind_unseparated(l.expires_at);
    set.push("last_validated_at = ")
        .push_bind_unseparated(l.last_validated_at);
    set.push("body = ").push_bind_unseparated(Json(l));
    q.push(" WHERE id = ").push_bind(l.id.as_str());
}

/// The body of the `con` expression: the consumptions `c` of license `id`, in order.
fn push_consumptions(q: &mut QueryBuilder<Postgres>, id: &str, c: &[&ConsumptionRecord]) {
    q.push(
        "INSERT INTO consumptions (license_id, event_id, feature_id, amount, recorded_at, \
             body, feature_code, product_id, customer_id, order_id, subscription_id) \
         SELECT ",
    );
    q.push_bind(id).push(
        ", event_id, feature_id, amount, recorded_at, body, feature_code, product_id, \
         customer_id, order_id, subscription_id FROM UNNEST(",
    );
    q.push_bind(c.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>());
    q.push("::text[], ");
    q.push_bind(c.iter().map(|c| c.feature_id.as_str()).collect::<Vec<_>>());
    q.push("::text[], ");
    q.push_bind(c.iter().map(|c| c.amount).collect::<Vec<_>>());
    q.push("::int8[], ");
    q.push_bind(c.iter().map(|c| c.recorded_at).collect::<Vec<_>>());
    q.push("::timestamptz[], ");
    q.push_bind(c.iter().map(|c| Json(*c)).collect::<Vec<_>>());
    q.push("::jsonb[], ");
    q.push_bind(
        c.iter()
            .map(|c| c.feature_code.as_str())
            .collect::<Vec<_>>(),
    );
    q.push("::text[], ");
    q.push_bind(c.iter().map(|c| c.product_id.as_str()).collect::<Vec<_>>());
    q.push("::text[], ");
    for ids in [
        c.iter()
            .map(|c| c.customer_id.as_ref().map(|v| v.as_str()))
            .collect::<Vec<_>>(),
        c.iter()
            .map(|c| c.order_id.as_ref().map(|v| v.as_str()))
            .collect::<Vec<_>>(),
    ] {
        q.push_bind(ids).push("::text[], ");
    }
    q.push_bind(
        c.iter()
            .map(|c| c.subscription_id.as_ref().map(|v| v.as_str()))
            .collect::<Vec<_>>(),
    );
    q.push(
        "::text[]) WITH ORDINALITY AS t(event_id, feature_id, amount, recorded_at, body, \
             feature_code, product_id, customer_id, order_id, subscription_id, n) \
         ORDER BY n)",
    );
}

impl PostgresStore {
    /// Inserts new licenses, their feature assignments and the idempotency record of the
    /// call that created them in `tx`.
    pub(crate) async fn write_new_licenses(
        &self,
        tx: &mut PgConnection,
        batch: NewLicenses<'_>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        // Assignments and values only of the licenses being inserted, as the contract says.
        if !batch.references_hold() {
            return Err(StoreError::not_found("license"));
        }
        let NewLicenses {
            licenses,
            features,
            custom_values,
        } = batch;
        if !licenses.is_empty() {
            let ids = |f: fn(&License) -> Option<&str>| licenses.iter().map(f).collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO licenses (id, product_id, policy_id, customer_id, order_id, \
                                       subscription_id, key_hash, status, expires_at, \
                                       last_validated_at, created_at, body) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                      $6::text[], $7::bytea[], $8::text[], $9::timestamptz[], \
                                      $10::timestamptz[], $11::timestamptz[], $12::jsonb[])",
            )
            .bind(ids(|l| Some(l.id.as_str())))
            .bind(ids(|l| Some(l.product_id.as_str())))
            .bind(ids(|l| Some(l.policy_id.as_str())))
            .bind(ids(|l| l.customer_id.as_ref().map(|x| x.as_str())))
            .bind(ids(|l| l.order_id.as_ref().map(|x| x.as_str())))
            .bind(ids(|l| l.subscription_id.as_ref().map(|x| x.as_str())))
            .bind(
                licenses
                    .iter()
                    .map(|l| l.key_hash.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
            .bind(ids(|l| Some(l.status.as_str())))
            .bind(licenses.iter().map(|l| l.expires_at).collect::<Vec<_>>())
            .bind(
                licenses
                    .iter()
                    .map(|l| l.last_validated_at)
                    .collect::<Vec<_>>(),
            )
            .bind(licenses.iter().map(|l| l.created_at).collect::<Vec<_>>())
            .bind(licenses.iter().map(Json).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        if !features.is_empty() {
            sqlx::query(
                "INSERT INTO license_features (license_id, feature_id, feature_code, body) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[])",
            )
            .bind(
                features
                    .iter()
                    .map(|f| f.license_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                features
                    .iter()
                    .map(|f| f.feature_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                features
                    .iter()
                    .map(|f| f.feature_code.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(features.iter().map(Json).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        if !custom_values.is_empty() {
            // A value of a definition deleted meanwhile is refused by its foreign key.
            sqlx::query(
                "INSERT INTO custom_values (definition_id, resource_id, body) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[])",
            )
            .bind(
                custom_values
                    .iter()
                    .map(|v| v.definition_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                custom_values
                    .iter()
                    .map(|v| v.resource_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(custom_values.iter().map(Json).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        if let Some(r) = idempotency {
            self.insert_sealed_idempotency(tx, r).await?;
        }
        Ok(())
    }

    /// Inserts `r`, whose answer may hold secrets (keys shown once): sealed when a master
    /// key is set.
    pub(crate) async fn insert_sealed_idempotency(
        &self,
        tx: &mut PgConnection,
        r: &IdempotencyRecord,
    ) -> StoreResult<()> {
        {
            let (sealed, body) = match &self.master {
                Some(master) => (true, master.seal_secret(&idempotency_aad(&r.key), &r.body)),
                None => (false, r.body.clone()),
            };
            sqlx::query(
                "INSERT INTO idempotency_records \
                     (scope, key, request_hash, status, body, created_at, sealed) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.key.scope.as_str())
            .bind(r.key.key.as_str())
            .bind(&r.request_hash[..])
            .bind(i32::from(r.status))
            .bind(body)
            .bind(r.created_at)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        Ok(())
    }
}

impl LicenseStore for PostgresStore {
    async fn insert_license(&self, l: &License, events: Vec<NewEvent>) -> StoreResult<()> {
        licentia_core::store::outside_contracts([l])?;
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

    async fn insert_licenses(
        &self,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreResult<()> {
        licentia_core::store::outside_contracts(batch.licenses)?;
        let mut tx = self.begin().await?;
        self.write_new_licenses(&mut tx, batch, idempotency.as_ref())
            .await?;
        self.commit(tx, events).await
    }

    async fn find_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let mut conn = self.conn().await?;
        let row: Option<IdempotencyRow> = sqlx::query_as(
            "SELECT request_hash, status, body, created_at, sealed FROM idempotency_records \
             WHERE scope = $1 AND key = $2",
        )
        .bind(key.scope.as_str())
        .bind(key.key.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
        let Some((request_hash, status, body, created_at, sealed)) = row else {
            return Ok(None);
        };
        let body = match (sealed, &self.master) {
            (false, _) => body,
            (true, Some(master)) => master
                .open_secret(&idempotency_aad(key), &body)
                .map_err(crate::error::backend)?
                .to_vec(),
            (true, None) => {
                return Err(StoreError::Backend {
                    source: "a sealed idempotency record read without LICENTIA_MASTER_KEY".into(),
                });
            }
        };
        Ok(Some(IdempotencyRecord {
            key: key.clone(),
            request_hash: hash_bytes(&request_hash)?,
            status: u16::try_from(status).map_err(crate::error::backend)?,
            body,
            created_at,
        }))
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
               AND ($12::text IS NULL OR body->>'license_key_prefix' = $12 \
                    OR body->>'license_key_last4' = $12) \
               AND ($13::text IS NULL OR pool = $13) \
               AND ($14::text IS NULL OR contract_id = $14) \
               AND ($15::text IS NULL OR assigned_users @> \
                    jsonb_build_array(jsonb_build_object('user_id', $15::text))) \
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
        .bind(q.key_hint.as_deref())
        .bind(q.pool.as_ref().map(|x| x.as_str()))
        .bind(q.contract_id.as_ref().map(|x| x.as_str()))
        .bind(q.user_id.as_ref().map(|x| x.as_str()))
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
        let (mut aggregate, idempotency) = Self::lock_aggregate(&mut tx, selector, &query).await?;
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
        // A registration's activation first: if another one bound it meanwhile, nothing of
        // this decision is written.
        for m in &mutations {
            if let Mutation::Registration {
                registration,
                expected_device,
            } = m
            {
                crate::registration::write_activation(
                    &mut tx,
                    registration,
                    expected_device.as_ref(),
                )
                .await?;
            }
        }
        let before = aggregate.license.clone();
        aggregate.apply(&mutations);
        let touched = Touched::of(&mutations);
        write_decision(
            &mut tx,
            &before,
            &aggregate,
            &touched,
            record.as_ref(),
            events,
        )
        .await?;
        tx.commit().await.map_err(map)?;
        Ok(outcome)
    }

    async fn read_license(&self, query: &AggregateQuery) -> StoreResult<LicenseAggregate> {
        // One statement without a lock, with the other snapshots waiting at the same time.
        self.snapshots.snapshot(&self.reads, query).await
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

    async fn silent_device_licenses(
        &self,
        now: DateTime<Utc>,
        margin: chrono::Duration,
        limit: u32,
    ) -> StoreResult<Vec<LicenseId>> {
        let mut conn = self.conn().await?;
        // device_heartbeat::is_silent in SQL: from the policies that require heartbeats to
        // their licenses' active devices, release_at(max(last_seen_at, the policy's
        // updated_at)) + margin < now, and no offline license valid past now - margin.
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT d.license_id FROM policies p \
             JOIN licenses l ON l.policy_id = p.id \
             JOIN devices d ON d.license_id = l.id AND d.status = 'active' \
             WHERE p.body->>'device_heartbeat_minutes' IS NOT NULL \
               AND GREATEST((d.body->>'last_seen_at')::timestamptz, \
                            (p.body->>'updated_at')::timestamptz) \
                   + make_interval(mins => (p.body->>'device_heartbeat_minutes')::int \
                       + coalesce((p.body->>'device_heartbeat_grace_minutes')::int, 0)) \
                   + $2 * interval '1 microsecond' < $1 \
               AND (d.body->>'offline_until' IS NULL \
                    OR (d.body->>'offline_until')::timestamptz \
                       + $2 * interval '1 microsecond' < $1) \
             GROUP BY d.license_id \
             ORDER BY min((d.body->>'last_seen_at')::timestamptz), d.license_id \
             LIMIT $3",
        )
        .bind(now)
        .bind(margin.num_microseconds().unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        ids.iter().map(|id| id.parse().map_err(backend)).collect()
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

/// An idempotency record's columns: request hash, status, body, created at, sealed.
type IdempotencyRow = (Vec<u8>, i32, Vec<u8>, DateTime<Utc>, bool);

/// The associated data a sealed idempotency body is bound to.
fn idempotency_aad(key: &IdempotencyKey) -> String {
    format!("idempotency:{}:{}", key.scope, key.key)
}
