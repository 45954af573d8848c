//! What the admin console relies on beyond the v1 core, on both backends: the console's own
//! pages and their headers, `GET /api/v1/system/token`, the key search on `listLicenses` and
//! `GET /api/v1/licenses/{id}/leases`.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error, send};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

async fn test_app<S: Store + 'static>(store: S) -> TestApp {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    TestApp::of(&App::start(store, config).await.unwrap()).await
}

async fn as_token(t: &TestApp, token: &str, uri: &str) -> common::Reply {
    let auth = format!("Bearer {token}");
    send(&t.router, Method::GET, uri, Some(&auth), &[], None).await
}

async fn console_pages_are_served_under_a_strict_policy(t: &TestApp) {
    for (uri, kind) in [
        ("/console", "text/html"),
        ("/console/", "text/html"),
        ("/console/assets/app.js", "text/javascript"),
        ("/console/assets/app.css", "text/css"),
    ] {
        let r = send(&t.router, Method::GET, uri, None, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let header = |name: &str| {
            r.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{uri}");
        assert_eq!(
            header("content-security-policy"),
            licentia_server::console::CONTENT_SECURITY_POLICY,
            "{uri}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-frame-options"), "DENY");
    }
    let page = send(&t.router, Method::GET, "/console", None, &[], None).await;
    let html = String::from_utf8_lossy(&page.bytes);
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "no inline script or style in the page"
    );
    let missing = send(
        &t.router,
        Method::GET,
        "/console/assets/x.js",
        None,
        &[],
        None,
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND");
}

async fn a_token_reads_its_own_scopes(t: &TestApp) {
    let me = t.admin(Method::GET, "/api/v1/system/token", None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["data"]["scopes"], json!(["admin"]));
    let created = t
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["product:read"]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let token = created.json()["data"]["token"].as_str().unwrap().to_owned();
    let me = as_token(t, &token, "/api/v1/system/token").await;
    assert_eq!(me.status, StatusCode::OK);
    let data = &me.json()["data"];
    assert_eq!(data["name"], "reader");
    assert_eq!(data["scopes"], json!(["product:read"]));
    assert!(
        !String::from_utf8_lossy(&me.bytes).contains(&token),
        "the token itself is never returned"
    );
    let anonymous = send(
        &t.router,
        Method::GET,
        "/api/v1/system/token",
        None,
        &[],
        None,
    )
    .await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "MISSING_CREDENTIALS");
    let wrong = as_token(
        t,
        "lkm_NOTATOKENAAAAAAAAAAAAAAAAAAAAAA",
        "/api/v1/system/token",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // The reader may ask who it is, and nothing its scope does not grant.
    let leases = as_token(t, &token, "/api/v1/licenses/lic_x/leases").await;
    assert_error(&leases, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
}

async fn licenses_are_found_by_the_shown_key(t: &TestApp, id: &str, key: &str) {
    let ids = |v: Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let last4 = &key[key.len() - 4..];
    let prefix = &key[..8];
    for hint in [last4, prefix] {
        let r = t
            .admin(Method::GET, &format!("/api/v1/licenses?key={hint}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(ids(r.json()), [id], "key={hint}");
    }
    let none = t
        .admin(Method::GET, "/api/v1/licenses?key=lsk_NONE", None)
        .await;
    assert!(ids(none.json()).is_empty());
    // An empty hint filters nothing.
    let all = t.admin(Method::GET, "/api/v1/licenses?key=", None).await;
    assert_eq!(ids(all.json()), [id]);
}

async fn leases(t: &TestApp, license: &str) -> common::Reply {
    t.admin(
        Method::GET,
        &format!("/api/v1/licenses/{license}/leases"),
        None,
    )
    .await
}

async fn live_leases_are_listed_without_their_token(t: &TestApp, id: &str, key: &str) {
    assert_eq!(leases(t, id).await.json()["data"], json!([]));
    let out = t
        .runtime(
            "floating/checkout",
            key,
            Some("lease-1"),
            &json!({"fingerprint": "seat-1", "app_version": "1.0.0"}),
        )
        .await;
    assert_eq!(
        out.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&out.bytes)
    );
    let token = out.json()["data"]["lease_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = leases(t, id).await;
    assert_eq!(listed.status, StatusCode::OK);
    let rows = listed.json()["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["app_version"], "1.0.0");
    assert!(rows[0]["expires_at"].is_string() && rows[0]["device_id"].is_string());
    assert!(
        rows[0].get("token_hash").is_none(),
        "no token hash: {}",
        rows[0]
    );
    assert!(!String::from_utf8_lossy(&listed.bytes).contains(&token));
    let back = t
        .runtime(
            "floating/checkin",
            key,
            Some("lease-1-in"),
            &json!({"lease_token": token}),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(
        leases(t, id).await.json()["data"],
        json!([]),
        "checked in: gone"
    );
    let unknown = t
        .admin(Method::GET, "/api/v1/licenses/lic_nosuch/leases", None)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn all<S: Store + 'static>(store: S) {
    let t = test_app(store).await;
    console_pages_are_served_under_a_strict_policy(&t).await;
    a_token_reads_its_own_scopes(&t).await;
    let (id, key) = t.license().await;
    licenses_are_found_by_the_shown_key(&t, &id, &key).await;
    live_leases_are_listed_without_their_token(&t, &id, &key).await;
}

#[tokio::test]
async fn console_api_memory_backend() {
    all(MemoryStore::new()).await;
}

#[tokio::test]
async fn console_api_postgres_backend() {
    all(licentia_storage_postgres::testing::fresh_store().await).await;
}
