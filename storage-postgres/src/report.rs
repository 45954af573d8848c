//! [`ReportStore`]: every report computed in the database (migration 0006). Grouping,
//! ordering and filters are those of core's reference readings
//! ([`UsageQuery::summarize`](licentia_core::store::UsageQuery::summarize),
//! [`RuntimeErrorQuery::group`](licentia_core::store::RuntimeErrorQuery::group)), which the
//! conformance suite holds this backend to. Only the filters a query sets reach the SQL, so
//! each statement can use the index for them. Grouped text is selected `COLLATE "C"`, so it
//! sorts by bytes, as in Rust.

use chrono::{DateTime, Utc};
use licentia_core::model::{
    ConsumptionRecord, ErrorDimension, ExportId, LedgerAction, ReportExport, RuntimeErrorCount,
    RuntimeErrorGroup, UsageDimension, UsageGroup, UsageRow, UsageTotals,
};
use licentia_core::store::{
    ActivityQuery, EventPage, ExportArtifact, LedgerPage, LedgerQuery, Limit, ReportStore,
    RuntimeErrorQuery, RuntimeErrorReport, StoreError, StoreResult, UsageFilter, UsageQuery,
    UsageSummary,
};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

use crate::PostgresStore;
use crate::error::map;
use crate::events::{EventRow, event_from_row};

/// `AND column = value`, or, for the page's leading column, `AND column >= value AND column
/// <= value`: the same rows, but the planner does not treat the column as a constant, so an
/// `ORDER BY column, sequence DESC` walks the `(column, sequence)` index. (With `=` it drops
/// the column from the order and may scan the whole sequence index backwards past every
/// other product's rows: 100 ms instead of 0.1 ms on a million rows.)
fn push_exact(q: &mut QueryBuilder<Postgres>, column: &str, value: String, leading: bool) {
    if leading {
        q.push(format_args!(" AND {column} >= "))
            .push_bind(value.clone())
            .push(format_args!(" AND {column} <= "))
            .push_bind(value);
    } else {
        q.push(format_args!(" AND {column} = ")).push_bind(value);
    }
}

/// The column a filtered page leads its order with: the most selective one filtered on.
fn leading_column(candidates: &[(&'static str, bool)]) -> Option<&'static str> {
    candidates
        .iter()
        .find_map(|&(column, set)| set.then_some(column))
}

/// `ORDER BY [leading,] sequence DESC LIMIT limit + 1` (one more than the page, to know
/// whether another follows: [`split_page`]).
fn push_newest_first(q: &mut QueryBuilder<Postgres>, leading: Option<&str>, limit: Limit) {
    match leading {
        Some(column) => q.push(format_args!(" ORDER BY {column}, sequence DESC LIMIT ")),
        None => q.push(" ORDER BY sequence DESC LIMIT "),
    };
    q.push_bind(i64::from(limit.get()) + 1);
}

/// The first `limit` of `rows` (fetched with one more), and whether more matched.
fn split_page<T>(mut rows: Vec<T>, limit: Limit) -> (Vec<T>, bool) {
    let more = rows.len() > limit.as_usize();
    rows.truncate(limit.as_usize());
    (rows, more)
}

/// `WHERE` for a usage filter (always starts the clause, so callers may push `AND …`).
fn push_usage_filter(q: &mut QueryBuilder<Postgres>, f: &UsageFilter) {
    push_usage_filter_leading(q, f, None);
}

fn push_usage_filter_leading(
    q: &mut QueryBuilder<Postgres>,
    f: &UsageFilter,
    leading: Option<&str>,
) {
    let exact = [
        ("product_id", f.product_id.as_ref().map(|v| v.to_string())),
        ("customer_id", f.customer_id.as_ref().map(|v| v.to_string())),
        ("license_id", f.license_id.as_ref().map(|v| v.to_string())),
        ("order_id", f.order_id.as_ref().map(|v| v.to_string())),
        (
            "subscription_id",
            f.subscription_id.as_ref().map(|v| v.to_string()),
        ),
        (
            "feature_code",
            f.feature_code.as_ref().map(|v| v.to_string()),
        ),
    ];
    push_where(q, "recorded_at", (f.from, f.to), exact, leading);
    match f.action {
        Some(LedgerAction::Credit) => q.push(" AND amount < 0"),
        Some(_) => q.push(" AND amount >= 0"),
        None => q,
    };
}

/// Seconds of a bucket length, for `date_bin` (aligned to the Unix epoch, as in core).
fn interval_secs(length: chrono::TimeDelta) -> f64 {
    length.num_seconds() as f64
}

type SumsRow = (Option<i64>, Option<i64>, Option<i64>, i64);

fn totals_of((units, consumed, credited, events): SumsRow) -> UsageTotals {
    UsageTotals {
        units: units.unwrap_or(0),
        consumed: consumed.unwrap_or(0),
        credited: credited.unwrap_or(0),
        events,
    }
}

const SUMS: &str = "sum(amount)::bigint, \
    coalesce(sum(amount) FILTER (WHERE amount >= 0), 0)::bigint, \
    coalesce(-sum(amount) FILTER (WHERE amount < 0), 0)::bigint, \
    count(*)";

type UsageGroupRow = (
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

type LedgerRow = (i64, Json<ConsumptionRecord>);

type ErrorGroupRow = (
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

impl ReportStore for PostgresStore {
    async fn usage_summary(&self, query: &UsageQuery) -> StoreResult<UsageSummary> {
        let mut conn = self.conn_read().await?;
        let mut q = QueryBuilder::<Postgres>::new("SELECT ");
        match query.bucket {
            Some(b) => q
                .push("date_bin(make_interval(secs => ")
                .push_bind(interval_secs(b.length()))
                .push("), recorded_at, TIMESTAMPTZ '1970-01-01 00:00:00+00')"),
            None => q.push("NULL::timestamptz"),
        };
        for d in UsageDimension::ALL {
            if query.group_by.contains(d) {
                // The dimensions' wire names are the columns' names.
                q.push(format_args!(", {} COLLATE \"C\"", d.as_str()));
            } else {
                q.push(", NULL::text");
            }
        }
        q.push(", ").push(SUMS).push(" FROM consumptions");
        push_usage_filter(&mut q, &query.filter);
        q.push(
            " GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1 ASC NULLS FIRST, 8 DESC, \
             2 NULLS FIRST, 3 NULLS FIRST, 4 NULLS FIRST, 5 NULLS FIRST, 6 NULLS FIRST, \
             7 NULLS FIRST LIMIT ",
        )
        .push_bind(i64::from(query.limit.get()) + 1);
        let rows: Vec<UsageGroupRow> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(map)?;
        let (rows, truncated) = split_page(rows, query.limit);
        let groups = rows
            .into_iter()
            .map(|r| {
                let t = totals_of((r.7, r.8, r.9, r.10));
                UsageGroup {
                    bucket_start: r.0,
                    product_id: r.1,
                    customer_id: r.2,
                    license_id: r.3,
                    order_id: r.4,
                    subscription_id: r.5,
                    feature_code: r.6,
                    units: t.units,
                    consumed: t.consumed,
                    credited: t.credited,
                    events: t.events,
                }
            })
            .collect();

        let mut q = QueryBuilder::<Postgres>::new("SELECT ");
        q.push(SUMS).push(" FROM consumptions");
        push_usage_filter(&mut q, &query.filter);
        let sums: SumsRow = q
            .build_query_as()
            .fetch_one(&mut *conn)
            .await
            .map_err(map)?;
        Ok(UsageSummary {
            groups,
            truncated,
            totals: totals_of(sums),
        })
    }

    async fn usage_ledger(&self, query: &LedgerQuery) -> StoreResult<LedgerPage> {
        let mut conn = self.conn_read().await?;
        let f = &query.filter;
        let leading = leading_column(&[
            ("license_id", f.license_id.is_some()),
            ("subscription_id", f.subscription_id.is_some()),
            ("order_id", f.order_id.is_some()),
            ("customer_id", f.customer_id.is_some()),
            ("product_id", f.product_id.is_some()),
        ]);
        let mut q = QueryBuilder::<Postgres>::new("SELECT sequence, body FROM consumptions");
        push_usage_filter_leading(&mut q, f, leading);
        if let Some(before) = query.before {
            q.push(" AND sequence < ").push_bind(before);
        }
        push_newest_first(&mut q, leading, query.limit);
        let rows: Vec<LedgerRow> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(map)?;
        let (rows, more) = split_page(rows, query.limit);
        let rows: Vec<UsageRow> = rows
            .into_iter()
            .map(|(sequence, Json(record))| UsageRow { sequence, record })
            .collect();
        let next_cursor = more.then(|| rows.last().map(|r| r.sequence)).flatten();
        Ok(LedgerPage { rows, next_cursor })
    }

    async fn list_activities(&self, query: &ActivityQuery) -> StoreResult<EventPage> {
        let mut conn = self.conn_read().await?;
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT sequence, event_type, actor_type, actor_id, resource_type, resource_id, \
                    metadata, ip_address, created_at FROM events WHERE true",
        );
        if let Some(before) = query.before {
            q.push(" AND sequence < ").push_bind(before);
        }
        if let Some(from) = query.from {
            q.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = query.to {
            q.push(" AND created_at < ").push_bind(to);
        }
        if let Some(a) = &query.action {
            q.push(" AND event_type = ").push_bind(a.clone());
        }
        if let Some(s) = query.source {
            q.push(" AND actor_type = ").push_bind(s.as_str());
        }
        let leading = leading_column(&[
            ("subject_license", query.license_id.is_some()),
            ("subject_customer", query.customer_id.is_some()),
            ("subject_product", query.product_id.is_some()),
        ]);
        let stored = [
            ("subject_product", &query.product_id),
            ("subject_customer", &query.customer_id),
            ("subject_license", &query.license_id),
        ];
        for (column, value) in stored {
            if let Some(v) = value {
                push_exact(&mut q, column, v.clone(), leading == Some(column));
            }
        }
        // Rarer filters read the metadata (as ActivityQuery::subject does).
        let in_metadata = [
            ("order_id", "order", &query.order_id),
            ("subscription_id", "subscription", &query.subscription_id),
        ];
        for (key, resource, value) in in_metadata {
            if let Some(v) = value {
                q.push(format_args!(
                    " AND (CASE WHEN jsonb_typeof(metadata->'{key}') = 'string' \
                     THEN metadata->>'{key}' WHEN resource_type = '{resource}' \
                     THEN resource_id END) = "
                ))
                .push_bind(v.clone());
            }
        }
        if let Some(v) = &query.feature_code {
            q.push(" AND jsonb_typeof(metadata->'feature_code') = 'string' AND metadata->>'feature_code' = ")
                .push_bind(v.clone());
        }
        push_newest_first(&mut q, leading, query.limit);
        let rows: Vec<EventRow> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(map)?;
        let (rows, more) = split_page(rows, query.limit);
        let events = rows
            .into_iter()
            .map(event_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = more.then(|| events.last().map(|e| e.sequence)).flatten();
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    async fn record_runtime_errors(&self, counts: Vec<RuntimeErrorCount>) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        // One statement per batch; a key repeated in the batch is summed first (ON CONFLICT
        // may not touch a row twice in one statement).
        let mut summed: std::collections::HashMap<_, i64> = std::collections::HashMap::new();
        for c in counts {
            *summed.entry(c.key).or_default() += c.count;
        }
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO runtime_error_counts (bucket_start, endpoint, reason_code, result_class, \
             license_id, product_id, customer_id, app_version, count) ",
        );
        q.push_values(summed, |mut b, (k, count)| {
            b.push_bind(k.bucket_start)
                .push_bind(k.endpoint.as_str())
                .push_bind(k.reason_code)
                .push_bind(k.result_class.as_str())
                .push_bind(k.license_id.map(|v| v.to_string()))
                .push_bind(k.product_id.map(|v| v.to_string()))
                .push_bind(k.customer_id.map(|v| v.to_string()))
                .push_bind(k.app_version)
                .push_bind(count);
        });
        q.push(
            " ON CONFLICT ON CONSTRAINT runtime_error_counts_key \
             DO UPDATE SET count = runtime_error_counts.count + EXCLUDED.count",
        );
        q.build().execute(&mut *conn).await.map_err(map)?;
        Ok(())
    }

    async fn runtime_error_groups(
        &self,
        query: &RuntimeErrorQuery,
    ) -> StoreResult<RuntimeErrorReport> {
        let mut conn = self.conn_read().await?;
        let has = |d| query.group_by.contains(&d);
        let mut q = QueryBuilder::<Postgres>::new("SELECT ");
        if has(ErrorDimension::Time) {
            q.push("date_bin(make_interval(secs => ")
                .push_bind(interval_secs(query.bucket.length()))
                .push("), bucket_start, TIMESTAMPTZ '1970-01-01 00:00:00+00')");
        } else {
            q.push("NULL::timestamptz");
        }
        for (d, column) in [
            (ErrorDimension::Endpoint, "endpoint"),
            (ErrorDimension::ReasonCode, "reason_code"),
            (ErrorDimension::ResultClass, "result_class"),
        ] {
            if has(d) {
                q.push(format_args!(", {column} COLLATE \"C\""));
            } else {
                q.push(", NULL::text");
            }
        }
        q.push(", sum(count)::bigint FROM runtime_error_counts");
        push_error_filter(&mut q, query);
        q.push(
            " GROUP BY 1, 2, 3, 4 ORDER BY 1 ASC NULLS FIRST, 5 DESC, \
             2 NULLS FIRST, 3 NULLS FIRST, 4 NULLS FIRST LIMIT ",
        )
        .push_bind(i64::from(query.limit.get()) + 1);
        let rows: Vec<ErrorGroupRow> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(map)?;
        let (rows, truncated) = split_page(rows, query.limit);
        let groups = rows
            .into_iter()
            .map(
                |(bucket_start, endpoint, reason_code, result_class, count)| RuntimeErrorGroup {
                    bucket_start,
                    endpoint: endpoint.and_then(|e| e.parse().ok()),
                    reason_code,
                    result_class: result_class.and_then(|r| r.parse().ok()),
                    count,
                },
            )
            .collect();
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT coalesce(sum(count), 0)::bigint FROM runtime_error_counts",
        );
        push_error_filter(&mut q, query);
        let (total,): (i64,) = q
            .build_query_as()
            .fetch_one(&mut *conn)
            .await
            .map_err(map)?;
        Ok(RuntimeErrorReport {
            groups,
            truncated,
            total,
        })
    }

    async fn purge_runtime_errors(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let done = sqlx::query("DELETE FROM runtime_error_counts WHERE bucket_start < $1")
            .bind(before)
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn insert_export(&self, export: &ReportExport) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        sqlx::query(
            "INSERT INTO report_exports (id, status, created_at, expires_at, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(export.id.as_str())
        .bind(export.status.as_str())
        .bind(export.created_at)
        .bind(export.expires_at)
        .bind(Json(export))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn get_export(&self, id: &ExportId) -> StoreResult<ReportExport> {
        let mut conn = self.conn_read().await?;
        let row: Option<(Json<ReportExport>,)> =
            sqlx::query_as("SELECT body FROM report_exports WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map)?;
        row.map(|(Json(e),)| e)
            .ok_or(StoreError::not_found("report_export"))
    }

    async fn export_content(&self, id: &ExportId) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn_read().await?;
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT content FROM report_exports WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map)?;
        row.map(|(c,)| c)
            .ok_or(StoreError::not_found("report_export"))
    }

    async fn claim_export(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ReportExport>> {
        let mut conn = self.conn().await?;
        let row: Option<(Json<ReportExport>,)> = sqlx::query_as(
            "WITH picked AS ( \
                 SELECT id FROM report_exports \
                 WHERE status = 'pending' AND (leased_until IS NULL OR leased_until <= $1) \
                 ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE report_exports e SET leased_until = $2, \
                 body = jsonb_set(e.body, '{attempts}', \
                     to_jsonb(coalesce((e.body->>'attempts')::int, 0) + 1)) \
             FROM picked p WHERE e.id = p.id RETURNING e.body",
        )
        .bind(now)
        .bind(lease_until)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
        Ok(row.map(|(Json(e),)| e))
    }

    async fn finish_export(
        &self,
        id: &ExportId,
        outcome: Result<ExportArtifact, String>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let row: Option<(Json<ReportExport>,)> =
            sqlx::query_as("SELECT body FROM report_exports WHERE id = $1 FOR UPDATE")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let Some((Json(mut export),)) = row else {
            return Err(StoreError::not_found("report_export"));
        };
        if export.status != licentia_core::model::ExportStatus::Pending {
            return Ok(false);
        }
        let content = match outcome {
            Ok(artifact) => {
                export.status = licentia_core::model::ExportStatus::Ready;
                export.artifact_digest = artifact.digest;
                Some(artifact.content)
            }
            Err(reason) => {
                export.status = licentia_core::model::ExportStatus::Failed;
                export.error = Some(reason);
                None
            }
        };
        export.updated_at = now;
        sqlx::query(
            "UPDATE report_exports SET status = $2, body = $3, content = $4, leased_until = NULL \
             WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(export.status.as_str())
        .bind(Json(&export))
        .bind(content)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn purge_exports(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let done = sqlx::query("DELETE FROM report_exports WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }
}

fn push_error_filter(q: &mut QueryBuilder<Postgres>, f: &RuntimeErrorQuery) {
    let exact = [
        ("product_id", f.product_id.as_ref().map(|v| v.to_string())),
        ("customer_id", f.customer_id.as_ref().map(|v| v.to_string())),
        ("license_id", f.license_id.as_ref().map(|v| v.to_string())),
        ("app_version", f.app_version.clone()),
        ("endpoint", f.endpoint.map(|e| e.as_str().to_owned())),
    ];
    push_where(q, "bucket_start", (f.from, f.to), exact, None);
}

/// ` WHERE true`, the time window on `time_column` (`from` inclusive, `to` exclusive) and an
/// exact match for every value given (callers may push `AND …` after it).
fn push_where<const N: usize>(
    q: &mut QueryBuilder<Postgres>,
    time_column: &str,
    (from, to): licentia_core::engine::Window,
    exact: [(&str, Option<String>); N],
    leading: Option<&str>,
) {
    q.push(" WHERE true");
    if let Some(from) = from {
        q.push(format_args!(" AND {time_column} >= "))
            .push_bind(from);
    }
    if let Some(to) = to {
        q.push(format_args!(" AND {time_column} < ")).push_bind(to);
    }
    for (column, value) in exact {
        if let Some(v) = value {
            push_exact(q, column, v, leading == Some(column));
        }
    }
}
