//! Offline envelopes (DESIGN 4.2): parse + open arbitrary bytes with each golden vector's
//! license key and binding. Whatever opens is inside its validity window, yields a watermark
//! no earlier than `now`, opens again with that watermark, and stays bound to its binding.
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, OfflineError, PublicKeySet, open,
};

const VECTORS: &str = include_str!("../../core/tests/vectors/offline.json");

struct Case {
    license_key: String,
    binding_key: String,
}

fn setup() -> &'static (Vec<Case>, PublicKeySet) {
    static SETUP: OnceLock<(Vec<Case>, PublicKeySet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let vectors: Vec<serde_json::Value> = serde_json::from_str(VECTORS).expect("vectors");
        let mut infos: Vec<serde_json::Value> = Vec::new();
        let mut cases = Vec::new();
        for v in &vectors {
            cases.push(Case {
                license_key: v["license_key"].as_str().expect("key").to_owned(),
                binding_key: v["binding_key"].as_str().expect("binding").to_owned(),
            });
            if !infos.iter().any(|i| i["kid"] == v["kid"]) {
                infos.push(serde_json::json!({
                    "kid": v["kid"],
                    "algorithm": "Ed25519",
                    "public_key": v["public_key"],
                    "status": "active",
                    "created_at": "2026-11-22T10:00:00Z",
                }));
            }
        }
        let json = serde_json::to_vec(&infos).expect("json");
        (cases, PublicKeySet::from_json(&json).expect("a key set"))
    })
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let (cases, keys) = setup();
    let Ok(envelope) = OfflineEnvelope::from_json(data) else {
        return;
    };
    let skew = DEFAULT_SKEW_TOLERANCE;
    for case in cases {
        let opened = open(
            &envelope,
            &case.license_key,
            keys,
            &case.binding_key,
            now(),
            skew,
            None,
        );
        let Ok(opened) = opened else { continue };
        let d = opened.data();
        assert!(d.entitlement.issued_at.get() - skew <= now());
        assert!(now() <= d.offline_expires_at.get() + skew);
        assert!(opened.watermark() >= now());
        // Opening again with the stored watermark still works (time did not move back).
        open(
            &envelope,
            &case.license_key,
            keys,
            &case.binding_key,
            now(),
            skew,
            Some(opened.watermark()),
        )
        .expect("reopens with its own watermark");
        // A clock set back far before the watermark is refused.
        let back = open(
            &envelope,
            &case.license_key,
            keys,
            &case.binding_key,
            now(),
            skew,
            Some(opened.watermark() + Duration::days(1)),
        );
        assert!(matches!(back, Err(OfflineError::ClockMovedBackwards)));
        // Another binding is refused.
        let other = open(
            &envelope,
            &case.license_key,
            keys,
            "fingerprint:someone-else",
            now(),
            skew,
            None,
        );
        assert!(other.is_err());
    }
});
