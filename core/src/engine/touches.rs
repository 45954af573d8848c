//! Read bookkeeping written behind: validations and offline issues are coalesced per device
//! and flushed in batches off the request path.
//!
//! A validate or offline call notes its [`Touch`](crate::rules::Touch) here and returns; it
//! never waits for storage. A touch is kept only when its device has not been touched with
//! the same kind within the interval (default [`DEFAULT_TOUCH_INTERVAL`]): so the store gets
//! at most one write, and the events feed at most one `license.validated` (or
//! `license.offline_issued`), per device per interval and instance. The host calls
//! [`Engine::flush_touches`] periodically (the server: every second, and once at shutdown).
//!
//! # What a crash can lose
//!
//! Only touches not yet flushed: at most one flush period of validation timestamps and their
//! events (and, while the store is unreachable, the touches noted since; a failed batch is put
//! back and retried). Never anything that counts against a limit: seats, leases, usage and
//! idempotency records are written synchronously by the transaction runner. Timestamps in the
//! store may lag a validation by up to the interval.
//!
//! # Bounds
//!
//! At most [`MAX_PENDING_TOUCHES`] touches wait; past that the oldest are dropped (counted in
//! [`Engine::dropped_touches`]). The coalescing memory holds one entry per device touched
//! within the last interval.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use rand_core::CryptoRng;

use super::{Clock, Engine, EngineError};
use crate::model::DeviceId;
use crate::rules::TouchKind;
use crate::store::{Store, TouchRecord};

/// How long a device's validations are coalesced into one write by default.
pub const DEFAULT_TOUCH_INTERVAL: Duration = Duration::seconds(60);
/// How many touches may wait for a flush before the oldest are dropped.
pub const MAX_PENDING_TOUCHES: usize = 100_000;
/// How many touches one store call writes.
const FLUSH_BATCH: usize = 1_000;

#[derive(Debug)]
pub(crate) struct TouchBuffer {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: VecDeque<TouchRecord>,
    /// When each (device, kind) was last kept.
    kept: HashMap<(DeviceId, TouchKind), DateTime<Utc>>,
    dropped: u64,
}

impl TouchBuffer {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::zero()),
            state: Mutex::default(),
        }
    }

    /// How long a device's touches are coalesced.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `record` unless its device was touched with the same kind within the interval
    /// (a clock set backwards counts as within).
    pub(crate) fn note(&self, record: TouchRecord) {
        let key = (record.touch.device_id.clone(), record.touch.kind);
        let at = record.touch.at;
        let mut state = self.lock();
        if let Some(prev) = state.kept.get(&key)
            && at < *prev + self.interval
        {
            return;
        }
        state.kept.insert(key, at);
        state.push(record);
    }

    /// Up to `max` waiting touches, oldest first; forgets coalescing entries older than the
    /// interval at `now` (a device seen again after that is kept anyway).
    fn take(&self, max: usize, now: DateTime<Utc>) -> Vec<TouchRecord> {
        let mut state = self.lock();
        let interval = self.interval;
        state.kept.retain(|_, at| *at + interval > now);
        let n = state.pending.len().min(max);
        state.pending.drain(..n).collect()
    }

    /// Returns a batch that could not be written to the front of the queue.
    fn put_back(&self, batch: Vec<TouchRecord>) {
        let mut state = self.lock();
        for record in batch.into_iter().rev() {
            state.pending.push_front(record);
        }
        while state.pending.len() > MAX_PENDING_TOUCHES {
            state.pending.pop_back();
            state.dropped += 1;
        }
    }

    fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

impl State {
    fn push(&mut self, record: TouchRecord) {
        if self.pending.len() >= MAX_PENDING_TOUCHES {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(record);
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// The same engine coalescing each device's read bookkeeping over `interval` instead of
    /// [`DEFAULT_TOUCH_INTERVAL`]; zero keeps every touch (tests that count events use it).
    pub fn with_touch_interval(mut self, interval: Duration) -> Self {
        self.touches = TouchBuffer::new(interval);
        self
    }

    /// Writes the read bookkeeping noted so far (validation timestamps and events, offline
    /// issue events) in batches and returns how many touches were written. Hosts call it
    /// periodically and at shutdown (the server: every second, and once at shutdown).
    ///
    /// A validate or offline call notes its [`Touch`](crate::rules::Touch) and returns; it
    /// never waits for storage. A touch is kept only when its device has not been touched with
    /// the same kind within the interval ([`DEFAULT_TOUCH_INTERVAL`], or
    /// [`Self::with_touch_interval`]): the store gets at most one write, and the events feed
    /// at most one `license.validated` (or `license.offline_issued`), per device per interval
    /// and instance. Store timestamps may lag a validation by up to the interval.
    ///
    /// **What a crash can lose:** only touches not yet flushed — at most one flush period of
    /// validation timestamps and their events (and, while the store is unreachable, what was
    /// noted since; a failed batch is put back and retried). Never anything that counts against
    /// a limit: seats, leases, usage and idempotency records are written synchronously by the
    /// transaction runner. At most [`MAX_PENDING_TOUCHES`] wait; past that the oldest are
    /// dropped and counted ([`Self::dropped_touches`]).
    ///
    /// # Errors
    ///
    /// Storage failures; the batch that failed is kept and written by a later call.
    pub async fn flush_touches(&self) -> Result<usize, EngineError> {
        let mut written = 0;
        loop {
            let batch = self.touches.take(FLUSH_BATCH, self.now());
            if batch.is_empty() {
                return Ok(written);
            }
            let n = batch.len();
            if let Err(e) = self.store.record_touches(batch.clone()).await {
                self.touches.put_back(batch);
                return Err(e.into());
            }
            written += n;
        }
    }

    /// How many touches wait for [`Self::flush_touches`].
    pub fn pending_touches(&self) -> usize {
        self.touches.pending()
    }

    /// How many touches were dropped because too many waited (the store was unreachable for
    /// long); see [`MAX_PENDING_TOUCHES`].
    pub fn dropped_touches(&self) -> u64 {
        self.touches.dropped()
    }
}
