//! Reports computed where the data is: usage sums and the usage ledger from consumptions, the
//! activity feed from the event log, runtime refusals counted per five minutes, and report
//! exports produced in the background.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{EventPage, Limit, StoreResult};
use crate::model::{
    AuditActorType, CustomerId, ErrorBucket, ErrorDimension, ExportId, FeatureCode, LedgerAction,
    LicenseId, OrderId, ProductId, ReportExport, RuntimeEndpoint, RuntimeErrorCount,
    RuntimeErrorGroup, SubscriptionId, UsageBucket, UsageDimension, UsageGroup, UsageRow,
    UsageTotals,
};

/// Which consumptions a usage query selects. Every filter is exact; `from` is inclusive,
/// `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub product_id: Option<ProductId>,
    pub customer_id: Option<CustomerId>,
    pub license_id: Option<LicenseId>,
    pub order_id: Option<OrderId>,
    pub subscription_id: Option<SubscriptionId>,
    pub feature_code: Option<FeatureCode>,
    /// Only consumptions (positive amounts) or only credits.
    pub action: Option<LedgerAction>,
}

impl UsageFilter {
    /// Whether `row` passes the filter (the memory backend's and the tests' reading).
    pub fn matches(&self, row: &UsageRow) -> bool {
        let r = &row.record;
        self.from.is_none_or(|f| r.recorded_at >= f)
            && self.to.is_none_or(|t| r.recorded_at < t)
            && self.product_id.as_ref().is_none_or(|p| &r.product_id == p)
            && self
                .customer_id
                .as_ref()
                .is_none_or(|c| r.customer_id.as_ref() == Some(c))
            && self.license_id.as_ref().is_none_or(|l| &r.license_id == l)
            && self
                .order_id
                .as_ref()
                .is_none_or(|o| r.order_id.as_ref() == Some(o))
            && self
                .subscription_id
                .as_ref()
                .is_none_or(|s| r.subscription_id.as_ref() == Some(s))
            && self
                .feature_code
                .as_ref()
                .is_none_or(|f| &r.feature_code == f)
            && self.action.is_none_or(|a| LedgerAction::of(r.amount) == a)
    }
}

/// A grouped usage query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    pub filter: UsageFilter,
    /// The dimensions to group by, in the order given; none sums everything into one group.
    pub group_by: Vec<UsageDimension>,
    /// Group by time buckets too.
    pub bucket: Option<UsageBucket>,
    /// At most this many groups.
    pub limit: Limit,
}

/// What [`ReportStore::usage_summary`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSummary {
    /// At most `limit` groups: by bucket (oldest first), then by `units` (largest first),
    /// then by the grouped values.
    pub groups: Vec<UsageGroup>,
    /// Whether more groups matched than were returned.
    pub truncated: bool,
    /// Sums over every selected consumption (not only the returned groups).
    pub totals: UsageTotals,
}

/// A page of the usage ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    pub filter: UsageFilter,
    /// Only rows with a lower sequence (the previous page's cursor).
    pub before: Option<i64>,
    pub limit: Limit,
}

/// A ledger page, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerPage {
    pub rows: Vec<UsageRow>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// Which events the activity feed selects. `product_id`, `customer_id`, `license_id`,
/// `order_id`, `subscription_id` and `feature_code` match what the event concerns
/// ([`Event::subject`](crate::model::Event)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Only sequences lower than this.
    pub before: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Exact event type.
    pub action: Option<String>,
    /// Exact actor type.
    pub source: Option<AuditActorType>,
    pub product_id: Option<String>,
    pub customer_id: Option<String>,
    pub license_id: Option<String>,
    pub order_id: Option<String>,
    pub subscription_id: Option<String>,
    pub feature_code: Option<String>,
    pub limit: Limit,
}

impl ActivityQuery {
    /// Whether `e` passes the filters (not the cursor).
    pub fn matches(&self, e: &crate::model::Event) -> bool {
        let subject = |key: &str, want: &Option<String>| {
            want.as_deref().is_none_or(|w| e.subject(key) == Some(w))
        };
        self.from.is_none_or(|f| e.created_at >= f)
            && self.to.is_none_or(|t| e.created_at < t)
            && self.action.as_ref().is_none_or(|a| &e.event_type == a)
            && self.source.is_none_or(|s| e.actor_type == s)
            && subject("product_id", &self.product_id)
            && subject("customer_id", &self.customer_id)
            && subject("license_id", &self.license_id)
            && subject("order_id", &self.order_id)
            && subject("subscription_id", &self.subscription_id)
            && subject("feature_code", &self.feature_code)
    }
}

/// Which refusals a runtime error query counts, and how it groups them. `from` is
/// inclusive and `to` exclusive, applied to the five-minute buckets refusals are counted in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeErrorQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub product_id: Option<ProductId>,
    pub customer_id: Option<CustomerId>,
    pub license_id: Option<LicenseId>,
    pub app_version: Option<String>,
    pub endpoint: Option<RuntimeEndpoint>,
    /// The dimensions to group by; none counts everything as one group.
    pub group_by: Vec<ErrorDimension>,
    /// The bucket of [`ErrorDimension::Time`] (default one hour).
    pub bucket: ErrorBucket,
    pub limit: Limit,
}

/// What [`ReportStore::runtime_error_groups`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeErrorReport {
    /// At most `limit` groups: by bucket (oldest first), then by count (largest first), then
    /// by the grouped values.
    pub groups: Vec<RuntimeErrorGroup>,
    pub truncated: bool,
    /// Every selected refusal.
    pub total: i64,
}

/// An export's produced file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportArtifact {
    pub content: Vec<u8>,
    /// Lowercase hex SHA-256 of `content`.
    pub digest: String,
}

/// Reports and the data only reports read.
///
/// # Contract
///
/// - Reports are computed by the store from what it holds (on PostgreSQL, in the database:
///   never a whole table loaded into the process), with exactly the filters, groups and
///   orders documented on the query types; every backend answers the same.
/// - Consumptions are numbered by the store when they are recorded (strictly increasing);
///   the ledger pages by that number, newest first.
/// - [`record_runtime_errors`](Self::record_runtime_errors) adds counts to what is stored
///   for the same key (a batch may repeat a key; counts add up).
/// - An export is claimed by one producer at a time: [`claim_export`](Self::claim_export)
///   hands out the oldest pending export whose lease is free and leases it until
///   `lease_until`; [`finish_export`](Self::finish_export) stores the outcome only for a
///   pending export.
///
/// # Errors
///
/// [`StoreError::NotFound`](super::StoreError::NotFound) for an export id that does not
/// exist (or expired and was purged); backend failures as `Unavailable`/`Backend`.
pub trait ReportStore: Send + Sync {
    /// Usage sums over the selected consumptions, grouped.
    fn usage_summary(
        &self,
        query: &UsageQuery,
    ) -> impl Future<Output = StoreResult<UsageSummary>> + Send;

    /// A page of the selected consumptions, newest first.
    fn usage_ledger(
        &self,
        query: &LedgerQuery,
    ) -> impl Future<Output = StoreResult<LedgerPage>> + Send;

    /// Events matching `query`, newest first, paged by sequence.
    fn list_activities(
        &self,
        query: &ActivityQuery,
    ) -> impl Future<Output = StoreResult<EventPage>> + Send;

    /// Adds refusal counts.
    fn record_runtime_errors(
        &self,
        counts: Vec<RuntimeErrorCount>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Refusal counts, grouped.
    fn runtime_error_groups(
        &self,
        query: &RuntimeErrorQuery,
    ) -> impl Future<Output = StoreResult<RuntimeErrorReport>> + Send;

    /// Removes refusal counts of buckets that start before `before`; returns how many
    /// stored counts went.
    fn purge_runtime_errors(
        &self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Stores a new (pending) export.
    fn insert_export(&self, export: &ReportExport) -> impl Future<Output = StoreResult<()>> + Send;

    /// An export's record.
    fn get_export(&self, id: &ExportId) -> impl Future<Output = StoreResult<ReportExport>> + Send;

    /// An export's file, once it is ready.
    fn export_content(
        &self,
        id: &ExportId,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;

    /// The oldest pending export not leased at `now`, now leased until `lease_until` (its
    /// `attempts` counted up), if any.
    fn claim_export(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Option<ReportExport>>> + Send;

    /// Stores a pending export's outcome: `Ok` makes it ready with the file, `Err` failed
    /// with the reason. Returns `false` (and changes nothing) when the export is no longer
    /// pending.
    fn finish_export(
        &self,
        id: &ExportId,
        outcome: Result<ExportArtifact, String>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes exports (and their files) that expired before `now`; returns how many.
    fn purge_exports(&self, now: DateTime<Utc>) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// A usage group's bucket and values, in [`UsageDimension::ALL`]'s order.
type UsageKey = (Option<DateTime<Utc>>, [Option<String>; 6]);

/// The grouped values of a usage row under `dims` (`None` for dimensions not grouped by).
fn usage_key(row: &UsageRow, dims: &[UsageDimension], bucket: Option<UsageBucket>) -> UsageKey {
    let r = &row.record;
    let mut key: [Option<String>; 6] = Default::default();
    for d in dims {
        let (i, v) = match d {
            UsageDimension::Product => (0, Some(r.product_id.to_string())),
            UsageDimension::Customer => (1, r.customer_id.as_ref().map(ToString::to_string)),
            UsageDimension::License => (2, Some(r.license_id.to_string())),
            UsageDimension::Order => (3, r.order_id.as_ref().map(ToString::to_string)),
            UsageDimension::Subscription => {
                (4, r.subscription_id.as_ref().map(ToString::to_string))
            }
            UsageDimension::Feature => (5, Some(r.feature_code.to_string())),
        };
        key[i] = v;
    }
    let at = bucket.map(|b| crate::model::bucket_start(r.recorded_at, b.length()));
    (at, key)
}

impl UsageQuery {
    /// The summary of `rows` (every stored consumption; the filter is applied here): the
    /// reference reading every backend's answer must equal.
    pub fn summarize<'a>(&self, rows: impl IntoIterator<Item = &'a UsageRow>) -> UsageSummary {
        use std::collections::BTreeMap;
        let mut groups: BTreeMap<UsageKey, UsageTotals> = BTreeMap::new();
        let mut totals = UsageTotals::default();
        for row in rows.into_iter().filter(|r| self.filter.matches(r)) {
            let amount = row.record.amount;
            for t in [
                groups
                    .entry(usage_key(row, &self.group_by, self.bucket))
                    .or_default(),
                &mut totals,
            ] {
                t.units = t.units.saturating_add(amount);
                if amount >= 0 {
                    t.consumed = t.consumed.saturating_add(amount);
                } else {
                    t.credited = t.credited.saturating_add(amount.saturating_neg());
                }
                t.events += 1;
            }
        }
        let mut groups: Vec<UsageGroup> = groups
            .into_iter()
            .map(|((bucket_start, key), t)| {
                let [
                    product_id,
                    customer_id,
                    license_id,
                    order_id,
                    subscription_id,
                    feature_code,
                ] = key;
                UsageGroup {
                    bucket_start,
                    product_id,
                    customer_id,
                    license_id,
                    order_id,
                    subscription_id,
                    feature_code,
                    units: t.units,
                    consumed: t.consumed,
                    credited: t.credited,
                    events: t.events,
                }
            })
            .collect();
        let truncated = rank(&mut groups, self.limit, |a, b| {
            a.bucket_start
                .cmp(&b.bucket_start)
                .then(b.units.cmp(&a.units))
                .then_with(|| usage_group_values(a).cmp(&usage_group_values(b)))
        });
        UsageSummary {
            groups,
            truncated,
            totals,
        }
    }
}

/// Orders report groups by `cmp` (bucket, then the sum largest first, then the values) and
/// keeps the first `limit`; returns whether any were left out.
fn rank<T>(groups: &mut Vec<T>, limit: Limit, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> bool {
    groups.sort_by(cmp);
    let truncated = groups.len() > limit.as_usize();
    groups.truncate(limit.as_usize());
    truncated
}

fn usage_group_values(g: &UsageGroup) -> [Option<&str>; 6] {
    [
        g.product_id.as_deref(),
        g.customer_id.as_deref(),
        g.license_id.as_deref(),
        g.order_id.as_deref(),
        g.subscription_id.as_deref(),
        g.feature_code.as_deref(),
    ]
}

impl RuntimeErrorQuery {
    /// Whether a stored count passes the filters.
    pub fn matches(&self, c: &RuntimeErrorCount) -> bool {
        let k = &c.key;
        self.from.is_none_or(|f| k.bucket_start >= f)
            && self.to.is_none_or(|t| k.bucket_start < t)
            && self
                .product_id
                .as_ref()
                .is_none_or(|p| k.product_id.as_ref() == Some(p))
            && self
                .customer_id
                .as_ref()
                .is_none_or(|c| k.customer_id.as_ref() == Some(c))
            && self
                .license_id
                .as_ref()
                .is_none_or(|l| k.license_id.as_ref() == Some(l))
            && self
                .app_version
                .as_ref()
                .is_none_or(|v| k.app_version.as_ref() == Some(v))
            && self.endpoint.is_none_or(|e| k.endpoint == e)
    }

    /// The report over `counts` (every stored count; the filters are applied here): the
    /// reference reading every backend's answer must equal.
    pub fn group<'a>(
        &self,
        counts: impl IntoIterator<Item = &'a RuntimeErrorCount>,
    ) -> RuntimeErrorReport {
        use std::collections::BTreeMap;
        let has = |d| self.group_by.contains(&d);
        let mut groups: BTreeMap<_, i64> = BTreeMap::new();
        let mut total = 0i64;
        for c in counts.into_iter().filter(|c| self.matches(c)) {
            let k = &c.key;
            let key = (
                has(ErrorDimension::Time)
                    .then(|| crate::model::bucket_start(k.bucket_start, self.bucket.length())),
                has(ErrorDimension::Endpoint).then_some(k.endpoint.as_str()),
                has(ErrorDimension::ReasonCode).then(|| k.reason_code.clone()),
                has(ErrorDimension::ResultClass).then_some(k.result_class.as_str()),
            );
            let n = groups.entry(key).or_default();
            *n = n.saturating_add(c.count);
            total = total.saturating_add(c.count);
        }
        let mut groups: Vec<RuntimeErrorGroup> = groups
            .into_iter()
            .map(
                |((bucket_start, endpoint, reason_code, result_class), count)| RuntimeErrorGroup {
                    bucket_start,
                    endpoint: endpoint.and_then(|e| e.parse().ok()),
                    reason_code,
                    result_class: result_class.and_then(|r| r.parse().ok()),
                    count,
                },
            )
            .collect();
        let truncated = rank(&mut groups, self.limit, |a, b| {
            a.bucket_start
                .cmp(&b.bucket_start)
                .then(b.count.cmp(&a.count))
                .then_with(|| error_group_values(a).cmp(&error_group_values(b)))
        });
        RuntimeErrorReport {
            groups,
            truncated,
            total,
        }
    }
}

fn error_group_values(g: &RuntimeErrorGroup) -> [Option<&str>; 3] {
    [
        g.endpoint.map(|e| e.as_str()),
        g.reason_code.as_deref(),
        g.result_class.map(|r| r.as_str()),
    ]
}
