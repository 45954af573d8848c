//! [`AllocationStore`]: contracts, pool assignment (`FOR UPDATE SKIP LOCKED`) and issuing
//! within a contract's quota (under the contract's row lock).

use licentia_core::model::{Contract, ContractId, CustomerId, License, Policy, PoolName};
use licentia_core::rules::{Denial, Mutation};
use licentia_core::store::{
    AllocationStore, Decision, IdempotencyRecord, Limit, NewEvent, NewLicenses, StoreError,
    StoreResult,
};
use sqlx::types::Json;
use sqlx::{PgConnection, QueryBuilder};

use crate::PostgresStore;
use crate::error::map;
use crate::license::{LicenseRow, license_from_row, push_license_update};

/// A contract's record and how many of its licenses are not revoked, in one statement.
macro_rules! counted_contracts {
    ($tail:literal) => {
        concat!(
            "SELECT c.body, (SELECT count(*) FROM licenses l \
                             WHERE l.contract_id = c.id AND l.status <> 'revoked') \
             FROM contracts c ",
            $tail
        )
    };
}

type CountedRow = (Json<Contract>, i64);

/// A pooled license's row (as [`LicenseRow`]) and its policy.
type PooledRow = (
    Json<License>,
    Vec<u8>,
    Option<chrono::DateTime<chrono::Utc>>,
    Json<Policy>,
);

fn counted((body, issued): CountedRow) -> Contract {
    let mut c = body.0;
    c.licenses_issued = u32::try_from(issued).unwrap_or(u32::MAX);
    c
}

/// The contract `id` counted, its row locked until `conn`'s transaction ends.
async fn locked_contract(conn: &mut PgConnection, id: &ContractId) -> StoreResult<Contract> {
    // Lock the row first: the count below then sees every insert committed before the lock
    // was granted (READ COMMITTED takes a new snapshot per statement).
    let found: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM contracts WHERE id = $1 FOR UPDATE")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
    if found.is_none() {
        return Err(StoreError::not_found("contract"));
    }
    let row: CountedRow = sqlx::query_as(counted_contracts!("WHERE c.id = $1"))
        .bind(id.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(map)?;
    Ok(counted(row))
}

impl AllocationStore for PostgresStore {
    async fn insert_contract(&self, c: &Contract, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO contracts (id, customer_id, product_id, policy_id, template_id, \
                                    created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id.as_str())
        .bind(c.customer_id.as_str())
        .bind(c.product_id.as_str())
        .bind(c.policy_id.as_str())
        .bind(c.template_id.as_ref().map(|t| t.as_str()))
        .bind(c.created_at)
        .bind(Json(c))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_contract(&self, id: &ContractId) -> StoreResult<Contract> {
        let mut conn = self.conn().await?;
        let row: Option<CountedRow> = sqlx::query_as(counted_contracts!("WHERE c.id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?;
        row.map(counted).ok_or(StoreError::not_found("contract"))
    }

    async fn list_contracts(
        &self,
        customer: Option<&CustomerId>,
        limit: Limit,
    ) -> StoreResult<Vec<Contract>> {
        let mut conn = self.conn().await?;
        let rows: Vec<CountedRow> = sqlx::query_as(counted_contracts!(
            "WHERE ($1::text IS NULL OR c.customer_id = $1) \
             ORDER BY c.created_at DESC, c.id DESC LIMIT $2"
        ))
        .bind(customer.map(|c| c.as_str()))
        .bind(i64::from(limit.get()))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        Ok(rows.into_iter().map(counted).collect())
    }

    async fn insert_contract_licenses<F>(
        &self,
        id: &ContractId,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
        admit: F,
    ) -> StoreResult<Result<(), Denial>>
    where
        F: FnOnce(&Contract) -> Result<(), Denial> + Send,
    {
        licentia_core::store::all_under(id, &batch)?;
        let mut tx = self.begin().await?;
        let contract = locked_contract(&mut tx, id).await?;
        if let Err(refused) = admit(&contract) {
            tx.rollback().await.map_err(map)?;
            return Ok(Err(refused));
        }
        self.write_new_licenses(&mut tx, batch, idempotency.as_ref())
            .await?;
        self.commit(tx, events).await.map(Ok)
    }

    async fn assign_pool<T, F>(&self, pool: &PoolName, count: u32, decide: F) -> StoreResult<T>
    where
        T: Send,
        F: FnOnce(Vec<(License, Policy)>) -> Decision<T> + Send,
    {
        let mut tx = self.begin().await?;
        // SKIP LOCKED: concurrent assigns take disjoint licenses instead of waiting for
        // each other (or for a transaction on one of them).
        let rows: Vec<PooledRow> = sqlx::query_as(
            "SELECT l.body, l.key_hash, l.last_validated_at, p.body \
                 FROM licenses l JOIN policies p ON p.id = l.policy_id \
                 WHERE l.pool = $1 AND l.customer_id IS NULL AND l.status <> 'revoked' \
                 ORDER BY random() LIMIT $2 \
                 FOR UPDATE OF l SKIP LOCKED",
        )
        .bind(pool.as_str())
        .bind(i64::from(count))
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        let mut found = Vec::with_capacity(rows.len());
        for (license, key_hash, last_validated_at, policy) in rows {
            let row: LicenseRow = (license, key_hash, last_validated_at);
            found.push((license_from_row(row)?, policy.0));
        }
        let picked: Vec<_> = found.iter().map(|(l, _)| l.id.clone()).collect();
        let Decision {
            mutations,
            events,
            idempotency,
            outcome,
        } = decide(found);
        let mut written = Vec::with_capacity(mutations.len());
        for m in &mutations {
            let Mutation::License(new) = m else {
                return Err(StoreError::Conflict {
                    reason: "a pool assignment writes only license rows",
                });
            };
            if !picked.contains(&new.id) || written.contains(&&new.id) {
                return Err(StoreError::Conflict {
                    reason: "a mutation names a license the pool assignment did not pick",
                });
            }
            written.push(&new.id);
            let mut q = QueryBuilder::new("");
            push_license_update(&mut q, new);
            q.build().execute(&mut *tx).await.map_err(map)?;
        }
        if let Some(r) = &idempotency {
            self.insert_sealed_idempotency(&mut tx, r).await?;
        }
        self.commit(tx, events).await?;
        Ok(outcome)
    }
}
