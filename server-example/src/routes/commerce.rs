//! Orders and subscriptions of a product.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use licentia_core::engine::requests::{OrderFields, SubscriptionFields};
use licentia_core::store::Store;

use super::{ListQuery, created, ok};
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
            "/api/v1/products/{id}/orders",
            get(list_orders::<S>).post(create_order::<S>),
        )
        .route(
            "/api/v1/orders/{id}",
            get(get_order::<S>).patch(update_order::<S>),
        )
        .route(
            "/api/v1/products/{id}/subscriptions",
            get(list_subscriptions::<S>).post(create_subscription::<S>),
        )
        .route(
            "/api/v1/subscriptions/{id}",
            get(get_subscription::<S>).patch(update_subscription::<S>),
        )
}

async fn list_orders<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_orders(&id, q.limit()).await?)
}

async fn create_order<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<OrderFields>,
) -> R {
    created(
        &rid,
        &app.engine().create_order(&auth.actor, &id, body).await?,
    )
}

async fn get_order<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_order(&id).await?)
}

async fn update_order<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<OrderFields>,
) -> R {
    ok(
        &rid,
        &app.engine().update_order(&auth.actor, &id, body).await?,
    )
}

async fn list_subscriptions<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(
        &rid,
        &app.engine().list_subscriptions(&id, q.limit()).await?,
    )
}

async fn create_subscription<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<SubscriptionFields>,
) -> R {
    created(
        &rid,
        &app.engine()
            .create_subscription(&auth.actor, &id, body)
            .await?,
    )
}

async fn get_subscription<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_subscription(&id).await?)
}

async fn update_subscription<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<SubscriptionFields>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .update_subscription(&auth.actor, &id, body)
            .await?,
    )
}
