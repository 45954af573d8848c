//! Property tests of the crypto formats: round trips for random payloads and keys, and
//! tampering with any single bit of any field never verifies and never panics.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration, TimeZone, Utc};
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, KeyRing, LicenseKey, MAX_SAFE_INTEGER, OfflineEnvelope, OfflineError,
    PublicKeySet, Signature, Unverified, VerifyError, binding_sha256, canonical_json_string, open,
    seal,
};
use licentia_core::model::{
    DeviceId, FeatureCode, FeatureEntitlement, KeyStatus, LicenseId, LicenseStatus, LicenseType,
    OfflineEntitlementData, RuntimeEntitlementData, Timestamp,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    text: String,
    n: i64,
    list: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opt: Option<i64>,
}

fn safe_int() -> impl Strategy<Value = i64> {
    -MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER
}

fn payload() -> impl Strategy<Value = Payload> {
    (
        any::<String>(),
        safe_int(),
        prop::collection::vec(any::<String>(), 0..4),
        prop::option::of(safe_int()),
    )
        .prop_map(|(text, n, list, opt)| Payload { text, n, list, opt })
}

fn offline_data(version: i64, grace_days: i64, binding_key: &str) -> OfflineEntitlementData {
    OfflineEntitlementData {
        entitlement: RuntimeEntitlementData {
            license_id: "lic_prop".parse::<LicenseId>().unwrap(),
            status: LicenseStatus::Active,
            license_type: LicenseType::TimeLimited,
            entitlement_version: version,
            issued_at: Timestamp::new(t0()),
            next_check_at: Timestamp::new(t0() + Duration::hours(1)),
            expires_at: Some(Timestamp::new(t0() + Duration::days(365))),
            device_id: "dev_prop".parse::<DeviceId>().unwrap(),
            features: vec![FeatureEntitlement {
                code: "f".parse::<FeatureCode>().unwrap(),
                enabled: true,
                quota: Some(version.abs()),
                consumed: Some(0),
                remaining: Some(version.abs()),
                floating: None,
            }],
            version_eligibility: None,
        },
        offline_expires_at: Timestamp::new(t0() + Duration::days(grace_days)),
        binding_sha256: binding_sha256(binding_key),
    }
}

fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

fn verify_raw(data: Vec<u8>, sig: Signature, keys: &PublicKeySet) -> Result<Payload, VerifyError> {
    let text = String::from_utf8(data).map_err(|_| VerifyError::Malformed)?;
    let raw = RawValue::from_string(text).map_err(|_| VerifyError::Malformed)?;
    Unverified::<Payload>::from_parts(raw, sig)
        .verify(keys)
        .map(|v| v.into_data())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn canonical_is_ascii_and_round_trips(p in payload()) {
        let text = canonical_json_string(&p).unwrap();
        prop_assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let back: Payload = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, p);
    }

    #[test]
    fn sign_verify_round_trip(seed in any::<[u8; 32]>(), p in payload()) {
        let ring = KeyRing::generate(&mut ChaCha20Rng::from_seed(seed), t0());
        let signed = ring.sign(&p).unwrap();
        let keys = licentia_core::crypto::key_set(ring.public_keys()).unwrap();
        let v = Unverified::<Payload>::from_envelope_json(&signed.to_envelope_json())
            .unwrap()
            .verify(&keys)
            .unwrap();
        prop_assert_eq!(v.data(), &p);
        prop_assert_eq!(v.kid(), ring.active_kid());
    }

    #[test]
    fn signed_bit_flips_never_verify(
        seed in any::<[u8; 32]>(),
        p in payload(),
        field in 0usize..4,
        bit in any::<usize>(),
    ) {
        let ring = KeyRing::generate(&mut ChaCha20Rng::from_seed(seed), t0());
        let keys = ring.public_key_set();
        let signed = ring.sign(&p).unwrap();
        let mut data = signed.data_bytes().to_vec();
        let mut sig = signed.signature().clone();
        match field {
            0 => flip(&mut data, bit),
            1 => {
                let mut raw = B64.decode(&sig.value).unwrap();
                flip(&mut raw, bit);
                sig.value = B64.encode(&raw);
            }
            2 => {
                let mut kid = sig.kid.clone().into_bytes();
                flip(&mut kid, bit);
                sig.kid = String::from_utf8_lossy(&kid).into_owned();
            }
            _ => {
                // Any bit of the whole envelope.
                let mut env = signed.to_envelope_json();
                flip(&mut env, bit);
                let r = Unverified::<Payload>::from_envelope_json(&env)
                    .and_then(|u| u.verify(&keys));
                prop_assert!(r.is_err());
                return Ok(());
            }
        }
        prop_assert!(verify_raw(data, sig, &keys).is_err());
    }

    #[test]
    fn seal_open_round_trip(
        seed in any::<[u8; 32]>(),
        version in safe_int(),
        grace in 0i64..90,
        binding in any::<String>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let ring = KeyRing::generate(&mut rng, t0());
        let key = LicenseKey::generate(&mut rng);
        let data = offline_data(version, grace, &binding);
        let env = seal(&ring, key.expose_secret(), &data, &mut rng).unwrap();
        let json = serde_json::to_vec(&env).unwrap();
        let env = OfflineEnvelope::from_json(&json).unwrap();
        let keys = ring.public_key_set();
        let v = open(&env, key.expose_secret(), &keys, &binding, t0(), DEFAULT_SKEW_TOLERANCE, None)
            .unwrap();
        prop_assert_eq!(v.data(), &data);
    }

    #[test]
    fn offline_bit_flips_never_open(
        seed in any::<[u8; 32]>(),
        field in 0usize..4,
        bit in any::<usize>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let ring = KeyRing::generate(&mut rng, t0());
        let key = LicenseKey::generate(&mut rng);
        let data = offline_data(1, 7, "binding");
        let mut env = seal(&ring, key.expose_secret(), &data, &mut rng).unwrap();
        let flip_b64 = |s: &mut String| {
            let mut raw = B64.decode(&*s).unwrap();
            flip(&mut raw, bit);
            *s = B64.encode(&raw);
        };
        match field {
            0 => {
                let mut kid = env.kid.clone().into_bytes();
                flip(&mut kid, bit);
                env.kid = String::from_utf8_lossy(&kid).into_owned();
            }
            1 => flip_b64(&mut env.salt),
            2 => flip_b64(&mut env.nonce),
            _ => flip_b64(&mut env.ciphertext),
        }
        let r = open(&env, key.expose_secret(), &ring.public_key_set(), "binding", t0(),
            DEFAULT_SKEW_TOLERANCE, None);
        prop_assert!(r.is_err());
        let e = r.unwrap_err();
        prop_assert!(matches!(e, OfflineError::UnknownKey | OfflineError::DecryptionFailed), "{:?}", e);
    }
}

#[test]
fn retired_keys_verify_and_removed_keys_do_not() {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let mut ring = KeyRing::generate(&mut rng, t0());
    let p = Payload {
        text: "x".into(),
        n: 1,
        list: vec![],
        opt: None,
    };
    let old = ring.sign(&p).unwrap();
    let old_kid = ring.active_kid().to_owned();
    ring.rotate(&mut rng, t0() + Duration::days(1));
    let new = ring.sign(&p).unwrap();

    let mut keys = licentia_core::crypto::key_set(ring.public_keys()).unwrap();
    let v = Unverified::<Payload>::from_envelope_json(&old.to_envelope_json())
        .unwrap()
        .verify(&keys)
        .unwrap();
    assert_eq!(v.key_status(), KeyStatus::Retired);
    assert_eq!(v.kid(), old_kid);

    assert!(keys.remove(&old_kid));
    assert_eq!(
        Unverified::<Payload>::from_envelope_json(&old.to_envelope_json())
            .unwrap()
            .verify(&keys)
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    assert!(
        Unverified::<Payload>::from_envelope_json(&new.to_envelope_json())
            .unwrap()
            .verify(&keys)
            .is_ok()
    );

    // The same through the key ring: removing the retired key drops it from the set.
    ring.remove(&old_kid).unwrap();
    assert_eq!(ring.public_keys().len(), 1);
    assert_eq!(ring.public_key_set().status(&old_kid), None);

    // Offline: a retired signer still opens; removed, it is unknown.
    let mut rng = ChaCha20Rng::from_seed([43; 32]);
    let mut ring = KeyRing::generate(&mut rng, t0());
    let key = LicenseKey::generate(&mut rng);
    let env = seal(
        &ring,
        key.expose_secret(),
        &offline_data(1, 7, "b"),
        &mut rng,
    )
    .unwrap();
    ring.rotate(&mut rng, t0());
    let mut keys = ring.public_key_set();
    let opened = open(
        &env,
        key.expose_secret(),
        &keys,
        "b",
        t0(),
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .unwrap();
    assert_eq!(opened.key_status(), KeyStatus::Retired);
    keys.remove(&env.kid);
    assert_eq!(
        open(
            &env,
            key.expose_secret(),
            &keys,
            "b",
            t0(),
            DEFAULT_SKEW_TOLERANCE,
            None
        )
        .unwrap_err(),
        OfflineError::UnknownKey
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Parsers of untrusted input return errors, never panic.
    #[test]
    fn untrusted_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), text in any::<String>()) {
        let keys = KeyRing::generate(&mut ChaCha20Rng::from_seed([1; 32]), t0()).public_key_set();
        if let Ok(u) = Unverified::<serde_json::Value>::from_envelope_json(&bytes) {
            prop_assert!(u.verify(&keys).is_err());
        }
        if let Ok(env) = OfflineEnvelope::from_json(&bytes) {
            prop_assert!(open(&env, "lsk_x", &keys, "b", t0(), DEFAULT_SKEW_TOLERANCE, None).is_err());
        }
        prop_assert!(LicenseKey::parse(&text).is_err());
        let secret = licentia_core::crypto::WebhookSecret::parse(
            "whsec_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
        ).unwrap();
        prop_assert!(licentia_core::crypto::verify_webhook(
            &secret, &text, &bytes, t0(), Duration::minutes(5)
        ).is_err());
        let _ = PublicKeySet::from_json(&bytes);
        let _ = text.parse::<licentia_core::crypto::SecretHash>();
    }
}
