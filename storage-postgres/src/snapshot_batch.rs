//! Read-path snapshots, many per statement.
//!
//! A validate or check reads its license's aggregate in one statement on the read pool. Under
//! load most of a statement's cost is not the aggregate but the round trip around it: the
//! pool's wait, the protocol messages, the database session's wake-up and executor start, and
//! the server's wake-up for the answer. So the snapshots asked for while the read connections
//! are busy wait in a queue, and whoever gets the next connection reads all of them (its own
//! included, at most [`MAX_BATCH`]) in ONE statement.
//!
//! Nothing waits on purpose: with an idle connection a snapshot is read at once, alone, so a
//! batch only forms from requests that were waiting anyway. One statement reads one snapshot
//! under READ COMMITTED, so every aggregate in a batch is as consistent as a single read (and
//! the batch as a whole is even consistent across licenses).
//!
//! There is no background task: the caller that takes a connection runs the batch. If its
//! future is dropped mid-batch, the others in it see their reply channel close and queue
//! again, so a cancelled request never loses another's read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use licentia_core::rules::LicenseAggregate;
use licentia_core::rules::version::precedence_key;
use licentia_core::store::{AggregateQuery, LicenseSelector, StoreError, StoreResult};
use sqlx::PgPool;
use tokio::sync::{Semaphore, oneshot};

use crate::error::map;
use crate::license::{SnapshotRow, always_loaded_statuses, assemble, license_from_row};

/// The most snapshots one statement reads.
pub(crate) const MAX_BATCH: usize = 64;

/// Every license aggregate the arrays name, one row per found license with its position
/// (`ord`, from 1). `$1`/`$2`: license ids and key hashes (for each position exactly one is
/// set); `$3..$5`: binding key, version precedence key, consumption `event_id`; `$6`: the
/// device statuses always loaded. The two branches of the lateral look a license up by id or
/// by key hash, each through its unique index.
const SNAPSHOTS: &str = "\
    SELECT q.ord, lic.body AS license, lic.key_hash, lic.last_validated_at, a.* \
    FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[]) \
         WITH ORDINALITY AS q(id, key_hash, binding_key, precedence, event_id, ord) \
    CROSS JOIN LATERAL ( \
        SELECT l.id, l.policy_id, l.product_id, l.body, l.key_hash, l.last_validated_at \
        FROM licenses l WHERE l.id = q.id \
        UNION ALL \
        SELECT l.id, l.policy_id, l.product_id, l.body, l.key_hash, l.last_validated_at \
        FROM licenses l WHERE q.id IS NULL AND l.key_hash = q.key_hash) lic \
    CROSS JOIN LATERAL licentia_aggregate(lic.id, lic.policy_id, lic.product_id, $6, \
        q.binding_key, q.precedence, q.event_id, NULL, NULL) a";

#[derive(sqlx::FromRow)]
struct BatchRow {
    ord: i64,
    #[sqlx(flatten)]
    snapshot: SnapshotRow,
}

/// A queued snapshot: what it asks for and where its answer goes.
struct Waiting {
    ticket: u64,
    query: AggregateQuery,
    reply: oneshot::Sender<StoreResult<LicenseAggregate>>,
}

/// The queue of snapshots waiting for a read connection, and the connections' permits.
pub(crate) struct SnapshotBatcher {
    queue: Mutex<Vec<Waiting>>,
    /// One per read connection: a permit holder runs one batch.
    connections: Semaphore,
    tickets: AtomicU64,
    /// Statements run and the snapshots they read ([`ReadPathStats`]).
    statements: AtomicU64,
    snapshots: AtomicU64,
}

/// What the read path has done since its store was made (or given its read connections):
/// `snapshots / statements` is how many snapshots a statement read on average, 1 when the
/// read connections keep up and more under load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadPathStats {
    /// Snapshot statements run.
    pub statements: u64,
    /// Snapshots they read (answered, found or not, or failed together).
    pub snapshots: u64,
}

impl SnapshotBatcher {
    /// A batcher for a read pool of `connections`.
    pub(crate) fn new(connections: u32) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            connections: Semaphore::new(usize::try_from(connections.max(1)).unwrap_or(1)),
            tickets: AtomicU64::new(0),
            statements: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> ReadPathStats {
        ReadPathStats {
            statements: self.statements.load(Ordering::Relaxed),
            snapshots: self.snapshots.load(Ordering::Relaxed),
        }
    }

    /// The aggregate `query` names (its idempotency key ignored), read on `pool` alone or in
    /// one statement with others waiting at the same time.
    pub(crate) async fn snapshot(
        &self,
        pool: &PgPool,
        query: &AggregateQuery,
    ) -> StoreResult<LicenseAggregate> {
        loop {
            let (reply, mut answer) = oneshot::channel();
            let ticket = self.enqueue(query, reply);
            let permit = tokio::select! {
                biased;
                answer = &mut answer => match answer {
                    Ok(result) => return result,
                    // The batch that took it was dropped unfinished: queue again.
                    Err(_) => continue,
                },
                permit = self.connections.acquire() => permit.map_err(|_| closed())?,
            };
            let batch = self.take(ticket);
            if !batch.is_empty() {
                self.statements.fetch_add(1, Ordering::Relaxed);
                self.snapshots
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                run(pool, batch).await;
            }
            drop(permit);
            // Answered by our own batch just now, or by the one that took it first.
            match answer.await {
                Ok(result) => return result,
                Err(_) => continue,
            }
        }
    }

    fn enqueue(
        &self,
        query: &AggregateQuery,
        reply: oneshot::Sender<StoreResult<LicenseAggregate>>,
    ) -> u64 {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting {
            ticket,
            query: AggregateQuery {
                idempotency: None,
                ..query.clone()
            },
            reply,
        };
        self.lock().push(waiting);
        ticket
    }

    /// The batch to run for `ticket`: it and the oldest others, at most [`MAX_BATCH`]; empty
    /// when another batch took it already (that one answers it).
    fn take(&self, ticket: u64) -> Vec<Waiting> {
        let mut queue = self.lock();
        let Some(own) = queue.iter().position(|w| w.ticket == ticket) else {
            return Vec::new();
        };
        let own = queue.remove(own);
        let others = queue.len().min(MAX_BATCH - 1);
        let mut batch: Vec<Waiting> = queue.drain(..others).collect();
        batch.push(own);
        batch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // Nothing panics while holding it; a poisoned queue is still a well-formed Vec.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads `batch` in one statement and answers each.
async fn run(pool: &PgPool, batch: Vec<Waiting>) {
    let rows = match read(pool, &batch).await {
        Ok(rows) => rows,
        Err(e) => {
            for waiting in batch {
                let _ = waiting.reply.send(Err(copy(&e)));
            }
            return;
        }
    };
    let mut found: Vec<Option<SnapshotRow>> = batch.iter().map(|_| None).collect();
    for row in rows {
        let slot = usize::try_from(row.ord - 1)
            .ok()
            .and_then(|i| found.get_mut(i));
        if let Some(slot) = slot {
            *slot = Some(row.snapshot);
        }
    }
    for (waiting, row) in batch.into_iter().zip(found) {
        let result = match row {
            Some(row) => license_from_row((row.license, row.key_hash, row.last_validated_at))
                .and_then(|license| assemble(license, row.rest, &waiting.query))
                .map(|(aggregate, _)| aggregate),
            // No row: no such license (a license always has its policy).
            None => Err(StoreError::not_found("license")),
        };
        // A receiver that is gone was cancelled: nothing to answer.
        let _ = waiting.reply.send(result);
    }
}

async fn read(pool: &PgPool, batch: &[Waiting]) -> StoreResult<Vec<BatchRow>> {
    let n = batch.len();
    let (mut ids, mut hashes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut bindings, mut precedences, mut events) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for Waiting { query, .. } in batch {
        match &query.selector {
            Some(LicenseSelector::Id(id)) => {
                ids.push(Some(id.as_str()));
                hashes.push(None);
            }
            Some(LicenseSelector::KeyHash(hash)) => {
                ids.push(None);
                hashes.push(Some(&hash.as_bytes()[..]));
            }
            // Names nothing, finds nothing.
            None => {
                ids.push(None);
                hashes.push(None);
            }
        }
        bindings.push(query.binding_key.as_deref());
        precedences.push(
            query
                .app_version
                .as_ref()
                .map(|v| precedence_key(v).to_string()),
        );
        events.push(query.consumption_event_id.as_deref());
    }
    let mut conn = pool.acquire().await.map_err(map)?;
    sqlx::query_as(SNAPSHOTS)
        .bind(ids)
        .bind(hashes)
        .bind(bindings)
        .bind(precedences)
        .bind(events)
        .bind(always_loaded_statuses())
        .fetch_all(&mut *conn)
        .await
        .map_err(map)
}

/// The same error for another request of the failed batch.
fn copy(e: &StoreError) -> StoreError {
    let source = || std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string);
    match e {
        StoreError::NotFound { entity } => StoreError::NotFound { entity },
        StoreError::AlreadyExists { entity, constraint } => {
            StoreError::AlreadyExists { entity, constraint }
        }
        StoreError::Conflict { reason } => StoreError::Conflict { reason },
        StoreError::Unavailable { .. } => StoreError::Unavailable {
            source: source().into(),
        },
        _ => StoreError::Backend {
            source: source().into(),
        },
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable {
        source: "the read path is shut".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licentia_core::model::LicenseId;

    fn queue(
        batcher: &SnapshotBatcher,
        n: usize,
    ) -> Vec<(u64, oneshot::Receiver<StoreResult<LicenseAggregate>>)> {
        (0..n)
            .map(|i| {
                let (reply, answer) = oneshot::channel();
                let id: LicenseId = format!("lic_{i:04}").parse().expect("a license id");
                let query = AggregateQuery::new(LicenseSelector::Id(id));
                (batcher.enqueue(&query, reply), answer)
            })
            .collect()
    }

    /// The permit holder reads its own snapshot and the oldest others waiting, at most
    /// MAX_BATCH; one already taken is not read again.
    #[test]
    fn a_batch_is_its_own_snapshot_and_the_oldest_others() {
        let batcher = SnapshotBatcher::new(1);
        let waiting = queue(&batcher, MAX_BATCH + 10);
        let own = waiting[MAX_BATCH + 5].0;
        let batch: Vec<u64> = batcher.take(own).iter().map(|w| w.ticket).collect();
        let mut expected: Vec<u64> = waiting[..MAX_BATCH - 1].iter().map(|w| w.0).collect();
        expected.push(own);
        assert_eq!(batch, expected);
        assert!(
            batcher.take(own).is_empty(),
            "a taken snapshot is not taken again"
        );
        assert!(batcher.take(waiting[0].0).is_empty());
        let rest: Vec<u64> = batcher
            .take(waiting[MAX_BATCH].0)
            .iter()
            .map(|w| w.ticket)
            .collect();
        assert_eq!(rest.len(), 10, "the ones left over form the next batch");
    }

    /// A batch's queries lose their idempotency key: a snapshot never loads a record.
    #[test]
    fn a_queued_snapshot_asks_for_no_idempotency_record() {
        let batcher = SnapshotBatcher::new(1);
        let (reply, _answer) = oneshot::channel();
        let query = AggregateQuery {
            idempotency: Some(licentia_core::store::IdempotencyKey {
                scope: "s".into(),
                key: "k".into(),
            }),
            ..AggregateQuery::default()
        };
        let ticket = batcher.enqueue(&query, reply);
        let batch = batcher.take(ticket);
        assert_eq!(batch.len(), 1);
        assert!(batch[0].query.idempotency.is_none());
    }
}
