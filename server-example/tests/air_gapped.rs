//! Air-gapped activation over HTTP (an extension): a device's request file posted by
//! management (`POST /api/v1/licenses/{id}/offline-activations`) takes a seat and answers the
//! device's envelope file, which opens offline with the license key; posting it again answers
//! the same bytes; a release file signed by the device (`POST …/offline-releases`) frees the
//! seat. On both backends.

mod common;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::{TestApp, assert_error};
use licentia_core::crypto::air_gap::{
    ActivationRequestFile, OfflineActivationFile, ReleaseFile, ReleaseKey, air_gapped_seal_secret,
};
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, LicenseKey, PublicKeySet, VerifiedOffline, open,
};
use licentia_core::model::RuntimeBindingRequest;
use licentia_core::store::Store;
use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

type Rng = rand_core::UnwrapErr<getrandom::SysRng>;

fn rng() -> Rng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// A device's request file for `fp` under `key` written at `when`, and its release key.
fn request_file(
    key: &str,
    fp: &str,
    when: chrono::DateTime<Utc>,
) -> (ActivationRequestFile, ReleaseKey) {
    let release = ReleaseKey::generate(&mut rng());
    let key = LicenseKey::parse(key).unwrap();
    let file = ActivationRequestFile::new(&key, device(fp), &release, &mut rng(), when);
    (file, release)
}

/// Opens the envelope file as the device does: with the key's SHA-256, its binding, now.
fn open_file(
    file: &OfflineActivationFile,
    key: &str,
    keys: &PublicKeySet,
    fp: &str,
) -> Result<VerifiedOffline, licentia_core::crypto::OfflineError> {
    open(
        &file.envelope,
        &air_gapped_seal_secret(key),
        keys,
        fp,
        Utc::now(),
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
}

fn device(fp: &str) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fp.into()),
        ..Default::default()
    }
}

async fn air_gapped<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let t = TestApp::of(&App::start(store, config).await.unwrap()).await;
    let (id, key) = t.license().await;
    let activations = format!("/api/v1/licenses/{id}/offline-activations");
    let releases = format!("/api/v1/licenses/{id}/offline-releases");
    let post = async |uri: &str, body: Value| t.admin(Method::POST, uri, Some(body)).await;

    // Refused under a policy without offline licenses; then allowed.
    let (request, release_key) = request_file(&key, "plant-1", Utc::now());
    let file = serde_json::to_value(&request).unwrap();
    assert!(
        !file.to_string().contains(&key),
        "the request does not carry the key"
    );
    let license = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await
        .json();
    let policy = format!(
        "/api/v1/policies/{}",
        license["data"]["policy_id"].as_str().unwrap()
    );
    let off = t
        .admin(
            Method::PATCH,
            &policy,
            Some(json!({"allow_offline_activation": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    let refused = post(&activations, file.clone()).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "OFFLINE_NOT_ALLOWED");
    let on = t
        .admin(
            Method::PATCH,
            &policy,
            Some(json!({"allow_offline_activation": true, "offline_grace_days": 14})),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK);

    // Bad files: another key, the future, stale, malformed, unknown members.
    let other = LicenseKey::generate(&mut rng());
    let (foreign, _) = request_file(other.expose_secret(), "plant-1", Utc::now());
    let r = post(&activations, serde_json::to_value(&foreign).unwrap()).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    for when in [
        Utc::now() + Duration::hours(1),
        Utc::now() - Duration::days(31),
    ] {
        let (dated, _) = request_file(&key, "plant-1", when);
        let r = post(&activations, serde_json::to_value(&dated).unwrap()).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    }
    let mut malformed = file.clone();
    malformed["release_key"] = json!("AAAA");
    let r = post(&activations, malformed).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let mut extra = file.clone();
    extra["license_key"] = json!(key);
    assert_eq!(
        post(&activations, extra).await.status,
        StatusCode::BAD_REQUEST
    );

    // The request takes a seat and answers the envelope file.
    let answered = post(&activations, file.clone()).await;
    assert_eq!(
        answered.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answered.bytes)
    );
    let envelope: OfflineActivationFile =
        serde_json::from_value(answered.json()["data"].clone()).unwrap();
    let again = post(&activations, file.clone()).await;
    assert_eq!(
        again.bytes, answered.bytes,
        "the same file answers the same bytes"
    );
    let mut changed = file.clone();
    changed["binding"]["fingerprint"] = json!("plant-2");
    let r = post(&activations, changed).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "one nonce, one request");

    let keys = t
        .admin(Method::GET, "/api/v1/system/public-keys", None)
        .await
        .json();
    let keys = PublicKeySet::from_json(keys["data"].to_string().as_bytes()).unwrap();
    let opened = open_file(&envelope, &key, &keys, "plant-1")
        .expect("the device opens its envelope offline");
    assert_eq!(opened.data().entitlement.device_id, envelope.device_id);
    assert!(
        open_file(&envelope, &key, &keys, "plant-2").is_err(),
        "bound to the device"
    );
    assert!(
        opened.data().offline_expires_at.get() > Utc::now() + Duration::days(13),
        "the policy's offline window"
    );
    let devices = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}/devices"), None)
        .await
        .json();
    assert_eq!(
        devices["data"][0]["status"], "active",
        "the seat is counted"
    );
    let license = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await
        .json();
    assert_eq!(license["data"]["active_device_count"], 1);

    // A release signed by another key is refused; the device's frees the seat, once.
    let stranger = ReleaseKey::generate(&mut rng());
    let forged = ReleaseFile::sign(
        &stranger,
        envelope.license_id.clone(),
        envelope.device_id.clone(),
        Utc::now(),
    )
    .unwrap();
    let r = post(&releases, serde_json::to_value(&forged).unwrap()).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let release = ReleaseFile::sign(
        &release_key,
        envelope.license_id.clone(),
        envelope.device_id.clone(),
        Utc::now(),
    )
    .unwrap();
    let released = post(&releases, serde_json::to_value(&release).unwrap()).await;
    assert_eq!(
        released.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&released.bytes)
    );
    assert_eq!(released.json()["data"]["status"], "deactivated");
    let twice = post(&releases, serde_json::to_value(&release).unwrap()).await;
    assert_eq!(
        twice.status,
        StatusCode::OK,
        "releasing twice changes nothing"
    );
    let license = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await
        .json();
    assert_eq!(
        license["data"]["active_device_count"], 0,
        "the seat is free"
    );
    let mut elsewhere = serde_json::to_value(&release).unwrap();
    elsewhere["device_id"] = json!("dev_0000000000000000000000000");
    assert_eq!(
        post(&releases, elsewhere).await.status,
        StatusCode::NOT_FOUND
    );

    let events = t
        .admin(
            Method::GET,
            "/api/v1/events?resource_type=device&limit=50",
            None,
        )
        .await
        .json();
    let reasons: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "device.deactivated")
        .map(|e| &e["metadata"]["reason"])
        .collect();
    assert_eq!(reasons, [&json!("release_file")]);

    let doc = t
        .admin(Method::GET, "/api/v1/openapi.json", None)
        .await
        .json();
    for path in [
        "/api/v1/licenses/{id}/offline-activations",
        "/api/v1/licenses/{id}/offline-releases",
    ] {
        assert_eq!(
            doc["paths"][path]["post"]["x-licentia-extension"], true,
            "{path}"
        );
        assert_eq!(
            doc["paths"][path]["post"]["x-required-scopes"],
            json!(["device:write"])
        );
    }
}

#[tokio::test]
async fn air_gapped_memory_backend() {
    air_gapped(MemoryStore::new()).await;
}

#[tokio::test]
async fn air_gapped_postgres_backend() {
    air_gapped(licentia_storage_postgres::testing::fresh_store().await).await;
}
