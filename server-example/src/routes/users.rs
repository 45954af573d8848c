//! Management users (extensions): invitations, roles, sign-in for a session, sign-out, and a
//! password set with a one-time token. See [`licentia_core::engine`]'s users.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, post};
use licentia_core::engine::{LicenseUserAssign, SignInAttempt, UserInvite, UserUpdate};
use licentia_core::model::{ManagementScope, UserRole, UserStatus};
use licentia_core::store::{Limit, Store, UserQuery};
use serde::Deserialize;

use super::{created, no_content, ok};
use crate::auth::scope::{Admin, LicenseRead, LicenseWrite};
use crate::auth::{AnyScope, Auth, License, PeerIp, require_scope};
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
        .route(
            "/api/v1/licenses/{id}/users",
            get(list_license_users::<S>).post(assign_license_user::<S>),
        )
        .route(
            "/api/v1/licenses/{id}/users/{user_id}",
            delete(unassign_license_user::<S>),
        )
        .route(
            "/api/v1/license/users/sign-in",
            post(sign_in_license_user::<S>),
        )
        .route(
            "/api/v1/license/users/sign-out",
            post(sign_out_license_user::<S>),
        )
        .route("/api/v1/license/users/licenses", get(licenses_of_user::<S>))
}

async fn list_license_users<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<LicenseRead>,
    rid: RequestId,
    Path(id): Path<String>,
) -> R {
    ok(&rid, &app.engine().list_license_users(&id).await?)
}

/// `POST /api/v1/licenses/{id}/users`: assigns a license user (again: a new seat limit).
async fn assign_license_user<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Path(id): Path<String>,
    Json(body): Json<LicenseUserAssign>,
) -> R {
    let seat = app
        .engine()
        .assign_license_user(&auth.actor, &id, &body)
        .await?;
    ok(&rid, &seat)
}

/// `DELETE /api/v1/licenses/{id}/users/{user_id}`: 204; the user's devices are released.
async fn unassign_license_user<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    Path((id, user)): Path<(String, String)>,
) -> R {
    app.engine()
        .unassign_license_user(&auth.actor, &id, &user)
        .await?;
    no_content()
}

/// `POST /api/v1/license/users/sign-in`: a license user's session for runtime calls
/// (`Authorization: Bearer …`); limited per address like every credential.
async fn sign_in_license_user<S: Store + 'static>(
    State(app): State<App<S>>,
    PeerIp(ip): PeerIp,
    rid: RequestId,
    Json(body): Json<SignIn>,
) -> R {
    let attempt = SignInAttempt {
        email: &body.email,
        password: &body.password,
        totp: body.totp.as_deref(),
        ip_address: ip.map(|i| i.to_string()),
    };
    ok(&rid, &app.engine().sign_in_license_user(attempt).await?)
}

/// `POST /api/v1/license/users/sign-out`: ends the calling license user's session (204).
async fn sign_out_license_user<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
) -> R {
    if license.kind != crate::auth::CredentialKind::UserSession {
        return Err(ApiError::unauthorized(
            crate::error::codes::MALFORMED_CREDENTIALS,
            "the Authorization header must be `Bearer <session token>`",
        ));
    }
    app.engine().sign_out_license_user(&license.secret).await?;
    no_content()
}

/// `GET /api/v1/license/users/licenses`: the licenses assigned to the calling license user
/// (`User` or `Bearer` credential), to pick one with `Licentia-License`.
async fn licenses_of_user<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
) -> R {
    let found = app
        .engine()
        .licenses_of_user(license.credential(), license.ip.as_deref())
        .await?;
    ok(&rid, &found)
}

async fn list_users<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<Admin>,
    rid: RequestId,
    Query(q): Query<UserListQuery>,
) -> R {
    let query = UserQuery {
        role: q.role,
        status: q.status,
        after: q.after.filter(|a| !a.is_empty()),
        limit: Limit::new(q.limit),
    };
    ok(&rid, &app.engine().list_users(&query).await?)
}

/// `GET /api/v1/users`'s filters; an unknown role or status is 400 `INVALID_QUERY`.
#[derive(Deserialize)]
struct UserListQuery {
    #[serde(default, deserialize_with = "super::positive_limit")]
    limit: Option<i64>,
    role: Option<UserRole>,
    status: Option<UserStatus>,
    /// The next page: the users after this e-mail (the last one of the page before).
    after: Option<String>,
}

/// `POST /api/v1/users`: the user and the invitation token, shown once. A license user
/// (`licensee`) needs `license:write`; an operator `admin`.
async fn invite_user<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<LicenseWrite>,
    rid: RequestId,
    Json(body): Json<UserInvite>,
) -> R {
    if body.role.is_operator() {
        require_scope(&auth.key, ManagementScope::Admin)?;
    }
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
