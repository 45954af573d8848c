//! Retention of idempotency records: they are kept at least [`DEFAULT_IDEMPOTENCY_TTL`] (or
//! what [`Engine::with_idempotency_ttl`] says) and purged after that by
//! [`Engine::purge_idempotency`], which the host calls periodically (the server: every
//! minute). Finished webhook deliveries are kept [`DEFAULT_DELIVERY_RETENTION`] (or what
//! [`Engine::with_delivery_retention`] says) and purged by [`Engine::purge_deliveries`].
//! Sign-in sessions are purged by [`Engine::purge_sessions`] once they expire.
//! Telemetry records are kept [`DEFAULT_TELEMETRY_RETENTION`] (or what
//! [`Engine::with_telemetry_retention`] says) and purged by [`Engine::purge_telemetry`].
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
/// Default time a finished webhook delivery (and its attempts) is kept: 30 days.
pub const DEFAULT_DELIVERY_RETENTION: Duration = Duration::days(30);
/// Default time a telemetry record is kept: 90 days.
pub const DEFAULT_TELEMETRY_RETENTION: Duration = Duration::days(90);
/// How long runtime refusal counts are kept (the runtime error groups look this far back).
pub const RUNTIME_ERROR_RETENTION: Duration = Duration::days(30);
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
        let cutoff = self.cutoff(self.idempotency_ttl);
        self.purge_in_batches(|batch| self.store.purge_idempotency(cutoff, batch))
            .await
    }

    /// The same engine keeping finished webhook deliveries for `retention` (at least a day,
    /// the retry window).
    #[must_use]
    pub fn with_delivery_retention(mut self, retention: Duration) -> Self {
        self.delivery_retention = retention.max(Duration::days(1));
        self
    }

    /// Deletes finished webhook deliveries older than the retention, in batches, and
    /// returns how many it deleted. Safe to run on several instances at once.
    ///
    /// # Errors
    ///
    /// Storage failures (what was deleted before stays deleted).
    pub async fn purge_deliveries(&self) -> Result<u64, EngineError> {
        let cutoff = self.cutoff(self.delivery_retention);
        self.purge_in_batches(|batch| self.store.purge_deliveries(cutoff, batch))
            .await
    }

    /// The same engine keeping telemetry records for `retention` (at least an hour).
    #[must_use]
    pub fn with_telemetry_retention(mut self, retention: Duration) -> Self {
        self.telemetry_retention = retention.max(Duration::hours(1));
        self
    }

    /// How long telemetry records are kept.
    pub fn telemetry_retention(&self) -> Duration {
        self.telemetry_retention
    }

    /// Deletes telemetry records received before the retention, in batches, and returns how
    /// many it deleted. Safe to run on several instances at once.
    ///
    /// # Errors
    ///
    /// Storage failures (what was deleted before stays deleted).
    pub async fn purge_telemetry(&self) -> Result<u64, EngineError> {
        let cutoff = self.cutoff(self.telemetry_retention);
        self.purge_in_batches(|batch| self.store.purge_telemetry(cutoff, batch))
            .await
    }

    /// Deletes the sign-in sessions (of management and license users) that have expired, in
    /// batches, and returns how many it deleted: every sign-in adds one, and an expired one
    /// is refused anyway. Machine tokens stay. Safe to run on several instances at once.
    ///
    /// # Errors
    ///
    /// Storage failures (what was deleted before stays deleted).
    pub async fn purge_sessions(&self) -> Result<u64, EngineError> {
        let now = self.now();
        self.purge_in_batches(|batch| self.store.purge_sessions(now, batch))
            .await
    }

    /// Purges runtime refusal counts older than [`RUNTIME_ERROR_RETENTION`] and report
    /// exports past their expiry; returns how many rows went. Safe to run on several
    /// instances at once.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn purge_reports(&self) -> Result<u64, EngineError> {
        let counts = self
            .store
            .purge_runtime_errors(self.cutoff(RUNTIME_ERROR_RETENTION))
            .await?;
        let exports = self.store.purge_exports(self.now()).await?;
        Ok(counts + exports)
    }

    fn cutoff(&self, keep: Duration) -> chrono::DateTime<chrono::Utc> {
        self.now()
            .checked_sub_signed(keep)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    }

    /// Calls `purge` with [`PURGE_BATCH`] until it deletes less than that, at most
    /// [`PURGE_MAX_BATCHES`] times; the total deleted.
    async fn purge_in_batches<F, Fut>(&self, purge: F) -> Result<u64, EngineError>
    where
        F: Fn(u32) -> Fut,
        Fut: std::future::Future<Output = crate::store::StoreResult<u64>>,
    {
        let mut total = 0;
        for _ in 0..PURGE_MAX_BATCHES {
            let n = purge(PURGE_BATCH).await?;
            total += n;
            if n < u64::from(PURGE_BATCH) {
                break;
            }
        }
        Ok(total)
    }
}
