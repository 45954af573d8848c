//! Reports and operational views (an extension: the published SDK document's reporting and
//! ops operations): usage grouped and row by row, runtime refusals counted, report exports.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::enums::wire_enum;
use super::{ConsumptionRecord, FeatureId, SubscriptionId};
use super::{CustomerId, ExportId, FeatureCode, LicenseId, Metadata, OrderId, ProductId};

wire_enum!(
    /// What usage can be grouped by (`group_by`, comma-separated).
    UsageDimension {
        /// The license's product.
        Product = "product_id",
        /// The license's customer.
        Customer = "customer_id",
        /// The license.
        License = "license_id",
        /// The license's order.
        Order = "order_id",
        /// The license's subscription.
        Subscription = "subscription_id",
        /// The feature consumed.
        Feature = "feature_code",
    }
);

wire_enum!(
    /// A time bucket of the usage summary.
    UsageBucket {
        /// One hour.
        Hour = "1h",
        /// One UTC day.
        Day = "1d",
    }
);

wire_enum!(
    /// What runtime errors can be grouped by (`group_by`, comma-separated).
    ErrorDimension {
        /// The bucket the refusals fell in (`bucket`, default 1h).
        Time = "time",
        /// The runtime operation.
        Endpoint = "endpoint",
        /// The refusal's code (`LICENSE_EXPIRED`, …).
        ReasonCode = "reason_code",
        /// The class of refusal (`denied`, `not_found`, …).
        ResultClass = "result_class",
    }
);

wire_enum!(
    /// A time bucket of the runtime error groups.
    ErrorBucket {
        /// Five minutes: how finely refusals are counted.
        FiveMinutes = "5m",
        /// Fifteen minutes.
        FifteenMinutes = "15m",
        /// One hour.
        Hour = "1h",
        /// One UTC day.
        Day = "1d",
    }
);

wire_enum!(
    /// The nine runtime operations, as runtime error groups name them.
    RuntimeEndpoint {
        /// `POST /api/v1/license/activate`.
        Activate = "activate",
        /// `POST /api/v1/license/validate`.
        Validate = "validate",
        /// `POST /api/v1/license/check`.
        Check = "check",
        /// `POST /api/v1/license/consume`.
        Consume = "consume",
        /// `POST /api/v1/license/offline`.
        Offline = "offline",
        /// `POST /api/v1/license/deactivate`.
        Deactivate = "deactivate",
        /// `POST /api/v1/license/floating/checkout`.
        FloatingCheckout = "floating_checkout",
        /// `POST /api/v1/license/floating/checkin`.
        FloatingCheckin = "floating_checkin",
        /// `POST /api/v1/license/floating/heartbeat`.
        FloatingHeartbeat = "floating_heartbeat",
    }
);

wire_enum!(
    /// The class of a runtime refusal, from its HTTP status.
    ResultClass {
        /// 401: an unknown, malformed or inactive license key.
        Unauthorized = "unauthorized",
        /// 403: a licensing rule refused.
        Denied = "denied",
        /// 404: the device, lease or feature named is not there.
        NotFound = "not_found",
        /// 409: a conflicting replay (idempotency key or `event_id`).
        Conflict = "conflict",
        /// 422: a field out of range.
        Unprocessable = "unprocessable",
    }
);

wire_enum!(
    /// Which report an export freezes.
    ReportKind {
        /// `GET /api/v1/reports/usage-summary`.
        UsageSummary = "usage-summary",
        /// `GET /api/v1/reports/usage-ledger`.
        UsageLedger = "usage-ledger",
        /// `GET /api/v1/reports/license-audit`.
        LicenseAudit = "license-audit",
        /// `GET /api/v1/reports/customer-summary`.
        CustomerSummary = "customer-summary",
        /// `GET /api/v1/reports/subscription-settlement`.
        SubscriptionSettlement = "subscription-settlement",
    }
);

wire_enum!(
    /// The file format of an export.
    ExportFormat {
        /// `application/json`: the report's `data` as the report operation answers it.
        Json = "json",
        /// `text/csv`: one row per group or ledger entry, with a header row.
        Csv = "csv",
        /// `application/pdf`: the CSV's rows as a printable table.
        Pdf = "pdf",
    }
);

impl ExportFormat {
    /// The media type of the downloaded file.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Pdf => "application/pdf",
        }
    }
}

wire_enum!(
    /// Where an export stands.
    ExportStatus {
        /// Created; not produced yet.
        Pending = "pending",
        /// Produced; downloadable until `expires_at`.
        Ready = "ready",
        /// Producing it failed; `error` says why.
        Failed = "failed",
    }
);

/// A report export: created pending, produced in the background, downloadable once ready,
/// until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportExport {
    pub id: ExportId,
    pub report_kind: ReportKind,
    pub format: ExportFormat,
    pub status: ExportStatus,
    /// The report's query parameters, as given.
    pub filters: Metadata,
    /// Lowercase hex SHA-256 of the kind, format and filters (the same request, the same
    /// digest).
    pub digest: String,
    /// Lowercase hex SHA-256 of the produced file; empty until ready.
    pub artifact_digest: String,
    pub content_type: String,
    /// The API key that created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// After this the export and its file are gone.
    pub expires_at: DateTime<Utc>,
    /// Why producing it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many producers claimed it (a producer that died is replaced after its lease).
    #[serde(default)]
    pub attempts: u32,
}

/// A stored consumption with the store's number for it (the ledger's cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Strictly increasing in the order consumptions were recorded.
    pub sequence: i64,
    /// The consumption.
    pub record: ConsumptionRecord,
}

/// A usage ledger entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// The cursor of this entry.
    pub sequence: i64,
    /// `consume`, or `credit` for a negative amount.
    pub action: LedgerAction,
    pub event_id: String,
    pub license_id: LicenseId,
    pub product_id: ProductId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    pub feature_id: FeatureId,
    pub feature_code: FeatureCode,
    pub amount: i64,
    pub recorded_at: DateTime<Utc>,
}

wire_enum!(
    /// What a ledger row records.
    LedgerAction {
        /// A positive amount: units used.
        Consume = "consume",
        /// A negative amount: units given back.
        Credit = "credit",
    }
);

impl LedgerAction {
    /// The action of an amount.
    pub const fn of(amount: i64) -> Self {
        if amount < 0 {
            Self::Credit
        } else {
            Self::Consume
        }
    }
}

impl From<UsageRow> for LedgerEntry {
    fn from(row: UsageRow) -> Self {
        let r = row.record;
        Self {
            sequence: row.sequence,
            action: LedgerAction::of(r.amount),
            event_id: r.event_id,
            license_id: r.license_id,
            product_id: r.product_id,
            customer_id: r.customer_id,
            order_id: r.order_id,
            subscription_id: r.subscription_id,
            feature_id: r.feature_id,
            feature_code: r.feature_code,
            amount: r.amount,
            recorded_at: r.recorded_at,
        }
    }
}

/// One group of the usage summary: the grouped dimensions' values (others absent) and the
/// sums.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageGroup {
    /// The bucket's start, when grouped by time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_start: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_code: Option<String>,
    /// Sum of the amounts (credits subtract).
    pub units: i64,
    /// Sum of the positive amounts.
    pub consumed: i64,
    /// Sum of the negative amounts, as a positive number.
    pub credited: i64,
    /// How many consumptions.
    pub events: i64,
}

/// The sums over everything the summary's filters select.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    pub units: i64,
    pub consumed: i64,
    pub credited: i64,
    pub events: i64,
}

/// Refusals counted in one five-minute bucket for one combination of what they concern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuntimeErrorKey {
    /// Start of the five-minute bucket.
    pub bucket_start: DateTime<Utc>,
    pub endpoint: RuntimeEndpoint,
    pub reason_code: String,
    pub result_class: ResultClass,
    /// The license, when the key named one.
    pub license_id: Option<LicenseId>,
    pub product_id: Option<ProductId>,
    pub customer_id: Option<CustomerId>,
    /// The `app_version` the request reported (at most 64 bytes kept).
    pub app_version: Option<String>,
}

/// How many refusals one [`RuntimeErrorKey`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeErrorCount {
    pub key: RuntimeErrorKey,
    pub count: i64,
}

/// One group of the runtime error report (dimensions not grouped by are absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeErrorGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_start: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<RuntimeEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_class: Option<ResultClass>,
    pub count: i64,
}

/// The length of the finest bucket refusals are counted in.
pub const ERROR_BUCKET_FINEST: TimeDelta = TimeDelta::minutes(5);

impl ErrorBucket {
    /// The bucket's length.
    pub fn length(self) -> TimeDelta {
        match self {
            Self::FiveMinutes => TimeDelta::minutes(5),
            Self::FifteenMinutes => TimeDelta::minutes(15),
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }
}

// The enum comes from a macro, which cannot mark a `#[default]` variant.
#[allow(clippy::derivable_impls)]
impl Default for ErrorBucket {
    fn default() -> Self {
        Self::Hour
    }
}

impl UsageBucket {
    /// The bucket's length.
    pub fn length(self) -> TimeDelta {
        match self {
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }
}

/// The start of the bucket of length `length` (aligned to the Unix epoch, so days are UTC
/// days) that holds `at`.
pub fn bucket_start(at: DateTime<Utc>, length: TimeDelta) -> DateTime<Utc> {
    at.duration_trunc(length).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn buckets_align_to_the_epoch() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 17, 42).unwrap();
        let five = bucket_start(at, ErrorBucket::FiveMinutes.length());
        assert_eq!(five, Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0).unwrap());
        let day = bucket_start(at, UsageBucket::Day.length());
        assert_eq!(day, Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap());
    }
}

/// An event as the activity feed shows it: what happened, who did it, and what it concerns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// The event's sequence (the feed's cursor).
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// The event type, e.g. `usage.consumed`.
    pub action: String,
    /// Who caused it: `api_key`, `license` or `system`.
    pub source: super::AuditActorType,
    pub actor_id: String,
    pub resource_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_code: Option<String>,
    /// Always `success`: the log records what was done; refusals are counted in the runtime
    /// error groups.
    pub result_class: &'static str,
    /// The event's (redacted) metadata.
    pub metadata: Metadata,
}

impl super::Event {
    /// What the event concerns, for `key` (`product_id`, `customer_id`, `license_id`,
    /// `order_id`, `subscription_id`, `feature_code`): its metadata's string value (the
    /// engine adds the license's ids to every event about a license), or its own id when it
    /// is the resource of that kind.
    pub fn subject(&self, key: &str) -> Option<&str> {
        if let Some(v) = self.metadata.get(key).and_then(|v| v.as_str()) {
            return Some(v);
        }
        let own = match key {
            "product_id" => "product",
            "customer_id" => "customer",
            "license_id" => "license",
            "order_id" => "order",
            "subscription_id" => "subscription",
            _ => return None,
        };
        (self.resource_type == own)
            .then_some(self.resource_id.as_deref())
            .flatten()
    }
}

impl From<super::Event> for Activity {
    fn from(e: super::Event) -> Self {
        let subject = |key: &str| e.subject(key).map(str::to_owned);
        Self {
            id: e.sequence,
            occurred_at: e.created_at,
            product_id: subject("product_id"),
            customer_id: subject("customer_id"),
            license_id: subject("license_id"),
            order_id: subject("order_id"),
            subscription_id: subject("subscription_id"),
            feature_code: subject("feature_code"),
            action: e.event_type,
            source: e.actor_type,
            actor_id: e.actor_id,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            result_class: "success",
            metadata: e.metadata,
        }
    }
}
