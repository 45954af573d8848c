//! The golden vectors of `core/tests/vectors/` (DESIGN 4), verified by this crate alone: every
//! signed answer and refusal, every offline envelope, and tampering refused.

use chrono::{DateTime, TimeDelta, Utc};
use licentia_verify::{
    DEFAULT_SKEW_TOLERANCE, KeyStatus, OfflineEnvelope, OfflineError, OfflineWindow, PublicKeySet,
    Refusal, Unverified, VerifyError, open,
};
use serde_json::Value;

const SIGNED: &str = include_str!("../../core/tests/vectors/signed.json");
const OFFLINE: &str = include_str!("../../core/tests/vectors/offline.json");

fn issued() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn set(v: &Value) -> PublicKeySet {
    let status: KeyStatus = serde_json::from_value(
        v.get("key_status")
            .cloned()
            .unwrap_or(Value::from("active")),
    )
    .unwrap();
    let mut keys = PublicKeySet::new();
    keys.insert(
        v["kid"].as_str().unwrap().into(),
        v["public_key"].as_str().unwrap(),
        status,
    )
    .unwrap();
    keys
}

fn envelope(member: &str, v: &Value) -> String {
    format!(
        r#"{{"{member}":{},"signature":{{"alg":"Ed25519","kid":"{}","value":"{}"}},"meta":{{}}}}"#,
        v["signed_bytes"].as_str().unwrap(),
        v["kid"].as_str().unwrap(),
        v["signature"].as_str().unwrap()
    )
}

#[test]
fn every_signed_vector_verifies_and_a_changed_byte_does_not() {
    let vectors: Vec<Value> = serde_json::from_str(SIGNED).unwrap();
    assert!(vectors.len() >= 6);
    for v in &vectors {
        let keys = set(v);
        let body = envelope("data", v);
        let verified = Unverified::<Value>::from_envelope_json(body.as_bytes())
            .unwrap()
            .verify(&keys)
            .unwrap_or_else(|e| panic!("{}: {e}", v["name"]));
        assert_eq!(
            verified.signed_bytes(),
            v["signed_bytes"].as_str().unwrap().as_bytes()
        );
        // The same JSON with one more space inside `data`: other bytes, no longer signed.
        let tampered = body.replacen("\"data\":{", "\"data\":{ ", 1);
        assert_ne!(tampered, body);
        assert_eq!(
            Unverified::<Value>::from_envelope_json(tampered.as_bytes())
                .unwrap()
                .verify(&keys)
                .unwrap_err(),
            VerifyError::BadSignature,
            "{}",
            v["name"]
        );
    }
}

#[test]
fn the_refusal_vector_verifies_as_a_refusal() {
    let vectors: Vec<Value> = serde_json::from_str(SIGNED).unwrap();
    let v = vectors
        .iter()
        .find(|v| v["name"] == "refusal_activation_limit")
        .unwrap();
    let refusal = Unverified::<Refusal>::from_refusal_json(envelope("error", v).as_bytes())
        .unwrap()
        .verify(&set(v))
        .unwrap();
    assert_eq!(refusal.data().code, "ACTIVATION_LIMIT_REACHED");
}

#[test]
fn every_offline_vector_opens_and_enforces_binding_window_and_watermark() {
    let vectors: Vec<Value> = serde_json::from_str(OFFLINE).unwrap();
    assert!(vectors.len() >= 2);
    for v in &vectors {
        let keys = set(v);
        let env: OfflineEnvelope = serde_json::from_value(v["envelope"].clone()).unwrap();
        let key = v["license_key"].as_str().unwrap();
        let binding = v["binding_key"].as_str().unwrap();
        let now = issued() + TimeDelta::hours(1);
        let opened =
            open::<OfflineWindow>(&env, key, &keys, binding, now, DEFAULT_SKEW_TOLERANCE, None)
                .unwrap_or_else(|e| panic!("{}: {e}", v["name"]));
        assert_eq!(opened.data().issued_at, issued());
        assert_eq!(opened.watermark(), now);
        let data: Value = serde_json::from_slice(opened.signed_bytes()).unwrap();
        assert_eq!(data, v["data"], "the signed bytes are the vector's data");

        let refused = |binding: &str, now, watermark| {
            open::<OfflineWindow>(
                &env,
                key,
                &keys,
                binding,
                now,
                DEFAULT_SKEW_TOLERANCE,
                watermark,
            )
            .unwrap_err()
        };
        assert_eq!(
            refused("fingerprint:other", now, None),
            OfflineError::BindingMismatch
        );
        let after = opened.data().offline_expires_at + TimeDelta::hours(1);
        assert_eq!(refused(binding, after, None), OfflineError::Expired);
        assert_eq!(
            refused(binding, now, Some(now + TimeDelta::hours(2))),
            OfflineError::ClockMovedBackwards
        );
        assert_eq!(
            open::<OfflineWindow>(
                &env,
                "lsk_WRONGWRONGWRONGWRONGWRONGWRONG2",
                &keys,
                binding,
                now,
                DEFAULT_SKEW_TOLERANCE,
                None
            )
            .unwrap_err(),
            OfflineError::DecryptionFailed
        );
    }
}
