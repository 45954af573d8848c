//! Deterministic generation of the golden vectors in `tests/vectors/` (shared by
//! `examples/gen_vectors.rs`, which writes them, and `tests/vectors.rs`, which checks them).

use chrono::{DateTime, Duration, TimeZone, Utc};
use licentia_core::crypto::{
    KeyRing, LeaseToken, LicenseKey, OfflineEnvelope, PublicKeyInfo, Refusal, binding_sha256,
    canonical_json_string, seal,
};
use licentia_core::model::{
    DeactivationData, DeviceId, FeatureCode, FeatureEntitlement, FloatingCheckoutData, KeyStatus,
    LicenseId, LicenseStatus, LicenseType, OfflineEntitlementData, ProductId,
    RuntimeEntitlementData, Timestamp, VersionEligibility,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Serialize;
use serde_json::value::RawValue;

/// The fixed seed: "licentia golden vectors v1" padded with zeros.
pub(crate) const SEED: [u8; 32] = *b"licentia golden vectors v1\0\0\0\0\0\0";

/// 2026-11-22T10:00:00Z, the `issued_at` of every vector.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// One signed runtime vector.
#[derive(Debug, Serialize)]
pub(crate) struct SignedVector {
    pub(crate) name: &'static str,
    pub(crate) kid: String,
    pub(crate) key_status: KeyStatus,
    pub(crate) public_key: String,
    pub(crate) signed_bytes: String,
    pub(crate) signature: String,
    /// The product whose own key ring signed (absent: the global ring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) product_id: Option<ProductId>,
}

/// One offline envelope vector.
#[derive(Debug, Serialize)]
pub(crate) struct OfflineVector {
    pub(crate) name: &'static str,
    pub(crate) license_key: String,
    pub(crate) binding_key: &'static str,
    pub(crate) public_key: String,
    pub(crate) kid: String,
    pub(crate) envelope: OfflineEnvelope,
    pub(crate) data: Box<RawValue>,
}

/// Both vector files' contents.
#[derive(Debug)]
pub(crate) struct Golden {
    pub(crate) signed: Vec<SignedVector>,
    pub(crate) offline: Vec<OfflineVector>,
}

impl Golden {
    /// `signed.json` as written to disk.
    pub(crate) fn signed_json(&self) -> String {
        serde_json::to_string_pretty(&self.signed).unwrap() + "\n"
    }

    /// `offline.json` as written to disk.
    pub(crate) fn offline_json(&self) -> String {
        serde_json::to_string_pretty(&self.offline).unwrap() + "\n"
    }
}

fn ts(at: DateTime<Utc>) -> Timestamp {
    Timestamp::new(at)
}

fn feature(code: &str, quota: Option<(i64, i64)>) -> FeatureEntitlement {
    FeatureEntitlement {
        code: code.parse::<FeatureCode>().unwrap(),
        enabled: true,
        quota: quota.map(|q| q.0),
        consumed: quota.map(|q| q.1),
        remaining: quota.map(|q| (q.0 - q.1).max(0)),
        floating: None,
    }
}

fn entitlement(
    license_type: LicenseType,
    features: Vec<FeatureEntitlement>,
) -> RuntimeEntitlementData {
    let now = now();
    RuntimeEntitlementData {
        license_id: "lic_9f2kq7m4x1c8v5b3n6z0a2s4dd"
            .parse::<LicenseId>()
            .unwrap(),
        status: LicenseStatus::Active,
        license_type,
        entitlement_version: 7,
        issued_at: ts(now),
        next_check_at: ts(now + Duration::hours(24)),
        expires_at: Some(ts(Utc.with_ymd_and_hms(2027, 11, 22, 0, 0, 0).unwrap())),
        device_id: "dev_h3j5k7m9p2r4t6v8x0z2b4d6f8"
            .parse::<DeviceId>()
            .unwrap(),
        features,
        version_eligibility: Some(VersionEligibility {
            app_version: "2.4.1".into(),
            is_entitled: true,
            enforced: true,
            released_at: Some(ts(Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap())),
            eligible_through: Some(ts(Utc.with_ymd_and_hms(2027, 11, 22, 0, 0, 0).unwrap())),
        }),
    }
}

/// Data holding non-ASCII text, to pin the `\uXXXX` escaping.
#[derive(Serialize)]
struct Note {
    license_id: &'static str,
    note: &'static str,
    count: i64,
}

fn key_info(ring: &KeyRing, kid: &str) -> PublicKeyInfo {
    ring.public_keys()
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap()
}

fn signed<T: Serialize>(ring: &KeyRing, kid: &str, name: &'static str, data: &T) -> SignedVector {
    let s = ring.sign_with_kid(kid, data).unwrap().unwrap();
    SignedVector {
        name,
        kid: kid.to_owned(),
        key_status: KeyStatus::Active, // fixed up after the rotation
        public_key: key_info(ring, kid).public_key,
        signed_bytes: std::str::from_utf8(s.data_bytes()).unwrap().to_owned(),
        signature: s.signature().value.clone(),
        product_id: ring.product().cloned(),
    }
}

/// Regenerates every vector from [`SEED`].
pub(crate) fn generate() -> Golden {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let now = now();

    // Key 1, created a month ago; signs one vector, then is retired by a rotation.
    let mut ring = KeyRing::generate(&mut rng, now - Duration::days(30));
    let old_kid = ring.active_kid().to_owned();
    let retired = signed(
        &ring,
        &old_kid,
        "retired_key_validate",
        &entitlement(LicenseType::Perpetual, vec![feature("export", None)]),
    );
    ring.rotate(&mut rng, now - Duration::days(1));
    let kid = ring.active_kid().to_owned();

    let runtime = entitlement(
        LicenseType::Subscription,
        vec![
            feature("export", None),
            feature("api-calls", Some((10_000, 2_345))),
            FeatureEntitlement {
                enabled: false,
                ..feature("beta.sync", None)
            },
        ],
    );
    let deactivation = DeactivationData {
        license_id: runtime.license_id.clone(),
        status: LicenseStatus::Active,
        license_type: LicenseType::Subscription,
        entitlement_version: 8,
        issued_at: ts(now),
        device_id: runtime.device_id.clone(),
        expires_at: runtime.expires_at,
    };
    let lease_token = LeaseToken::generate(&mut rng);
    let checkout = FloatingCheckoutData {
        license_id: runtime.license_id.clone(),
        status: LicenseStatus::Active,
        license_type: LicenseType::TimeLimited,
        entitlement_version: 3,
        issued_at: ts(now),
        expires_at: runtime.expires_at,
        device_id: "dev_floating00seat00000000001".parse::<DeviceId>().unwrap(),
        lease_token: lease_token.expose_secret().to_owned(),
        lease_expires_at: ts(now + Duration::minutes(30)),
        features: vec![feature("export", None)],
        version_eligibility: None,
    };
    let note = Note {
        license_id: "lic_9f2kq7m4x1c8v5b3n6z0a2s4dd",
        note: "Caf\u{e9} \u{20ac}5 \u{1f600} \"quoted\" \\ /\n\u{1f}",
        count: -9_007_199_254_740_991,
    };

    let mut signed_vectors = vec![
        signed(&ring, &kid, "runtime_entitlement", &runtime),
        signed(&ring, &kid, "deactivation", &deactivation),
        signed(&ring, &kid, "floating_checkout", &checkout),
        signed(&ring, &kid, "non_ascii_text", &note),
        retired,
        // A signed refusal: the same rule, over the `error` object (crypto::refusal).
        signed(
            &ring,
            &kid,
            "refusal_activation_limit",
            &Refusal {
                code: "ACTIVATION_LIMIT_REACHED".into(),
                message: "the license has no free activation".into(),
                detail: Some("ACTIVATION_LIMIT_REACHED: 2 of 2 activations are in use".into()),
            },
        ),
    ];
    for v in &mut signed_vectors {
        v.key_status = key_info(&ring, &v.kid).status;
    }

    // Offline envelopes, signed by the active key.
    let mut offline = Vec::new();
    let cases: [(&'static str, &'static str, RuntimeEntitlementData, i64); 2] = [
        (
            "offline_subscription",
            "fingerprint:7c1e0a9b2d",
            runtime.clone(),
            14,
        ),
        (
            "offline_perpetual_minimal",
            "container:registry.example/app@sha256:0123",
            RuntimeEntitlementData {
                expires_at: None,
                version_eligibility: None,
                features: vec![],
                license_type: LicenseType::Perpetual,
                ..runtime.clone()
            },
            30,
        ),
    ];
    for (name, binding_key, entitlement, grace_days) in cases {
        let license_key = LicenseKey::generate(&mut rng);
        let data = OfflineEntitlementData {
            entitlement,
            offline_expires_at: ts(now + Duration::days(grace_days)),
            binding_sha256: binding_sha256(binding_key),
        };
        let envelope = seal(&ring, license_key.expose_secret(), &data, &mut rng).unwrap();
        offline.push(OfflineVector {
            name,
            license_key: license_key.expose_secret().to_owned(),
            binding_key,
            public_key: key_info(&ring, &kid).public_key,
            kid: envelope.kid.clone(),
            envelope,
            data: RawValue::from_string(canonical_json_string(&data).unwrap()).unwrap(),
        });
    }

    // A product with its own key ring (`signing: product`): its answers name its key, which
    // the global ring does not hold. Drawn last, so the vectors above keep their bytes.
    let product = ProductId::generate(&mut rng);
    let own = KeyRing::generate_for(product, vec![], &mut rng, now - Duration::days(2)).unwrap();
    let own_kid = own.active_kid().to_owned();
    signed_vectors.push(signed(&own, &own_kid, "product_key_validate", &runtime));

    Golden {
        signed: signed_vectors,
        offline,
    }
}
