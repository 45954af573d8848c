//! Every error class answers the `{error, meta}` envelope with a stable code.

mod common;

use axum::http::{Method, StatusCode};
use common::{app, app_with, assert_error, send};
use licentia_server::Config;
use serde_json::json;

const DEVICE: &str = r#"{"fingerprint":"dev-1"}"#;

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let t = app().await;
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/products",
        Some(&t.bearer()),
        &[],
        Some(b"{\"name\": ".to_vec()),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_JSON");
}

#[tokio::test]
async fn unknown_field_is_400_unknown_field() {
    let t = app().await;
    let r = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name": "A", "code": "a", "colour": "red"})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "UNKNOWN_FIELD");
    let (_, key) = t.license().await;
    let r = t
        .runtime(
            "validate",
            &key,
            None,
            &json!({"fingerprint": "x", "extra": 1}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "UNKNOWN_FIELD");
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_400() {
    let t = app().await;
    let r = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name": 5, "code": "a"})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_FIELD_TYPE");
    let r = t
        .admin(Method::POST, "/api/v1/products", Some(json!({"name": "A"})))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "MISSING_FIELD");
}

#[tokio::test]
async fn bodies_are_read_as_json_whatever_the_content_type() {
    let t = app().await;
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/products",
        Some(&t.bearer()),
        &[("content-type", "text/plain")],
        Some(b"name=A".to_vec()),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_JSON");
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/products",
        Some(&t.bearer()),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(br#"{"name":"A","code":"form-labelled"}"#.to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_query_values_are_400() {
    let t = app().await;
    let r = t
        .admin(Method::GET, "/api/v1/products?limit=many", None)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_QUERY");
    let r = t.admin(Method::GET, "/api/v1/events?cursor=0", None).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_QUERY");
}

#[tokio::test]
async fn missing_idempotency_key_is_400() {
    let t = app().await;
    let (_, key) = t.license().await;
    for op in ["activate", "deactivate", "floating/checkout"] {
        let r = t
            .runtime(op, &key, None, &serde_json::from_str(DEVICE).unwrap())
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED");
    }
    let r = t
        .runtime("floating/checkin", &key, None, &json!({"lease_token": "x"}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED");
    let r = t
        .runtime(
            "consume",
            &key,
            None,
            &json!({"fingerprint": "d", "feature_code": "f", "event_id": "e"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED");
}

#[tokio::test]
async fn credentials_missing_malformed_or_unknown_are_401() {
    let t = app().await;
    let r = send(&t.router, Method::GET, "/api/v1/products", None, &[], None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "MISSING_CREDENTIALS");
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/products",
        Some(&format!("Basic {}", t.admin)),
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "MALFORMED_CREDENTIALS");
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/products",
        Some("Bearer lkm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/products",
        Some("Bearer nonsense"),
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    // Runtime: no header, wrong scheme, unknown key.
    let body = Some(DEVICE.as_bytes().to_vec());
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/license/validate",
        None,
        &[],
        body.clone(),
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "MISSING_CREDENTIALS");
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/license/validate",
        Some("Basic lsk_x"),
        &[],
        body.clone(),
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "MALFORMED_CREDENTIALS");
    // Bearer is a license user's session on runtime calls (an extension): a license key
    // there is an unknown session.
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/license/validate",
        Some("Bearer lsk_x"),
        &[],
        body.clone(),
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let r = t
        .runtime(
            "validate",
            "lsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
            &json!({"fingerprint": "d"}),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn a_token_without_the_scope_is_403() {
    let t = app().await;
    let r = t
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["product:read"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let reader = format!("Bearer {}", r.json()["data"]["token"].as_str().unwrap());
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/products",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/products",
        Some(&reader),
        &[],
        Some(br#"{"name":"A","code":"a"}"#.to_vec()),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
    // The scope is checked before the body is read.
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/products",
        Some(&reader),
        &[],
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/api-keys",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
}

#[tokio::test]
async fn a_token_outside_its_cidrs_is_401() {
    let t = app().await;
    let r = t
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "office", "allowed_cidrs": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let office = format!("Bearer {}", r.json()["data"]["token"].as_str().unwrap());
    // oneshot requests have no peer address: refused.
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/products",
        Some(&office),
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn unknown_routes_resources_and_methods() {
    let t = app().await;
    let r = send(
        &t.router,
        Method::GET,
        "/api/v1/nothing-here",
        None,
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = t
        .admin(Method::GET, "/api/v1/products/prod_doesnotexist", None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = send(
        &t.router,
        Method::DELETE,
        "/api/v1/license/validate",
        None,
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn taken_codes_are_409() {
    let t = app().await;
    let body = json!({"name": "A", "code": "same"});
    assert_eq!(
        t.admin(Method::POST, "/api/v1/products", Some(body.clone()))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = t.admin(Method::POST, "/api/v1/products", Some(body)).await;
    assert_error(&r, StatusCode::CONFLICT, "ALREADY_EXISTS");
}

#[tokio::test]
async fn idempotency_key_reused_with_another_request_is_409() {
    let t = app().await;
    let (_, key) = t.license().await;
    let r = t
        .runtime("activate", &key, Some("k1"), &json!({"fingerprint": "a"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .runtime("activate", &key, Some("k1"), &json!({"fingerprint": "b"}))
        .await;
    assert_error(&r, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let t = app_with(Config {
        body_limit: 1024,
        ..Config::default()
    })
    .await;
    let big = format!(r#"{{"name":"{}","code":"a"}}"#, "x".repeat(4096));
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/products",
        Some(&t.bearer()),
        &[],
        Some(big.into_bytes()),
    )
    .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn rule_refusals_keep_their_code_and_status() {
    let t = app().await;
    let (id, key) = t.license().await;
    // Invalid input: a container binding without any identity.
    let r = t
        .runtime("activate", &key, Some("c1"), &json!({"is_container": true}))
        .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "CONTAINER_IDENTITY_REQUIRED",
    );
    assert!(r.json()["error"]["detail"].is_string());
    // Forbidden by state: a suspended license, for a device that is activated.
    let a = t
        .runtime("activate", &key, Some("a1"), &json!({"fingerprint": "a"}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let s = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{id}/suspend"),
            None,
        )
        .await;
    assert_eq!(s.status, StatusCode::OK);
    let r = t
        .runtime("validate", &key, None, &json!({"fingerprint": "a"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "LICENSE_SUSPENDED");
}

#[cfg(feature = "test-routes")]
#[tokio::test]
async fn a_panic_becomes_a_500_envelope() {
    let t = app().await;
    let r = send(
        &t.router,
        Method::GET,
        "/__test/panic",
        None,
        &[("x-request-id", "panic-1")],
        None,
    )
    .await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert_eq!(r.request_id(), "panic-1");
    // The server keeps serving.
    let r = send(&t.router, Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
}
