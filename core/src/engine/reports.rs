//! Reports, operational views and report exports (an extension: the published SDK
//! document's reporting and ops operations). Every number comes from the store's reports
//! ([`ReportStore`](crate::store::ReportStore)); this module reads the parameters, composes
//! the answers and runs the export lifecycle.

use std::collections::BTreeMap;

use chrono::Duration;
use rand_core::CryptoRng;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::catalog::parse_id;
use super::{Clock, Engine, EngineError, ReportParams};
use crate::model::{
    Activity, ErrorDimension, ExportFormat, ExportId, ExportStatus, LedgerEntry, LicenseId,
    LicenseStatus, Metadata, ReportExport, ReportKind, UsageDimension,
};
use crate::store::{
    ActivityQuery, Actor, ExportArtifact, LedgerQuery, LicenseQuery, Limit, RuntimeErrorQuery,
    Store, UsageFilter, UsageQuery,
};
use licentia_verify::encoding::hex_encode;

/// How long an export and its file are kept after it is created.
pub const EXPORT_RETENTION: Duration = Duration::days(7);
/// How long a producer holds an export before another may take it over.
pub const EXPORT_LEASE: Duration = Duration::minutes(10);
/// The most ledger entries an export of the usage ledger holds (the newest).
pub const EXPORT_MAX_LEDGER_ROWS: usize = 100_000;

/// A report's answer: its `data` as the report operation returns it, and the table an
/// export writes as CSV or PDF rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The `data` of the report operation.
    pub data: Value,
    /// The report's table: one flat object per row.
    pub rows: Vec<Metadata>,
}

/// What `POST /api/v1/reports/exports` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    pub report_kind: ReportKind,
    /// Default `json`.
    pub format: Option<ExportFormat>,
    /// The report's parameters (as its query string would carry them).
    pub filters: Metadata,
}

/// A row of a table: `value`'s fields, anything that is not a scalar as JSON text.
fn row_of(value: impl Serialize) -> Metadata {
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    v @ (Value::Array(_) | Value::Object(_)) => Value::String(v.to_string()),
                    v => v,
                };
                (k, v)
            })
            .collect(),
        _ => Metadata::new(),
    }
}

fn rows_of<T: Serialize>(items: &[T]) -> Vec<Metadata> {
    items.iter().map(row_of).collect()
}

fn required<'a>(params: &'a ReportParams, name: &str) -> Result<&'a str, EngineError> {
    params.get(name).ok_or_else(|| EngineError::InvalidQuery {
        param: name.to_owned(),
        message: "is required".into(),
    })
}

fn to_value(v: impl Serialize) -> Result<Value, EngineError> {
    serde_json::to_value(v).map_err(EngineError::internal)
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Report `kind` with `params` (the report operation's query string).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed or missing parameter; `NotFound` for the license,
    /// customer, subscription or order a report is about; storage failures.
    pub async fn report(
        &self,
        kind: ReportKind,
        params: &ReportParams,
    ) -> Result<Report, EngineError> {
        match kind {
            ReportKind::UsageSummary => self.usage_summary(params).await,
            ReportKind::UsageLedger => {
                let page = self.usage_ledger_page(&params.ledger_query()?).await?;
                // One page; [`Self::usage_ledger`] pages on, an export takes the whole ledger.
                Ok(Report {
                    data: to_value(&page.0)?,
                    rows: rows_of(&page.0),
                })
            }
            ReportKind::LicenseAudit => self.license_audit(params).await,
            ReportKind::CustomerSummary => self.customer_summary(params).await,
            ReportKind::SubscriptionSettlement => self.settlement(params).await,
        }
    }

    async fn usage_ledger_page(
        &self,
        query: &LedgerQuery,
    ) -> Result<(Vec<LedgerEntry>, Option<i64>), EngineError> {
        let page = self.store.usage_ledger(query).await?;
        let entries = page.rows.into_iter().map(LedgerEntry::from).collect();
        Ok((entries, page.next_cursor))
    }

    async fn usage_summary(&self, params: &ReportParams) -> Result<Report, EngineError> {
        let query = params.usage_query(&[])?;
        let summary = self.store.usage_summary(&query).await?;
        let data = json!({
            "from": query.filter.from,
            "to": query.filter.to,
            "group_by": query.group_by,
            "bucket": query.bucket,
            "groups": summary.groups,
            "totals": summary.totals,
            "truncated": summary.truncated,
        });
        Ok(Report {
            rows: rows_of(&summary.groups),
            data,
        })
    }

    /// Usage of `filter` grouped by `dims` (at most `limit` groups), as `{totals, groups,
    /// truncated}`.
    async fn usage_part(
        &self,
        filter: &UsageFilter,
        dims: &[UsageDimension],
        limit: Limit,
    ) -> Result<(Value, Vec<crate::model::UsageGroup>), EngineError> {
        let summary = self
            .store
            .usage_summary(&UsageQuery {
                filter: filter.clone(),
                group_by: dims.to_vec(),
                bucket: None,
                limit,
            })
            .await?;
        let value = json!({
            "totals": summary.totals,
            "groups": summary.groups,
            "truncated": summary.truncated,
        });
        Ok((value, summary.groups))
    }

    async fn license_audit(&self, params: &ReportParams) -> Result<Report, EngineError> {
        let id: LicenseId = parse_id(required(params, "license_id")?, "license")?;
        let license = self.get_license(id.as_str()).await?;
        let (from, to) = params.window()?;
        let limit = params.limit()?;
        let devices = self.list_devices(id.as_str(), limit).await?;
        let features = self.list_license_features(id.as_str(), limit).await?;
        let filter = UsageFilter {
            from,
            to,
            license_id: Some(id.clone()),
            ..UsageFilter::default()
        };
        let (usage, _) = self
            .usage_part(&filter, &[UsageDimension::Feature], limit)
            .await?;
        let activity = self
            .activity_page(&ActivityQuery {
                from,
                to,
                license_id: Some(id.to_string()),
                limit,
                ..ActivityQuery::default()
            })
            .await?
            .0;
        let errors = self
            .store
            .runtime_error_groups(&RuntimeErrorQuery {
                from,
                to,
                license_id: Some(id.clone()),
                group_by: vec![ErrorDimension::ReasonCode],
                limit,
                ..RuntimeErrorQuery::default()
            })
            .await?;
        let data = json!({
            "license": license,
            "from": from,
            "to": to,
            "devices": devices,
            "features": features,
            "usage": usage,
            "activity": activity,
            "runtime_errors": {"total": errors.total, "groups": errors.groups},
        });
        Ok(Report {
            rows: rows_of(&activity),
            data,
        })
    }

    async fn customer_summary(&self, params: &ReportParams) -> Result<Report, EngineError> {
        let customer = self.get_customer(required(params, "customer_id")?).await?;
        let (from, to) = params.window()?;
        let limit = params.limit()?;
        let licenses = self
            .list_licenses(
                LicenseQuery {
                    customer_id: Some(customer.id.clone()),
                    limit: Limit::MAX,
                    ..LicenseQuery::default()
                },
                None,
            )
            .await?;
        let mut by_status: BTreeMap<LicenseStatus, usize> = BTreeMap::new();
        for l in &licenses {
            *by_status.entry(l.status).or_default() += 1;
        }
        let filter = UsageFilter {
            from,
            to,
            customer_id: Some(customer.id.clone()),
            ..UsageFilter::default()
        };
        let (by_product, _) = self
            .usage_part(&filter, &[UsageDimension::Product], limit)
            .await?;
        let (by_feature, _) = self
            .usage_part(&filter, &[UsageDimension::Feature], limit)
            .await?;
        let (_, by_license) = self
            .usage_part(&filter, &[UsageDimension::License], Limit::MAX)
            .await?;
        let units: BTreeMap<&str, i64> = by_license
            .iter()
            .filter_map(|g| Some((g.license_id.as_deref()?, g.units)))
            .collect();
        let rows: Vec<Metadata> = licenses
            .iter()
            .map(|l| {
                row_of(json!({
                    "license_id": l.id,
                    "product_id": l.product_id,
                    "status": l.status,
                    "expires_at": l.expires_at,
                    "active_device_count": l.active_device_count,
                    "units": units.get(l.id.as_str()).copied().unwrap_or(0),
                }))
            })
            .collect();
        let errors = self
            .store
            .runtime_error_groups(&RuntimeErrorQuery {
                from,
                to,
                customer_id: Some(customer.id.clone()),
                limit,
                ..RuntimeErrorQuery::default()
            })
            .await?;
        let data = json!({
            "customer": customer,
            "from": from,
            "to": to,
            "licenses": {
                "total": licenses.len(),
                "by_status": by_status,
                "truncated": licenses.len() >= Limit::MAX.as_usize(),
                "items": rows,
            },
            "usage": {"by_product": by_product, "by_feature": by_feature},
            "runtime_errors": {"total": errors.total},
        });
        Ok(Report { data, rows })
    }

    async fn settlement(&self, params: &ReportParams) -> Result<Report, EngineError> {
        let (subscription, order) = (params.get("subscription_id"), params.get("order_id"));
        let (from, to) = params.window()?;
        let query = params.usage_query(&[UsageDimension::Feature])?;
        let (record, mut filter, license_query) = match (subscription, order) {
            (Some(id), _) => {
                let s = self.get_subscription(id).await?;
                let filter = UsageFilter {
                    subscription_id: Some(s.id.clone()),
                    ..UsageFilter::default()
                };
                let lq = LicenseQuery {
                    subscription_id: Some(s.id.clone()),
                    ..LicenseQuery::default()
                };
                (json!({"subscription": s}), filter, lq)
            }
            (None, Some(id)) => {
                let o = self.get_order(id).await?;
                let filter = UsageFilter {
                    order_id: Some(o.id.clone()),
                    ..UsageFilter::default()
                };
                let lq = LicenseQuery {
                    order_id: Some(o.id.clone()),
                    ..LicenseQuery::default()
                };
                (json!({"order": o}), filter, lq)
            }
            (None, None) => {
                return Err(EngineError::InvalidQuery {
                    param: "subscription_id".into(),
                    message: "subscription_id or order_id is required".into(),
                });
            }
        };
        filter.from = from;
        filter.to = to;
        let (usage, groups) = self
            .usage_part(&filter, &query.group_by, query.limit)
            .await?;
        let licenses = self
            .list_licenses(
                LicenseQuery {
                    limit: Limit::MAX,
                    ..license_query
                },
                None,
            )
            .await?;
        let mut data = record;
        data["from"] = json!(from);
        data["to"] = json!(to);
        data["group_by"] = json!(query.group_by);
        data["licenses"] = json!({
            "total": licenses.len(),
            "ids": licenses.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        });
        data["usage"] = usage;
        Ok(Report {
            rows: rows_of(&groups),
            data,
        })
    }

    async fn activity_page(
        &self,
        query: &ActivityQuery,
    ) -> Result<(Vec<Activity>, Option<i64>), EngineError> {
        let page = self.store.list_activities(query).await?;
        let activities = page.events.into_iter().map(Activity::from).collect();
        Ok((activities, page.next_cursor))
    }

    /// The activity feed: events as activities, newest first, and the next page's cursor.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed parameter; storage failures.
    pub async fn activities(
        &self,
        params: &ReportParams,
    ) -> Result<(Vec<Activity>, Option<i64>), EngineError> {
        let query = params.activity_query()?;
        // The log records completed actions only: a filter on another result, a status code
        // or a request id selects nothing in it (refusals are in the runtime error groups).
        let unmatched = params.get("result_class").is_some_and(|c| c != "success")
            || params.get("status_code").is_some()
            || params.get("request_id").is_some();
        if let Some(code) = params.get("status_code") {
            code.parse::<u16>().map_err(|_| EngineError::InvalidQuery {
                param: "status_code".into(),
                message: "must be an HTTP status code".into(),
            })?;
        }
        if unmatched {
            return Ok((Vec::new(), None));
        }
        self.activity_page(&query).await
    }

    /// The usage ledger's page (`listUsageLedger`).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed parameter; storage failures.
    pub async fn usage_ledger(
        &self,
        params: &ReportParams,
    ) -> Result<(Vec<LedgerEntry>, Option<i64>), EngineError> {
        self.usage_ledger_page(&params.ledger_query()?).await
    }

    /// Runtime refusals grouped (`listRuntimeErrorGroups`): `{from, to, group_by, bucket,
    /// groups, total, truncated}`.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed parameter; storage failures.
    pub async fn runtime_error_report(&self, params: &ReportParams) -> Result<Value, EngineError> {
        let query = params.error_query()?;
        let report = self.store.runtime_error_groups(&query).await?;
        Ok(json!({
            "from": query.from,
            "to": query.to,
            "group_by": query.group_by,
            "bucket": query.bucket,
            "groups": report.groups,
            "total": report.total,
            "truncated": report.truncated,
        }))
    }

    /// Operational summary cards (`getOpsSummary`): usage, refusals by class, webhooks.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed parameter; storage failures.
    pub async fn ops_summary(&self, params: &ReportParams) -> Result<Value, EngineError> {
        let (from, to) = params.window()?;
        let filter = UsageFilter {
            from,
            to,
            product_id: params.id("product_id")?,
            customer_id: params.id("customer_id")?,
            license_id: params.id("license_id")?,
            ..UsageFilter::default()
        };
        let (usage, _) = self.usage_part(&filter, &[], Limit::new(Some(1))).await?;
        let errors = self
            .store
            .runtime_error_groups(&RuntimeErrorQuery {
                from,
                to,
                product_id: filter.product_id.clone(),
                customer_id: filter.customer_id.clone(),
                license_id: filter.license_id.clone(),
                group_by: vec![ErrorDimension::ResultClass],
                limit: Limit::MAX,
                ..RuntimeErrorQuery::default()
            })
            .await?;
        let by_class: BTreeMap<String, i64> = errors
            .groups
            .iter()
            .filter_map(|g| Some((g.result_class?.to_string(), g.count)))
            .collect();
        let webhooks = self.webhook_counts().await?;
        Ok(json!({
            "from": from,
            "to": to,
            "usage": usage["totals"],
            "runtime_errors": {"total": errors.total, "by_result_class": by_class},
            "webhooks": webhooks,
            "pending_touches": self.pending_touches(),
        }))
    }

    async fn webhook_counts(&self) -> Result<Value, EngineError> {
        let endpoints = self.list_webhooks(Limit::MAX).await?;
        let active = endpoints.iter().filter(|w| w.is_active).count();
        let failing = endpoints
            .iter()
            .filter(|w| w.failing_since.is_some())
            .count();
        Ok(json!({
            "endpoints": endpoints.len(),
            "active": active,
            "failing": failing,
            "pending_deliveries": self.pending_deliveries().await?,
        }))
    }

    /// Webhook queue and failure health (`getWebhookHealth`): counts, each endpoint's state,
    /// and the failed attempts in the window grouped by endpoint and status (read from each
    /// endpoint's newest `limit` deliveries).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed parameter; `NotFound` for an unknown `endpoint_id`;
    /// storage failures.
    pub async fn webhook_health(&self, params: &ReportParams) -> Result<Value, EngineError> {
        let (from, to) = params.window()?;
        let limit = params.limit()?;
        let endpoints = match params.get("endpoint_id") {
            Some(id) => vec![self.get_webhook(id).await?],
            None => self.list_webhooks(Limit::MAX).await?,
        };
        let mut failures: BTreeMap<(String, String), (i64, chrono::DateTime<chrono::Utc>)> =
            BTreeMap::new();
        for w in &endpoints {
            let page = self.list_deliveries(w.id.as_str(), None, limit).await?;
            for a in page.deliveries.iter().flat_map(|d| &d.attempts) {
                let in_window =
                    from.is_none_or(|f| a.started_at >= f) && to.is_none_or(|t| a.started_at < t);
                if !in_window || a.succeeded() {
                    continue;
                }
                let outcome = match (a.status_code, &a.error) {
                    (Some(code), _) => code.to_string(),
                    (None, Some(e)) => e.clone(),
                    (None, None) => "failed".into(),
                };
                let entry = failures
                    .entry((w.id.to_string(), outcome))
                    .or_insert((0, a.started_at));
                entry.0 += 1;
                entry.1 = entry.1.max(a.started_at);
            }
        }
        let mut groups: Vec<Value> = failures
            .into_iter()
            .map(|((endpoint_id, outcome), (count, last))| {
                json!({"endpoint_id": endpoint_id, "outcome": outcome, "count": count,
                       "last_attempt_at": last})
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g["count"].as_i64().unwrap_or(0)));
        let states: Vec<Value> = endpoints
            .iter()
            .map(|w| {
                json!({
                    "id": w.id, "name": w.name, "url": w.url, "is_active": w.is_active,
                    "last_delivery_at": w.last_delivery_at,
                    "last_delivery_status": w.last_delivery_status,
                    "last_status_code": w.last_status_code,
                    "failing_since": w.failing_since,
                })
            })
            .collect();
        Ok(json!({
            "from": from,
            "to": to,
            "summary": self.webhook_counts().await?,
            "endpoints": states,
            "failures": groups,
        }))
    }

    /// Creates an export, pending; a producer makes its file in the background
    /// ([`Self::produce_export`]). The filters are checked now, as the report reads them.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for filters the report does not accept; storage failures.
    pub async fn create_export(
        &self,
        actor: &Actor,
        req: ExportRequest,
    ) -> Result<ReportExport, EngineError> {
        let params = ReportParams::from_filters(&req.filters)?;
        check_params(req.report_kind, &params)?;
        let format = req.format.unwrap_or(ExportFormat::Json);
        let filters = params.to_filters();
        let digest = {
            let canonical = crate::crypto::canonical_json(&json!({
                "report_kind": req.report_kind, "format": format, "filters": filters,
            }))
            .map_err(EngineError::internal)?;
            hex_encode(&Sha256::digest(&canonical))
        };
        let now = self.now();
        let export = ReportExport {
            id: self.with_rng(|rng| ExportId::generate(rng)),
            report_kind: req.report_kind,
            format,
            status: ExportStatus::Pending,
            filters,
            digest,
            artifact_digest: String::new(),
            content_type: format.content_type().into(),
            created_by: actor.actor_id.clone(),
            created_at: now,
            updated_at: now,
            expires_at: now + EXPORT_RETENTION,
            error: None,
            attempts: 0,
        };
        self.store.insert_export(&export).await?;
        Ok(export)
    }

    /// An export's record; an expired one is gone.
    ///
    /// # Errors
    ///
    /// `NotFound`; storage failures.
    pub async fn get_export(&self, id: &str) -> Result<ReportExport, EngineError> {
        let id: ExportId = parse_id(id, "report_export")?;
        let export = self.store.get_export(&id).await?;
        if export.expires_at < self.now() {
            return Err(EngineError::NotFound {
                entity: "report_export",
            });
        }
        Ok(export)
    }

    /// An export's record and file.
    ///
    /// # Errors
    ///
    /// `NotFound` (also once expired); `Conflict` while it is pending or when it failed;
    /// storage failures.
    pub async fn export_file(&self, id: &str) -> Result<(ReportExport, Vec<u8>), EngineError> {
        let export = self.get_export(id).await?;
        match export.status {
            ExportStatus::Ready => {}
            ExportStatus::Failed => return Err(EngineError::Conflict("the export failed")),
            _ => return Err(EngineError::Conflict("the export is not ready yet")),
        }
        let content = self
            .store
            .export_content(&export.id)
            .await?
            .ok_or(EngineError::Conflict("the export is not ready yet"))?;
        Ok((export, content))
    }

    /// Claims the oldest pending export and computes its report, for the host to render
    /// (the server writes JSON, CSV or PDF) and hand to [`Self::finish_export`]. `None` when
    /// nothing is pending.
    ///
    /// # Errors
    ///
    /// Storage failures while claiming. A report that cannot be computed is returned as
    /// the `Err` of the pair, to be stored as the export's failure.
    pub async fn produce_export(
        &self,
    ) -> Result<Option<(ReportExport, Result<Report, String>)>, EngineError> {
        let now = self.now();
        let Some(export) = self.store.claim_export(now, now + EXPORT_LEASE).await? else {
            return Ok(None);
        };
        let report = self.export_report(&export).await.map_err(|e| match e {
            EngineError::InvalidQuery { param, message } => format!("{param} {message}"),
            EngineError::NotFound { entity } => format!("the {entity} no longer exists"),
            EngineError::Unavailable(_) => "storage was unavailable".into(),
            other => other.to_string(),
        });
        Ok(Some((export, report)))
    }

    async fn export_report(&self, export: &ReportExport) -> Result<Report, EngineError> {
        let params = ReportParams::from_filters(&export.filters)?;
        if export.report_kind != ReportKind::UsageLedger {
            return self.report(export.report_kind, &params).await;
        }
        // The ledger is exported whole (newest first, up to the cap), not one page.
        let mut query = params.ledger_query()?;
        query.limit = Limit::MAX;
        let mut entries = Vec::new();
        loop {
            let (page, next) = self.usage_ledger_page(&query).await?;
            entries.extend(page);
            match next {
                Some(c) if entries.len() < EXPORT_MAX_LEDGER_ROWS => query.before = Some(c),
                _ => break,
            }
        }
        entries.truncate(EXPORT_MAX_LEDGER_ROWS);
        Ok(Report {
            data: to_value(&entries)?,
            rows: rows_of(&entries),
        })
    }

    /// Stores a produced export: `Ok` with its file makes it ready, `Err` failed with the
    /// reason. Returns whether it was still pending.
    ///
    /// # Errors
    ///
    /// `NotFound`; storage failures.
    pub async fn finish_export(
        &self,
        id: &ExportId,
        outcome: Result<Vec<u8>, String>,
    ) -> Result<bool, EngineError> {
        let outcome = outcome.map(|content| ExportArtifact {
            digest: hex_encode(&Sha256::digest(&content)),
            content,
        });
        Ok(self.store.finish_export(id, outcome, self.now()).await?)
    }
}

/// Checks that `params` are what report `kind` reads (without reading the store).
fn check_params(kind: ReportKind, params: &ReportParams) -> Result<(), EngineError> {
    match kind {
        ReportKind::UsageSummary => params.usage_query(&[]).map(drop),
        ReportKind::UsageLedger => params.ledger_query().map(drop),
        ReportKind::LicenseAudit => {
            let id = required(params, "license_id")?;
            id.parse::<LicenseId>()
                .map_err(|_| EngineError::InvalidQuery {
                    param: "license_id".into(),
                    message: "must be a well-formed id".into(),
                })?;
            params.window().and(params.limit()).map(drop)
        }
        ReportKind::CustomerSummary => {
            required(params, "customer_id")?;
            params.window().and(params.limit()).map(drop)
        }
        ReportKind::SubscriptionSettlement => {
            if params.get("subscription_id").is_none() && params.get("order_id").is_none() {
                return Err(EngineError::InvalidQuery {
                    param: "subscription_id".into(),
                    message: "subscription_id or order_id is required".into(),
                });
            }
            params.usage_query(&[UsageDimension::Feature]).map(drop)
        }
    }
}
