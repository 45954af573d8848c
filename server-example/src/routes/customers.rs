//! Customers, custom field definitions and custom field values (of customers and licenses).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use licentia_core::engine::requests::{CustomFieldFields, CustomValueUpsert, CustomerFields};
use licentia_core::model::CustomFieldResourceType;
use licentia_core::store::Store;

use super::{ListQuery, created, no_content, ok};
use crate::auth::Auth;
use crate::auth::scope::{Admin, LicenseRead, LicenseWrite, ProductRead, ProductWrite};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route(
            "/api/v1/customers",
            get(list_customers::<S>).post(create_customer::<S>),
        )
        .route(
            "/api/v1/customers/{id}",
            get(get_customer::<S>)
                .patch(update_customer::<S>)
                .delete(delete_customer::<S>),
        )
        .route(
            "/api/v1/customers/{id}/custom-fields",
            get(list_customer_values::<S>),
        )
        .route(
            "/api/v1/customers/{id}/custom-fields/{field_id}",
            put(put_customer_value::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/custom-fields",
            get(list_license_values::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/custom-fields/{field_id}",
            put(put_license_value::<S>),
        )
        .route(
            "/api/v1/products/{id}/custom-fields",
            get(list_fields::<S>).post(create_field::<S>),
        )
        .route(
            "/api/v1/products/{id}/custom-fields/{field_id}",
            get(get_field::<S>)
                .patch(update_field::<S>)
                .delete(delete_field::<S>),
        )
}

async fn list_customers<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_customers(q.limit()).await?)
}

async fn create_customer<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    rid: RequestId,
    Json(body): Json<CustomerFields>,
) -> R {
    created(
        &rid,
        &app.engine().create_customer(&auth.actor, body).await?,
    )
}

async fn get_customer<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_customer(&id).await?)
}

async fn update_customer<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<CustomerFields>,
) -> R {
    ok(
        &rid,
        &app.engine().update_customer(&auth.actor, &id, body).await?,
    )
}

async fn delete_customer<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    Path(id): Path<String>,
) -> R {
    app.engine().delete_customer(&auth.actor, &id).await?;
    no_content()
}

async fn list_values<S: Store + 'static>(
    app: &App<S>,
    rid: &RequestId,
    resource: CustomFieldResourceType,
    id: &str,
    q: &ListQuery,
) -> R {
    ok(
        rid,
        &app.engine()
            .list_custom_values(resource, id, q.limit())
            .await?,
    )
}

/// 200 with the value, or 204 when the request cleared it.
async fn put_value<S: Store + 'static>(
    app: &App<S>,
    auth: &licentia_core::engine::Actor,
    rid: &RequestId,
    resource: CustomFieldResourceType,
    (id, field): (String, String),
    body: CustomValueUpsert,
) -> R {
    match app
        .engine()
        .put_custom_value(auth, resource, &id, &field, body)
        .await?
    {
        Some(v) => ok(rid, &v),
        None => no_content(),
    }
}

async fn list_customer_values<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    list_values(&app, &rid, CustomFieldResourceType::Customer, &id, &q).await
}

async fn put_customer_value<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    rid: RequestId,
    Path(ids): Path<(String, String)>,
    Json(body): Json<CustomValueUpsert>,
) -> R {
    let r = CustomFieldResourceType::Customer;
    put_value(&app, &auth.actor, &rid, r, ids, body).await
}

async fn list_license_values<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    list_values(&app, &rid, CustomFieldResourceType::License, &id, &q).await
}

async fn put_license_value<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(ids): Path<(String, String)>,
    Json(body): Json<CustomValueUpsert>,
) -> R {
    let r = CustomFieldResourceType::License;
    put_value(&app, &auth.actor, &rid, r, ids, body).await
}

async fn list_fields<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(
        &rid,
        &app.engine().list_custom_fields(&id, q.limit()).await?,
    )
}

async fn create_field<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<CustomFieldFields>,
) -> R {
    created(
        &rid,
        &app.engine()
            .create_custom_field(&auth.actor, &id, body)
            .await?,
    )
}

async fn get_field<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path((id, field)): Path<(String, String)>,
) -> R {
    ok(&rid, &app.engine().get_custom_field(&id, &field).await?)
}

async fn update_field<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path((id, field)): Path<(String, String)>,
    Json(body): Json<CustomFieldUpdateBody>,
) -> R {
    let body = CustomFieldFields {
        code: body.code,
        name: body.name,
        is_required: body.is_required,
        enum_options: body.enum_options,
        metadata: body.metadata,
        ..CustomFieldFields::default()
    };
    ok(
        &rid,
        &app.engine()
            .update_custom_field(&auth.actor, &id, &field, body)
            .await?,
    )
}

/// `CustomFieldDefinitionUpdateRequest`: `resource_type` and `value_type` are not in it, so
/// sending them is an unknown field (400), as for every other closed body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFieldUpdateBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    is_required: Option<bool>,
    #[serde(default)]
    enum_options: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<licentia_core::model::Metadata>,
}

async fn delete_field<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    Path((id, field)): Path<(String, String)>,
) -> R {
    app.engine()
        .delete_custom_field(&auth.actor, &id, &field)
        .await?;
    no_content()
}
