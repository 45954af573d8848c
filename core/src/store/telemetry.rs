//! Telemetry records (an extension): what devices report, kept for a retention period.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{Limit, StoreResult};
use crate::model::{LicenseId, NewTelemetry, TelemetryId, TelemetryRecord};

/// One page of a license's telemetry.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryPage {
    /// Newest first.
    pub records: Vec<TelemetryRecord>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<TelemetryId>,
}

impl TelemetryPage {
    /// The page from up to `limit + 1` records read newest first: the extra one only says
    /// another page follows (backends read one more than they return).
    pub fn from_overfetch(mut records: Vec<TelemetryRecord>, limit: Limit) -> Self {
        let more = records.len() > limit.as_usize();
        records.truncate(limit.as_usize());
        let next_cursor = records.last().filter(|_| more).map(|r| r.id);
        Self {
            records,
            next_cursor,
        }
    }
}

/// Telemetry storage.
///
/// # Contract
///
/// - `insert_telemetry` numbers the record with an id greater than every id it gave before
///   and stores it as given (the payload equal as a JSON object, the problems in order); a
///   license that does not exist is `NotFound { entity: "license" }`.
/// - `list_telemetry` lists one license's records by id, highest first, only ids below
///   `before` when given, at most `limit`; `next_cursor` is the last record's id when more
///   remain, else `None`. An unknown license lists nothing.
/// - `purge_telemetry` deletes at most `limit` records received before `received_before` and
///   returns how many; concurrent calls never fail because of each other.
///
/// # Errors
///
/// `NotFound` as above, `Unavailable` when the backend cannot be reached, `Backend` for
/// anything else.
pub trait TelemetryStore: Send + Sync {
    /// Stores a record; returns it with its id.
    fn insert_telemetry(
        &self,
        record: NewTelemetry,
    ) -> impl Future<Output = StoreResult<TelemetryRecord>> + Send;

    /// A license's records, newest first.
    fn list_telemetry(
        &self,
        license: &LicenseId,
        before: Option<TelemetryId>,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<TelemetryPage>> + Send;

    /// Deletes at most `limit` records received before `received_before`.
    fn purge_telemetry(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}
