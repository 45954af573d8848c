//! Retention of idempotency records: they are kept at least [`DEFAULT_IDEMPOTENCY_TTL`] (or
//! what [`Engine::with_idempotency_ttl`] says) and purged after that by
//! [`Engine::purge_idempotency`], which the host calls periodically (the server: every
//! minute).
//!
//! A request that repeats an `Idempotency-Key` within the time-to-live is replayed (or
//! refused as a reuse); once its record is purged the key is unknown, so the same request
//! is decided again as a new one. Clients retry within minutes, so a day is ample; a longer
//! time only grows the table.

use chrono::Duration;
use rand_core::CryptoRng;

use super::{Clock, Engine, EngineError};
use crate::store::Store;

/// Default time an idempotency record is kept: 24 hours.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::hours(24);
/// Records deleted per store call; a purge makes calls until none older is left.
const PURGE_BATCH: u32 = 1000;
/// Calls one purge makes at most (so one purge is bounded too; the next one goes on).
const PURGE_MAX_BATCHES: u32 = 100;

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// The same engine keeping idempotency records for `ttl` (at least one second).
    #[must_use]
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl.max(Duration::seconds(1));
        self
    }

    /// How long idempotency records are kept.
    pub fn idempotency_ttl(&self) -> Duration {
        self.idempotency_ttl
    }

    /// Deletes the idempotency records older than the time-to-live, in batches, and returns
    /// how many it deleted. Safe to run on several instances at once.
    ///
    /// # Errors
    ///
    /// Storage failures (what was deleted before stays deleted).
    pub async fn purge_idempotency(&self) -> Result<u64, EngineError> {
        let cutoff = self
            .now()
            .checked_sub_signed(self.idempotency_ttl)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let mut total = 0;
        for _ in 0..PURGE_MAX_BATCHES {
            let n = self.store.purge_idempotency(cutoff, PURGE_BATCH).await?;
            total += n;
            if n < u64::from(PURGE_BATCH) {
                break;
            }
        }
        Ok(total)
    }
}
