//! The release of devices that stopped sending heartbeats (see
//! [`device_heartbeat`](crate::rules::device_heartbeat)), which the host runs periodically
//! (the server: every minute).

use chrono::Duration;
use rand_core::CryptoRng;

use super::{Clock, Engine, EngineError};
use crate::rules::device_heartbeat;
use crate::store::{Actor, AggregateQuery, Store};

/// Added to the touch interval to make the sweep's margin: covers the flush of touches (every
/// second in the server) and a store briefly unreachable.
pub const HEARTBEAT_FLUSH_ALLOWANCE: Duration = Duration::minutes(1);
/// The longest margin: a touch interval longer than this (a misconfiguration) is treated as
/// this.
const MAX_HEARTBEAT_MARGIN: Duration = Duration::days(365);
/// Licenses one store call lists.
const SWEEP_BATCH: u32 = 100;
/// Store calls one sweep makes at most (the next sweep goes on).
const SWEEP_MAX_BATCHES: u32 = 100;

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// How long past its release time a device must have been silent in the store before the
    /// sweep releases it: the touch interval (a validation may be written that much later)
    /// plus [`HEARTBEAT_FLUSH_ALLOWANCE`].
    pub fn heartbeat_margin(&self) -> Duration {
        // Bounded, so neither the sum nor a store's interval arithmetic can overflow.
        self.touches
            .interval()
            .checked_add(&HEARTBEAT_FLUSH_ALLOWANCE)
            .unwrap_or(MAX_HEARTBEAT_MARGIN)
            .min(MAX_HEARTBEAT_MARGIN)
    }

    /// Releases every device silent past its policy's heartbeat interval, grace and
    /// [`Self::heartbeat_margin`]: each moves to `expired`, frees its seat and gets a
    /// `device.released` event (`reason: "heartbeat_missed"`), as the system. Returns how many
    /// devices it released. Each license is decided under its lock, so instances sweeping at
    /// once release each device once.
    ///
    /// # Errors
    ///
    /// Storage failures: listing the candidates, or releasing when nothing could be released
    /// (a license that fails is skipped while the others are released; what was released
    /// stays released).
    pub async fn release_silent_devices(&self) -> Result<u64, EngineError> {
        let margin = self.heartbeat_margin();
        let actor = Actor::system();
        let mut released = 0u64;
        let mut failed = None;
        for _ in 0..SWEEP_MAX_BATCHES {
            let ids = self
                .store
                .silent_device_licenses(self.now(), margin, SWEEP_BATCH)
                .await?;
            let mut in_batch = 0u64;
            for id in &ids {
                let outcome = self
                    .admin_with(
                        &actor,
                        id.as_str(),
                        AggregateQuery::default(),
                        |agg, now| Ok(device_heartbeat::release_silent(agg, margin, now)),
                    )
                    .await;
                match outcome {
                    Ok(devices) => in_batch += devices.len() as u64,
                    // Deleted since it was listed: nothing left to release.
                    Err(EngineError::NotFound { .. }) => {}
                    // One license that cannot be written must not hold up the others.
                    Err(e) => failed = Some(e),
                }
            }
            released += in_batch;
            // A short batch was the last; a batch another instance released first would be
            // listed again by a store that lags, so it ends the sweep too.
            if ids.len() < SWEEP_BATCH as usize || in_batch == 0 {
                break;
            }
        }
        match failed {
            Some(e) if released == 0 => Err(e),
            _ => Ok(released),
        }
    }
}
