//! Device registrations (an extension): serials registered on a license, their secrets shown
//! once, their sessions ended by management. The device's own call is
//! `POST /api/v1/device/activate` (with the runtime operations).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get};
use licentia_core::model::DeviceRegistrationRequest;
use licentia_core::store::Store;

use super::{ListQuery, created, no_content, ok};
use crate::auth::Auth;
use crate::auth::scope::{DeviceWrite, LicenseRead};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route(
            "/api/v1/licenses/{id}/device-registrations",
            get(list::<S>).post(register::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/device-registrations/{registration_id}",
            get(get_one::<S>).delete(remove::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/device-registrations/{registration_id}/session",
            delete(end_session::<S>),
        )
}

async fn register<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<DeviceRegistrationRequest>,
) -> R {
    created(
        &rid,
        &app.engine().register_device(&auth.actor, &id, body).await?,
    )
}

async fn list<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .list_device_registrations(&id, q.limit())
            .await?,
    )
}

async fn get_one<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path((id, registration)): Path<(String, String)>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .get_device_registration(&id, &registration)
            .await?,
    )
}

async fn remove<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    Path((id, registration)): Path<(String, String)>,
) -> R {
    app.engine()
        .delete_device_registration(&auth.actor, &id, &registration)
        .await?;
    no_content()
}

async fn end_session<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    rid: RequestId,
    Path((id, registration)): Path<(String, String)>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .end_device_session(&auth.actor, &id, &registration)
            .await?,
    )
}
