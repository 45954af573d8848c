//! Signed runtime envelopes (DESIGN 4.1): parse + verify arbitrary bytes against the golden
//! vectors' public keys. Whatever verifies must verify with raw `verify_strict` over the same
//! `data` bytes, and deserialize.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use licentia_core::crypto::{PublicKeySet, Unverified};
use licentia_core::model::RuntimeEntitlementData;

#[derive(serde::Deserialize)]
struct Envelope {
    signature: SignatureIn,
}

#[derive(serde::Deserialize)]
struct SignatureIn {
    value: String,
}

const VECTORS: &str = include_str!("../../core/tests/vectors/signed.json");

/// kid → raw key, and the set built from every golden vector's key.
fn keys() -> &'static (Vec<(String, ed25519_dalek::VerifyingKey)>, PublicKeySet) {
    static KEYS: OnceLock<(Vec<(String, ed25519_dalek::VerifyingKey)>, PublicKeySet)> =
        OnceLock::new();
    KEYS.get_or_init(|| {
        let vectors: Vec<serde_json::Value> = serde_json::from_str(VECTORS).expect("vectors");
        let mut raw = Vec::new();
        let mut infos = Vec::new();
        for v in vectors {
            let kid = v["kid"].as_str().expect("kid").to_owned();
            if raw.iter().any(|(k, _)| k == &kid) {
                continue;
            }
            let pk = v["public_key"].as_str().expect("public_key");
            let bytes: [u8; 32] = STANDARD.decode(pk).expect("b64").try_into().expect("32");
            raw.push((
                kid.clone(),
                ed25519_dalek::VerifyingKey::from_bytes(&bytes).expect("key"),
            ));
            infos.push(serde_json::json!({
                "kid": kid,
                "algorithm": "Ed25519",
                "public_key": pk,
                "status": v["key_status"],
                "created_at": "2026-11-22T10:00:00Z",
            }));
        }
        let json = serde_json::to_vec(&infos).expect("json");
        (raw, PublicKeySet::from_json(&json).expect("a key set"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (raw, set) = keys();
    let Ok(unverified) = Unverified::<serde_json::Value>::from_envelope_json(data) else {
        // Anything the generic parse refuses, the typed parse refuses too.
        assert!(Unverified::<RuntimeEntitlementData>::from_envelope_json(data).is_err());
        return;
    };
    let kid = unverified.kid().to_owned();
    let typed = Unverified::<RuntimeEntitlementData>::from_envelope_json(data)
        .expect("the typed parse accepts what the generic one does");
    if let Ok(verified) = unverified.verify(set) {
        let key = &raw.iter().find(|(k, _)| k == &kid).expect("a known kid").1;
        // Parsed as leniently as the envelope (members other than `data` and `signature`
        // are skipped unchecked, as serde does), to read the signature back.
        let envelope: Envelope = serde_json::from_slice(data).expect("json");
        let sig = STANDARD.decode(envelope.signature.value).expect("b64");
        let sig = ed25519_dalek::Signature::from_slice(&sig).expect("64 bytes");
        key.verify_strict(verified.signed_bytes(), &sig)
            .expect("what licentia accepts, verify_strict accepts");
        assert_eq!(verified.kid(), kid);
    }
    let _ = typed.verify(set);
});
