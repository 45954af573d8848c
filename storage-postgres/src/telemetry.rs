//! [`TelemetryStore`]: one row per record, numbered by an identity column.

use chrono::{DateTime, Utc};
use licentia_core::model::{LicenseId, NewTelemetry, TelemetryId, TelemetryRecord};
use licentia_core::store::{Limit, StoreResult, TelemetryPage, TelemetryStore};
use serde_json::{Map, Value};
use sqlx::types::Json;

use crate::PostgresStore;
use crate::error::map;

type Row = (
    i64,
    DateTime<Utc>,
    bool,
    Json<Vec<String>>,
    Json<Map<String, Value>>,
);

impl TelemetryStore for PostgresStore {
    async fn insert_telemetry(&self, record: NewTelemetry) -> StoreResult<TelemetryRecord> {
        let mut conn = self.conn().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO telemetry (license_id, received_at, well_formed, problems, payload) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(record.license_id.as_str())
        .bind(record.received_at)
        .bind(record.well_formed)
        .bind(Json(&record.problems))
        .bind(Json(&record.payload))
        .fetch_one(&mut *conn)
        .await
        .map_err(map)?;
        Ok(TelemetryRecord::stored(TelemetryId::new(id), record))
    }

    async fn list_telemetry(
        &self,
        license: &LicenseId,
        before: Option<TelemetryId>,
        limit: Limit,
    ) -> StoreResult<TelemetryPage> {
        let mut conn = self.conn().await?;
        // One more than the page, to know whether another follows.
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, received_at, well_formed, problems, payload FROM telemetry \
             WHERE license_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(license.as_str())
        .bind(before.map_or(i64::MAX, TelemetryId::get))
        .bind(i64::try_from(limit.as_usize() + 1).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        let records = rows
            .into_iter()
            .map(
                |(id, received_at, well_formed, problems, payload)| TelemetryRecord {
                    id: TelemetryId::new(id),
                    license_id: license.clone(),
                    received_at,
                    well_formed,
                    problems: problems.0,
                    payload: payload.0,
                },
            )
            .collect();
        Ok(TelemetryPage::from_overfetch(records, limit))
    }

    async fn purge_telemetry(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        // SKIP LOCKED: instances purging at once take disjoint rows instead of waiting.
        let done = sqlx::query(
            "DELETE FROM telemetry WHERE id IN ( \
                 SELECT id FROM telemetry WHERE received_at < $1 \
                 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(received_before)
        .bind(i64::from(limit))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }
}
