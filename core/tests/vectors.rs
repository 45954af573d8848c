//! Golden vectors (DESIGN 4): the checked-in files are exactly what the fixed seed produces,
//! and every vector verifies from its public data alone — once through this crate's API and
//! once through the raw primitives, following `tests/vectors/README.md` step by step.

mod golden;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::DateTime;
use ed25519_dalek::VerifyingKey;
use hkdf::Hkdf;
use licentia_core::crypto::{
    Algorithm, DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, PublicKeyInfo, PublicKeySet, Signature,
    Unverified, binding_sha256, open,
};
use licentia_core::model::{KeyStatus, OfflineEntitlementData, Timestamp};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::Sha256;

const SIGNED: &str = include_str!("vectors/signed.json");
const OFFLINE: &str = include_str!("vectors/offline.json");

fn load(text: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(text).unwrap()
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn key_set(kid: &str, public_key: &str, status: KeyStatus) -> PublicKeySet {
    licentia_core::crypto::key_set([PublicKeyInfo {
        kid: kid.into(),
        algorithm: Algorithm::Ed25519,
        public_key: public_key.into(),
        status,
        created_at: Timestamp::new(golden::now()),
        activates_at: None,
        product_id: None,
    }])
    .unwrap()
}

fn raw_verify(public_key: &str, message: &[u8], signature: &str) {
    let pk: [u8; 32] = B64.decode(public_key).unwrap().try_into().unwrap();
    let sig: [u8; 64] = B64.decode(signature).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&pk)
        .unwrap()
        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
}

#[test]
fn files_match_the_seed() {
    let g = golden::generate();
    assert_eq!(
        g.signed_json(),
        SIGNED,
        "tests/vectors/signed.json is stale: run `cargo run -p licentia-core --example gen_vectors`"
    );
    assert_eq!(
        g.offline_json(),
        OFFLINE,
        "tests/vectors/offline.json is stale: run `cargo run -p licentia-core --example gen_vectors`"
    );
    assert_eq!(golden::SEED.len(), 32);
}

#[test]
fn signed_vectors_verify_from_public_data() {
    let vectors = load(SIGNED);
    assert!(vectors.len() >= 5);
    let mut statuses = Vec::new();
    for v in &vectors {
        let name = s(v, "name");
        let signed_bytes = s(v, "signed_bytes");
        assert!(signed_bytes.is_ascii(), "{name}: signed bytes are ASCII");

        // Raw primitives: Ed25519 verify_strict over the exact bytes.
        raw_verify(
            s(v, "public_key"),
            signed_bytes.as_bytes(),
            s(v, "signature"),
        );

        // The crate's verifier, from an envelope assembled from the vector.
        let status: KeyStatus = serde_json::from_value(v["key_status"].clone()).unwrap();
        statuses.push(status);
        let keys = key_set(s(v, "kid"), s(v, "public_key"), status);
        let envelope = format!(
            r#"{{"data":{signed_bytes},"signature":{{"alg":"Ed25519","kid":"{}","value":"{}"}},"meta":{{}}}}"#,
            s(v, "kid"),
            s(v, "signature")
        );
        let verified = Unverified::<Value>::from_envelope_json(envelope.as_bytes())
            .unwrap()
            .verify(&keys)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.signed_bytes(), signed_bytes.as_bytes());
        assert_eq!(verified.key_status(), status);

        // One flipped byte of data fails.
        let tampered = signed_bytes.replacen("\"active\"", "\"revoked\"", 1);
        if tampered != signed_bytes {
            let sig = Signature {
                alg: Algorithm::Ed25519,
                kid: s(v, "kid").into(),
                value: s(v, "signature").into(),
            };
            assert!(
                Unverified::<Value>::from_parts(RawValue::from_string(tampered).unwrap(), sig)
                    .verify(&keys)
                    .is_err()
            );
        }
    }
    assert!(
        statuses.contains(&KeyStatus::Retired),
        "a retired-key vector exists"
    );

    let note = vectors
        .iter()
        .find(|v| v["name"] == "non_ascii_text")
        .unwrap();
    let data: Value = serde_json::from_str(s(note, "signed_bytes")).unwrap();
    assert_eq!(
        data["note"],
        "Caf\u{e9} \u{20ac}5 \u{1f600} \"quoted\" \\ /\n\u{1f}"
    );
    assert!(s(note, "signed_bytes").contains(r"Caf\u00e9 \u20ac5 \ud83d\ude00"));
}

#[test]
fn a_product_key_vector_is_signed_by_a_key_of_its_own() {
    let vectors = load(SIGNED);
    let own: Vec<&Value> = vectors
        .iter()
        .filter(|v| v.get("product_id").is_some())
        .collect();
    assert_eq!(own.len(), 1, "one product-key vector");
    let own = own[0];
    assert!(s(own, "product_id").starts_with("prod_"));
    // Its key is none of the global ring's, and a global key does not verify it.
    let global = vectors
        .iter()
        .find(|v| v["name"] == "runtime_entitlement")
        .unwrap();
    assert_ne!(s(own, "kid"), s(global, "kid"));
    assert_ne!(s(own, "public_key"), s(global, "public_key"));
    assert_eq!(
        own["signed_bytes"], global["signed_bytes"],
        "the same answer"
    );
    let sig = Signature {
        alg: Algorithm::Ed25519,
        kid: s(global, "kid").into(),
        value: s(own, "signature").into(),
    };
    let keys = key_set(s(global, "kid"), s(global, "public_key"), KeyStatus::Active);
    let data = RawValue::from_string(s(own, "signed_bytes").into()).unwrap();
    assert!(
        Unverified::<Value>::from_parts(data, sig)
            .verify(&keys)
            .is_err()
    );
}

#[test]
fn offline_vectors_open_from_public_data() {
    let vectors = load(OFFLINE);
    assert!(vectors.len() >= 2);
    for v in &vectors {
        let name = s(v, "name");
        let env: OfflineEnvelope = serde_json::from_value(v["envelope"].clone()).unwrap();
        let license_key = s(v, "license_key");
        let binding_key = s(v, "binding_key");
        let raw_data = raw_data_text(name);
        assert_eq!(env.kid, s(v, "kid"));

        // Raw primitives, following the README.
        let salt = B64.decode(&env.salt).unwrap();
        assert_eq!(salt.len(), 32);
        let nonce: [u8; 12] = B64.decode(&env.nonce).unwrap().try_into().unwrap();
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&salt), license_key.as_bytes())
            .expand(b"licentia-offline-v1", &mut key)
            .unwrap();
        let plaintext = Aes256Gcm::new(&key.into())
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &B64.decode(&env.ciphertext).unwrap(),
                    aad: env.kid.as_bytes(),
                },
            )
            .unwrap();
        let inner: Value = serde_json::from_slice(&plaintext).unwrap();
        assert_eq!(inner["signature"]["alg"], "Ed25519");
        assert_eq!(inner["signature"]["kid"], env.kid.as_str());
        let expected_plaintext = format!(
            r#"{{"data":{raw_data},"signature":{{"alg":"Ed25519","kid":"{}","value":"{}"}}}}"#,
            env.kid,
            inner["signature"]["value"].as_str().unwrap()
        );
        assert_eq!(
            plaintext,
            expected_plaintext.as_bytes(),
            "{name}: plaintext layout"
        );
        raw_verify(
            s(v, "public_key"),
            raw_data.as_bytes(),
            inner["signature"]["value"].as_str().unwrap(),
        );
        assert_eq!(
            inner["data"]["binding_sha256"],
            binding_sha256(binding_key).as_str()
        );

        // The crate's verifier.
        let data: OfflineEntitlementData = serde_json::from_str(&raw_data).unwrap();
        let issued_at = data.entitlement.issued_at.get();
        let keys = key_set(&env.kid, s(v, "public_key"), KeyStatus::Active);
        let opened = open(
            &env,
            license_key,
            &keys,
            binding_key,
            issued_at,
            DEFAULT_SKEW_TOLERANCE,
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.data(), &data);
        assert_eq!(opened.signed_bytes(), raw_data.as_bytes());
        assert_eq!(opened.watermark(), issued_at);
        let late: DateTime<_> = data.offline_expires_at.get() + chrono::Duration::hours(1);
        assert!(
            open(
                &env,
                license_key,
                &keys,
                binding_key,
                late,
                DEFAULT_SKEW_TOLERANCE,
                None
            )
            .is_err()
        );
    }
}

/// The exact text of a vector's `data` member (kept verbatim by `RawValue`).
fn raw_data_text(name: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Entry<'a> {
        name: String,
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let entries: Vec<Entry<'_>> = serde_json::from_str(OFFLINE).unwrap();
    entries
        .into_iter()
        .find(|e| e.name == name)
        .unwrap()
        .data
        .get()
        .to_owned()
}

#[test]
fn the_refusal_vector_verifies_as_a_refusal() {
    use licentia_core::crypto::Refusal;
    let vectors = load(SIGNED);
    let v = vectors
        .iter()
        .find(|v| v["name"] == "refusal_activation_limit")
        .expect("a refusal vector");
    let keys = key_set(s(v, "kid"), s(v, "public_key"), KeyStatus::Active);
    let body = format!(
        r#"{{"error":{},"signature":{{"alg":"Ed25519","kid":"{}","value":"{}"}},"meta":{{}}}}"#,
        s(v, "signed_bytes"),
        s(v, "kid"),
        s(v, "signature")
    );
    let verified = Unverified::<Refusal>::from_refusal_json(body.as_bytes())
        .unwrap()
        .verify(&keys)
        .unwrap();
    assert_eq!(verified.data().code, "ACTIVATION_LIMIT_REACHED");
    assert_eq!(verified.signed_bytes(), s(v, "signed_bytes").as_bytes());
}
