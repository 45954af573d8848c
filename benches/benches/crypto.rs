//! Envelopes against their physical floor and against what a user might pick instead:
//!
//! - `sign`: canonical bytes + Ed25519 sign of a runtime response vs a raw `ed25519-dalek`
//!   sign of the same bytes;
//! - `verify_envelope`: parsing and verifying a signed envelope vs a raw `verify_strict`;
//! - `offline_open`: parsing and opening an offline envelope (HKDF + AES-GCM + parse +
//!   verify + binding and time checks) vs a raw `verify_strict` of the inner bytes, an
//!   equivalent EdDSA JWT (`jsonwebtoken`) and PASETO v4.public (`pasetors`).

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer};
use licentia_benches::{
    dalek_key, entitlement_data, key_ring, now, offline_binding_key, offline_data,
    offline_envelope_json, offline_license_key, public_keys,
};
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, Unverified, canonical_json, open,
};
use licentia_core::model::{OfflineEntitlementData, RuntimeEntitlementData};
use serde::{Deserialize, Serialize};

fn sign(c: &mut Criterion) {
    let ring = key_ring();
    let dalek = dalek_key();
    let data = entitlement_data();
    let bytes = canonical_json(&data).expect("canonical");
    let mut g = c.benchmark_group("sign");
    g.bench_function("licentia_canonical_and_sign", |b| {
        b.iter(|| ring.sign(black_box(&data)).expect("signs"))
    });
    g.bench_function("baseline_raw_ed25519_sign", |b| {
        b.iter(|| dalek.sign(black_box(&bytes)))
    });
    g.bench_function("part_canonical_bytes_only", |b| {
        b.iter(|| canonical_json(black_box(&data)).expect("canonical"))
    });
    g.bench_function("part_serde_json_to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&data)).expect("serializes"))
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let ring = key_ring();
    let keys = public_keys();
    let signed = ring.sign(&entitlement_data()).expect("signs");
    let wire = signed.to_envelope_json();
    let bytes = signed.data_bytes().to_vec();
    let sig = dalek_key().sign(&bytes);
    let vk = dalek_key().verifying_key();
    let mut g = c.benchmark_group("verify_envelope");
    g.bench_function("licentia_parse_and_verify", |b| {
        b.iter(|| {
            Unverified::<RuntimeEntitlementData>::from_envelope_json(black_box(&wire))
                .expect("parses")
                .verify(&keys)
                .expect("verifies")
        })
    });
    g.bench_function("baseline_raw_verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&bytes), &sig).expect("verifies"))
    });
    g.finish();
}

/// The JWT's claims: the same offline data plus the registered `exp` JWT users rely on.
#[derive(Serialize, Deserialize)]
struct JwtClaims {
    exp: i64,
    #[serde(flatten)]
    data: OfflineEntitlementData,
}

/// PKCS#8 v1 DER of an Ed25519 private key (RFC 8410): a fixed prefix and the 32-byte seed.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

fn offline(c: &mut Criterion) {
    let keys = public_keys();
    let json = offline_envelope_json();
    let license_key = offline_license_key();
    let binding = offline_binding_key();
    let now = now();
    // Sanity: the envelope opens.
    let envelope = OfflineEnvelope::from_json(&json).expect("parses");
    let opened = open(
        &envelope,
        license_key.expose_secret(),
        &keys,
        &binding,
        now,
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .expect("opens");
    let inner = opened.signed_bytes().to_vec();
    let dalek = dalek_key();
    let vk = dalek.verifying_key();
    let sig: Signature = dalek.sign(&inner);

    // JWT (EdDSA) over the same data with the same key.
    let seed = licentia_benches::SIGNING_SEED;
    let enc = jsonwebtoken::EncodingKey::from_ed_der(&ed25519_pkcs8(&seed));
    let dec = jsonwebtoken::DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(vk.as_bytes()))
        .expect("a public key");
    let claims = JwtClaims {
        exp: 4_102_444_800, // 2100-01-01: the harness's wall clock must be inside the window
        data: offline_data(),
    };
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &enc,
    )
    .expect("a JWT");
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    jsonwebtoken::decode::<JwtClaims>(&jwt, &dec, &validation).expect("the JWT verifies");

    // PASETO v4.public over the same canonical bytes with the same key.
    let mut keypair = [0u8; 64];
    keypair[..32].copy_from_slice(&seed);
    keypair[32..].copy_from_slice(vk.as_bytes());
    let sk = pasetors::keys::AsymmetricSecretKey::<pasetors::version4::V4>::from(&keypair)
        .expect("a secret key");
    let pk = pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::from(vk.as_bytes())
        .expect("a public key");
    let paseto =
        pasetors::version4::PublicToken::sign(&sk, &inner, None, None).expect("a PASETO token");
    let paseto_verify = |token: &str| {
        let untrusted = pasetors::token::UntrustedToken::<
            pasetors::token::Public,
            pasetors::version4::V4,
        >::try_from(token)
        .expect("parses");
        let trusted =
            pasetors::version4::PublicToken::verify(&pk, &untrusted, None, None).expect("verifies");
        serde_json::from_str::<OfflineEntitlementData>(trusted.payload()).expect("the data")
    };
    paseto_verify(&paseto);

    let mut g = c.benchmark_group("offline_open");
    g.bench_function("licentia_parse_and_open", |b| {
        b.iter(|| {
            let env = OfflineEnvelope::from_json(black_box(&json)).expect("parses");
            open(
                &env,
                license_key.expose_secret(),
                &keys,
                &binding,
                now,
                DEFAULT_SKEW_TOLERANCE,
                None,
            )
            .expect("opens")
        })
    });
    g.bench_function("baseline_raw_verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&inner), &sig).expect("verifies"))
    });
    g.bench_function("alt_jwt_eddsa_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<JwtClaims>(black_box(&jwt), &dec, &validation).expect("verifies")
        })
    });
    g.bench_function("alt_paseto_v4_public_verify", |b| {
        b.iter(|| paseto_verify(black_box(&paseto)))
    });
    g.finish();
}

criterion_group!(benches, sign, verify, offline);
criterion_main!(benches);
