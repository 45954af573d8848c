//! The event log: appended inside the transaction of the change it describes.

use licentia_core::model::{AuditActorType, Event, Metadata};
use licentia_core::store::{EventPage, EventQuery, NewEvent, StoreError, StoreResult};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::error::{backend, map};

/// Appends `events` on `conn` (inside the caller's transaction), in order, in one statement.
pub(crate) async fn append(conn: &mut PgConnection, events: Vec<NewEvent>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::new("WITH ");
    push_append(&mut q, events);
    q.push(" SELECT 1");
    q.build().execute(conn).await.map_err(map)?;
    Ok(())
}

/// Pushes two common table expressions (named `appended` and `delivered`) that append
/// `events` and write their deliveries (the outbox): one per endpoint active now whose
/// `event_types` is empty or names the event's type. `WITH ORDINALITY` keeps the caller's
/// order, so sequences follow it. The SQL is the same for any number of events, so one
/// prepared statement serves them all.
pub(crate) fn push_append(q: &mut QueryBuilder<Postgres>, events: Vec<NewEvent>) {
    let n = events.len();
    let mut event_type = Vec::with_capacity(n);
    let mut actor_type = Vec::with_capacity(n);
    let mut actor_id = Vec::with_capacity(n);
    let mut resource_type = Vec::with_capacity(n);
    let mut resource_id = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut ip_address = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    for e in events {
        event_type.push(e.event_type);
        actor_type.push(e.actor_type.as_str());
        actor_id.push(e.actor_id);
        resource_type.push(e.resource_type);
        resource_id.push(e.resource_id);
        metadata.push(Json(e.metadata));
        ip_address.push(e.ip_address);
        created_at.push(e.created_at);
    }
    q.push(
        "appended AS ( \
             INSERT INTO events (event_type, actor_type, actor_id, resource_type, resource_id, \
                                 metadata, ip_address, created_at) \
             SELECT event_type, actor_type, actor_id, resource_type, resource_id, metadata, \
                    ip_address, created_at \
             FROM UNNEST(",
    );
    q.push_bind(event_type).push("::text[], ");
    q.push_bind(actor_type).push("::text[], ");
    q.push_bind(actor_id).push("::text[], ");
    q.push_bind(resource_type).push("::text[], ");
    q.push_bind(resource_id).push("::text[], ");
    q.push_bind(metadata).push("::jsonb[], ");
    q.push_bind(ip_address).push("::text[], ");
    q.push_bind(created_at).push("::timestamptz[]) ");
    q.push(
        "WITH ORDINALITY AS e(event_type, actor_type, actor_id, resource_type, \
                                  resource_id, metadata, ip_address, created_at, n) \
             ORDER BY n \
             RETURNING sequence, event_type, created_at), \
         delivered AS ( \
             INSERT INTO webhook_deliveries \
                 (webhook_id, event_sequence, next_attempt_at, series_started_at, created_at) \
             SELECT w.id, a.sequence, a.created_at, a.created_at, a.created_at \
             FROM appended a \
             JOIN webhooks w ON (w.body->>'is_active')::boolean \
                 AND (jsonb_array_length(w.body->'event_types') = 0 \
                      OR w.body->'event_types' @> jsonb_build_array(a.event_type)))",
    );
}

pub(crate) type EventRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Json<Metadata>,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
);

/// A newest-first page of events matching `q`.
pub(crate) async fn page(conn: &mut PgConnection, q: &EventQuery) -> StoreResult<EventPage> {
    let limit = q.limit.as_usize();
    // One more than the page, to know whether another page follows.
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT sequence, event_type, actor_type, actor_id, resource_type, resource_id, \
                metadata, ip_address, created_at \
         FROM events \
         WHERE ($1::bigint IS NULL OR sequence < $1) \
           AND ($2::text IS NULL OR event_type = $2) \
           AND ($3::text IS NULL OR resource_type = $3) \
           AND ($4::text IS NULL OR resource_id = $4) \
           AND ($5::text IS NULL OR actor_type = $5) \
         ORDER BY sequence DESC \
         LIMIT $6",
    )
    .bind(q.before)
    .bind(q.event_type.as_deref())
    .bind(q.resource_type.as_deref())
    .bind(q.resource_id.as_deref())
    .bind(q.actor_type.map(AuditActorType::as_str))
    .bind(limit as i64 + 1)
    .fetch_all(conn)
    .await
    .map_err(map)?;

    let more = rows.len() > limit;
    let events = rows
        .into_iter()
        .take(limit)
        .map(event_from_row)
        .collect::<StoreResult<Vec<Event>>>()?;
    let next_cursor = if more {
        events.last().map(|e| e.sequence)
    } else {
        None
    };
    Ok(EventPage {
        events,
        next_cursor,
    })
}

/// The events with these sequences, by sequence.
pub(crate) async fn by_sequence(
    conn: &mut PgConnection,
    sequences: &[i64],
) -> StoreResult<std::collections::HashMap<i64, Event>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT sequence, event_type, actor_type, actor_id, resource_type, resource_id, \
                metadata, ip_address, created_at \
         FROM events WHERE sequence = ANY($1)",
    )
    .bind(sequences)
    .fetch_all(conn)
    .await
    .map_err(map)?;
    rows.into_iter()
        .map(|row| event_from_row(row).map(|e| (e.sequence, e)))
        .collect()
}

pub(crate) fn event_from_row(row: EventRow) -> StoreResult<Event> {
    let (
        sequence,
        event_type,
        actor_type,
        actor_id,
        resource_type,
        resource_id,
        metadata,
        ip_address,
        created_at,
    ) = row;
    let actor_type: AuditActorType = actor_type
        .parse()
        .map_err(|e| -> StoreError { backend(e) })?;
    Ok(Event {
        sequence,
        event_type,
        actor_type,
        actor_id,
        resource_type,
        resource_id,
        metadata: metadata.0,
        ip_address,
        created_at,
    })
}
