//! Replays, request ids, body-less POSTs, query datetimes, system endpoints and metrics.

mod common;

use axum::http::{Method, StatusCode};
use common::{app, send};
use serde_json::json;

#[tokio::test]
async fn idempotent_replay_is_byte_for_byte() {
    let t = app().await;
    let (_, key) = t.license().await;
    let body = json!({"fingerprint": "replay-device"});
    let first = t.runtime("activate", &key, Some("same-key"), &body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.headers.get("content-type").unwrap(),
        "application/json"
    );
    let second = t.runtime("activate", &key, Some("same-key"), &body).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        first.bytes, second.bytes,
        "the stored response, signature included"
    );
    assert_eq!(second.headers.get("idempotent-replayed").unwrap(), "true");
    assert_ne!(first.request_id(), second.request_id());
    let v = first.json();
    assert_eq!(v["signature"]["alg"], "Ed25519");
    assert!(v["meta"]["request_id"].is_string());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let t = app().await;
    let (_, key) = t.license().await;
    let replies = [
        send(&t.router, Method::GET, "/health", None, &[], None).await,
        send(&t.router, Method::GET, "/metrics", None, &[], None).await,
        send(&t.router, Method::GET, "/nowhere", None, &[], None).await,
        send(&t.router, Method::GET, "/api/v1/products", None, &[], None).await,
        t.admin(Method::GET, "/api/v1/products", None).await,
        t.runtime("validate", &key, None, &json!({"fingerprint": "nope"}))
            .await,
    ];
    for r in &replies {
        let id = r.request_id();
        assert!(id.starts_with("req_"), "{id}");
        if r.headers.get("content-type").unwrap().to_str().unwrap() == "application/json" {
            assert_eq!(r.json()["meta"]["request_id"].as_str(), Some(id));
        }
    }
    let r = send(
        &t.router,
        Method::GET,
        "/healthz",
        None,
        &[("x-request-id", "trace-abc.1")],
        None,
    )
    .await;
    assert_eq!(r.request_id(), "trace-abc.1");
    assert_eq!(r.json()["meta"]["request_id"], "trace-abc.1");
    let r = send(
        &t.router,
        Method::GET,
        "/healthz",
        None,
        &[("x-request-id", "bad id!")],
        None,
    )
    .await;
    assert!(
        r.request_id().starts_with("req_"),
        "an invalid incoming id is replaced"
    );
    // Runtime signed responses echo it in meta as well.
    let r = t
        .runtime("activate", &key, Some("rid"), &json!({"fingerprint": "d"}))
        .await;
    assert_eq!(
        r.json()["meta"]["request_id"].as_str(),
        Some(r.request_id())
    );
}

#[tokio::test]
async fn bodyless_posts_and_python_query_datetimes_are_accepted() {
    let t = app().await;
    let (id, key) = t.license().await;
    for op in ["suspend", "reinstate"] {
        // No Content-Type and no body, as the Python SDK sends them.
        let r = send(
            &t.router,
            Method::POST,
            &format!("/api/v1/licenses/{id}/{op}"),
            Some(&t.bearer()),
            &[],
            None,
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{op}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
    }
    let a = t
        .runtime("activate", &key, Some("a"), &json!({"fingerprint": "dev"}))
        .await;
    let device = a.json()["data"]["device_id"].as_str().unwrap().to_owned();
    let r = send(
        &t.router,
        Method::POST,
        &format!("/api/v1/licenses/{id}/devices/{device}/reset"),
        Some(&t.bearer()),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let r = t
        .admin(
            Method::GET,
            "/api/v1/licenses?expires_after=2026-01-01T00:00:00.123456%2B00:00&limit=5",
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
}

#[tokio::test]
async fn management_statuses_follow_the_contract() {
    let t = app().await;
    let r = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name": "P", "code": "p"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let pid = r.json()["data"]["id"].as_str().unwrap().to_owned();
    let r = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/products/{pid}"),
            Some(json!({"name": "Q"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["data"]["name"], "Q");
    let r = t
        .admin(Method::DELETE, &format!("/api/v1/products/{pid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.bytes.is_empty());
    let r = t.admin(Method::GET, "/api/v1/events?limit=2", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["page_info"].get("next_cursor").is_some());
}

#[tokio::test]
async fn system_endpoints() {
    let t = app().await;
    for path in ["/health", "/healthz"] {
        let r = send(&t.router, Method::GET, path, None, &[], None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["data"]["status"], "ok");
    }
    let r = send(&t.router, Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["data"]["status"], "ready");
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/system/public-keys",
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let keys = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["algorithm"], "Ed25519");
    assert_eq!(keys[0]["status"], "active");
}

#[tokio::test]
async fn metrics_count_requests_and_runtime_decisions() {
    let t = app().await;
    let (_, key) = t.license().await;
    t.runtime("activate", &key, Some("m1"), &json!({"fingerprint": "m"}))
        .await;
    t.runtime("validate", &key, None, &json!({"fingerprint": "never"}))
        .await;
    let r = send(&t.router, Method::GET, "/metrics", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(r.bytes).unwrap();
    for needle in [
        "licentia_http_requests_total{method=\"POST\",route=\"/api/v1/license/activate\",status=\"200\"}",
        "licentia_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/license/activate\",status=\"200\"",
        "# HELP licentia_http_requests_total ",
        "# TYPE licentia_http_request_duration_seconds histogram",
        "licentia_build_info{version=",
        "process_",
        "licentia_runtime_decisions_total{operation=\"activate\",code=\"OK\"}",
        "licentia_runtime_decisions_total{operation=\"validate\",code=\"DEVICE_NOT_ACTIVATED\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
