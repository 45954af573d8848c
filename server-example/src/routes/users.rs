//! Management users (extensions): invitations, roles, sign-in for a session, sign-out, and a
//! password set with a one-time token. See [`licentia_core::engine`]'s users.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use licentia_core::engine::{UserInvite, UserUpdate};
use licentia_core::store::Store;
use serde::Deserialize;

use super::{ListQuery, created, no_content, ok};
use crate::auth::scope::Admin;
use crate::auth::{AnyScope, Auth, PeerIp};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route("/api/v1/users", get(list_users::<S>).post(invite_user::<S>))
        .route(
            "/api/v1/users/{id}",
            get(get_user::<S>).patch(update_user::<S>),
        )
        .route("/api/v1/auth/sign-in", post(sign_in::<S>))
        .route("/api/v1/auth/sign-out", post(sign_out::<S>))
        .route("/api/v1/auth/password", post(set_password::<S>))
        .route("/api/v1/auth/totp", post(enroll_totp::<S>))
        .route("/api/v1/auth/totp/confirm", post(confirm_totp::<S>))
        .route("/api/v1/auth/totp/disable", post(disable_totp::<S>))
}

async fn list_users<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Query(q): Query<ListQuery>,
) -> R {
    ok(&rid, &app.engine().list_users(q.limit()).await?)
}

/// `POST /api/v1/users`: the user and the invitation token, shown once.
async fn invite_user<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    rid: RequestId,
    Json(body): Json<UserInvite>,
) -> R {
    created(&rid, &app.engine().invite_user(&auth.actor, body).await?)
}

async fn get_user<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().get_user(&id).await?)
}

async fn update_user<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<UserUpdate>,
) -> R {
    ok(
        &rid,
        &app.engine().update_user(&auth.actor, &id, body).await?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
    /// The TOTP code, for a user with a second factor.
    #[serde(default)]
    totp: Option<String>,
}

/// `POST /api/v1/auth/sign-in`: no token needed; limited per address like every credential.
async fn sign_in<S: Store + 'static>(
    State(app): State<App<S>>,
    PeerIp(ip): PeerIp,
    rid: RequestId,
    Json(body): Json<SignIn>,
) -> R {
    let ip = ip.map(|i| i.to_string());
    let signed = app
        .engine()
        .sign_in(&body.email, &body.password, body.totp.as_deref(), ip)
        .await?;
    ok(&rid, &signed)
}

/// `POST /api/v1/auth/sign-out`: ends the calling session (204).
async fn sign_out<S: Store + 'static>(State(app): State<App<S>>, auth: AnyScope) -> R {
    app.engine().sign_out(&auth.key).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    token: String,
    password: String,
}

/// `POST /api/v1/auth/password`: accepts an invitation or uses a password reset.
async fn set_password<S: Store + 'static>(
    State(app): State<App<S>>,
    rid: RequestId,
    Json(body): Json<SetPassword>,
) -> R {
    let user = app
        .engine()
        .redeem_user_token(&body.token, &body.password)
        .await?;
    ok(&rid, &user)
}

/// `POST /api/v1/auth/totp`: a fresh TOTP secret for the calling session's user, shown once.
async fn enroll_totp<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: AnyScope,
    rid: RequestId,
) -> R {
    ok(&rid, &app.engine().enroll_totp(&auth.key).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

/// `POST /api/v1/auth/totp/confirm`: turns the enrolled second factor on.
async fn confirm_totp<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: AnyScope,
    rid: RequestId,
    Json(body): Json<TotpCode>,
) -> R {
    ok(
        &rid,
        &app.engine().set_totp(&auth.key, &body.code, true).await?,
    )
}

/// `POST /api/v1/auth/totp/disable`: turns it off, with a current code.
async fn disable_totp<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: AnyScope,
    rid: RequestId,
    Json(body): Json<TotpCode>,
) -> R {
    ok(
        &rid,
        &app.engine().set_totp(&auth.key, &body.code, false).await?,
    )
}
