//! [`TelemetryStore`]: records numbered in the order received, kept in one ordered map.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use licentia_core::model::{LicenseId, NewTelemetry, TelemetryId, TelemetryRecord};
use licentia_core::store::{Limit, StoreError, StoreResult, TelemetryPage, TelemetryStore};

use crate::MemoryStore;

#[derive(Debug, Default)]
pub(crate) struct TelemetryLog {
    last: i64,
    records: BTreeMap<i64, TelemetryRecord>,
}

impl TelemetryStore for MemoryStore {
    async fn insert_telemetry(&self, record: NewTelemetry) -> StoreResult<TelemetryRecord> {
        if !self
            .inner
            .licenses
            .read()
            .by_id
            .contains_key(&record.license_id)
        {
            return Err(StoreError::not_found("license"));
        }
        let mut log = self.inner.telemetry.lock();
        log.last += 1;
        let id = TelemetryId::new(log.last);
        let stored = TelemetryRecord::stored(id, record);
        log.records.insert(id.get(), stored.clone());
        Ok(stored)
    }

    async fn list_telemetry(
        &self,
        license: &LicenseId,
        before: Option<TelemetryId>,
        limit: Limit,
    ) -> StoreResult<TelemetryPage> {
        let log = self.inner.telemetry.lock();
        let below = before.map_or(i64::MAX, TelemetryId::get);
        let records = log
            .records
            .range(..below)
            .rev()
            .map(|(_, r)| r)
            .filter(|r| &r.license_id == license)
            .take(limit.as_usize() + 1)
            .cloned()
            .collect();
        Ok(TelemetryPage::from_overfetch(records, limit))
    }

    async fn purge_telemetry(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut log = self.inner.telemetry.lock();
        let old: Vec<i64> = log
            .records
            .iter()
            .filter(|(_, r)| r.received_at < received_before)
            .map(|(n, _)| *n)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        for n in &old {
            log.records.remove(n);
        }
        Ok(old.len() as u64)
    }
}
