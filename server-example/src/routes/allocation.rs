//! Pools and reseller contracts (extensions): `POST /api/v1/pools/{pool}/assign` and
//! `/api/v1/contracts…`. Both writes require an Idempotency-Key, as bulk creation does.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{delete, get, post};
use licentia_core::engine::ManagementCall;
use licentia_core::model::{ContractCreate, ContractLicensesCreate, PoolAssign};
use licentia_core::store::{LicenseQuery, Limit, Store};
use serde::Deserialize;

use super::licenses::created_keys;
use super::{ListQuery, created, no_content, ok, stored};
use crate::auth::Auth;
use crate::auth::scope::{LicenseRead, LicenseWrite};
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route("/api/v1/pools/{pool}/assign", post(assign::<S>))
        .route(
            "/api/v1/contracts",
            get(list_contracts::<S>).post(create_contract::<S>),
        )
        .route("/api/v1/contracts/{id}", get(get_contract::<S>))
        .route(
            "/api/v1/contracts/{id}/licenses",
            get(list_licenses::<S>).post(create_licenses::<S>),
        )
        .route(
            "/api/v1/contracts/{id}/licenses/{license_id}",
            delete(revoke_license::<S>),
        )
}

async fn assign<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    key: IdempotencyKey,
    rid: RequestId,
    Path(pool): Path<String>,
    Json(body): Json<PoolAssign>,
) -> R {
    let call = ManagementCall {
        idempotency_key: Some(&key.0),
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .assign_pool(&auth.actor, call, &pool, body)
        .await?;
    Ok(stored(r.body, r.replayed))
}

async fn create_contract<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Json(body): Json<ContractCreate>,
) -> R {
    created(
        &rid,
        &app.engine().create_contract(&auth.actor, body).await?,
    )
}

#[derive(Debug, Deserialize)]
struct ContractListQuery {
    #[serde(default, deserialize_with = "super::positive_limit")]
    limit: Option<i64>,
    customer_id: Option<String>,
}

async fn list_contracts<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Query(q): Query<ContractListQuery>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .list_contracts(q.customer_id.as_deref(), Limit::new(q.limit))
            .await?,
    )
}

async fn get_contract<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_contract(&id).await?)
}

async fn list_licenses<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    let contract = app.engine().get_contract(&id).await?;
    let query = LicenseQuery {
        contract_id: Some(contract.id),
        limit: q.limit(),
        ..LicenseQuery::default()
    };
    ok(&rid, &app.engine().list_licenses(query, None).await?)
}

async fn create_licenses<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    key: IdempotencyKey,
    rid: RequestId,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ContractLicensesCreate>,
) -> R {
    let call = ManagementCall {
        idempotency_key: Some(&key.0),
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .create_contract_licenses(&auth.actor, call, &id, body)
        .await?;
    created_keys(r, &headers)
}

async fn revoke_license<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    Path((id, license)): Path<(String, String)>,
) -> R {
    app.engine()
        .revoke_contract_license(&auth.actor, &id, &license)
        .await?;
    no_content()
}
