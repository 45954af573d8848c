//! Licenses: create, read, list, lifecycle, devices, feature assignments and usage.

use std::str::FromStr;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use licentia_core::engine::requests::LicenseCreate;
use licentia_core::engine::{BulkLicenseCreate, ManagementCall, ResponseBody};
use licentia_core::model::{
    FeatureAssignRequest, LicenseStatus, RenewRequest, TelemetryId, TransferRequest,
    UsageResetRequest,
};
use licentia_core::store::{LicenseQuery, Limit, Store};
use serde::{Deserialize, Serialize};

use super::{ListQuery, no_content, ok, paged, stored};
use crate::auth::Auth;
use crate::auth::scope::{DeviceWrite, LicenseRead, LicenseWrite};
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route(
            "/api/v1/licenses",
            get(list_licenses::<S>).post(create_license::<S>),
        )
        .route("/api/v1/licenses/bulk", post(create_licenses::<S>))
        .route("/api/v1/licenses/{id}", get(get_license::<S>))
        .route("/api/v1/licenses/{id}/renew", post(renew::<S>))
        .route("/api/v1/licenses/{id}/transfer", post(transfer::<S>))
        .route("/api/v1/licenses/{id}/suspend", post(suspend::<S>))
        .route("/api/v1/licenses/{id}/reinstate", post(reinstate::<S>))
        .route("/api/v1/licenses/{id}/revoke", post(revoke::<S>))
        .route("/api/v1/licenses/{id}/devices", get(list_devices::<S>))
        .route("/api/v1/licenses/{id}/leases", get(list_leases::<S>))
        .route("/api/v1/licenses/{id}/telemetry", get(list_telemetry::<S>))
        .route(
            "/api/v1/licenses/{id}/devices/{device_id}",
            get(get_device::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/devices/{device_id}/reset",
            post(reset_device::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/devices/{device_id}/blacklist",
            post(blacklist_device::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/features",
            get(list_features::<S>).post(assign_feature::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/features/{feature_id}",
            delete(remove_feature::<S>),
        )
        .route("/api/v1/licenses/{id}/usage/reset", post(reset_usage::<S>))
}

#[derive(Debug, Deserialize)]
struct LicenseListQuery {
    #[serde(default, deserialize_with = "super::positive_limit")]
    limit: Option<i64>,
    product_id: Option<String>,
    policy_id: Option<String>,
    customer_id: Option<String>,
    status: Option<LicenseStatus>,
    order_id: Option<String>,
    subscription_id: Option<String>,
    expires_before: Option<DateTime<Utc>>,
    expires_after: Option<DateTime<Utc>>,
    /// Extension: the key's prefix or last four characters, as shown.
    key: Option<String>,
    /// Extension: waiting unassigned in this pool.
    pool: Option<String>,
    /// Extension: issued under this reseller contract.
    contract_id: Option<String>,
}

/// A filter id; `Err` when it is malformed (so nothing can match it).
fn filter_id<T: FromStr>(raw: Option<String>) -> Result<Option<T>, ()> {
    raw.map(|r| r.parse().map_err(|_| ())).transpose()
}

async fn list_licenses<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Query(q): Query<LicenseListQuery>,
) -> R {
    let query = (|| {
        Ok::<_, ()>(LicenseQuery {
            product_id: filter_id(q.product_id)?,
            policy_id: filter_id(q.policy_id)?,
            customer_id: filter_id(q.customer_id)?,
            order_id: filter_id(q.order_id)?,
            subscription_id: filter_id(q.subscription_id)?,
            expires_before: q.expires_before,
            expires_after: q.expires_after,
            key_hint: q.key.filter(|k| !k.is_empty()),
            pool: filter_id(q.pool)?,
            contract_id: filter_id(q.contract_id)?,
            limit: Limit::new(q.limit),
            ..LicenseQuery::default()
        })
    })();
    let Ok(query) = query else {
        // A malformed id names no license.
        return ok(&rid, &Vec::<()>::new());
    };
    ok(&rid, &app.engine().list_licenses(query, q.status).await?)
}

/// With an `Idempotency-Key` (an extension), a repeat answers the first call's bytes.
async fn create_license<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    key: Option<IdempotencyKey>,
    rid: RequestId,
    Json(body): Json<LicenseCreate>,
) -> R {
    let call = ManagementCall {
        idempotency_key: key.as_ref().map(|k| k.0.as_str()),
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .create_license_once(&auth.actor, call, body)
        .await?;
    Ok(created_bytes(r))
}

/// Extension: up to 1000 licenses alike, all or none; the Idempotency-Key is required.
/// With `Accept: text/csv`, the keys as a sheet ([`key_sheet`](crate::key_sheet)).
async fn create_licenses<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    key: IdempotencyKey,
    rid: RequestId,
    headers: HeaderMap,
    Json(body): Json<BulkLicenseCreate>,
) -> R {
    let call = ManagementCall {
        idempotency_key: Some(&key.0),
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .create_licenses(&auth.actor, call, body)
        .await?;
    created_keys(r, &headers)
}

/// 201 with the engine's bytes (marked when replayed).
fn created_bytes(r: ResponseBody) -> Response {
    let mut res = stored(r.body, r.replayed);
    *res.status_mut() = axum::http::StatusCode::CREATED;
    res
}

/// [`created_bytes`] of new licenses, as a key sheet when the request `Accept`s `text/csv`.
pub(super) fn created_keys(r: ResponseBody, headers: &HeaderMap) -> R {
    if !crate::key_sheet::wanted(headers) {
        return Ok(created_bytes(r));
    }
    let body = r.body.clone();
    crate::key_sheet::respond(created_bytes(r), &body)
}

async fn get_license<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_license(&id).await?)
}

async fn renew<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    key: IdempotencyKey,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<RenewRequest>,
) -> R {
    let call = ManagementCall {
        idempotency_key: Some(&key.0),
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .renew_license(&auth.actor, call, &id, &body)
        .await?;
    Ok(stored(r.body, r.replayed))
}

async fn transfer<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    key: IdempotencyKey,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<TransferRequest>,
) -> R {
    let call = ManagementCall {
        idempotency_key: Some(&key.0),
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .transfer_license(&auth.actor, call, &id, &body)
        .await?;
    Ok(stored(r.body, r.replayed))
}

async fn suspend<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().suspend_license(&auth.actor, &id).await?)
}

async fn reinstate<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(
        &rid,
        &app.engine().reinstate_license(&auth.actor, &id).await?,
    )
}

async fn revoke<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().revoke_license(&auth.actor, &id).await?)
}

async fn list_devices<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_devices(&id, q.limit()).await?)
}

/// A floating lease as management sees it: everything but the token's hash.
#[derive(Serialize)]
struct LeaseView<'a> {
    id: &'a str,
    device_id: &'a str,
    binding_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_code: Option<&'a str>,
    checked_out_at: DateTime<Utc>,
    last_heartbeat_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Extension: the floating leases holding a seat now.
async fn list_leases<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    let leases = app.engine().list_leases(&id).await?;
    let views: Vec<LeaseView<'_>> = leases
        .iter()
        .map(|l| LeaseView {
            id: l.id.as_str(),
            device_id: l.device_id.as_str(),
            binding_key: &l.binding_key,
            app_version: l.app_version.as_deref(),
            feature_code: l.feature_code.as_ref().map(|c| c.as_str()),
            checked_out_at: l.checked_out_at,
            last_heartbeat_at: l.last_heartbeat_at,
            expires_at: l.expires_at,
        })
        .collect();
    ok(&rid, &views)
}

#[derive(Debug, Deserialize)]
struct TelemetryQuery {
    cursor: Option<TelemetryId>,
    #[serde(default, deserialize_with = "super::positive_limit")]
    limit: Option<i64>,
}

/// Extension: the telemetry the license's devices sent, newest first; `cursor` is the
/// previous page's `next_cursor`.
async fn list_telemetry<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<TelemetryQuery>,
) -> R {
    let page = app
        .engine()
        .list_telemetry(&id, q.cursor, Limit::new(q.limit))
        .await?;
    paged(&rid, &page.records, page.next_cursor)
}

async fn get_device<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path((id, device)): Path<(String, String)>,
) -> R {
    ok(&rid, &app.engine().get_device(&id, &device).await?)
}

async fn reset_device<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    rid: RequestId,
    Path((id, device)): Path<(String, String)>,
) -> R {
    ok(
        &rid,
        &app.engine().reset_device(&auth.actor, &id, &device).await?,
    )
}

async fn blacklist_device<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    rid: RequestId,
    Path((id, device)): Path<(String, String)>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .blacklist_device(&auth.actor, &id, &device)
            .await?,
    )
}

async fn list_features<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(
        &rid,
        &app.engine().list_license_features(&id, q.limit()).await?,
    )
}

/// 200 (the contract's status: an assignment is written, created or updated).
async fn assign_feature<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<FeatureAssignRequest>,
) -> R {
    ok(
        &rid,
        &app.engine().assign_feature(&auth.actor, &id, &body).await?,
    )
}

async fn remove_feature<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    Path((id, feature)): Path<(String, String)>,
) -> R {
    app.engine()
        .remove_feature(&auth.actor, &id, &feature)
        .await?;
    no_content()
}

async fn reset_usage<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<UsageResetRequest>,
) -> R {
    ok(
        &rid,
        &app.engine().reset_usage(&auth.actor, &id, &body).await?,
    )
}
