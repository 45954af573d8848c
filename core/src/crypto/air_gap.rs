//! Air-gapped activation files (an extension): a device that never reaches the server is
//! activated by files an operator carries both ways.
//!
//! 1. The device writes an [`ActivationRequestFile`]: the SHA-256 of its license key (proof
//!    that it holds the key, without the key), its binding, the public half of a fresh
//!    Ed25519 [`ReleaseKey`] it keeps, a nonce and the time.
//! 2. Management posts it to `POST /api/v1/licenses/{id}/offline-activations`: the seat is
//!    taken exactly as an online activation takes it, and the answer is an offline envelope
//!    bound to the device, sealed to [`air_gapped_seal_secret`] (the key's SHA-256 in hex:
//!    the server never holds the key itself). Posting the same file again answers the same
//!    envelope.
//! 3. The device opens the envelope with the offline rules it already has
//!    (`licentia_verify::open` with the seal secret).
//! 4. To give the seat back, the device writes a [`ReleaseFile`] signed with its release key,
//!    and management posts it to `POST /api/v1/licenses/{id}/offline-releases` (or resets the
//!    device directly).
//!
//! # Formats
//!
//! Both files are JSON objects with a `format` member naming their version
//! ([`REQUEST_FORMAT`], [`RELEASE_FORMAT`]) and no other member than listed. A release's
//! `signature` is standard padded base64 of the Ed25519 signature (`verify_strict`) over the
//! canonical JSON ([`canonical_json`](super::canonical_json)) of its other members.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::encoding::{b64_decode_array, b64_encode, hex_encode};
use super::{LicenseKey, OfflineEnvelope, SecretHash};
use crate::model::{DeviceId, LicenseId, RuntimeBindingRequest};

/// The `format` of an activation request file.
pub const REQUEST_FORMAT: &str = "licentia-offline-activation-request/1";
/// The `format` of a release file.
pub const RELEASE_FORMAT: &str = "licentia-offline-release/1";
/// The `format` of the answer to an activation request (the envelope file).
pub const ACTIVATION_FORMAT: &str = "licentia-offline-activation/1";

/// What an air-gapped envelope is sealed to: the license key's SHA-256 in lowercase hex.
pub fn air_gapped_seal_secret(license_key: &str) -> String {
    SecretHash::of(license_key).to_hex()
}

/// The device's Ed25519 key for signing its release file. Keep its
/// [`seed`](Self::seed_base64) on the device with the envelope; `Debug` prints no secret.
#[derive(Clone)]
pub struct ReleaseKey(SigningKey);

impl ReleaseKey {
    /// A fresh key.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self(SigningKey::from_bytes(&seed))
    }

    /// The key from its stored seed (standard padded base64 of 32 bytes).
    ///
    /// # Errors
    ///
    /// [`AirGapError::Malformed`] for anything else.
    pub fn from_seed_base64(seed: &str) -> Result<Self, AirGapError> {
        let seed = Zeroizing::new(b64_decode_array::<32>(seed).ok_or(AirGapError::Malformed)?);
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// The seed to keep on the device (a secret).
    pub fn seed_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(b64_encode(self.0.as_bytes()))
    }

    /// The public key, as the request file carries it.
    pub fn public_base64(&self) -> String {
        b64_encode(self.0.verifying_key().as_bytes())
    }
}

impl std::fmt::Debug for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReleaseKey(public {})", self.public_base64())
    }
}

/// Why an air-gapped file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AirGapError {
    /// Not a file of this format, or a member malformed.
    #[error("malformed file")]
    Malformed,
    /// The release's signature does not verify with the device's release key.
    #[error("the signature does not verify")]
    BadSignature,
}

/// What a device asks to be activated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequestFile {
    /// [`REQUEST_FORMAT`].
    pub format: String,
    /// SHA-256 of the license key, lowercase hex.
    pub license_key_sha256: SecretHash,
    /// The device's binding, as an online activation sends it.
    pub binding: RuntimeBindingRequest,
    /// The device's release key (public), standard padded base64 of 32 bytes.
    pub release_key: String,
    /// 32 lowercase hex characters, fresh for each request: posting one file twice answers
    /// the same envelope.
    pub nonce: String,
    /// When the device wrote the file (its own clock).
    pub created_at: DateTime<Utc>,
}

impl ActivationRequestFile {
    /// A request for `binding` under `license_key`, with `release`'s public key, written at
    /// `now`.
    pub fn new(
        license_key: &LicenseKey,
        binding: RuntimeBindingRequest,
        release: &ReleaseKey,
        rng: &mut (impl CryptoRng + ?Sized),
        now: DateTime<Utc>,
    ) -> Self {
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        Self {
            format: REQUEST_FORMAT.to_owned(),
            license_key_sha256: license_key.hash(),
            binding,
            release_key: release.public_base64(),
            nonce: hex_encode(&nonce),
            created_at: now,
        }
    }

    /// Whether the format, the release key and the nonce are well-formed.
    ///
    /// # Errors
    ///
    /// [`AirGapError::Malformed`] naming nothing more (the caller says which file).
    pub fn check(&self) -> Result<(), AirGapError> {
        let nonce_ok = self.nonce.len() == 32
            && self
                .nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if self.format != REQUEST_FORMAT || !nonce_ok || public_key(&self.release_key).is_err() {
            return Err(AirGapError::Malformed);
        }
        Ok(())
    }
}

fn public_key(b64: &str) -> Result<VerifyingKey, AirGapError> {
    let bytes = b64_decode_array::<32>(b64).ok_or(AirGapError::Malformed)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| AirGapError::Malformed)
}

/// The answer to an activation request: the device's offline envelope, to carry back to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineActivationFile {
    /// [`ACTIVATION_FORMAT`].
    pub format: String,
    /// The license.
    pub license_id: LicenseId,
    /// The device the seat was taken for (named by its release file).
    pub device_id: DeviceId,
    /// When the offline license ends.
    pub offline_expires_at: DateTime<Utc>,
    /// Sealed to [`air_gapped_seal_secret`] of the license key, bound to the device.
    pub envelope: OfflineEnvelope,
}

/// The members a release signs.
#[derive(Serialize)]
struct ReleaseClaims<'a> {
    format: &'a str,
    license_id: &'a LicenseId,
    device_id: &'a DeviceId,
    released_at: DateTime<Utc>,
}

/// A device's signed statement that it gave its air-gapped seat back (it deleted its
/// envelope: nothing can check that on an offline machine, so the release is trusted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFile {
    /// [`RELEASE_FORMAT`].
    pub format: String,
    /// The license.
    pub license_id: LicenseId,
    /// The device the envelope named.
    pub device_id: DeviceId,
    /// When the device released (its own clock).
    pub released_at: DateTime<Utc>,
    /// Ed25519 over the canonical JSON of the members above, standard padded base64.
    pub signature: String,
}

impl ReleaseFile {
    /// The release of `device_id` on `license_id`, signed with `key` at `now`.
    ///
    /// # Errors
    ///
    /// Never in practice (the claims are always representable); `Malformed` otherwise.
    pub fn sign(
        key: &ReleaseKey,
        license_id: LicenseId,
        device_id: DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Self, AirGapError> {
        let message = claims_bytes(&license_id, &device_id, now)?;
        let signature = b64_encode(&key.0.sign(&message).to_bytes());
        Ok(Self {
            format: RELEASE_FORMAT.to_owned(),
            license_id,
            device_id,
            released_at: now,
            signature,
        })
    }

    /// Checks the format and the signature against `release_key` (the request's).
    ///
    /// # Errors
    ///
    /// [`AirGapError::Malformed`], [`AirGapError::BadSignature`].
    pub fn verify(&self, release_key: &str) -> Result<(), AirGapError> {
        if self.format != RELEASE_FORMAT {
            return Err(AirGapError::Malformed);
        }
        let key = public_key(release_key)?;
        let sig = b64_decode_array::<64>(&self.signature).ok_or(AirGapError::Malformed)?;
        let message = claims_bytes(&self.license_id, &self.device_id, self.released_at)?;
        key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| AirGapError::BadSignature)
    }
}

fn claims_bytes(
    license_id: &LicenseId,
    device_id: &DeviceId,
    released_at: DateTime<Utc>,
) -> Result<Vec<u8>, AirGapError> {
    super::canonical_json(&ReleaseClaims {
        format: RELEASE_FORMAT,
        license_id,
        device_id,
        released_at,
    })
    .map_err(|_| AirGapError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn now() -> DateTime<Utc> {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_request_round_trips_and_checks() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let key = LicenseKey::generate(&mut rng);
        let release = ReleaseKey::generate(&mut rng);
        let binding = RuntimeBindingRequest {
            fingerprint: Some("fp".into()),
            ..Default::default()
        };
        let r = ActivationRequestFile::new(&key, binding, &release, &mut rng, now());
        r.check().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            !json.contains(key.expose_secret()),
            "the key is not in the file"
        );
        let back: ActivationRequestFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let mut bad = r.clone();
        bad.nonce = "NOT-HEX".into();
        assert_eq!(bad.check(), Err(AirGapError::Malformed));
        let mut bad = r.clone();
        bad.release_key = "AAAA".into();
        assert_eq!(bad.check(), Err(AirGapError::Malformed));
        let mut bad = r;
        bad.format = "something/2".into();
        assert_eq!(bad.check(), Err(AirGapError::Malformed));
        assert!(
            serde_json::from_str::<ActivationRequestFile>(
                &json.replace("\"nonce\"", "\"extra\":1,\"nonce\"")
            )
            .is_err(),
            "unknown members are refused"
        );
    }

    #[test]
    fn a_release_verifies_only_unchanged_and_with_its_key() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let release = ReleaseKey::generate(&mut rng);
        let other = ReleaseKey::generate(&mut rng);
        let license: LicenseId = "lic_1".parse().unwrap();
        let device: DeviceId = "dev_1".parse().unwrap();
        let file = ReleaseFile::sign(&release, license, device, now()).unwrap();
        file.verify(&release.public_base64()).unwrap();
        assert_eq!(
            file.verify(&other.public_base64()),
            Err(AirGapError::BadSignature)
        );
        let mut moved = file.clone();
        moved.device_id = "dev_2".parse().unwrap();
        assert_eq!(
            moved.verify(&release.public_base64()),
            Err(AirGapError::BadSignature)
        );
        let restored = ReleaseKey::from_seed_base64(&release.seed_base64()).unwrap();
        assert_eq!(restored.public_base64(), release.public_base64());
        assert!(!format!("{release:?}").contains(release.seed_base64().as_str()));
        assert_eq!(
            ReleaseKey::from_seed_base64("short").unwrap_err(),
            AirGapError::Malformed
        );
    }

    #[test]
    fn the_seal_secret_is_the_key_hash_in_hex() {
        assert_eq!(
            air_gapped_seal_secret("lsk_x"),
            SecretHash::of("lsk_x").to_hex()
        );
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// A release signed with a fixed seed: the format's bytes, fixed. A change here breaks
    /// every release file already written by devices in the field.
    #[test]
    fn a_release_signature_is_stable() {
        let key =
            ReleaseKey::from_seed_base64("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=").unwrap();
        let file = ReleaseFile::sign(
            &key,
            "lic_golden".parse().unwrap(),
            "dev_golden".parse().unwrap(),
            "2026-12-01T10:00:00Z".parse().unwrap(),
        )
        .unwrap();
        let message = claims_bytes(&file.license_id, &file.device_id, file.released_at).unwrap();
        assert_eq!(
            String::from_utf8(message).unwrap(),
            r#"{"format":"licentia-offline-release/1","license_id":"lic_golden","device_id":"dev_golden","released_at":"2026-12-01T10:00:00Z"}"#
        );
        assert_eq!(file.signature, GOLDEN_SIGNATURE);
        file.verify(&key.public_base64()).unwrap();
    }

    const GOLDEN_SIGNATURE: &str =
        "iHwZCmcIq4SdFliG0xl4OANN0uovGI28DMZEq+1bP+J9QtAnZSNtSZOEi+t5Y3enHKNh1jEx+NbZeoCnx1BKCw==";
}
