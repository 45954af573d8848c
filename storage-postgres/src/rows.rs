//! Small helpers every table uses: records are read back from their `body` column.

use licentia_core::store::{Limit, StoreError, StoreResult};
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::error::map;

/// The one record `sql` selects (its single column is the `body`) with `id` as `$1`;
/// `NotFound { entity }` when there is none.
pub(crate) async fn one<T>(
    conn: &mut PgConnection,
    sql: &'static str,
    id: &str,
    entity: &'static str,
) -> StoreResult<T>
where
    T: DeserializeOwned + Send + Unpin + 'static,
{
    sqlx::query_scalar::<_, Json<T>>(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(map)?
        .map(|j| j.0)
        .ok_or(StoreError::not_found(entity))
}

/// The records `sql` selects (single `body` column) with `$1` bound to `parent` and `$2` to
/// the page size.
pub(crate) async fn page<T>(
    conn: &mut PgConnection,
    sql: &'static str,
    parent: Option<&str>,
    limit: Limit,
) -> StoreResult<Vec<T>>
where
    T: DeserializeOwned + Send + Unpin + 'static,
{
    let rows: Vec<Json<T>> = sqlx::query_scalar(sql)
        .bind(parent)
        .bind(i64::from(limit.get()))
        .fetch_all(conn)
        .await
        .map_err(map)?;
    Ok(rows.into_iter().map(|j| j.0).collect())
}

/// `NotFound { entity }` unless `sql` (an `EXISTS` query with `$1`) is true for `id`.
pub(crate) async fn require(
    conn: &mut PgConnection,
    sql: &'static str,
    id: &str,
    entity: &'static str,
) -> StoreResult<()> {
    let exists: bool = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(conn)
        .await
        .map_err(map)?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::not_found(entity))
    }
}

/// `NotFound { entity }` when a write touched no row.
pub(crate) fn touched(rows_affected: u64, entity: &'static str) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::not_found(entity))
    } else {
        Ok(())
    }
}

pub(crate) const PRODUCT_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)";
pub(crate) const LICENSE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM licenses WHERE id = $1)";
