//! User-based licenses over HTTP (an extension), on both backends: license users invited and
//! assigned to a license with a seat limit each; activate, validate and offline with the
//! user's own credentials (`User <base64 e-mail:password>`) or a session from signing in
//! (`Bearer`); a second user refused beyond the license's seats and a user beyond its own;
//! another user's device refused; the license key refused a new seat on a user-based
//! license; a locked account after repeated wrong passwords; a license named among several;
//! unassigning releasing the user's seats; license users and operators kept apart; and many
//! users racing for the seats at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use common::{Reply, TestApp, assert_error, send};
use licentia_core::crypto::{DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, Refusal, Unverified, open};
use licentia_core::store::Store;
use licentia_server::App;
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// `Authorization: User …` for `email` and `password`.
fn user_auth(email: &str, password: &str) -> String {
    let raw = format!("{email}:{password}");
    format!(
        "User {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A runtime call with any `Authorization` and extra headers; an activation without an
/// `Idempotency-Key` among them gets a fresh one.
async fn runtime(
    t: &TestApp,
    op: &str,
    auth: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    static KEYS: AtomicU64 = AtomicU64::new(0);
    let fresh = format!("k-{}", KEYS.fetch_add(1, Ordering::Relaxed));
    let mut headers = headers.to_vec();
    if op == "activate" && !headers.iter().any(|(k, _)| *k == "idempotency-key") {
        headers.push(("idempotency-key", &fresh));
    }
    send(
        &t.router,
        Method::POST,
        &format!("/api/v1/license/{op}"),
        Some(auth),
        &headers,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
}

/// Invites `email` as `role` with `auth` and accepts with [`PASSWORD`]: the user's id.
async fn invited(t: &TestApp, auth: &str, email: &str, role: &str) -> String {
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/users",
        Some(auth),
        &[],
        Some(serde_json::to_vec(&json!({"email": email, "role": role})).unwrap()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let data = r.json()["data"].clone();
    let accepted = t
        .public(
            "/api/v1/auth/password",
            json!({"token": data["token"], "password": PASSWORD}),
        )
        .await;
    assert_eq!(Reply::ok(&accepted)["data"]["role"], role);
    data["user"]["id"].as_str().unwrap().to_owned()
}

/// A product and a policy with `seats` activations (offline allowed): the policy's route
/// parts `(product id, policy id)`.
async fn policy(t: &TestApp, code: &str, seats: u32) -> (String, String) {
    let p = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name": code, "code": code})),
        )
        .await;
    let pid = Reply::ok(&p)["data"]["id"].as_str().unwrap().to_owned();
    let pol = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{pid}/policies"),
            Some(
                json!({"name": "Team", "code": "team", "license_type": "perpetual",
                        "max_activations": seats, "allow_offline_activation": true}),
            ),
        )
        .await;
    let polid = Reply::ok(&pol)["data"]["id"].as_str().unwrap().to_owned();
    (pid, polid)
}

/// A license of the policy: (id, key).
async fn license(t: &TestApp, (pid, polid): &(String, String)) -> (String, String) {
    let l = t
        .admin(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"product_id": pid, "policy_id": polid})),
        )
        .await;
    let d = Reply::ok(&l)["data"].clone();
    (
        d["license"]["id"].as_str().unwrap().to_owned(),
        d["license_key"].as_str().unwrap().to_owned(),
    )
}

async fn assign(t: &TestApp, license: &str, email: &str, seats: u32) -> Value {
    let r = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{license}/users"),
            Some(json!({"email": email, "max_activations": seats})),
        )
        .await;
    Reply::ok(&r)["data"].clone()
}

async fn session(t: &TestApp, email: &str) -> String {
    let r = t
        .public(
            "/api/v1/license/users/sign-in",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    let data = Reply::ok(&r)["data"].clone();
    assert_eq!(data["user"]["role"], "licensee");
    format!("Bearer {}", data["token"].as_str().unwrap())
}

fn fp(name: &str) -> Value {
    json!({"fingerprint": name})
}

/// The refusal's code, after checking its signature with the listed keys.
async fn signed_code(t: &TestApp, r: &Reply) -> String {
    let keys = t.key_set().await;
    let refusal = Unverified::<Refusal>::from_refusal_json(&r.bytes)
        .unwrap()
        .verify(&keys)
        .unwrap();
    refusal.data().code.clone()
}

async fn user_based<S: Store + Clone + 'static>(store: S) {
    let app = App::start(store, common::unlimited()).await.unwrap();
    let t = TestApp::of(&app).await;
    let admin = t.bearer();
    let team = policy(&t, "editor", 2).await;
    let (lic, key) = license(&t, &team).await;
    let alice = invited(&t, &admin, "alice@example.com", "licensee").await;
    invited(&t, &admin, "bob@example.com", "licensee").await;
    invited(&t, &admin, "carol@example.com", "licensee").await;
    let seat = assign(&t, &lic, "Alice@Example.com", 1).await;
    assert_eq!(seat["user_id"], alice.as_str());
    assert_eq!(seat["email"], "alice@example.com");
    assign(&t, &lic, "bob@example.com", 1).await;
    assign(&t, &lic, "carol@example.com", 1).await;
    let listed = t
        .admin(Method::GET, &format!("/api/v1/licenses/{lic}/users"), None)
        .await;
    let emails: Vec<Value> = Reply::ok(&listed)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].clone())
        .collect();
    assert_eq!(
        emails,
        ["alice@example.com", "bob@example.com", "carol@example.com"]
    );
    let shown = t
        .admin(Method::GET, &format!("/api/v1/licenses/{lic}"), None)
        .await;
    assert_eq!(
        Reply::ok(&shown)["data"]["users"][0]["user_id"],
        alice.as_str()
    );

    // The license is user-based now: its key takes no new seat (a signed refusal).
    let by_key = runtime(&t, "activate", &format!("License {key}"), &[], fp("k")).await;
    assert_eq!(by_key.status, StatusCode::FORBIDDEN);
    assert_eq!(signed_code(&t, &by_key).await, "USER_CREDENTIALS_REQUIRED");

    // Alice activates with her own credentials; a second device is past her one seat.
    let alice_auth = user_auth("alice@example.com", PASSWORD);
    let idem = [("idempotency-key", "alice-1")];
    let first = runtime(&t, "activate", &alice_auth, &idem, fp("a1")).await;
    let device = Reply::ok(&first)["data"]["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = runtime(&t, "activate", &alice_auth, &idem, fp("a1")).await;
    assert_eq!(replay.bytes, first.bytes, "a replay answers the same bytes");
    let second = runtime(&t, "activate", &alice_auth, &[], fp("a2")).await;
    assert_error(&second, StatusCode::FORBIDDEN, "ACTIVATION_LIMIT_REACHED");
    assert!(
        second.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this user's"),
        "{}",
        second.json()
    );
    let devices = t
        .admin(
            Method::GET,
            &format!("/api/v1/licenses/{lic}/devices"),
            None,
        )
        .await;
    let d = &Reply::ok(&devices)["data"][0];
    assert_eq!(
        (d["id"].as_str(), d["user_id"].as_str()),
        (Some(device.as_str()), Some(alice.as_str()))
    );

    // Bob signs in for a session and takes the license's second seat with it.
    let bob = session(&t, "bob@example.com").await;
    Reply::ok(&runtime(&t, "activate", &bob, &[], fp("b1")).await);
    // Carol is a second user beyond the seats: the license's two are taken.
    let carol_auth = user_auth("carol@example.com", PASSWORD);
    let carol = runtime(&t, "activate", &carol_auth, &[], fp("c1")).await;
    assert_error(&carol, StatusCode::FORBIDDEN, "ACTIVATION_LIMIT_REACHED");
    assert_eq!(signed_code(&t, &carol).await, "ACTIVATION_LIMIT_REACHED");

    // Each validates its own device; not another's. The key, the license's own credential,
    // validates any.
    Reply::ok(&runtime(&t, "validate", &alice_auth, &[], fp("a1")).await);
    Reply::ok(&runtime(&t, "validate", &bob, &[], fp("b1")).await);
    let theirs = runtime(&t, "validate", &bob, &[], fp("a1")).await;
    assert_error(
        &theirs,
        StatusCode::FORBIDDEN,
        "DEVICE_HELD_BY_ANOTHER_USER",
    );
    Reply::ok(&runtime(&t, "validate", &format!("License {key}"), &[], fp("a1")).await);

    // Offline: the envelope is sealed to the credential's secret (her password).
    let off = runtime(&t, "offline", &alice_auth, &[], fp("a1")).await;
    let envelope: OfflineEnvelope =
        serde_json::from_value(Reply::ok(&off)["data"].clone()).unwrap();
    let issued: DateTime<Utc> = off.json()["meta"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let keys = t.key_set().await;
    open(
        &envelope,
        PASSWORD,
        &keys,
        "a1",
        issued,
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .expect("the envelope opens with the user's password");

    // Credentials: a wrong password is 401; five lock the account, even for the right one.
    let wrong = user_auth("carol@example.com", "not her password");
    for _ in 0..5 {
        let r = runtime(&t, "validate", &wrong, &[], fp("c1")).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let locked = runtime(&t, "validate", &carol_auth, &[], fp("c1")).await;
    assert_error(&locked, StatusCode::FORBIDDEN, "ACCOUNT_LOCKED");
    let malformed = runtime(&t, "validate", "User not-base64!", &[], fp("a1")).await;
    assert_error(
        &malformed,
        StatusCode::UNAUTHORIZED,
        "MALFORMED_CREDENTIALS",
    );
    // A management token is no user session, and a user's session no management token.
    let admin_as_user = runtime(&t, "validate", &admin, &[], fp("a1")).await;
    assert_error(
        &admin_as_user,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
    let listed = send(
        &t.router,
        Method::GET,
        "/api/v1/licenses",
        Some(&bob),
        &[],
        None,
    )
    .await;
    assert_error(&listed, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    // License users do not sign in to the console, nor operators here.
    let console = t
        .public(
            "/api/v1/auth/sign-in",
            json!({"email": "alice@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(&console, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    invited(&t, &admin, "ops@example.com", "support").await;
    let operator = t
        .public(
            "/api/v1/license/users/sign-in",
            json!({"email": "ops@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(&operator, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    // With a second license, Alice names the one she acts on.
    let (lic2, _) = license(&t, &team).await;
    assign(&t, &lic2, "alice@example.com", 2).await;
    let unnamed = runtime(&t, "activate", &alice_auth, &[], fp("a3")).await;
    assert_error(
        &unnamed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "LICENSE_CHOICE_REQUIRED",
    );
    let named = [("licentia-license", lic2.as_str())];
    Reply::ok(&runtime(&t, "activate", &alice_auth, &named, fp("a3")).await);
    let mine = send(
        &t.router,
        Method::GET,
        "/api/v1/license/users/licenses",
        Some(&alice_auth),
        &[],
        None,
    )
    .await;
    let mut ids: Vec<String> = Reply::ok(&mine)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![lic.clone(), lic2.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        !Reply::ok(&mine).to_string().contains(&key),
        "never a license key"
    );
    let bobs = [("licentia-license", lic2.as_str())];
    let not_his = runtime(&t, "validate", &bob, &bobs, fp("b1")).await;
    assert_error(&not_his, StatusCode::FORBIDDEN, "LICENSE_NOT_ASSIGNED");

    // Unassigning Alice releases her seat on the first license, so another user (Dave,
    // assigned by id with the default one seat) takes it; Alice can no longer act on it.
    let gone = t
        .admin(
            Method::DELETE,
            &format!("/api/v1/licenses/{lic}/users/{alice}"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = t
        .admin(
            Method::DELETE,
            &format!("/api/v1/licenses/{lic}/users/{alice}"),
            None,
        )
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "NOT_FOUND");
    let first = [("licentia-license", lic.as_str())];
    let after = runtime(&t, "validate", &alice_auth, &first, fp("a1")).await;
    assert_error(&after, StatusCode::FORBIDDEN, "LICENSE_NOT_ASSIGNED");
    let shown = t
        .admin(Method::GET, &format!("/api/v1/licenses/{lic}"), None)
        .await;
    assert_eq!(Reply::ok(&shown)["data"]["active_device_count"], 1);
    let dave = invited(&t, &admin, "dave@example.com", "licensee").await;
    let by_id = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{lic}/users"),
            Some(json!({"user_id": dave})),
        )
        .await;
    assert_eq!(
        Reply::ok(&by_id)["data"]["max_activations"],
        1,
        "one seat by default"
    );
    let dave_auth = user_auth("dave@example.com", PASSWORD);
    Reply::ok(&runtime(&t, "activate", &dave_auth, &[], fp("d1")).await);

    // Sign-out ends Bob's session.
    let out = send(
        &t.router,
        Method::POST,
        "/api/v1/license/users/sign-out",
        Some(&bob),
        &[],
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let ended = runtime(&t, "validate", &bob, &[], fp("b1")).await;
    assert_error(&ended, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    // Who may do what: license:write invites license users but not operators; a license
    // user stays one; an operator cannot be assigned; zero seats are refused.
    let token = t
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "billing", "scopes": ["license:write"]})),
        )
        .await
        .json();
    let billing = format!("Bearer {}", token["data"]["token"].as_str().unwrap());
    invited(&t, &billing, "erin@example.com", "licensee").await;
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/users",
        Some(&billing),
        &[],
        Some(serde_json::to_vec(&json!({"email": "x@example.com", "role": "support"})).unwrap()),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
    let promote = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/users/{alice}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_error(&promote, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let op = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{lic}/users"),
            Some(json!({"email": "ops@example.com"})),
        )
        .await;
    assert_error(&op, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let zero = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{lic}/users"),
            Some(json!({"email": "erin@example.com", "max_activations": 0})),
        )
        .await;
    assert_error(&zero, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_AMOUNT");

    // Key-based licenses are unchanged: another license's key activates as before.
    let (_, plain) = license(&t, &team).await;
    Reply::ok(&runtime(&t, "activate", &format!("License {plain}"), &[], fp("k")).await);
}

/// Eight users, one seat each, race two devices apiece for a license of three seats: exactly
/// three devices are active, no user holds two.
async fn users_racing_for_seats<S: Store + Clone + 'static>(store: S) {
    let app = App::start(store, common::unlimited()).await.unwrap();
    let t = Arc::new(TestApp::of(&app).await);
    let admin = t.bearer();
    let team = policy(&t, "editor", 3).await;
    let (lic, _) = license(&t, &team).await;
    let mut sessions = Vec::new();
    for n in 0..8 {
        let email = format!("user{n}@example.com");
        invited(&t, &admin, &email, "licensee").await;
        assign(&t, &lic, &email, 1).await;
        sessions.push(session(&t, &email).await);
    }
    let mut tasks = Vec::new();
    for (n, s) in sessions.iter().enumerate() {
        for d in 0..2 {
            let (t, s) = (t.clone(), s.clone());
            tasks.push(tokio::spawn(async move {
                let r = runtime(&t, "activate", &s, &[], fp(&format!("u{n}-d{d}"))).await;
                (n, r.status)
            }));
        }
    }
    let mut won = vec![0; 8];
    for task in tasks {
        let (n, status) = task.await.unwrap();
        match status {
            StatusCode::OK => won[n] += 1,
            StatusCode::FORBIDDEN => {}
            other => panic!("an activation ended {other}"),
        }
    }
    assert_eq!(
        won.iter().sum::<u32>(),
        3,
        "exactly the license's seats: {won:?}"
    );
    assert!(
        won.iter().all(|w| *w <= 1),
        "no user past its seat: {won:?}"
    );
    let shown = t
        .admin(Method::GET, &format!("/api/v1/licenses/{lic}"), None)
        .await;
    assert_eq!(Reply::ok(&shown)["data"]["active_device_count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_based_licenses_memory_backend() {
    user_based(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_based_licenses_postgres_backend() {
    user_based(licentia_storage_postgres::testing::fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_racing_for_seats_memory_backend() {
    users_racing_for_seats(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_racing_for_seats_postgres_backend() {
    users_racing_for_seats(licentia_storage_postgres::testing::fresh_store().await).await;
}
