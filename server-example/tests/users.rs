//! Management users over HTTP (an extension), on both backends: an invitation accepted with a
//! password, sign-in for a session, roles mapping to scopes (a support user resets a device but
//! does not create a license; billing the other way round), actions attributed to the user in
//! events, a lock after repeated wrong passwords, a role change or a disable taking effect at
//! once, sign-out, and a password reset by a one-time token.

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, assert_error, send};
use licentia_core::crypto::TotpSecret;
use licentia_core::engine::Actor;
use licentia_core::store::Store;
use licentia_server::App;
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

fn ok(r: &Reply) -> Value {
    r.ok()["data"].clone()
}

/// A call with `token` as the bearer (a session or a machine token).
async fn as_token(
    t: &TestApp,
    token: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> Reply {
    send(
        &t.router,
        method,
        uri,
        Some(&format!("Bearer {token}")),
        &[],
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
}

/// A call with no token.
async fn sign_in(t: &TestApp, email: &str, password: &str) -> Reply {
    t.public(
        "/api/v1/auth/sign-in",
        json!({"email": email, "password": password}),
    )
    .await
}

/// Invites `email` as `role` (with the admin token): the user and its invitation token.
async fn invite(t: &TestApp, email: &str, role: &str) -> Value {
    let invited = t
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": email, "role": role})),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED);
    invited.json()["data"].clone()
}

/// Invites `email` as `role` and accepts with `password`: the user's id.
async fn user(t: &TestApp, email: &str, role: &str, password: &str) -> String {
    let invited = invite(t, email, role).await;
    let token = invited["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ust_"));
    let accepted = t
        .public(
            "/api/v1/auth/password",
            json!({"token": token, "password": password}),
        )
        .await;
    assert_eq!(ok(&accepted)["status"], "active");
    invited["user"]["id"].as_str().unwrap().to_owned()
}

async fn session(t: &TestApp, email: &str, password: &str) -> String {
    let r = sign_in(t, email, password).await;
    ok(&r)["token"].as_str().unwrap().to_owned()
}

async fn users<S: Store + Clone + 'static>(store: S) {
    let app = App::start(store, common::unlimited()).await.unwrap();
    let t = TestApp::of(&app).await;
    let (license, key) = t.license().await;
    let activated = t
        .runtime("activate", &key, Some("a"), &json!({"fingerprint": "fp"}))
        .await;
    let device = ok(&activated)["device_id"].as_str().unwrap().to_owned();

    // An invitation: the user exists, invited, with no password; its token is shown once.
    let invited = t
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": " Support@Example.com ", "role": "support"})),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED);
    let invited = invited.json()["data"].clone();
    assert_eq!(invited["user"]["email"], "support@example.com");
    assert_eq!(invited["user"]["status"], "invited");
    assert_eq!(invited["user"]["pending"]["purpose"], "invitation");
    assert!(invited["user"].get("password_hash").is_none());
    let support_id = invited["user"]["id"].as_str().unwrap().to_owned();
    let token = invited["token"].as_str().unwrap().to_owned();
    let listed = ok(&t.admin(Method::GET, "/api/v1/users", None).await);
    assert!(
        !listed.to_string().contains(&token),
        "the token is shown once"
    );
    // Not before accepting; a short password is refused and leaves the token usable.
    assert_eq!(
        sign_in(&t, "support@example.com", "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let short = t
        .public(
            "/api/v1/auth/password",
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_error(&short, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let accepted = t
        .public(
            "/api/v1/auth/password",
            json!({"token": token, "password": "support password 1"}),
        )
        .await;
    assert_eq!(ok(&accepted)["status"], "active");
    let again = t
        .public(
            "/api/v1/auth/password",
            json!({"token": token, "password": "support password 2"}),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::UNAUTHORIZED,
        "a token is used once"
    );

    // Bad input is 4xx, never 500.
    for body in [
        json!({"email": "not-an-address", "role": "support"}),
        json!({"email": "x@example.com", "role": "emperor"}),
    ] {
        let r = t.admin(Method::POST, "/api/v1/users", Some(body)).await;
        assert!(r.status.is_client_error(), "{:?}", r.status);
    }
    let twin = t
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "support@example.com", "role": "billing"})),
        )
        .await;
    assert_eq!(twin.status, StatusCode::CONFLICT);

    // Signed in, support resets a device but creates no license.
    assert_eq!(
        sign_in(&t, "support@example.com", "wrong password!")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let support = session(&t, "support@example.com", "support password 1").await;
    let reset = as_token(
        &t,
        &support,
        Method::POST,
        &format!("/api/v1/licenses/{license}/devices/{device}/reset"),
        Some(json!({})),
    )
    .await;
    assert!(
        reset.status.is_success(),
        "{:?} {}",
        reset.status,
        String::from_utf8_lossy(&reset.bytes)
    );
    let product = ok(&t.admin(Method::GET, "/api/v1/products", None).await)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = ok(&t
        .admin(
            Method::GET,
            &format!("/api/v1/products/{product}/policies"),
            None,
        )
        .await)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_license = json!({"product_id": product, "policy_id": policy});
    let refused = as_token(
        &t,
        &support,
        Method::POST,
        "/api/v1/licenses",
        Some(new_license.clone()),
    )
    .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
    let users_refused = as_token(&t, &support, Method::GET, "/api/v1/users", None).await;
    assert_error(&users_refused, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");

    // The reset is attributed to the user in the event log.
    let events = ok(&t
        .admin(Method::GET, "/api/v1/events?type=device.reset", None)
        .await);
    let reset_event = &events.as_array().unwrap()[0];
    assert_eq!(reset_event["actor_type"], "user");
    assert_eq!(reset_event["actor_id"], support_id.as_str());

    // Billing creates a license but resets no device.
    user(&t, "billing@example.com", "billing", "billing password 1").await;
    let billing = session(&t, "billing@example.com", "billing password 1").await;
    let made = as_token(
        &t,
        &billing,
        Method::POST,
        "/api/v1/licenses",
        Some(new_license.clone()),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let no_reset = as_token(
        &t,
        &billing,
        Method::POST,
        &format!("/api/v1/licenses/{license}/devices/{device}/reset"),
        Some(json!({})),
    )
    .await;
    assert_error(&no_reset, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");

    // A role change takes effect at once for the live session; so does a disable.
    let promoted = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/users/{support_id}"),
            Some(json!({"role": "billing"})),
        )
        .await;
    assert_eq!(ok(&promoted)["role"], "billing");
    let now_made = as_token(
        &t,
        &support,
        Method::POST,
        "/api/v1/licenses",
        Some(new_license.clone()),
    )
    .await;
    assert_eq!(now_made.status, StatusCode::CREATED);
    let disabled = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/users/{support_id}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(ok(&disabled)["status"], "disabled");
    let gone = as_token(&t, &support, Method::GET, "/api/v1/licenses", None).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        sign_in(&t, "support@example.com", "support password 1")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a disabled user does not sign in"
    );

    // Five wrong passwords lock the account: then even the right one is refused.
    for _ in 0..5 {
        let r = sign_in(&t, "billing@example.com", "not the password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let locked = sign_in(&t, "billing@example.com", "billing password 1").await;
    assert_error(&locked, StatusCode::FORBIDDEN, "ACCOUNT_LOCKED");
    // A password reset (printed by the CLI) sets a new password and lifts the lock.
    let reset = app
        .engine()
        .issue_password_reset(&Actor::system(), "billing@example.com")
        .await
        .unwrap();
    assert_eq!(
        reset.user.pending.unwrap().purpose.as_str(),
        "password_reset"
    );
    ok(&t
        .public(
            "/api/v1/auth/password",
            json!({"token": reset.token, "password": "billing password 2"}),
        )
        .await);
    assert_eq!(
        sign_in(&t, "billing@example.com", "billing password 1")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let stale = as_token(&t, &billing, Method::GET, "/api/v1/licenses", None).await;
    assert_eq!(
        stale.status,
        StatusCode::UNAUTHORIZED,
        "a new password ends older sessions"
    );
    let billing = session(&t, "billing@example.com", "billing password 2").await;
    let billing2 = session(&t, "billing@example.com", "billing password 2").await;

    // Sign-out ends the session, and only that one.
    let out = as_token(&t, &billing2, Method::POST, "/api/v1/auth/sign-out", None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = as_token(&t, &billing2, Method::GET, "/api/v1/licenses", None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let other = as_token(&t, &billing, Method::GET, "/api/v1/licenses", None).await;
    assert_eq!(other.status, StatusCode::OK);
    let machine = as_token(&t, &t.admin, Method::POST, "/api/v1/auth/sign-out", None).await;
    assert_eq!(
        machine.status,
        StatusCode::UNAUTHORIZED,
        "a machine token is not a session"
    );

    // A second factor: enrolled, confirmed with a code, then asked for at every sign-in; a
    // code is accepted once.
    let enrolled = ok(&as_token(&t, &billing, Method::POST, "/api/v1/auth/totp", None).await);
    let secret = TotpSecret::from_base32(enrolled["secret"].as_str().unwrap()).unwrap();
    assert!(
        enrolled["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/licentia:")
    );
    let t0 = chrono::Utc::now();
    let wrong = as_token(
        &t,
        &billing,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        Some(json!({"code": "000000"})),
    )
    .await;
    assert_error(&wrong, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let on = as_token(
        &t,
        &billing,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        Some(json!({"code": secret.code_at(t0)})),
    )
    .await;
    assert_eq!(ok(&on)["totp_enabled"], true);
    assert_eq!(
        sign_in(&t, "billing@example.com", "billing password 2")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "no code, no session"
    );
    let next_code = secret.code_at(t0 + chrono::Duration::seconds(30));
    let with_code = |code: String| json!({"email": "billing@example.com", "password": "billing password 2", "totp": code});
    let signed = t
        .public("/api/v1/auth/sign-in", with_code(next_code.clone()))
        .await;
    ok(&signed);
    let replay = t.public("/api/v1/auth/sign-in", with_code(next_code)).await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a code is accepted once"
    );

    // Only an owner makes an owner: an admin user cannot.
    user(&t, "admin@example.com", "admin", "admin password 1").await;
    let admin = session(&t, "admin@example.com", "admin password 1").await;
    let no_owner = as_token(
        &t,
        &admin,
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "boss@example.com", "role": "owner"})),
    )
    .await;
    assert_eq!(no_owner.status, StatusCode::CONFLICT);
    let fine = as_token(
        &t,
        &admin,
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "helper@example.com", "role": "support"})),
    )
    .await;
    assert_eq!(fine.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_memory_backend() {
    users(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_postgres_backend() {
    users(licentia_storage_postgres::testing::fresh_store().await).await;
}

/// `GET /api/v1/users` filtered by role and status, paged after an e-mail; an unknown role
/// or status is a bad query value.
async fn users_list_filters<S: Store + Clone + 'static>(store: S) {
    let app = App::start(store, common::unlimited()).await.unwrap();
    let t = TestApp::of(&app).await;
    for (email, role) in [
        ("b@example.com", "billing"),
        ("l1@example.com", "licensee"),
        ("l2@example.com", "licensee"),
    ] {
        invite(&t, email, role).await;
    }
    user(&t, "l0@example.com", "licensee", "correct horse battery").await;
    let emails = |uri: &'static str| {
        let t = &t;
        async move {
            let listed = ok(&t.admin(Method::GET, uri, None).await);
            let users = listed.as_array().unwrap().iter();
            users
                .map(|u| u["email"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        emails("/api/v1/users?role=licensee").await,
        ["l0@example.com", "l1@example.com", "l2@example.com"]
    );
    assert_eq!(
        emails("/api/v1/users?role=licensee&status=invited").await,
        ["l1@example.com", "l2@example.com"]
    );
    assert_eq!(
        emails("/api/v1/users?status=active").await,
        ["l0@example.com"]
    );
    assert_eq!(
        emails("/api/v1/users?role=licensee&after=l0%40example.com&limit=1").await,
        ["l1@example.com"],
        "the page after a cursor, filtered"
    );
    assert_eq!(
        emails("/api/v1/users?limit=2").await,
        ["b@example.com", "l0@example.com"]
    );
    for bad in [
        "/api/v1/users?role=superuser",
        "/api/v1/users?status=gone",
        "/api/v1/users?limit=0",
    ] {
        let r = t.admin(Method::GET, bad, None).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_QUERY");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_filters_memory_backend() {
    users_list_filters(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_filters_postgres_backend() {
    users_list_filters(licentia_storage_postgres::testing::fresh_store().await).await;
}
