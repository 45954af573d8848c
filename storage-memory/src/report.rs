//! [`ReportStore`]: reports read from the usage ledger and the event log (kept under the
//! event log's lock, written with the events), runtime refusal counts and report exports.
//! Grouping is core's reference reading ([`UsageQuery::summarize`],
//! [`RuntimeErrorQuery::group`]); like the rest of this store, nothing here is durable.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use licentia_core::model::{
    ExportId, ExportStatus, ReportExport, RuntimeErrorCount, RuntimeErrorKey,
};
use licentia_core::store::{
    ActivityQuery, EventPage, ExportArtifact, LedgerPage, LedgerQuery, ReportStore,
    RuntimeErrorQuery, RuntimeErrorReport, StoreError, StoreResult, UsageQuery, UsageSummary,
};

use crate::MemoryStore;
use crate::state::newest_page;

/// Refusal counts and exports.
#[derive(Default)]
pub(crate) struct Reports {
    errors: HashMap<RuntimeErrorKey, i64>,
    exports: BTreeMap<ExportId, StoredExport>,
}

struct StoredExport {
    export: ReportExport,
    content: Option<Vec<u8>>,
    leased_until: Option<DateTime<Utc>>,
}

impl ReportStore for MemoryStore {
    async fn usage_summary(&self, query: &UsageQuery) -> StoreResult<UsageSummary> {
        Ok(query.summarize(&self.inner.events.lock().usage))
    }

    async fn usage_ledger(&self, query: &LedgerQuery) -> StoreResult<LedgerPage> {
        let log = self.inner.events.lock();
        let (rows, next_cursor) = newest_page(
            &log.usage,
            |r| r.sequence,
            query.before,
            query.limit,
            |r| query.filter.matches(r),
        );
        Ok(LedgerPage { rows, next_cursor })
    }

    async fn list_activities(&self, query: &ActivityQuery) -> StoreResult<EventPage> {
        let log = self.inner.events.lock();
        let (events, next_cursor) = newest_page(
            log.events(),
            |e| e.sequence,
            query.before,
            query.limit,
            |e| query.matches(e),
        );
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    async fn record_runtime_errors(&self, counts: Vec<RuntimeErrorCount>) -> StoreResult<()> {
        let mut reports = self.inner.reports.lock();
        for c in counts {
            let n = reports.errors.entry(c.key).or_default();
            *n = n.saturating_add(c.count);
        }
        Ok(())
    }

    async fn runtime_error_groups(
        &self,
        query: &RuntimeErrorQuery,
    ) -> StoreResult<RuntimeErrorReport> {
        let reports = self.inner.reports.lock();
        let counts: Vec<RuntimeErrorCount> = reports
            .errors
            .iter()
            .map(|(key, &count)| RuntimeErrorCount {
                key: key.clone(),
                count,
            })
            .collect();
        Ok(query.group(&counts))
    }

    async fn purge_runtime_errors(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut reports = self.inner.reports.lock();
        let n = reports.errors.len();
        reports.errors.retain(|k, _| k.bucket_start >= before);
        Ok((n - reports.errors.len()) as u64)
    }

    async fn insert_export(&self, export: &ReportExport) -> StoreResult<()> {
        let mut reports = self.inner.reports.lock();
        if reports.exports.contains_key(&export.id) {
            return Err(StoreError::already_exists("report_export", "id"));
        }
        reports.exports.insert(
            export.id.clone(),
            StoredExport {
                export: export.clone(),
                content: None,
                leased_until: None,
            },
        );
        Ok(())
    }

    async fn get_export(&self, id: &ExportId) -> StoreResult<ReportExport> {
        let reports = self.inner.reports.lock();
        let stored = reports
            .exports
            .get(id)
            .ok_or(StoreError::not_found("report_export"))?;
        Ok(stored.export.clone())
    }

    async fn export_content(&self, id: &ExportId) -> StoreResult<Option<Vec<u8>>> {
        let reports = self.inner.reports.lock();
        let stored = reports
            .exports
            .get(id)
            .ok_or(StoreError::not_found("report_export"))?;
        Ok(stored.content.clone())
    }

    async fn claim_export(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ReportExport>> {
        let mut reports = self.inner.reports.lock();
        let oldest = reports
            .exports
            .values_mut()
            .filter(|s| {
                s.export.status == ExportStatus::Pending
                    && s.leased_until.is_none_or(|until| until <= now)
            })
            .min_by(|a, b| {
                (a.export.created_at, &a.export.id).cmp(&(b.export.created_at, &b.export.id))
            });
        Ok(oldest.map(|s| {
            s.leased_until = Some(lease_until);
            s.export.attempts += 1;
            s.export.clone()
        }))
    }

    async fn finish_export(
        &self,
        id: &ExportId,
        outcome: Result<ExportArtifact, String>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut reports = self.inner.reports.lock();
        let stored = reports
            .exports
            .get_mut(id)
            .ok_or(StoreError::not_found("report_export"))?;
        if stored.export.status != ExportStatus::Pending {
            return Ok(false);
        }
        match outcome {
            Ok(artifact) => {
                stored.export.status = ExportStatus::Ready;
                stored.export.artifact_digest = artifact.digest;
                stored.content = Some(artifact.content);
            }
            Err(reason) => {
                stored.export.status = ExportStatus::Failed;
                stored.export.error = Some(reason);
            }
        }
        stored.export.updated_at = now;
        stored.leased_until = None;
        Ok(true)
    }

    async fn purge_exports(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut reports = self.inner.reports.lock();
        let n = reports.exports.len();
        reports.exports.retain(|_, s| s.export.expires_at >= now);
        Ok((n - reports.exports.len()) as u64)
    }
}
