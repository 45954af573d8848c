//! Per-feature floating over HTTP (an extension): a feature assignment with `floating_seats`
//! is its own pool; `feature_code` on checkout takes a slot of it, heartbeat and checkin find
//! the lease by pool, and check reports each pool's `seats` and `in_use`, signed. On both
//! backends; the exact limit under racing instances is in `storage-postgres/tests/instances.rs`.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

fn pool(v: &Value, code: &str) -> Value {
    v["data"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .map(|f| f["floating"].clone())
        .unwrap_or(Value::Null)
}

async fn feature_floating<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let (id, key) = t.license().await;
    let license = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await
        .json();
    let product = license["data"]["product_id"].as_str().unwrap();
    let f = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/features"),
            Some(json!({"name": "Render", "code": "render"})),
        )
        .await;
    let feature_id = f.json()["data"]["id"].as_str().unwrap().to_owned();
    let bad = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{id}/features"),
            Some(json!({"feature_id": feature_id, "floating_seats": -1})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let assigned = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{id}/features"),
            Some(json!({"feature_id": feature_id, "floating_seats": 2,
                        "floating_timeout_minutes": 15})),
        )
        .await;
    assert!(
        assigned.status.is_success(),
        "{}",
        String::from_utf8_lossy(&assigned.bytes)
    );
    assert_eq!(assigned.json()["data"]["floating_seats"], 2);

    // Two seats of the feature's pool, then refused; the license's own pool is apart.
    let mut tokens = Vec::new();
    for i in 0..2 {
        let r = t
            .runtime(
                "floating/checkout",
                &key,
                Some(&format!("render-{i}")),
                &json!({"fingerprint": format!("ff-{i}"), "feature_code": "render"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
        let v = r.json();
        assert_eq!(pool(&v, "render"), json!({"seats": 2, "in_use": i + 1}));
        tokens.push(v["data"]["lease_token"].as_str().unwrap().to_owned());
    }
    let full = t
        .runtime(
            "floating/checkout",
            &key,
            Some("render-2"),
            &json!({"fingerprint": "ff-2", "feature_code": "render"}),
        )
        .await;
    assert_error(&full, StatusCode::FORBIDDEN, "FLOATING_POOL_EXHAUSTED");
    assert!(full.json()["signature"].is_object(), "a signed refusal");
    let own = t
        .runtime(
            "floating/checkout",
            &key,
            Some("own-0"),
            &json!({"fingerprint": "ff-2"}),
        )
        .await;
    assert_eq!(
        own.status,
        StatusCode::OK,
        "the license's own pool (2 seats) is untouched"
    );

    // Check reports the pool, signed.
    let device = json!({"fingerprint": "ff-check"});
    assert_eq!(
        t.runtime("activate", &key, Some("ff-on"), &device)
            .await
            .status,
        StatusCode::OK
    );
    let check = t.runtime("check", &key, None, &device).await.json();
    assert_eq!(pool(&check, "render"), json!({"seats": 2, "in_use": 2}));
    assert_eq!(check["signature"]["alg"], "Ed25519");

    // Heartbeat and checkin by pool; another pool's name finds no lease.
    let wrong = t
        .runtime(
            "floating/heartbeat",
            &key,
            None,
            &json!({"lease_token": tokens[0], "feature_code": "other"}),
        )
        .await;
    assert_error(&wrong, StatusCode::NOT_FOUND, "LEASE_NOT_FOUND");
    let beat = t
        .runtime(
            "floating/heartbeat",
            &key,
            None,
            &json!({"lease_token": tokens[0], "feature_code": "render"}),
        )
        .await;
    assert_eq!(
        beat.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&beat.bytes)
    );
    let back = t
        .runtime(
            "floating/checkin",
            &key,
            Some("render-in"),
            &json!({"lease_token": tokens[0], "feature_code": "render"}),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK);
    let check = t.runtime("check", &key, None, &device).await.json();
    assert_eq!(
        pool(&check, "render"),
        json!({"seats": 2, "in_use": 1}),
        "a slot is free"
    );

    // The lease list names each lease's pool.
    let leases = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}/leases"), None)
        .await
        .json();
    let pools: Vec<Value> = leases["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["feature_code"].clone())
        .collect();
    assert_eq!(pools.iter().filter(|p| **p == "render").count(), 1);
    assert_eq!(pools.iter().filter(|p| p.is_null()).count(), 1);
}

#[tokio::test]
async fn feature_floating_memory_backend() {
    feature_floating(MemoryStore::new()).await;
}

#[tokio::test]
async fn feature_floating_postgres_backend() {
    feature_floating(licentia_storage_postgres::testing::fresh_store().await).await;
}
