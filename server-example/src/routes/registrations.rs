//! Devices management brings in (extensions): registrations (serials registered on a license,
//! their secrets shown once, their sessions ended by management; the device's own call is
//! `POST /api/v1/device/activate`, with the runtime operations), and air-gapped activation by
//! request and release files.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, post};
use licentia_core::crypto::air_gap::{ActivationRequestFile, ReleaseFile};
use licentia_core::engine::ManagementCall;
use licentia_core::model::DeviceRegistrationRequest;
use licentia_core::store::Store;

use super::{ListQuery, created, no_content, ok, stored};
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
        .route(
            "/api/v1/licenses/{id}/offline-activations",
            post(offline_activate::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/offline-releases",
            post(offline_release::<S>),
        )
}

/// The request file in, the envelope file out; the file's nonce makes it idempotent.
async fn offline_activate<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(file): Json<ActivationRequestFile>,
) -> R {
    let call = ManagementCall {
        idempotency_key: None,
        request_id: rid.as_str(),
    };
    let r = app
        .engine()
        .offline_activate(&auth.actor, call, &id, &file)
        .await?;
    Ok(stored(r.body, r.replayed))
}

async fn offline_release<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<DeviceWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(file): Json<ReleaseFile>,
) -> R {
    ok(
        &rid,
        &app.engine()
            .offline_release(&auth.actor, &id, &file)
            .await?,
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
