//! Pre-registered devices over HTTP (an extension): management registers a serial and gets
//! its secret once; the device activates with serial and secret (`POST /api/v1/device/activate`,
//! no `Authorization` header) and then validates, checks, consumes, reports telemetry and
//! takes an offline license with `Authorization: Session <token>` alone, the license key never
//! sent. Activating again keeps the seat; another device is refused; management ends the
//! session and deletes the registration. On both backends.

mod common;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::{Reply, TestApp, assert_error, send};
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, PublicKeySet, Unverified, open,
};
use licentia_core::model::DeviceActivationData;
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

/// A runtime call with `Authorization: Session <token>`.
async fn with_session(
    t: &TestApp,
    op: &str,
    token: &str,
    idem: Option<&str>,
    body: &Value,
) -> Reply {
    let auth = format!("Session {token}");
    let headers: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
    send(
        &t.router,
        Method::POST,
        &format!("/api/v1/license/{op}"),
        Some(&auth),
        &headers,
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

/// `POST /api/v1/device/activate` with no credential header.
async fn device_activate(t: &TestApp, body: &Value) -> Reply {
    send(
        &t.router,
        Method::POST,
        "/api/v1/device/activate",
        None,
        &[],
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

fn ok(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

async fn device_registrations<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let (id, _license_key) = t.license().await;
    let regs = format!("/api/v1/licenses/{id}/device-registrations");
    let license = ok(
        &t.admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
            .await,
        StatusCode::OK,
    );
    let product = license["data"]["product_id"].as_str().unwrap().to_owned();
    let feature = ok(
        &t.admin(
            Method::POST,
            &format!("/api/v1/products/{product}/features"),
            Some(json!({"name": "Units", "code": "units"})),
        )
        .await,
        StatusCode::CREATED,
    );
    ok(
        &t.admin(
            Method::POST,
            &format!("/api/v1/licenses/{id}/features"),
            Some(json!({"feature_id": feature["data"]["id"], "max_consumptions": 10})),
        )
        .await,
        StatusCode::OK,
    );

    // Registration: the secret once, never its hash; serials unique; input checked.
    let made = ok(
        &t.admin(
            Method::POST,
            &regs,
            Some(json!({"serial": "SN-100", "manufacturer": "Acme", "model": "Edge 2"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let secret = made["data"]["device_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("dsk_"), "{made}");
    let reg_id = made["data"]["registration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(made["data"]["registration"]["serial"], "SN-100");
    assert_eq!(made["data"]["registration"]["secret_prefix"], &secret[..8]);
    assert!(
        !made.to_string().contains("secret_hash"),
        "no hash is shown"
    );
    let dup = t
        .admin(Method::POST, &regs, Some(json!({"serial": "SN-100"})))
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "ALREADY_EXISTS");
    let empty = t
        .admin(Method::POST, &regs, Some(json!({"serial": "  "})))
        .await;
    assert_error(&empty, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let unknown = t
        .admin(
            Method::POST,
            &regs,
            Some(json!({"serial": "SN-1", "colour": "red"})),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    let nowhere = t
        .admin(
            Method::POST,
            "/api/v1/licenses/lic_0000000000000000000000000/device-registrations",
            Some(json!({"serial": "SN-2"})),
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    let listed = ok(&t.admin(Method::GET, &regs, None).await, StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once"
    );
    let one = ok(
        &t.admin(Method::GET, &format!("{regs}/{reg_id}"), None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(one["data"]["id"], reg_id.as_str());

    // Activation by serial and secret; wrong ones are not told apart.
    let device = |fp: &str| json!({"serial": "SN-100", "device_secret": secret, "fingerprint": fp});
    let wrong = device_activate(&t, &json!({"serial": "SN-100", "device_secret": "dsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "fingerprint": "fp-1"})).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let stranger = device_activate(
        &t,
        &json!({"serial": "SN-999", "device_secret": secret, "fingerprint": "fp-1"}),
    )
    .await;
    assert_error(&stranger, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    assert_eq!(
        wrong.json()["error"]["message"],
        stranger.json()["error"]["message"]
    );
    let no_binding =
        device_activate(&t, &json!({"serial": "SN-100", "device_secret": secret})).await;
    assert_eq!(
        no_binding.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&no_binding.bytes)
    );

    let keys = ok(
        &t.admin(Method::GET, "/api/v1/system/public-keys", None)
            .await,
        StatusCode::OK,
    );
    let keys = PublicKeySet::from_json(keys["data"].to_string().as_bytes()).unwrap();
    let first = device_activate(&t, &device("fp-1")).await;
    ok(&first, StatusCode::OK);
    let first: DeviceActivationData =
        Unverified::<DeviceActivationData>::from_envelope_json(&first.bytes)
            .unwrap()
            .verify(&keys)
            .expect("the activation is signed")
            .into_data();
    assert_eq!(first.registration_id.as_str(), reg_id);
    let token = first.session.token.clone();
    assert!(token.starts_with("dst_"));
    assert!(first.session.expires_at > Utc::now());
    let device_id = first.activation.device_id.clone();

    // The session alone: validate, check, consume, telemetry, offline.
    let fp1 = json!({"fingerprint": "fp-1"});
    let v = ok(
        &with_session(&t, "validate", &token, None, &fp1).await,
        StatusCode::OK,
    );
    assert_eq!(v["data"]["device_id"], device_id.as_str());
    assert_eq!(v["data"]["license_id"], id.as_str());
    ok(
        &with_session(
            &t,
            "check",
            &token,
            None,
            &json!({"fingerprint": "fp-1", "feature_code": "units"}),
        )
        .await,
        StatusCode::OK,
    );
    let used = ok(
        &with_session(
            &t,
            "consume",
            &token,
            Some("c-1"),
            &json!({"fingerprint": "fp-1", "feature_code": "units", "amount": 3, "event_id": "e-1"}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(used["data"]["features"][0]["remaining"], 7, "{used}");
    let replay = with_session(
        &t,
        "consume",
        &token,
        Some("c-1"),
        &json!({"fingerprint": "fp-1", "feature_code": "units", "amount": 3, "event_id": "e-1"}),
    )
    .await;
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let telemetry = with_session(&t, "telemetry", &token, None, &json!({"event": "booted"})).await;
    assert!(
        telemetry.status.is_success(),
        "{}",
        String::from_utf8_lossy(&telemetry.bytes)
    );
    let offline = ok(
        &with_session(&t, "offline", &token, None, &fp1).await,
        StatusCode::OK,
    );
    let envelope: OfflineEnvelope = serde_json::from_value(offline["data"].clone()).unwrap();
    let opened = open(
        &envelope,
        &token,
        &keys,
        "fp-1",
        Utc::now(),
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .expect("an envelope issued to a session opens with the session token");
    assert_eq!(opened.data().entitlement.device_id, device_id);

    // The session is the device's: another binding is refused, signed.
    let other = with_session(
        &t,
        "validate",
        &token,
        None,
        &json!({"fingerprint": "fp-2"}),
    )
    .await;
    assert_error(&other, StatusCode::FORBIDDEN, "SESSION_DEVICE_MISMATCH");
    assert!(other.json()["signature"].is_object(), "a signed refusal");
    let forged = with_session(
        &t,
        "validate",
        "dst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        None,
        &fp1,
    )
    .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    // Activating again from the device: the same seat, a new session replacing the old.
    let again = ok(&device_activate(&t, &device("fp-1")).await, StatusCode::OK);
    assert_eq!(again["data"]["activation"]["device_id"], device_id.as_str());
    let token2 = again["data"]["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(token2, token);
    let old = with_session(&t, "validate", &token, None, &fp1).await;
    assert_error(&old, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    ok(
        &with_session(&t, "validate", &token2, None, &fp1).await,
        StatusCode::OK,
    );
    let devices = ok(
        &t.admin(Method::GET, &format!("/api/v1/licenses/{id}/devices"), None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        devices["data"].as_array().unwrap().len(),
        1,
        "one seat: {devices}"
    );
    // Another machine with the serial and secret is refused while the device holds its seat.
    let cloned = device_activate(&t, &device("fp-2")).await;
    assert_error(&cloned, StatusCode::FORBIDDEN, "REGISTRATION_BOUND");

    // Management sees the session, ends it, and deletes the registration.
    let seen = ok(
        &t.admin(Method::GET, &format!("{regs}/{reg_id}"), None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(seen["data"]["device_id"], device_id.as_str());
    assert_eq!(
        seen["data"]["session"]["id"],
        again["data"]["session"]["id"]
    );
    assert!(
        !seen.to_string().contains("token"),
        "no token or its hash is shown: {seen}"
    );
    let ended = ok(
        &t.admin(Method::DELETE, &format!("{regs}/{reg_id}/session"), None)
            .await,
        StatusCode::OK,
    );
    assert!(ended["data"]["session"].is_null());
    let revoked = with_session(&t, "validate", &token2, None, &fp1).await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let deleted = t
        .admin(Method::DELETE, &format!("{regs}/{reg_id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let after = device_activate(&t, &device("fp-1")).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let missing = t
        .admin(Method::GET, &format!("{regs}/{reg_id}"), None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let events = ok(
        &t.admin(
            Method::GET,
            "/api/v1/events?resource_type=device_registration&limit=50",
            None,
        )
        .await,
        StatusCode::OK,
    );
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "device_registration.created",
        "device_registration.activated",
        "device_registration.session_ended",
        "device_registration.deleted",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    assert!(
        !events.to_string().contains("fp-1"),
        "no binding value in events"
    );

    let doc = ok(
        &t.admin(Method::GET, "/api/v1/openapi.json", None).await,
        StatusCode::OK,
    );
    for (path, method) in [
        ("/api/v1/licenses/{id}/device-registrations", "post"),
        ("/api/v1/licenses/{id}/device-registrations", "get"),
        (
            "/api/v1/licenses/{id}/device-registrations/{registration_id}",
            "get",
        ),
        (
            "/api/v1/licenses/{id}/device-registrations/{registration_id}",
            "delete",
        ),
        (
            "/api/v1/licenses/{id}/device-registrations/{registration_id}/session",
            "delete",
        ),
        ("/api/v1/device/activate", "post"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["x-licentia-extension"], true,
            "{path} {method}"
        );
    }
    assert!(
        doc["paths"]["/api/v1/license/validate"]["post"]["security"]
            .as_array()
            .unwrap()
            .contains(&json!({"sessionAuth": []})),
        "runtime calls take a session"
    );

    // Scopes: reading needs license:read, writing device:write.
    let reader = ok(
        &t.admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["license:read"]})),
        )
        .await,
        StatusCode::CREATED,
    );
    let reader = format!("Bearer {}", reader["data"]["token"].as_str().unwrap());
    let listed = send(&t.router, Method::GET, &regs, Some(&reader), &[], None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let refused = send(
        &t.router,
        Method::POST,
        &regs,
        Some(&reader),
        &[],
        Some(br#"{"serial":"SN-7"}"#.to_vec()),
    )
    .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
}

#[tokio::test]
async fn device_registrations_memory_backend() {
    device_registrations(MemoryStore::new()).await;
}

#[tokio::test]
async fn device_registrations_postgres_backend() {
    device_registrations(licentia_storage_postgres::testing::fresh_store().await).await;
}
