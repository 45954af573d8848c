//! License templates (an extension): a product's policy plus a new license's defaults, named
//! by `POST /api/v1/licenses/bulk`'s `template_id`.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use licentia_core::model::LicenseTemplateFields;
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
            "/api/v1/products/{id}/license-templates",
            get(list::<S>).post(create::<S>),
        )
        .route(
            "/api/v1/products/{id}/license-templates/{template_id}",
            get(get_one::<S>).patch(update::<S>).delete(remove::<S>),
        )
}

async fn create<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<LicenseTemplateFields>,
) -> R {
    created(
        &rid,
        &app.engine().create_template(&auth.actor, &id, body).await?,
    )
}

async fn list<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_templates(&id, q.limit()).await?)
}

async fn get_one<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path((id, template)): Path<(String, String)>,
) -> R {
    ok(&rid, &app.engine().get_template(&id, &template).await?)
}

async fn update<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path((id, template)): Path<(String, String)>,
    Json(body): Json<LicenseTemplateFields>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .update_template(&auth.actor, &id, &template, body)
            .await?,
    )
}

async fn remove<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    Path((id, template)): Path<(String, String)>,
) -> R {
    app.engine()
        .delete_template(&auth.actor, &id, &template)
        .await?;
    no_content()
}
