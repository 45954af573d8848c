//! Telemetry over HTTP (an extension): `POST /api/v1/license/telemetry` stores any JSON
//! object up to 16 KiB with the license key, flagged against the documented schema with the
//! reasons when it does not follow it; `GET /api/v1/licenses/{id}/telemetry` pages it newest
//! first. On both backends.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::json;

async fn telemetry<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let (id, key) = t.license().await;

    let good = t
        .runtime(
            "telemetry",
            &key,
            None,
            &json!({"event": "app.started", "app_version": "2.4.1", "fingerprint": "fp-1",
                    "properties": {"locale": "de", "screens": 2}}),
        )
        .await;
    assert_eq!(
        good.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&good.bytes)
    );
    let g = good.json();
    assert_eq!(g["data"]["well_formed"], true);
    assert_eq!(g["data"]["problems"], json!([]));
    assert_eq!(g["data"]["license_id"], id);
    assert_eq!(
        g["data"]["payload"]["properties"]["screens"], 2,
        "stored as sent"
    );
    assert!(g["data"]["id"].as_str().unwrap().starts_with("tel_"));
    assert!(
        g.get("signature").is_none(),
        "telemetry decides nothing: not signed"
    );

    // Not by the schema: stored anyway, flagged, with every reason.
    let odd = t
        .runtime(
            "telemetry",
            &key,
            None,
            &json!({"event": "App Started", "occurred_at": "soon", "cpu": 93}),
        )
        .await;
    assert_eq!(odd.status, StatusCode::CREATED);
    let o = odd.json();
    assert_eq!(o["data"]["well_formed"], false);
    let problems: Vec<&str> = o["data"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("occurred_at")));
    assert!(problems.contains(&"unknown member \"cpu\""));

    // Not an object, too large, or no license: refused, nothing stored.
    let list = t
        .runtime("telemetry", &key, None, &json!(["event", "x"]))
        .await;
    assert_eq!(list.status, StatusCode::BAD_REQUEST);
    let big = json!({"event": "dump", "properties": {"blob": "x".repeat(17 * 1024)}});
    let big = t.runtime("telemetry", &key, None, &big).await;
    assert_error(&big, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let stranger = t
        .runtime(
            "telemetry",
            "lsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
            &json!({"event": "x"}),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);

    // Paged newest first by cursor.
    let uri = format!("/api/v1/licenses/{id}/telemetry");
    let first = t.admin(Method::GET, &format!("{uri}?limit=1"), None).await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&first.bytes)
    );
    let f = first.json();
    assert_eq!(f["data"].as_array().unwrap().len(), 1);
    assert_eq!(f["data"][0]["id"], o["data"]["id"], "newest first");
    let cursor = f["page_info"]["next_cursor"]
        .as_str()
        .expect("another page")
        .to_owned();
    let second = t
        .admin(Method::GET, &format!("{uri}?limit=1&cursor={cursor}"), None)
        .await
        .json();
    assert_eq!(second["data"][0]["id"], g["data"]["id"]);
    assert!(
        second["page_info"]["next_cursor"].is_null(),
        "the last page"
    );
    // No bytes read as {} (as every body here): stored, flagged.
    let empty = common::send(
        &t.router,
        Method::POST,
        "/api/v1/license/telemetry",
        Some(&format!("License {key}")),
        &[],
        None,
    )
    .await;
    assert_eq!(empty.status, StatusCode::CREATED);
    assert_eq!(
        empty.json()["data"]["problems"],
        json!(["event is required"])
    );

    let bad = t
        .admin(Method::GET, &format!("{uri}?cursor=evt_1"), None)
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_QUERY");
    let missing = t
        .admin(Method::GET, "/api/v1/licenses/lic_nope/telemetry", None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = common::send(&t.router, Method::GET, &uri, None, &[], None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let doc = t
        .admin(Method::GET, "/api/v1/openapi.json", None)
        .await
        .json();
    for (path, method) in [
        ("/api/v1/license/telemetry", "post"),
        ("/api/v1/licenses/{id}/telemetry", "get"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["x-licentia-extension"], true,
            "{path}"
        );
    }
}

#[tokio::test]
async fn telemetry_memory_backend() {
    telemetry(MemoryStore::new()).await;
}

#[tokio::test]
async fn telemetry_postgres_backend() {
    telemetry(licentia_storage_postgres::testing::fresh_store().await).await;
}
