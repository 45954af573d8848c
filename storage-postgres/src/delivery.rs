//! [`DeliveryStore`]: the webhook outbox (migration 0005). Deliveries are written by the
//! statement that appends their event ([`events::append`](crate::events::append)); this
//! module claims, finishes, lists and retries them.
//!
//! Locks: a report locks its endpoint's row (`FOR NO KEY UPDATE`, which event writes'
//! foreign-key checks do not wait for) before its delivery's, the order a delete of the
//! endpoint takes them in, so the two cannot deadlock.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use licentia_core::model::{
    Delivery, DeliveryAttempt, DeliveryId, DeliveryStatus, Event, WebhookEndpoint, WebhookId,
};
use licentia_core::store::{
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryPage, DeliveryReport, DeliveryStore,
    Limit, NewEvent, StoreError, StoreResult,
};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::PostgresStore;
use crate::error::{backend, map};

/// Claims due deliveries: for each active, unpaused endpoint, its oldest due unleased
/// deliveries (at most `per_endpoint`, by index), ranked after the endpoint's deliveries in
/// flight; then the lowest ranks first — round-robin across endpoints, oldest due first
/// within a round — within both limits, leased; rows another sender holds are skipped. The
/// cost follows the number of endpoints, not the size of the backlog.
const CLAIM: &str = "\
WITH eligible AS ( \
    SELECT w.id, \
           (SELECT count(*) FROM webhook_deliveries f \
            WHERE f.webhook_id = w.id AND f.status = 'pending' \
              AND f.lease_until IS NOT NULL AND f.lease_until > $1) AS in_flight \
    FROM webhooks w \
    WHERE (w.body->>'is_active')::boolean \
      AND (w.paused_until IS NULL OR w.paused_until <= $1)), \
ranked AS ( \
    SELECT c.id, c.next_attempt_at, \
           row_number() OVER (PARTITION BY e.id ORDER BY c.next_attempt_at, c.id) \
               + e.in_flight AS slot \
    FROM eligible e \
    CROSS JOIN LATERAL ( \
        SELECT d.id, d.next_attempt_at FROM webhook_deliveries d \
        WHERE d.webhook_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= $1 \
          AND (d.lease_until IS NULL OR d.lease_until <= $1) \
        ORDER BY d.next_attempt_at, d.id \
        LIMIT $4) c), \
picked AS ( \
    SELECT d.id FROM webhook_deliveries d \
    WHERE d.id IN (SELECT id FROM ranked WHERE slot <= $4 \
                   ORDER BY slot, next_attempt_at, id LIMIT $3) \
      AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until <= $1) \
    FOR UPDATE OF d SKIP LOCKED) \
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, lease_until = $2 \
FROM picked p, webhooks w \
WHERE d.id = p.id AND w.id = d.webhook_id \
RETURNING d.id, d.attempts, d.series_started_at, d.event_sequence, \
          w.body, w.secret, w.secret_sealed";

type ClaimRow = (
    i64,
    i32,
    DateTime<Utc>,
    i64,
    Json<WebhookEndpoint>,
    Option<String>,
    Option<Vec<u8>>,
);

/// Deliveries of `$1` (and only `$4` when given) before `$2`, newest first, with attempts.
const DELIVERIES: &str = "\
SELECT d.id, d.webhook_id, d.event_sequence, e.event_type, d.status, d.next_attempt_at, \
       d.created_at, \
       coalesce((SELECT jsonb_agg(jsonb_build_object( \
                     'attempt', a.attempt, 'started_at', a.started_at, \
                     'status_code', a.status_code, 'error', a.error, \
                     'duration_ms', a.duration_ms) ORDER BY a.attempt) \
                 FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id), '[]') \
FROM webhook_deliveries d JOIN events e ON e.sequence = d.event_sequence \
WHERE d.webhook_id = $1 AND ($2::bigint IS NULL OR d.id < $2) \
  AND ($4::bigint IS NULL OR d.id = $4) \
ORDER BY d.id DESC LIMIT $3";

type DeliveryRow = (
    i64,
    String,
    i64,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Json<Vec<DeliveryAttempt>>,
);

fn delivery_from_row(row: DeliveryRow) -> StoreResult<Delivery> {
    let (id, webhook_id, sequence, event_type, status, next_attempt_at, created_at, attempts) = row;
    let status: DeliveryStatus = status.parse().map_err(backend)?;
    Ok(Delivery {
        id: DeliveryId::new(id),
        webhook_id: webhook_id.parse().map_err(backend)?,
        event_id: Delivery::event_id_of(sequence),
        event_type,
        status,
        next_attempt_at: (status == DeliveryStatus::Pending).then_some(next_attempt_at),
        attempts: attempts.0,
        created_at,
    })
}

async fn deliveries(
    conn: &mut PgConnection,
    webhook: &WebhookId,
    before: Option<DeliveryId>,
    only: Option<DeliveryId>,
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(DELIVERIES)
        .bind(webhook.as_str())
        .bind(before.map(DeliveryId::get))
        .bind(limit)
        .bind(only.map(DeliveryId::get))
        .fetch_all(conn)
        .await
        .map_err(map)?;
    rows.into_iter().map(delivery_from_row).collect()
}

async fn require_webhook(conn: &mut PgConnection, webhook: &WebhookId) -> StoreResult<()> {
    crate::rows::require(
        conn,
        "SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1)",
        webhook.as_str(),
        "webhook",
    )
    .await
}

impl PostgresStore {
    fn claimed(
        &self,
        (id, attempt, series_started_at, sequence, webhook, clear, sealed): ClaimRow,
        events: &HashMap<i64, Event>,
    ) -> StoreResult<ClaimedDelivery> {
        let webhook = webhook.0;
        let secret = self.open_webhook_secret(&webhook.id, clear, sealed)?;
        let event = events
            .get(&sequence)
            .cloned()
            // The foreign key makes a delivery without its event impossible.
            .ok_or_else(|| StoreError::Backend {
                source: format!("delivery of event {sequence}, which the log does not hold").into(),
            })?;
        Ok(ClaimedDelivery {
            id: DeliveryId::new(id),
            attempt: u32::try_from(attempt).map_err(backend)?,
            series_started_at,
            event,
            webhook,
            secret,
        })
    }
}

impl DeliveryStore for PostgresStore {
    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ClaimRow> = sqlx::query_as(CLAIM)
            .bind(claim.now)
            .bind(claim.lease_until)
            .bind(i64::from(claim.limit))
            .bind(i64::from(claim.per_endpoint))
            .fetch_all(&mut *conn)
            .await
            .map_err(map)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let sequences: Vec<i64> = rows.iter().map(|r| r.3).collect();
        let events = crate::events::by_sequence(&mut conn, &sequences).await?;
        rows.into_iter()
            .map(|row| self.claimed(row, &events))
            .collect()
    }

    async fn finish_delivery(&self, report: DeliveryReport) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let endpoint: Option<bool> =
            sqlx::query_scalar("SELECT true FROM webhooks WHERE id = $1 FOR NO KEY UPDATE")
                .bind(report.webhook_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let delivery: Option<(i32, String)> = sqlx::query_as(
            "SELECT attempts, status FROM webhook_deliveries \
             WHERE id = $1 AND webhook_id = $2 FOR UPDATE",
        )
        .bind(report.id.get())
        .bind(report.webhook_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        match (endpoint, delivery) {
            (Some(_), Some(delivery)) => self.apply_report(tx, report, delivery).await,
            // The endpoint was deleted with its deliveries: nothing is left to record on.
            _ => Ok(false),
        }
    }

    async fn list_deliveries(
        &self,
        webhook: &WebhookId,
        before: Option<DeliveryId>,
        limit: Limit,
    ) -> StoreResult<DeliveryPage> {
        let mut conn = self.conn().await?;
        require_webhook(&mut conn, webhook).await?;
        let n = limit.as_usize();
        let mut deliveries =
            deliveries(&mut conn, webhook, before, None, i64::from(limit.get()) + 1).await?;
        let more = deliveries.len() > n;
        deliveries.truncate(n);
        let next_cursor = if more {
            deliveries.last().map(|d| d.id)
        } else {
            None
        };
        Ok(DeliveryPage {
            deliveries,
            next_cursor,
        })
    }

    async fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Delivery> {
        let mut tx = self.begin().await?;
        require_webhook(&mut tx, webhook).await?;
        let done = sqlx::query(
            "UPDATE webhook_deliveries \
             SET status = 'pending', next_attempt_at = $3, series_started_at = $3 \
             WHERE id = $1 AND webhook_id = $2",
        )
        .bind(id.get())
        .bind(webhook.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("delivery"));
        }
        let delivery = deliveries(&mut tx, webhook, None, Some(id), 1)
            .await?
            .pop()
            .ok_or(StoreError::not_found("delivery"))?;
        self.commit(tx, events).await?;
        Ok(delivery)
    }

    async fn purge_deliveries(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        // SKIP LOCKED: instances purging at once take disjoint rows instead of waiting.
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN ( \
                 SELECT id FROM webhook_deliveries \
                 WHERE status <> 'pending' AND series_started_at < $1 \
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(started_before)
        .bind(i64::from(limit))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn count_pending_deliveries(&self) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(&mut *conn)
                .await
                .map_err(map)?;
        Ok(n.unsigned_abs())
    }
}

impl PostgresStore {
    /// Records the attempt and, when the report is the delivery's latest claim, its outcome;
    /// updates the endpoint and disables it when asked and still failing.
    async fn apply_report(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        report: DeliveryReport,
        (attempts, status): (i32, String),
    ) -> StoreResult<bool> {
        let a = &report.attempt;
        sqlx::query(
            "INSERT INTO webhook_delivery_attempts \
                 (delivery_id, attempt, started_at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(report.id.get())
        .bind(i32::try_from(a.attempt).map_err(backend)?)
        .bind(a.started_at)
        .bind(a.status_code.map(i32::from))
        .bind(a.error.as_deref())
        .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(map)?;

        let applied = i64::from(attempts) == i64::from(a.attempt)
            && status == DeliveryStatus::Pending.as_str();
        let (status, next, pause) = match report.outcome {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, None, None),
            DeliveryOutcome::RetryAt {
                at,
                endpoint_paused_until,
            } => (
                DeliveryStatus::Pending,
                Some(at),
                Some(endpoint_paused_until),
            ),
            DeliveryOutcome::Failed {
                endpoint_paused_until,
            } => (DeliveryStatus::Failed, None, Some(endpoint_paused_until)),
        };
        if applied {
            sqlx::query(
                "UPDATE webhook_deliveries \
                 SET status = $2, next_attempt_at = coalesce($3, next_attempt_at), \
                     lease_until = NULL \
                 WHERE id = $1",
            )
            .bind(report.id.get())
            .bind(status.as_str())
            .bind(next)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }

        // The endpoint's view of its last attempt. A success clears its failure state; a
        // failure starts it if unset and never shortens the pause.
        let delivered = matches!(report.outcome, DeliveryOutcome::Delivered);
        sqlx::query(
            "UPDATE webhooks SET \
                 paused_until = CASE WHEN $2 THEN NULL ELSE GREATEST(paused_until, $5) END, \
                 body = CASE WHEN $2 THEN body - 'failing_since' \
                             WHEN coalesce(body->'failing_since', 'null') = 'null' \
                                 THEN body || jsonb_build_object('failing_since', to_jsonb($3::timestamptz)) \
                             ELSE body END \
                        || jsonb_build_object('last_delivery_at', to_jsonb($3::timestamptz), \
                                              'last_delivery_status', $6::text, \
                                              'last_status_code', $4::integer) \
             WHERE id = $1",
        )
        .bind(report.webhook_id.as_str())
        .bind(delivered)
        .bind(a.started_at)
        .bind(a.status_code.map(i32::from))
        .bind(pause)
        .bind(if delivered {
            DeliveryStatus::Delivered.as_str()
        } else {
            DeliveryStatus::Failed.as_str()
        })
        .execute(&mut *tx)
        .await
        .map_err(map)?;

        if let Some(events) = report.disable {
            let at = events.first().map_or(a.started_at, |e| e.created_at);
            let disabled = sqlx::query(
                "UPDATE webhooks SET body = body || jsonb_build_object( \
                     'is_active', false, 'updated_at', to_jsonb($2::timestamptz)) \
                 WHERE id = $1 AND (body->>'is_active')::boolean \
                   AND coalesce(body->'failing_since', 'null') <> 'null'",
            )
            .bind(report.webhook_id.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if disabled.rows_affected() == 1 {
                self.commit(tx, events).await?;
                return Ok(applied);
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(applied)
    }
}
