//! Products, product versions, policies and features.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use licentia_core::engine::requests::{FeatureCreate, ProductCreate, ProductUpdate, VersionCreate};
use licentia_core::model::PolicyDraft;
use licentia_core::store::Store;

use super::{ListQuery, created, no_content, ok};
use crate::auth::Auth;
use crate::auth::scope::{ProductRead, ProductWrite};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route(
            "/api/v1/products",
            get(list_products::<S>).post(create_product::<S>),
        )
        .route(
            "/api/v1/products/{id}",
            get(get_product::<S>)
                .patch(update_product::<S>)
                .delete(delete_product::<S>),
        )
        .route(
            "/api/v1/products/{id}/versions",
            get(list_versions::<S>).post(create_version::<S>),
        )
        .route(
            "/api/v1/products/{id}/policies",
            get(list_policies::<S>).post(create_policy::<S>),
        )
        .route(
            "/api/v1/products/{id}/features",
            get(list_features::<S>).post(create_feature::<S>),
        )
        .route(
            "/api/v1/policies/{id}",
            get(get_policy::<S>)
                .patch(update_policy::<S>)
                .delete(delete_policy::<S>),
        )
        .route("/api/v1/features/{id}", get(get_feature::<S>))
}

async fn list_products<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_products(q.limit()).await?)
}

async fn create_product<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Json(body): Json<ProductCreate>,
) -> R {
    created(&rid, &app.engine().create_product(&auth.actor, body).await?)
}

async fn get_product<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_product(&id).await?)
}

async fn update_product<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<ProductUpdate>,
) -> R {
    ok(
        &rid,
        &app.engine().update_product(&auth.actor, &id, body).await?,
    )
}

async fn delete_product<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    Path(id): Path<String>,
) -> R {
    app.engine().delete_product(&auth.actor, &id).await?;
    no_content()
}

async fn list_versions<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_versions(&id, q.limit()).await?)
}

async fn create_version<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<VersionCreate>,
) -> R {
    created(
        &rid,
        &app.engine().create_version(&auth.actor, &id, body).await?,
    )
}

async fn list_policies<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_policies(&id, q.limit()).await?)
}

async fn create_policy<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<PolicyDraft>,
) -> R {
    created(
        &rid,
        &app.engine().create_policy(&auth.actor, &id, body).await?,
    )
}

async fn list_features<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_features(&id, q.limit()).await?)
}

async fn create_feature<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<FeatureCreate>,
) -> R {
    created(
        &rid,
        &app.engine().create_feature(&auth.actor, &id, body).await?,
    )
}

async fn get_policy<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_policy(&id).await?)
}

async fn update_policy<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<PolicyDraft>,
) -> R {
    ok(
        &rid,
        &app.engine().update_policy(&auth.actor, &id, body).await?,
    )
}

async fn delete_policy<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    Path(id): Path<String>,
) -> R {
    app.engine().delete_policy(&auth.actor, &id).await?;
    no_content()
}

async fn get_feature<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_feature(&id).await?)
}
