//! Release artifacts and entitled downloads over HTTP (extensions): files uploaded to the
//! filesystem store (raw or base64) or referenced by URL, a signed manifest per version for
//! an activated device, short-lived download tokens, range requests, expired and forged
//! tokens, and a version past the license's eligibility. On both backends.

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, assert_error, send};
use licentia_core::crypto::{PublicKeySet, Unverified};
use licentia_core::model::{DownloadGrant, ManifestData};
use licentia_core::store::Store;
use licentia_server::config::ArtifactConfig;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

fn config(dir: &std::path::Path, download_ttl_secs: u64) -> Config {
    Config {
        rate_limits: None,
        artifacts: ArtifactConfig {
            url: format!("file://{}", dir.display()),
            download_ttl_secs,
            upload_limit: 64 * 1024,
            ..ArtifactConfig::default()
        },
        ..Config::default()
    }
}

fn data(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()["data"].clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn upload_raw(t: &TestApp, uri: &str, query: &str, bytes: Vec<u8>) -> Reply {
    let auth = t.bearer();
    send(
        &t.router,
        Method::POST,
        &format!("{uri}?{query}"),
        Some(&auth),
        &[("content-type", "application/octet-stream")],
        Some(bytes),
    )
    .await
}

async fn get(t: &TestApp, uri: &str, auth: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    send(&t.router, Method::GET, uri, auth, headers, None).await
}

async fn artifacts<S: Store + Clone + 'static>(store: S) {
    let dir = std::env::temp_dir().join(format!(
        "licentia-artifacts-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let t = TestApp::of(&App::start(store.clone(), config(&dir, 300)).await.unwrap()).await;
    let (license, key) = t.license().await;
    let l = t
        .admin(Method::GET, &format!("/api/v1/licenses/{license}"), None)
        .await
        .json();
    let product = l["data"]["product_id"].as_str().unwrap().to_owned();
    let policy = l["data"]["policy_id"].as_str().unwrap().to_owned();
    let versions = format!("/api/v1/products/{product}/versions");
    let v1 = t
        .admin(
            Method::POST,
            &versions,
            Some(json!({"version": "1.0.0", "released_at": "2026-01-01T00:00:00Z"})),
        )
        .await;
    let v1 = id(&data(&v1, StatusCode::CREATED));
    let v2 = t
        .admin(
            Method::POST,
            &versions,
            Some(json!({"version": "2.0.0", "released_at": "2026-06-01T00:00:00Z"})),
        )
        .await;
    let v2 = id(&data(&v2, StatusCode::CREATED));
    let files = |v: &str| format!("/api/v1/products/{product}/versions/{v}/artifacts");

    // Uploads: raw bytes, base64 in JSON, or a reference; bad input is 4xx.
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let linux = upload_raw(
        &t,
        &files(&v1),
        "name=app&filename=app-linux.tar.gz&platform=linux&arch=x86_64&content_type=application/gzip",
        bytes.clone(),
    )
    .await;
    let linux = data(&linux, StatusCode::CREATED);
    assert_eq!(linux["size"], 3000);
    assert_eq!(linux["source"]["kind"], "stored");
    let small = t
        .admin(
            Method::POST,
            &files(&v1),
            Some(
                json!({"name": "readme", "filename": "README.txt", "content_type": "text/plain",
                        "content_base64": "aGVsbG8K"}),
            ),
        )
        .await;
    let small = data(&small, StatusCode::CREATED);
    assert_eq!(
        small["sha256"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    let external = t
        .admin(
            Method::POST,
            &files(&v1),
            Some(
                json!({"name": "app", "filename": "app.dmg", "platform": "macos",
                        "url": "https://cdn.example.com/app.dmg", "size": 10,
                        "sha256": "AB".repeat(32)}),
            ),
        )
        .await;
    let external = data(&external, StatusCode::CREATED);
    assert_eq!(
        external["sha256"],
        "ab".repeat(32),
        "normalised to lowercase"
    );
    let on_v2 = upload_raw(&t, &files(&v2), "name=app&filename=app2.bin", vec![7; 100]).await;
    let on_v2 = data(&on_v2, StatusCode::CREATED);
    for bad in [
        json!({"name": "x", "filename": "../etc/passwd", "content_base64": "aGk="}),
        json!({"name": "x", "filename": "x.bin"}),
        json!({"name": "x", "filename": "x.bin", "content_base64": "aGk=", "url": "https://x/y"}),
        json!({"name": "x", "filename": "x.bin", "url": "ftp://x/y", "size": 1, "sha256": "ab".repeat(32)}),
        json!({"name": "x", "filename": "x.bin", "url": "https://x/y"}),
        json!({"name": "x", "filename": "x.bin", "url": "https://x/ÿ", "size": 1, "sha256": "ab".repeat(32)}),
        json!({"name": "x", "filename": "x.bin", "content_type": "text/plain; charset=ÿ", "content_base64": "aGk="}),
        json!({"name": "x", "filename": "x.bin", "content_base64": "not base64!"}),
        json!({"name": "x", "filename": "x.bin", "content_base64": "aGk=", "size": 5}),
    ] {
        let r = t.admin(Method::POST, &files(&v1), Some(bad.clone())).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    }
    let r = upload_raw(
        &t,
        &files(&v1),
        "name=big&filename=big.bin",
        vec![0; 70 * 1024],
    )
    .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    // Without a token a raw upload is refused before its body is read.
    let r = send(
        &t.router,
        Method::POST,
        &format!("{}?name=x&filename=x.bin", files(&v1)),
        None,
        &[("content-type", "application/octet-stream")],
        Some(vec![0; 60 * 1024]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = upload_raw(&t, &files(&v1), "filename=x.bin", vec![1]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_QUERY");
    let r = upload_raw(&t, &files("ver_missing"), "name=x&filename=x.bin", vec![1]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let listed = t.admin(Method::GET, &files(&v1), None).await;
    let listed = data(&listed, StatusCode::OK);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-linux.tar.gz", "app.dmg", "README.txt"]);

    // The manifest: for an activated device, signed, listing the version's files.
    let lic = format!("License {key}");
    let on = t
        .runtime(
            "activate",
            &key,
            Some("dev-1-on"),
            &json!({"fingerprint": "dev-1"}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK);
    let keys = t
        .admin(Method::GET, "/api/v1/system/public-keys", None)
        .await
        .json();
    let keys = PublicKeySet::from_json(keys["data"].to_string().as_bytes()).unwrap();
    let m = get(
        &t,
        "/api/v1/license/manifests/1.0.0?fingerprint=dev-1",
        Some(&lic),
        &[],
    )
    .await;
    assert_eq!(
        m.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&m.bytes)
    );
    let manifest = Unverified::<ManifestData>::from_envelope_json(&m.bytes)
        .unwrap()
        .verify(&keys)
        .expect("the manifest is signed")
        .into_data();
    assert_eq!(manifest.version, "1.0.0");
    assert_eq!(manifest.license_id.as_str(), license);
    assert_eq!(manifest.artifacts.len(), 3);
    assert!(
        !String::from_utf8_lossy(&m.bytes).contains("cdn.example.com"),
        "no store path or URL is in the manifest"
    );
    let r = get(
        &t,
        "/api/v1/license/manifests/1.0.0?fingerprint=dev-2",
        Some(&lic),
        &[],
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND, "DEVICE_NOT_ACTIVATED");
    let r = get(
        &t,
        "/api/v1/license/manifests/9.9.9?fingerprint=dev-1",
        Some(&lic),
        &[],
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "VERSION_UNKNOWN");
    let r = get(
        &t,
        "/api/v1/license/manifests/1.0.0?fingerprint=dev-1",
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A grant, then the bytes: whole, one range, a range past the end.
    let grant = |artifact: &str| {
        let body = json!({"artifact_id": artifact, "fingerprint": "dev-1"});
        let lic = lic.clone();
        let router = t.router.clone();
        async move {
            send(
                &router,
                Method::POST,
                "/api/v1/license/downloads",
                Some(&lic),
                &[],
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await
        }
    };
    let g = grant(&id(&linux)).await;
    assert_eq!(
        g.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&g.bytes)
    );
    let granted: DownloadGrant = Unverified::from_envelope_json(&g.bytes)
        .unwrap()
        .verify(&keys)
        .expect("the grant is signed")
        .into_data();
    assert_eq!(granted.sha256, linux["sha256"].as_str().unwrap());
    let whole = get(&t, &granted.url, None, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.bytes, bytes, "the bytes uploaded");
    assert_eq!(
        whole.headers.get("content-type").unwrap(),
        "application/gzip"
    );
    assert_eq!(whole.headers.get("accept-ranges").unwrap(), "bytes");
    assert_eq!(
        whole.headers.get("content-disposition").unwrap(),
        "attachment; filename=\"app-linux.tar.gz\""
    );
    let part = get(&t, &granted.url, None, &[("range", "bytes=1000-1099")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes, bytes[1000..1100]);
    assert_eq!(
        part.headers.get("content-range").unwrap(),
        "bytes 1000-1099/3000"
    );
    let tail = get(&t, &granted.url, None, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.bytes, bytes[2990..]);
    let past = get(&t, &granted.url, None, &[("range", "bytes=3000-")]).await;
    assert_error(
        &past,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_NOT_SATISFIABLE",
    );
    assert_eq!(past.headers.get("content-range").unwrap(), "bytes */3000");

    // An external artifact redirects; a forged token is unknown.
    let g = grant(&id(&external)).await;
    let url = data(&g, StatusCode::OK)["url"].as_str().unwrap().to_owned();
    let r = get(&t, &url, None, &[]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers.get("location").unwrap(),
        "https://cdn.example.com/app.dmg"
    );
    let mut forged = granted.url.clone();
    forged.pop();
    forged.push(if granted.url.ends_with('A') { 'B' } else { 'A' });
    let r = get(&t, &forged, None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&t, "/api/v1/downloads/not-a-token", None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = grant("art_missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A license whose maintenance ended before 2.0.0 was released: 1.0.0 yes, 2.0.0 no.
    let old = t
        .admin(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"product_id": product, "policy_id": policy,
                        "maintenance_expires_at": "2026-03-01T00:00:00Z"})),
        )
        .await;
    let old_key = data(&old, StatusCode::CREATED)["license_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let on = t
        .runtime(
            "activate",
            &old_key,
            Some("old-on"),
            &json!({"fingerprint": "old-1"}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK);
    let old_lic = format!("License {old_key}");
    let ok = get(
        &t,
        "/api/v1/license/manifests/1.0.0?fingerprint=old-1",
        Some(&old_lic),
        &[],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let r = get(
        &t,
        "/api/v1/license/manifests/2.0.0?fingerprint=old-1",
        Some(&old_lic),
        &[],
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "VERSION_NOT_ENTITLED");
    let r = send(
        &t.router,
        Method::POST,
        "/api/v1/license/downloads",
        Some(&old_lic),
        &[],
        Some(
            serde_json::to_vec(&json!({"artifact_id": id(&on_v2), "fingerprint": "old-1"}))
                .unwrap(),
        ),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "VERSION_NOT_ENTITLED");

    // Every download is an event.
    let events = t
        .admin(
            Method::GET,
            "/api/v1/events?event_type=artifact.downloaded&limit=50",
            None,
        )
        .await
        .json();
    assert_eq!(
        events["data"].as_array().unwrap().len(),
        4,
        "whole, part, tail, redirect"
    );

    // A token past its expiry (an instance that grants for 0 s) is refused.
    let instant = App::start(store, config(&dir, 0)).await.unwrap();
    let quick = TestApp {
        router: licentia_server::router(instant),
        admin: t.admin.clone(),
    };
    let g = send(
        &quick.router,
        Method::POST,
        "/api/v1/license/downloads",
        Some(&lic),
        &[],
        Some(
            serde_json::to_vec(&json!({"artifact_id": id(&small), "fingerprint": "dev-1"}))
                .unwrap(),
        ),
    )
    .await;
    let url = data(&g, StatusCode::OK)["url"].as_str().unwrap().to_owned();
    let r = get(&quick, &url, None, &[]).await;
    assert_error(&r, StatusCode::NOT_FOUND, "DOWNLOAD_EXPIRED");
    let _ = std::fs::remove_dir_all(dir);
}

fn rand_suffix() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_memory_backend() {
    artifacts(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_postgres_backend() {
    artifacts(licentia_storage_postgres::testing::fresh_store().await).await;
}
