//! Idempotent license creation over HTTP (an extension): `POST /api/v1/licenses` honours an
//! `Idempotency-Key`, and `POST /api/v1/licenses/bulk` creates up to 1000 licenses alike, all
//! or none, a retry answering the same bytes — also when the retries race. On both backends.

mod common;

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, assert_error, send};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

async fn create(t: &TestApp, uri: &str, key: Option<&str>, body: &Value) -> Reply {
    create_as(t, &t.bearer(), uri, key, body).await
}

async fn create_as(t: &TestApp, auth: &str, uri: &str, key: Option<&str>, body: &Value) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    send(
        &t.router,
        Method::POST,
        uri,
        Some(auth),
        &headers,
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

async fn license_count(t: &TestApp) -> usize {
    let r = t
        .admin(Method::GET, "/api/v1/licenses?limit=200", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["data"].as_array().unwrap().len()
}

async fn bulk_licenses<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let (id, _) = t.license().await;
    let first = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await
        .json();
    let (product, policy) = (
        first["data"]["product_id"].as_str().unwrap().to_owned(),
        first["data"]["policy_id"].as_str().unwrap().to_owned(),
    );
    let one =
        json!({"product_id": product, "policy_id": policy, "customer_email": "a@example.com"});

    // One license with a key: a repeat is the same answer, a changed request a conflict.
    let a = create(&t, "/api/v1/licenses", Some("order-1"), &one).await;
    assert_eq!(
        a.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&a.bytes)
    );
    let b = create(&t, "/api/v1/licenses", Some("order-1"), &one).await;
    assert_eq!(b.status, StatusCode::CREATED);
    assert_eq!(
        b.bytes, a.bytes,
        "the retried webhook gets the first answer"
    );
    assert_eq!(
        b.headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let mut other = one.clone();
    other["customer_email"] = json!("b@example.com");
    let c = create(&t, "/api/v1/licenses", Some("order-1"), &other).await;
    assert_error(&c, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
    // Without a key, as the contract has it: a new license each time.
    let d = create(&t, "/api/v1/licenses", None, &one).await;
    let e = create(&t, "/api/v1/licenses", None, &one).await;
    assert_ne!(
        d.json()["data"]["license"]["id"],
        e.json()["data"]["license"]["id"]
    );
    assert_eq!(license_count(&t).await, 4);

    // Bulk: the key is required and count bounded.
    let bulk = |count: u32| json!({"product_id": product, "policy_id": policy, "count": count});
    let r = create(&t, "/api/v1/licenses/bulk", None, &bulk(3)).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED");
    for n in [0, 1001] {
        let r = create(&t, "/api/v1/licenses/bulk", Some("b-bad"), &bulk(n)).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    }
    let mut unknown = bulk(3);
    unknown["colour"] = json!("red");
    let r = create(&t, "/api/v1/licenses/bulk", Some("b-unknown"), &unknown).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "an unknown member is refused"
    );
    let mut missing = bulk(3);
    missing["policy_id"] = json!("pol_0000000000000000000000000");
    let r = create(&t, "/api/v1/licenses/bulk", Some("b-missing"), &missing).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        license_count(&t).await,
        4,
        "a refused bulk call creates nothing"
    );

    let made = create(&t, "/api/v1/licenses/bulk", Some("batch-1"), &bulk(25)).await;
    assert_eq!(
        made.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&made.bytes)
    );
    let list = made.json();
    let created = list["data"].as_array().unwrap();
    assert_eq!(created.len(), 25);
    let keys: HashSet<&str> = created
        .iter()
        .map(|c| c["license_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 25, "every key is its own");
    let key = created[7]["license_key"].as_str().unwrap();
    let on = t
        .runtime(
            "activate",
            key,
            Some("bulk-on"),
            &json!({"fingerprint": "bulk-1"}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "a bulk key works at once");
    let again = create(&t, "/api/v1/licenses/bulk", Some("batch-1"), &bulk(25)).await;
    assert_eq!(
        again.bytes, made.bytes,
        "a replay is the same answer byte for byte"
    );
    assert_eq!(license_count(&t).await, 29);

    // The key is the caller's: another token's same key is another call.
    let token = t
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "billing", "scopes": ["license:write", "license:read"]})),
        )
        .await
        .json();
    let billing = format!("Bearer {}", token["data"]["token"].as_str().unwrap());
    let theirs = create_as(
        &t,
        &billing,
        "/api/v1/licenses/bulk",
        Some("batch-1"),
        &bulk(2),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_eq!(license_count(&t).await, 31);

    // Racing retries of one call: one batch, every answer the same.
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let router = t.router.clone();
            let auth = t.bearer();
            let body = serde_json::to_vec(&bulk(5)).unwrap();
            tokio::spawn(async move {
                send(
                    &router,
                    Method::POST,
                    "/api/v1/licenses/bulk",
                    Some(&auth),
                    &[("idempotency-key", "race-1")],
                    Some(body),
                )
                .await
            })
        })
        .collect();
    let mut answers = HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
        answers.insert(r.bytes);
    }
    assert_eq!(answers.len(), 1, "every racing retry gets the one answer");
    assert_eq!(license_count(&t).await, 36, "and one batch was created");

    // Templates: a policy, a duration, a feature with its quota, metadata.
    let feature = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/features"),
            Some(json!({"name": "Units", "code": "units"})),
        )
        .await
        .json();
    let feature_id = feature["data"]["id"].as_str().unwrap().to_owned();
    let templates = format!("/api/v1/products/{product}/license-templates");
    let bad = t
        .admin(Method::POST, &templates, Some(json!({"name": "No policy"})))
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let quota = t
        .admin(
            Method::POST,
            &templates,
            Some(json!({"name": "Bad quota", "policy_id": policy,
                        "features": [{"feature_id": feature_id, "max_consumptions": -1}]})),
        )
        .await;
    assert_eq!(
        quota.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the feature rule checks it"
    );
    // The fixture's policy is perpetual: a duration cannot apply.
    let dated = t
        .admin(
            Method::POST,
            &templates,
            Some(json!({"name": "Dated", "policy_id": policy, "duration_days": 30})),
        )
        .await;
    assert_eq!(
        dated.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&dated.bytes)
    );
    let made = t
        .admin(
            Method::POST,
            &templates,
            Some(json!({"name": "Reseller pack", "policy_id": policy,
                        "features": [{"feature_id": feature_id, "max_consumptions": 50}],
                        "metadata": {"channel": "reseller", "tier": "gold"}})),
        )
        .await;
    assert_eq!(
        made.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&made.bytes)
    );
    let template = made.json()["data"].clone();
    let tid = template["id"].as_str().unwrap().to_owned();
    let listed = t.admin(Method::GET, &templates, None).await.json();
    assert_eq!(listed["data"][0]["id"], tid.as_str());
    let renamed = t
        .admin(
            Method::PATCH,
            &format!("{templates}/{tid}"),
            Some(json!({"name": "Gold pack"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.json()["data"]["name"], "Gold pack");
    assert_eq!(
        renamed.json()["data"]["features"][0]["max_consumptions"],
        50
    );

    let from_template = json!({"template_id": tid, "count": 3, "metadata": {"tier": "platinum"}});
    let made = create(&t, "/api/v1/licenses/bulk", Some("tpl-1"), &from_template).await;
    assert_eq!(
        made.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&made.bytes)
    );
    let made = made.json();
    let first = &made["data"][0]["license"];
    assert_eq!(first["policy_id"], policy.as_str());
    assert_eq!(
        first["metadata"],
        json!({"channel": "reseller", "tier": "platinum"}),
        "the request's metadata wins"
    );
    let lid = first["id"].as_str().unwrap();
    let assigned = t
        .admin(
            Method::GET,
            &format!("/api/v1/licenses/{lid}/features"),
            None,
        )
        .await
        .json();
    assert_eq!(assigned["data"][0]["feature_code"], "units");
    assert_eq!(
        assigned["data"][0]["max_consumptions"], 50,
        "the template's quota"
    );
    let mismatch = create(
        &t,
        "/api/v1/licenses/bulk",
        Some("tpl-2"),
        &json!({"template_id": tid, "count": 1, "policy_id": "pol_0000000000000000000000000"}),
    )
    .await;
    assert_error(&mismatch, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let gone = t
        .admin(Method::DELETE, &format!("{templates}/{tid}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = create(&t, "/api/v1/licenses/bulk", Some("tpl-3"), &from_template).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let doc = t
        .admin(Method::GET, "/api/v1/openapi.json", None)
        .await
        .json();
    assert_eq!(
        doc["paths"]["/api/v1/licenses/bulk"]["post"]["x-licentia-extension"],
        true
    );
    for (path, method) in [
        ("/api/v1/products/{id}/license-templates", "post"),
        ("/api/v1/products/{id}/license-templates", "get"),
        (
            "/api/v1/products/{id}/license-templates/{template_id}",
            "get",
        ),
        (
            "/api/v1/products/{id}/license-templates/{template_id}",
            "patch",
        ),
        (
            "/api/v1/products/{id}/license-templates/{template_id}",
            "delete",
        ),
    ] {
        assert_eq!(
            doc["paths"][path][method]["x-licentia-extension"], true,
            "{path} {method}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_licenses_memory_backend() {
    bulk_licenses(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_licenses_postgres_backend() {
    bulk_licenses(licentia_storage_postgres::testing::fresh_store().await).await;
}
