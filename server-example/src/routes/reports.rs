//! The published SDK's reporting and ops operations (an extension): the activity feed,
//! usage reports, report exports, and the operational views. Every answer is the engine's;
//! these handlers only read the query string and shape the envelope.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use licentia_core::engine::{ExportRequest, ReportParams};
use licentia_core::model::{ExportFormat, Metadata, ReportKind};
use licentia_core::store::Store;
use serde::Deserialize;

use super::{created, ok, paged};
use crate::auth::Auth;
use crate::auth::scope::{OpsRead, ReportExport, ReportRead};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route("/api/v1/activities", get(list_activities::<S>))
        .route("/api/v1/reports/usage-summary", get(usage_summary::<S>))
        .route("/api/v1/reports/usage-ledger", get(usage_ledger::<S>))
        .route("/api/v1/reports/license-audit", get(license_audit::<S>))
        .route(
            "/api/v1/reports/customer-summary",
            get(customer_summary::<S>),
        )
        .route(
            "/api/v1/reports/subscription-settlement",
            get(subscription_settlement::<S>),
        )
        .route("/api/v1/reports/exports", post(create_export::<S>))
        .route("/api/v1/reports/exports/{id}", get(get_export::<S>))
        .route(
            "/api/v1/reports/exports/{id}/download",
            get(download_export::<S>),
        )
        .route("/api/v1/ops/summary", get(ops_summary::<S>))
        .route("/api/v1/ops/runtime-errors", get(runtime_errors::<S>))
        .route("/api/v1/ops/webhook-health", get(webhook_health::<S>))
}

/// The query string as report parameters.
type Params = Query<Vec<(String, String)>>;

fn params(Query(pairs): Params) -> ReportParams {
    ReportParams::from_pairs(pairs)
}

async fn list_activities<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportRead>,
    rid: RequestId,
    q: Params,
) -> R {
    let (activities, next) = app.engine().activities(&params(q)).await?;
    paged(&rid, &activities, next)
}

async fn report<S: Store + 'static>(
    app: &App<S>,
    rid: &RequestId,
    kind: ReportKind,
    q: Params,
) -> R {
    let report = app.engine().report(kind, &params(q)).await?;
    ok(rid, &report.data)
}

async fn usage_summary<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportRead>,
    rid: RequestId,
    q: Params,
) -> R {
    report(&app, &rid, ReportKind::UsageSummary, q).await
}

async fn usage_ledger<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportRead>,
    rid: RequestId,
    q: Params,
) -> R {
    let (entries, next) = app.engine().usage_ledger(&params(q)).await?;
    paged(&rid, &entries, next)
}

async fn license_audit<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportRead>,
    rid: RequestId,
    q: Params,
) -> R {
    report(&app, &rid, ReportKind::LicenseAudit, q).await
}

async fn customer_summary<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportRead>,
    rid: RequestId,
    q: Params,
) -> R {
    report(&app, &rid, ReportKind::CustomerSummary, q).await
}

async fn subscription_settlement<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportRead>,
    rid: RequestId,
    q: Params,
) -> R {
    report(&app, &rid, ReportKind::SubscriptionSettlement, q).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    report_kind: ReportKind,
    #[serde(default)]
    format: Option<ExportFormat>,
    #[serde(default)]
    filters: Metadata,
}

async fn create_export<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ReportExport>,
    rid: RequestId,
    Json(body): Json<ExportBody>,
) -> R {
    let req = ExportRequest {
        report_kind: body.report_kind,
        format: body.format,
        filters: body.filters,
    };
    let export = app.engine().create_export(&auth.actor, req).await?;
    app.exports_pending();
    created(&rid, &with_url(export))
}

/// The export's metadata with its `download_url` (the contract's required field).
fn with_url(export: licentia_core::model::ReportExport) -> serde_json::Value {
    let url = format!("/api/v1/reports/exports/{}/download", export.id);
    let mut v = serde_json::to_value(&export).unwrap_or_default();
    v["download_url"] = serde_json::Value::String(url);
    v
}

async fn get_export<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportExport>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    let export = app.engine().get_export(&id).await?;
    ok(&rid, &with_url(export))
}

async fn download_export<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ReportExport>,
    Path(id): Path<String>,
) -> R {
    let (export, content) = app.engine().export_file(&id).await?;
    let extension = export.format.as_str();
    let disposition = format!("attachment; filename=\"{}.{extension}\"", export.id);
    let mut response = (StatusCode::OK, content).into_response();
    let headers = response.headers_mut();
    let values = [
        (header::CONTENT_TYPE, export.content_type.clone()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::ETAG, format!("\"{}\"", export.artifact_digest)),
    ];
    for (name, value) in values {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok(response)
}

async fn ops_summary<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<OpsRead>,
    rid: RequestId,
    q: Params,
) -> R {
    ok(&rid, &app.engine().ops_summary(&params(q)).await?)
}

async fn runtime_errors<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<OpsRead>,
    rid: RequestId,
    q: Params,
) -> R {
    ok(&rid, &app.engine().runtime_error_report(&params(q)).await?)
}

async fn webhook_health<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<OpsRead>,
    rid: RequestId,
    q: Params,
) -> R {
    ok(&rid, &app.engine().webhook_health(&params(q)).await?)
}
