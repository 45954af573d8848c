//! Offline envelopes: a signed entitlement encrypted to the license key (DESIGN 4.2).
//!
//! # Format
//!
//! `{"kid":…,"salt":…,"nonce":…,"ciphertext":…}`, every binary field standard padded base64:
//!
//! 1. `key = HKDF-SHA256(ikm = license key UTF-8 bytes, salt = 32 random bytes,
//!    info = "licentia-offline-v1")`, 32 bytes of output;
//! 2. `ciphertext = AES-256-GCM(key, nonce = 12 random bytes, aad = ASCII bytes of kid,
//!    plaintext)` with the 16-byte tag appended (the usual AES-GCM output);
//! 3. `plaintext` is the compact JSON `{"data":<canonical data>,"signature":{"alg":"Ed25519",
//!    "kid":…,"value":…}}` — a signed runtime envelope (see [`super::signing`]) whose `data` is
//!    [`OfflineEntitlementData`];
//! 4. `kid` is the id of the key that signed the inner payload, and must equal the inner
//!    signature's `kid`.
//!
//! Encryption keeps the entitlement private to whoever holds the license key; the *signature*
//! is what makes it trustworthy (the license holder can decrypt and re-encrypt at will). The
//! salt makes every envelope use a fresh key, so random 96-bit nonces never repeat under a key.
//!
//! # Checks on [`open`]
//!
//! In order: well-formedness, known `kid`, decryption, inner `kid` equals the envelope's, the
//! signature (retired keys verify), the device binding (`binding_sha256` equals lowercase hex
//! SHA-256 of the caller's binding key), then time:
//!
//! - **clock moved backwards** if `now + skew < watermark`;
//! - **not yet valid** if `now < issued_at - skew`;
//! - **expired** if `now > offline_expires_at + skew`.
//!
//! `skew` is the clock-skew tolerance: how far the device clock may disagree with the server's
//! (and how far it may step back between two checks) before an envelope is refused. It widens
//! the validity window by `skew` on both ends. [`DEFAULT_SKEW_TOLERANCE`] (5 minutes) covers
//! ordinary NTP drift; a negative tolerance counts as zero.
//!
//! The **watermark** is the latest instant the caller has observed, kept by the caller in
//! durable storage between runs (this crate does no I/O). On success [`VerifiedOffline::watermark`]
//! returns `max(watermark, now, issued_at)`: store it and pass it to the next `open`. Since the
//! watermark only grows, a user who sets the clock back to stretch an expired envelope is caught
//! as soon as the clock is more than `skew` behind the latest time seen.

use aes_gcm::aead::{Aead, Payload};
use chrono::{DateTime, TimeDelta, Utc};
use rand_core::CryptoRng;

use super::encoding::b64_encode;
use super::error::{CanonicalError, OfflineError};
use super::signing::{KeyRing, PublicKeySet};
use crate::model::OfflineEntitlementData;

use licentia_verify::offline::offline_cipher;
pub use licentia_verify::offline::{
    DEFAULT_SKEW_TOLERANCE, OFFLINE_HKDF_INFO, OFFLINE_NONCE_LEN, OFFLINE_SALT_LEN,
    OFFLINE_TAG_LEN, OfflineEnvelope, OfflineTerms, binding_sha256,
};

/// A decrypted, verified and currently valid offline entitlement.
pub type VerifiedOffline = licentia_verify::VerifiedOffline<OfflineEntitlementData>;

impl OfflineTerms for OfflineEntitlementData {
    fn binding_sha256(&self) -> &str {
        &self.binding_sha256
    }
    fn issued_at(&self) -> DateTime<Utc> {
        self.entitlement.issued_at.get()
    }
    fn offline_expires_at(&self) -> DateTime<Utc> {
        self.offline_expires_at.get()
    }
}

/// Signs `data` with the key that signs at its `issued_at` ([`KeyRing::sign_at`]) and encrypts
/// the signed envelope to `license_key`.
///
/// # Errors
///
/// A [`CanonicalError`] if `data` cannot be written as canonical JSON.
pub fn seal(
    keyring: &KeyRing,
    license_key: &str,
    data: &OfflineEntitlementData,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<OfflineEnvelope, CanonicalError> {
    let signed = keyring.sign_at(data.entitlement.issued_at.get(), data)?;
    let plaintext = signed.to_envelope_json();
    let kid = signed.signature().kid.clone();

    let mut salt = [0u8; OFFLINE_SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; OFFLINE_NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let ciphertext = offline_cipher(license_key, &salt)
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &plaintext,
                aad: kid.as_bytes(),
            },
        )
        .unwrap_or_else(|_| unreachable!("AES-GCM encrypts any message below 64 GiB"));

    Ok(OfflineEnvelope {
        kid,
        salt: b64_encode(&salt),
        nonce: b64_encode(&nonce),
        ciphertext: b64_encode(&ciphertext),
    })
}

/// Decrypts and checks an offline envelope of [`OfflineEntitlementData`] (see the
/// [module docs](self) for the order of checks and the meaning of `skew_tolerance` and
/// `watermark`); [`licentia_verify::open`] does the work.
///
/// # Errors
///
/// Every [`OfflineError`] variant; crypto failures say nothing about where they failed.
pub fn open(
    envelope: &OfflineEnvelope,
    license_key: &str,
    keys: &PublicKeySet,
    binding_key: &str,
    now: DateTime<Utc>,
    skew_tolerance: TimeDelta,
    watermark: Option<DateTime<Utc>>,
) -> Result<VerifiedOffline, OfflineError> {
    licentia_verify::open(
        envelope,
        license_key,
        keys,
        binding_key,
        now,
        skew_tolerance,
        watermark,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        DeviceId, FeatureCode, FeatureEntitlement, KeyStatus, LicenseId, LicenseStatus,
        LicenseType, RuntimeEntitlementData, Timestamp,
    };
    use hkdf::Hkdf;
    use licentia_verify::encoding::{b64_decode, b64_decode_array};
    use licentia_verify::offline::offline_key as derive_key;
    use sha2::Sha256;

    fn cipher(license_key: &str, salt: &[u8]) -> aes_gcm::Aes256Gcm {
        offline_cipher(license_key, salt)
    }
    use chrono::TimeZone;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const LICENSE_KEY: &str = "lsk_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const BINDING: &str = "fingerprint:abc123";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn data(binding: &str) -> OfflineEntitlementData {
        OfflineEntitlementData {
            entitlement: RuntimeEntitlementData {
                license_id: "lic_1".parse::<LicenseId>().unwrap(),
                status: LicenseStatus::Active,
                license_type: LicenseType::Perpetual,
                entitlement_version: 3,
                issued_at: Timestamp::new(t0()),
                next_check_at: Timestamp::new(t0() + TimeDelta::days(1)),
                expires_at: None,
                device_id: "dev_1".parse::<DeviceId>().unwrap(),
                features: vec![FeatureEntitlement {
                    code: "export".parse::<FeatureCode>().unwrap(),
                    enabled: true,
                    quota: None,
                    consumed: None,
                    remaining: None,
                    floating: None,
                }],
                version_eligibility: None,
            },
            offline_expires_at: Timestamp::new(t0() + TimeDelta::days(7)),
            binding_sha256: binding_sha256(binding),
        }
    }

    struct Fixture {
        ring: KeyRing,
        keys: PublicKeySet,
        env: OfflineEnvelope,
    }

    fn fixture() -> Fixture {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let ring = KeyRing::generate(&mut rng, t0());
        let env = seal(&ring, LICENSE_KEY, &data(BINDING), &mut rng).unwrap();
        let keys = ring.public_key_set();
        Fixture { ring, keys, env }
    }

    fn open_at(
        f: &Fixture,
        env: &OfflineEnvelope,
        now: DateTime<Utc>,
        mark: Option<DateTime<Utc>>,
    ) -> Result<VerifiedOffline, OfflineError> {
        open(
            env,
            LICENSE_KEY,
            &f.keys,
            BINDING,
            now,
            DEFAULT_SKEW_TOLERANCE,
            mark,
        )
    }

    #[test]
    fn round_trip() {
        let f = fixture();
        let v = open_at(&f, &f.env, t0() + TimeDelta::hours(1), None).unwrap();
        assert_eq!(v.data(), &data(BINDING));
        assert_eq!(v.kid(), f.ring.active_kid());
        assert_eq!(v.key_status(), KeyStatus::Active);
        assert_eq!(v.watermark(), t0() + TimeDelta::hours(1));
        let json = serde_json::to_vec(&f.env).unwrap();
        assert_eq!(OfflineEnvelope::from_json(&json).unwrap(), f.env);
        assert_eq!(
            OfflineEnvelope::from_json(b"{}").unwrap_err(),
            OfflineError::Malformed
        );
    }

    #[test]
    fn hkdf_and_binding_known_answers() {
        // sha256("") — the binding hash is plain lowercase hex SHA-256.
        assert_eq!(
            binding_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 5869 test case 1 style sanity check of the HKDF wiring (ikm/salt/info order).
        let hk = Hkdf::<Sha256>::new(Some(&[1u8; 32]), b"k");
        let mut a = [0u8; 32];
        hk.expand(OFFLINE_HKDF_INFO, &mut a).unwrap();
        assert_eq!(*derive_key("k", &[1u8; 32]), a);
    }

    #[test]
    fn every_error_variant() {
        let f = fixture();
        let now = t0() + TimeDelta::hours(1);

        // Malformed: bad base64, wrong lengths, truncated ciphertext.
        let mut e = f.env.clone();
        e.salt = "***".into();
        assert_eq!(
            open_at(&f, &e, now, None).unwrap_err(),
            OfflineError::Malformed
        );
        let mut e = f.env.clone();
        e.nonce = b64_encode(&[0u8; 16]);
        assert_eq!(
            open_at(&f, &e, now, None).unwrap_err(),
            OfflineError::Malformed
        );
        let mut e = f.env.clone();
        e.ciphertext = b64_encode(&[0u8; 15]);
        assert_eq!(
            open_at(&f, &e, now, None).unwrap_err(),
            OfflineError::Malformed
        );

        // UnknownKey.
        let mut e = f.env.clone();
        e.kid = "key_other".into();
        assert_eq!(
            open_at(&f, &e, now, None).unwrap_err(),
            OfflineError::UnknownKey
        );

        // DecryptionFailed: wrong license key, or altered nonce.
        assert_eq!(
            open(
                &f.env,
                "lsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                &f.keys,
                BINDING,
                now,
                DEFAULT_SKEW_TOLERANCE,
                None
            )
            .unwrap_err(),
            OfflineError::DecryptionFailed
        );

        // BindingMismatch.
        assert_eq!(
            open(
                &f.env,
                LICENSE_KEY,
                &f.keys,
                "other",
                now,
                DEFAULT_SKEW_TOLERANCE,
                None
            )
            .unwrap_err(),
            OfflineError::BindingMismatch
        );

        // BadSignature: re-encrypt (as the license holder could) a payload with altered data.
        let env = reencrypt(&f, |pt| {
            pt.replace("\"entitlement_version\":3", "\"entitlement_version\":4")
        });
        assert_eq!(
            open_at(&f, &env, now, None).unwrap_err(),
            OfflineError::BadSignature
        );

        // Malformed: inner kid differs from the envelope kid (AAD still consistent).
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut ring2 = KeyRing::from_stored(f.ring.export()).unwrap();
        ring2.rotate(&mut rng, t0());
        let keys2 = ring2.public_key_set();
        let inner = ring2.sign(&data(BINDING)).unwrap().to_envelope_json();
        let env = encrypt_raw(&f.env.kid, &inner);
        assert_eq!(
            open(
                &env,
                LICENSE_KEY,
                &keys2,
                BINDING,
                now,
                DEFAULT_SKEW_TOLERANCE,
                None
            )
            .unwrap_err(),
            OfflineError::Malformed
        );
        // Malformed: plaintext that is not a signed envelope.
        let env = encrypt_raw(&f.env.kid, b"[1,2,3]");
        assert_eq!(
            open_at(&f, &env, now, None).unwrap_err(),
            OfflineError::Malformed
        );

        // NotYetValid / Expired / ClockMovedBackwards.
        assert_eq!(
            open_at(&f, &f.env, t0() - TimeDelta::minutes(6), None).unwrap_err(),
            OfflineError::NotYetValid
        );
        assert_eq!(
            open_at(
                &f,
                &f.env,
                t0() + TimeDelta::days(7) + TimeDelta::minutes(6),
                None
            )
            .unwrap_err(),
            OfflineError::Expired
        );
        assert_eq!(
            open_at(&f, &f.env, now, Some(now + TimeDelta::minutes(6))).unwrap_err(),
            OfflineError::ClockMovedBackwards
        );
    }

    fn encrypt_raw(kid: &str, plaintext: &[u8]) -> OfflineEnvelope {
        let salt = [3u8; 32];
        let nonce = [4u8; 12];
        let ct = cipher(LICENSE_KEY, &salt)
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .unwrap();
        OfflineEnvelope {
            kid: kid.into(),
            salt: b64_encode(&salt),
            nonce: b64_encode(&nonce),
            ciphertext: b64_encode(&ct),
        }
    }

    fn reencrypt(f: &Fixture, edit: impl Fn(&str) -> String) -> OfflineEnvelope {
        let salt = b64_decode(&f.env.salt).unwrap();
        let nonce = b64_decode_array::<12>(&f.env.nonce).unwrap();
        let pt = cipher(LICENSE_KEY, &salt)
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &b64_decode(&f.env.ciphertext).unwrap(),
                    aad: f.env.kid.as_bytes(),
                },
            )
            .unwrap();
        let edited = edit(std::str::from_utf8(&pt).unwrap());
        assert_ne!(edited.as_bytes(), &pt[..]);
        encrypt_raw(&f.env.kid, edited.as_bytes())
    }

    #[test]
    fn skew_edges_are_inclusive() {
        let f = fixture();
        let skew = DEFAULT_SKEW_TOLERANCE;
        assert!(open_at(&f, &f.env, t0() - skew, None).is_ok());
        assert!(open_at(&f, &f.env, t0() + TimeDelta::days(7) + skew, None).is_ok());
        assert_eq!(
            open_at(&f, &f.env, t0() - skew - TimeDelta::seconds(1), None).unwrap_err(),
            OfflineError::NotYetValid
        );
        assert_eq!(
            open_at(
                &f,
                &f.env,
                t0() + TimeDelta::days(7) + skew + TimeDelta::seconds(1),
                None
            )
            .unwrap_err(),
            OfflineError::Expired
        );
        // Zero and negative tolerance: exact window.
        // Huge tolerances and extreme clocks never panic.
        for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            for skew in [TimeDelta::MAX, TimeDelta::MIN, DEFAULT_SKEW_TOLERANCE] {
                let _ = open(&f.env, LICENSE_KEY, &f.keys, BINDING, now, skew, Some(now));
                let _ = open(&f.env, LICENSE_KEY, &f.keys, BINDING, t0(), skew, Some(now));
            }
        }
        for skew in [TimeDelta::zero(), TimeDelta::minutes(-10)] {
            let r = open(
                &f.env,
                LICENSE_KEY,
                &f.keys,
                BINDING,
                t0() - TimeDelta::seconds(1),
                skew,
                None,
            );
            assert_eq!(r.unwrap_err(), OfflineError::NotYetValid);
            assert!(open(&f.env, LICENSE_KEY, &f.keys, BINDING, t0(), skew, None).is_ok());
        }
    }

    #[test]
    fn watermark_with_moving_clock() {
        let f = fixture();
        let mut mark: Option<DateTime<Utc>> = None;
        let mut now = t0() - TimeDelta::minutes(2); // device slightly behind the server
        let step = |now: DateTime<Utc>, mark: &mut Option<DateTime<Utc>>| {
            let r = open_at(&f, &f.env, now, *mark);
            if let Ok(v) = &r {
                *mark = Some(v.watermark());
            }
            r.map(|_| ())
        };

        step(now, &mut mark).unwrap();
        // The watermark is at least issued_at even though the device clock is behind it.
        assert_eq!(mark, Some(t0()));

        now += TimeDelta::days(1);
        step(now, &mut mark).unwrap();
        assert_eq!(mark, Some(now));

        // Small step back within the tolerance: fine, watermark unchanged.
        step(now - TimeDelta::minutes(4), &mut mark).unwrap();
        assert_eq!(mark, Some(now));

        // Big step back: refused, watermark unchanged.
        assert_eq!(
            step(now - TimeDelta::hours(1), &mut mark),
            Err(OfflineError::ClockMovedBackwards)
        );
        assert_eq!(mark, Some(now));

        // Forward to near expiry, then the user tries to rewind to stretch the envelope.
        now = t0() + TimeDelta::days(7);
        step(now, &mut mark).unwrap();
        assert_eq!(
            step(t0() + TimeDelta::days(3), &mut mark),
            Err(OfflineError::ClockMovedBackwards)
        );
        // Past expiry: expired, and rewinding cannot help.
        now += TimeDelta::hours(1);
        assert_eq!(step(now, &mut mark), Err(OfflineError::Expired));
        assert_eq!(
            step(t0() + TimeDelta::days(1), &mut mark),
            Err(OfflineError::ClockMovedBackwards)
        );
    }
}
