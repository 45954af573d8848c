//! Runtime refusals are signed: 403, 404, 409 and 422 from the runtime operations carry a
//! signature over the exact bytes of `error` that verifies against the published keys; a
//! forged or stripped refusal does not. 400 and 401 are not decisions and are not signed.

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, app, send};
use licentia_core::crypto::{PublicKeySet, Refusal, Unverified, VerifyError};
use serde_json::json;

async fn keys(t: &TestApp) -> PublicKeySet {
    let r = t
        .admin(Method::GET, "/api/v1/system/public-keys", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    PublicKeySet::from_json(r.json()["data"].to_string().as_bytes()).unwrap()
}

fn verified(r: &Reply, keys: &PublicKeySet) -> Refusal {
    Unverified::<Refusal>::from_refusal_json(&r.bytes)
        .unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(&r.bytes)))
        .verify(keys)
        .unwrap()
        .into_data()
}

#[tokio::test]
async fn runtime_refusals_are_signed_and_forgeries_fail() {
    let t = app().await;
    let keys = keys(&t).await;
    let (_, key) = t.license().await;
    for (i, fp) in ["fp-1", "fp-2"].iter().enumerate() {
        let r = t
            .runtime(
                "activate",
                &key,
                Some(&format!("a{i}")),
                &json!({"fingerprint": fp}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // 403: the policy allows two activations.
    let full = t
        .runtime(
            "activate",
            &key,
            Some("a3"),
            &json!({"fingerprint": "fp-3"}),
        )
        .await;
    assert_eq!(full.status, StatusCode::FORBIDDEN);
    let refusal = verified(&full, &keys);
    assert_eq!(refusal.code, "ACTIVATION_LIMIT_REACHED");
    assert_eq!(
        refusal.code,
        full.code(),
        "the signed error is the error sent"
    );
    // 404: a device never activated.
    let unknown = t
        .runtime("validate", &key, None, &json!({"fingerprint": "fp-9"}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(verified(&unknown, &keys).code, "DEVICE_NOT_ACTIVATED");
    // 409: an Idempotency-Key reused with another request.
    let reused = t
        .runtime(
            "activate",
            &key,
            Some("a0"),
            &json!({"fingerprint": "fp-other"}),
        )
        .await;
    assert_eq!(reused.status, StatusCode::CONFLICT);
    assert_eq!(verified(&reused, &keys).code, reused.code());
    // 422: an app_version that is not semver.
    let invalid = t
        .runtime(
            "validate",
            &key,
            None,
            &json!({"fingerprint": "fp-1", "app_version": "not-a-version"}),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&invalid.bytes)
    );
    assert_eq!(verified(&invalid, &keys).code, invalid.code());

    // A forged code does not verify; a stripped signature is not a signed refusal.
    let text = String::from_utf8(full.bytes.clone()).unwrap();
    let forged = text.replace("ACTIVATION_LIMIT_REACHED", "LICENSE_REVOKED");
    assert_eq!(
        Unverified::<Refusal>::from_refusal_json(forged.as_bytes())
            .unwrap()
            .verify(&keys)
            .unwrap_err(),
        VerifyError::BadSignature
    );
    let mut stripped: serde_json::Value = full.json();
    stripped.as_object_mut().unwrap().remove("signature");
    assert_eq!(
        Unverified::<Refusal>::from_refusal_json(stripped.to_string().as_bytes()).unwrap_err(),
        VerifyError::Malformed
    );
}

#[tokio::test]
async fn malformed_requests_and_bad_credentials_are_not_signed() {
    let t = app().await;
    let (_, key) = t.license().await;
    let bad_json = send(
        &t.router,
        Method::POST,
        "/api/v1/license/validate",
        Some(&format!("License {key}")),
        &[],
        Some(b"{".to_vec()),
    )
    .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert!(bad_json.json().get("signature").is_none());
    let no_key = t
        .runtime(
            "validate",
            "LIC-NOPE-NOPE-NOPE",
            None,
            &json!({"fingerprint": "x"}),
        )
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    assert!(no_key.json().get("signature").is_none());
    // Management refusals are not signed either.
    let missing = t
        .admin(Method::GET, "/api/v1/licenses/lic_nope", None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json().get("signature").is_none());
}
