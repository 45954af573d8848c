//! Device heartbeats over HTTP (an extension): the policy fields through the management API,
//! `POST /api/v1/license/device-heartbeat` signed and verifiable, refused (and the refusal
//! signed) like a validation, listed in the served OpenAPI. On both backends. The release of
//! silent devices moves time, so it is tested on the engine with a manual clock
//! (`storage-memory/tests/engine.rs`, `storage-postgres/tests/instances.rs`).

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error};
use licentia_core::crypto::{PublicKeySet, Refusal, Unverified};
use licentia_core::model::{DeviceHeartbeatData, Timestamp};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

async fn keys(t: &TestApp) -> PublicKeySet {
    let r = t
        .admin(Method::GET, "/api/v1/system/public-keys", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    PublicKeySet::from_json(r.json()["data"].to_string().as_bytes()).unwrap()
}

async fn created(t: &TestApp, uri: &str, body: Value) -> Value {
    let r = t.admin(Method::POST, uri, Some(body)).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    r.json()["data"].clone()
}

async fn device_heartbeats<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let product = created(
        &t,
        "/api/v1/products",
        json!({"name": "Editor", "code": "editor"}),
    )
    .await;
    let pid = product["id"].as_str().unwrap();
    let policies = format!("/api/v1/products/{pid}/policies");

    // The policy fields: validated, shown, and 0 turns heartbeats off.
    let bad = t
        .admin(
            Method::POST,
            &policies,
            Some(
                json!({"name": "Bad", "code": "bad", "license_type": "perpetual",
                        "device_heartbeat_minutes": -5}),
            ),
        )
        .await;
    assert_error(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_POLICY_FIELD",
    );
    let policy = created(
        &t,
        &policies,
        json!({"name": "Beating", "code": "beating", "license_type": "perpetual",
               "max_activations": 2, "device_heartbeat_minutes": 10,
               "device_heartbeat_grace_minutes": 5}),
    )
    .await;
    assert_eq!(policy["device_heartbeat_minutes"], 10);
    assert_eq!(policy["device_heartbeat_grace_minutes"], 5);
    let polid = policy["id"].as_str().unwrap();
    let off = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/policies/{polid}"),
            Some(json!({"device_heartbeat_minutes": 0})),
        )
        .await;
    assert_eq!(
        off.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&off.bytes)
    );
    assert!(off.json()["data"].get("device_heartbeat_minutes").is_none());
    let on = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/policies/{polid}"),
            Some(json!({"device_heartbeat_minutes": 10})),
        )
        .await;
    assert_eq!(on.json()["data"]["device_heartbeat_minutes"], 10);

    let license = created(
        &t,
        "/api/v1/licenses",
        json!({"product_id": pid, "policy_id": polid}),
    )
    .await;
    let key = license["license_key"].as_str().unwrap();
    let device = json!({"fingerprint": "hb-1"});

    // Before activation: refused like a validation, and the refusal is signed.
    let early = t.runtime("device-heartbeat", key, None, &device).await;
    assert_error(&early, StatusCode::NOT_FOUND, "DEVICE_NOT_ACTIVATED");
    let keys = keys(&t).await;
    let refusal: Refusal = Unverified::<Refusal>::from_refusal_json(&early.bytes)
        .unwrap()
        .verify(&keys)
        .unwrap()
        .into_data();
    assert_eq!(refusal.code, "DEVICE_NOT_ACTIVATED");

    let activated = t.runtime("activate", key, Some("hb-on"), &device).await;
    assert_eq!(activated.status, StatusCode::OK);
    // No Idempotency-Key needed: a heartbeat only moves the time forward.
    let beat = t.runtime("device-heartbeat", key, None, &device).await;
    assert_eq!(
        beat.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&beat.bytes)
    );
    let data: DeviceHeartbeatData =
        Unverified::<DeviceHeartbeatData>::from_envelope_json(&beat.bytes)
            .unwrap()
            .verify(&keys)
            .unwrap()
            .into_data();
    let issued = data.issued_at.get();
    assert_eq!(
        data.next_heartbeat_at,
        Some(Timestamp::new(issued + chrono::Duration::minutes(10)))
    );
    assert_eq!(
        data.release_at,
        Some(Timestamp::new(issued + chrono::Duration::minutes(15)))
    );
    assert_eq!(
        Some(data.device_id.as_str()),
        activated.json()["data"]["device_id"].as_str()
    );
    let devices = t
        .admin(
            Method::GET,
            &format!("/api/v1/licenses/{}/devices", data.license_id),
            None,
        )
        .await;
    let last_seen = devices.json()["data"][0]["last_seen_at"].clone();
    let last_seen = last_seen
        .as_str()
        .map(|s| Timestamp::new(s.parse().unwrap()).get());
    assert_eq!(last_seen, Some(issued), "written at once");

    // A malformed body is a plain 400, not a signed refusal.
    let malformed = t
        .runtime("device-heartbeat", key, None, &json!({"fingerprint": 7}))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.json().get("signature").is_none());

    let doc = t.admin(Method::GET, "/api/v1/openapi.json", None).await;
    let op = &doc.json()["paths"]["/api/v1/license/device-heartbeat"]["post"];
    assert_eq!(op["operationId"], "heartbeatDevice");
    assert_eq!(op["x-licentia-extension"], true);
}

#[tokio::test]
async fn device_heartbeats_memory_backend() {
    device_heartbeats(MemoryStore::new()).await;
}

#[tokio::test]
async fn device_heartbeats_postgres_backend() {
    device_heartbeats(licentia_storage_postgres::testing::fresh_store().await).await;
}
