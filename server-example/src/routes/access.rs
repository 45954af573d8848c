//! API keys, the event log and webhook endpoints.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use licentia_core::engine::requests::{ApiKeyCreate, WebhookFields};
use licentia_core::model::{AuditActorType, DeliveryId};
use licentia_core::store::{EventQuery, Limit, Store};
use serde::Deserialize;
use serde_json::json;

use super::{ListQuery, created, envelope, no_content, ok, paged};
use crate::auth::Auth;
use crate::auth::scope::{Admin, EventRead, WebhookWrite};
use crate::error::{ApiError, codes};
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route(
            "/api/v1/api-keys",
            get(list_api_keys::<S>).post(create_api_key::<S>),
        )
        .route(
            "/api/v1/api-keys/{id}",
            get(get_api_key::<S>).delete(revoke_api_key::<S>),
        )
        .route("/api/v1/events", get(list_events::<S>))
        .route(
            "/api/v1/webhooks",
            get(list_webhooks::<S>).post(create_webhook::<S>),
        )
        .route(
            "/api/v1/webhooks/{id}",
            get(get_webhook::<S>)
                .patch(update_webhook::<S>)
                .delete(delete_webhook::<S>),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(list_deliveries::<S>),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(retry_delivery::<S>),
        )
}

async fn list_api_keys<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_api_keys(q.limit()).await?)
}

async fn create_api_key<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    rid: RequestId,
    Json(body): Json<ApiKeyCreate>,
) -> R {
    created(&rid, &app.engine().create_api_key(&auth.actor, body).await?)
}

/// `GET /api/v1/api-keys/{id}` (extension): the key record, never its token.
async fn get_api_key<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_api_key(&id).await?)
}

/// `DELETE /api/v1/api-keys/{id}` (extension): 204; the token is 401 from its next request.
async fn revoke_api_key<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    Path(id): Path<String>,
) -> R {
    app.engine().revoke_api_key(&auth.actor, &id).await?;
    no_content()
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    cursor: Option<i64>,
    #[serde(default, deserialize_with = "super::positive_limit")]
    limit: Option<i64>,
    event_type: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    actor_type: Option<AuditActorType>,
}

async fn list_events<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<EventRead>,
    rid: RequestId,
    Query(q): Query<EventsQuery>,
) -> R {
    if q.cursor.is_some_and(|c| c < 1) {
        return Err(ApiError::bad_request(
            codes::INVALID_QUERY,
            "cursor must be a positive integer",
        ));
    }
    let query = EventQuery {
        before: q.cursor,
        event_type: q.event_type,
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        actor_type: q.actor_type,
        limit: Limit::new(q.limit),
    };
    let page = app.engine().list_events(&query).await?;
    paged(&rid, &page.events, page.next_cursor)
}

async fn list_webhooks<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<WebhookWrite>,
    rid: RequestId,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_webhooks(q.limit()).await?)
}

async fn create_webhook<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<WebhookWrite>,
    rid: RequestId,
    Json(body): Json<WebhookFields>,
) -> R {
    created(&rid, &app.engine().create_webhook(&auth.actor, body).await?)
}

async fn get_webhook<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<WebhookWrite>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_webhook(&id).await?)
}

/// `WebhookEndpoint`, or `WebhookEndpointWithSecret` when the secret was rotated.
async fn update_webhook<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<WebhookWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<WebhookFields>,
) -> R {
    match app.engine().update_webhook(&auth.actor, &id, body).await? {
        (webhook, Some(secret)) => ok(&rid, &json!({ "webhook": webhook, "secret": secret })),
        (webhook, None) => ok(&rid, &webhook),
    }
}

async fn delete_webhook<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<WebhookWrite>,
    Path(id): Path<String>,
) -> R {
    app.engine().delete_webhook(&auth.actor, &id).await?;
    no_content()
}

#[derive(Debug, Deserialize)]
struct DeliveriesQuery {
    cursor: Option<DeliveryId>,
    #[serde(default, deserialize_with = "super::positive_limit")]
    limit: Option<i64>,
}

/// `GET /api/v1/webhooks/{id}/deliveries` (extension): the endpoint's deliveries, newest
/// first, each with its attempts; `cursor` is the previous page's `next_cursor`.
async fn list_deliveries<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<WebhookWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> R {
    let page = app
        .engine()
        .list_deliveries(&id, q.cursor, Limit::new(q.limit))
        .await?;
    paged(&rid, &page.deliveries, page.next_cursor)
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/retry` (extension): 202, the
/// delivery is due now with a new retry window.
async fn retry_delivery<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<WebhookWrite>,
    rid: RequestId,
    Path((id, delivery)): Path<(String, String)>,
) -> R {
    let d = app
        .engine()
        .retry_delivery(&auth.actor, &id, &delivery)
        .await?;
    envelope(StatusCode::ACCEPTED, &rid, &d)
}
