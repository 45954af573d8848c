//! Borrowing a floating seat over HTTP (an extension): `POST /api/v1/license/floating/borrow`
//! answers the lease and an offline envelope that opens with the license key until the borrow
//! ends; the seat stays taken without heartbeats; `POST /api/v1/license/floating/return` frees
//! it early. On both backends; the limit under racing instances is in
//! `storage-postgres/tests/instances.rs`.

mod common;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::{TestApp, assert_error};
use licentia_core::crypto::{DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, PublicKeySet, open};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::json;

async fn floating_borrow<S: Store + 'static>(store: S) {
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
    let policy = license["data"]["policy_id"].as_str().unwrap().to_owned();
    let body = |fp: &str, hours: i64| json!({"fingerprint": fp, "hours": hours});

    // The fixture's policy allows no borrowing.
    let off = t
        .runtime("floating/borrow", &key, Some("b-off"), &body("fb-1", 4))
        .await;
    assert_error(&off, StatusCode::FORBIDDEN, "BORROW_NOT_ALLOWED");
    assert!(off.json()["signature"].is_object(), "a signed refusal");
    let on = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/policies/{policy}"),
            Some(json!({"max_borrow_hours": 72})),
        )
        .await;
    assert_eq!(
        on.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&on.bytes)
    );
    assert_eq!(on.json()["data"]["max_borrow_hours"], 72);
    let long = t
        .runtime("floating/borrow", &key, Some("b-long"), &body("fb-1", 73))
        .await;
    assert_error(&long, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let huge = t
        .runtime(
            "floating/borrow",
            &key,
            Some("b-huge"),
            &body("fb-1", 9_007_199_254_740_993),
        )
        .await;
    assert_eq!(
        huge.status,
        StatusCode::BAD_REQUEST,
        "a client error, never a 500"
    );
    // A borrow hands out an offline envelope: not under a policy without offline licenses.
    let no_offline = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/policies/{policy}"),
            Some(json!({"allow_offline_activation": false})),
        )
        .await;
    assert_eq!(no_offline.status, StatusCode::OK);
    let refused = t
        .runtime(
            "floating/borrow",
            &key,
            Some("b-no-offline"),
            &body("fb-1", 4),
        )
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "OFFLINE_NOT_ALLOWED");
    t.admin(
        Method::PATCH,
        &format!("/api/v1/policies/{policy}"),
        Some(json!({"allow_offline_activation": true})),
    )
    .await;

    let borrowed = t
        .runtime("floating/borrow", &key, Some("b-1"), &body("fb-1", 24))
        .await;
    assert_eq!(
        borrowed.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&borrowed.bytes)
    );
    let v = borrowed.json();
    let ends: DateTime<Utc> = v["data"]["lease_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let issued: DateTime<Utc> = v["data"]["issued_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends - issued, Duration::hours(24));
    assert_eq!(v["signature"]["alg"], "Ed25519");
    // Replayed byte for byte with the same key.
    let again = t
        .runtime("floating/borrow", &key, Some("b-1"), &body("fb-1", 24))
        .await;
    assert_eq!(again.bytes, borrowed.bytes);

    // The envelope opens offline with the license key, until the borrow ends.
    let keys = t
        .admin(Method::GET, "/api/v1/system/public-keys", None)
        .await
        .json();
    let keys = PublicKeySet::from_json(keys["data"].to_string().as_bytes()).unwrap();
    let envelope: OfflineEnvelope = serde_json::from_value(v["data"]["offline"].clone()).unwrap();
    let binding = "fb-1";
    let opened = open(
        &envelope,
        &key,
        &keys,
        binding,
        issued,
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .expect("opens on the borrowing device");
    assert_eq!(opened.data().offline_expires_at.get(), ends);
    assert!(
        open(
            &envelope,
            &key,
            &keys,
            binding,
            ends + Duration::hours(1),
            DEFAULT_SKEW_TOLERANCE,
            None
        )
        .is_err(),
        "not after the borrow"
    );

    // The policy's two floating seats: the borrow holds one, with no heartbeat.
    let second = t
        .runtime(
            "floating/checkout",
            &key,
            Some("c-2"),
            &json!({"fingerprint": "fb-2"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    let third = t
        .runtime(
            "floating/checkout",
            &key,
            Some("c-3"),
            &json!({"fingerprint": "fb-3"}),
        )
        .await;
    assert_error(&third, StatusCode::FORBIDDEN, "FLOATING_POOL_EXHAUSTED");
    let token = v["data"]["lease_token"].as_str().unwrap();
    let back = t
        .runtime(
            "floating/return",
            &key,
            Some("r-1"),
            &json!({"lease_token": token}),
        )
        .await;
    assert_eq!(
        back.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&back.bytes)
    );
    let third = t
        .runtime(
            "floating/checkout",
            &key,
            Some("c-3b"),
            &json!({"fingerprint": "fb-3"}),
        )
        .await;
    assert_eq!(
        third.status,
        StatusCode::OK,
        "returned early: the seat is free"
    );
    let gone = t
        .runtime(
            "floating/return",
            &key,
            Some("r-2"),
            &json!({"lease_token": token}),
        )
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "LEASE_NOT_FOUND");
}

#[tokio::test]
async fn floating_borrow_memory_backend() {
    floating_borrow(MemoryStore::new()).await;
}

#[tokio::test]
async fn floating_borrow_postgres_backend() {
    floating_borrow(licentia_storage_postgres::testing::fresh_store().await).await;
}
