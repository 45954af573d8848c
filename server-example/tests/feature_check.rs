//! `feature_code` on `POST /api/v1/license/check` (an extension): the answer reports that one
//! feature's entitlement, signed like every check; a feature the license does not have is a
//! signed 404 `FEATURE_NOT_ASSIGNED`, reported after the license's own state. On both backends.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::json;

/// A check by the activated device `fc-1` that asks about `feature` only.
async fn check(t: &TestApp, key: &str, feature: &str) -> common::Reply {
    let body = json!({"fingerprint": "fc-1", "feature_code": feature});
    t.runtime("check", key, None, &body).await
}

async fn single_feature_check<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let (id, key) = t.license().await;
    let product = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await;
    let product = product.json()["data"]["product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (code, max) in [("units", Some(100)), ("export", None)] {
        let f = t
            .admin(
                Method::POST,
                &format!("/api/v1/products/{product}/features"),
                Some(json!({"name": code, "code": code})),
            )
            .await;
        assert_eq!(f.status, StatusCode::CREATED);
        let feature_id = f.json()["data"]["id"].as_str().unwrap().to_owned();
        let a = t
            .admin(
                Method::POST,
                &format!("/api/v1/licenses/{id}/features"),
                Some(json!({"feature_id": feature_id, "max_consumptions": max})),
            )
            .await;
        assert!(
            a.status.is_success(),
            "{}",
            String::from_utf8_lossy(&a.bytes)
        );
    }
    let device = json!({"fingerprint": "fc-1"});
    let on = t.runtime("activate", &key, Some("fc-on"), &device).await;
    assert_eq!(on.status, StatusCode::OK);

    let all = t.runtime("check", &key, None, &device).await;
    assert_eq!(all.status, StatusCode::OK);
    let codes = |v: &serde_json::Value| -> Vec<String> {
        v["data"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(codes(&all.json()), ["export", "units"]);

    let one = check(&t, &key, "units").await;
    assert_eq!(one.status, StatusCode::OK);
    let v = one.json();
    assert_eq!(codes(&v), ["units"], "only the feature asked for");
    assert_eq!(v["data"]["features"][0]["quota"], 100);
    assert_eq!(v["data"]["features"][0]["remaining"], 100);
    assert_eq!(v["signature"]["alg"], "Ed25519", "signed like every check");
    assert_eq!(v["data"]["license_id"], id);

    let missing = check(&t, &key, "nope").await;
    assert_error(&missing, StatusCode::NOT_FOUND, "FEATURE_NOT_ASSIGNED");
    assert!(
        missing.json()["signature"].is_object(),
        "a refusal about the license is signed"
    );

    // Unknown members are still refused: the body is one closed object.
    let extra = t
        .runtime(
            "check",
            &key,
            None,
            &json!({"fingerprint": "fc-1", "feature": "units"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);

    // The license's own state comes first.
    let s = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{id}/suspend"),
            None,
        )
        .await;
    assert_eq!(s.status, StatusCode::OK);
    let suspended = check(&t, &key, "nope").await;
    assert_error(&suspended, StatusCode::FORBIDDEN, "LICENSE_SUSPENDED");
}

#[tokio::test]
async fn single_feature_check_memory_backend() {
    single_feature_check(MemoryStore::new()).await;
}

#[tokio::test]
async fn single_feature_check_postgres_backend() {
    single_feature_check(licentia_storage_postgres::testing::fresh_store().await).await;
}
