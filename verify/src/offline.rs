//! Offline envelopes: a signed entitlement encrypted to the license key (DESIGN 4.2).
//!
//! `{"kid":…,"salt":…,"nonce":…,"ciphertext":…}`, every binary field standard padded base64:
//!
//! 1. `key = HKDF-SHA256(ikm = license key UTF-8 bytes, salt = 32 random bytes,
//!    info = "licentia-offline-v1")`, 32 bytes of output;
//! 2. `ciphertext = AES-256-GCM(key, nonce = 12 random bytes, aad = ASCII bytes of kid,
//!    plaintext)` with the 16-byte tag appended;
//! 3. `plaintext` is the compact JSON `{"data":<canonical data>,"signature":{…}}`, a signed
//!    envelope whose data carries the offline terms ([`OfflineTerms`]);
//! 4. `kid` names the key that signed the inner payload and must equal the inner `kid`.
//!
//! [`open`] checks, in order: well-formedness, known `kid`, decryption, inner `kid`, the
//! signature (retired keys verify), the device binding (`binding_sha256` equals lowercase hex
//! SHA-256 of the caller's binding key, compared in constant time), then time:
//!
//! - **clock moved backwards** if `now + skew < watermark`;
//! - **not yet valid** if `now < issued_at - skew`;
//! - **expired** if `now > offline_expires_at + skew`.
//!
//! `skew` is the clock-skew tolerance ([`DEFAULT_SKEW_TOLERANCE`], 5 minutes; negative counts
//! as zero). The **watermark** is the latest instant the caller has seen, kept in durable
//! storage between runs; on success [`VerifiedOffline::watermark`] returns
//! `max(watermark, now, issued_at)` to store and pass to the next `open`, so a clock set back
//! to stretch an expired envelope is caught.

use alloc::string::String;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use chrono::{DateTime, TimeDelta, Utc};
use hkdf::Hkdf;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::encoding::{b64_decode, b64_decode_array, hex_encode};
use crate::error::OfflineError;
use crate::keys::{KeyStatus, PublicKeySet};
use crate::signed::{EnvelopeIn, Unverified, Verified};

/// HKDF `info` of the offline key derivation.
pub const OFFLINE_HKDF_INFO: &[u8] = b"licentia-offline-v1";
/// Length of the HKDF salt, in bytes.
pub const OFFLINE_SALT_LEN: usize = 32;
/// Length of the AES-GCM nonce, in bytes.
pub const OFFLINE_NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag appended to the ciphertext, in bytes.
pub const OFFLINE_TAG_LEN: usize = 16;
/// The recommended clock-skew tolerance for [`open`]: 5 minutes.
pub const DEFAULT_SKEW_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// The contract's `OfflineEnvelope`: `{kid, salt, nonce, ciphertext}`, binary fields in
/// standard padded base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineEnvelope {
    /// The key that signed the inner payload; also the AES-GCM associated data.
    pub kid: String,
    /// The 32-byte HKDF salt.
    pub salt: String,
    /// The 12-byte AES-GCM nonce.
    pub nonce: String,
    /// AES-256-GCM ciphertext with the 16-byte tag appended.
    pub ciphertext: String,
}

impl OfflineEnvelope {
    /// Parses the envelope's JSON.
    ///
    /// # Errors
    ///
    /// [`OfflineError::Malformed`] when the bytes are not such an object.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OfflineError> {
        serde_json::from_slice(bytes).map_err(|_| OfflineError::Malformed)
    }
}

/// What [`open`] checks in the signed offline data: the binding and the validity window.
pub trait OfflineTerms {
    /// Lowercase hex SHA-256 of the device binding key ([`binding_sha256`]).
    fn binding_sha256(&self) -> &str;
    /// When the entitlement was issued.
    fn issued_at(&self) -> DateTime<Utc>;
    /// The end of the offline window.
    fn offline_expires_at(&self) -> DateTime<Utc>;
}

/// The offline terms alone, for callers without a typed model of the entitlement (its other
/// fields stay readable in [`VerifiedOffline::signed_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OfflineWindow {
    /// Lowercase hex SHA-256 of the device binding key.
    pub binding_sha256: String,
    /// When the entitlement was issued.
    pub issued_at: DateTime<Utc>,
    /// The end of the offline window.
    pub offline_expires_at: DateTime<Utc>,
}

impl OfflineTerms for OfflineWindow {
    fn binding_sha256(&self) -> &str {
        &self.binding_sha256
    }
    fn issued_at(&self) -> DateTime<Utc> {
        self.issued_at
    }
    fn offline_expires_at(&self) -> DateTime<Utc> {
        self.offline_expires_at
    }
}

/// Lowercase hex SHA-256 of a device binding key: the `binding_sha256` of offline data.
pub fn binding_sha256(binding_key: &str) -> String {
    hex_encode(&Sha256::digest(binding_key.as_bytes()))
}

/// The AES-256-GCM key of an envelope: HKDF-SHA256 of the license key with `salt`.
pub fn offline_key(license_key: &str, salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), license_key.as_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand(OFFLINE_HKDF_INFO, &mut okm[..])
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
    okm
}

/// The cipher of an envelope (for the signing side too, so both derive the key one way).
pub fn offline_cipher(license_key: &str, salt: &[u8]) -> Aes256Gcm {
    let key = offline_key(license_key, salt);
    Aes256Gcm::new(&(*key).into())
}

/// A decrypted, verified and currently valid offline entitlement.
#[derive(Debug, Clone)]
pub struct VerifiedOffline<T> {
    verified: Verified<T>,
    watermark: DateTime<Utc>,
}

impl<T> VerifiedOffline<T> {
    /// The entitlement.
    pub fn data(&self) -> &T {
        self.verified.data()
    }

    /// The entitlement, by value.
    pub fn into_data(self) -> T {
        self.verified.into_data()
    }

    /// The exact signed bytes.
    pub fn signed_bytes(&self) -> &[u8] {
        self.verified.signed_bytes()
    }

    /// The key that signed.
    pub fn kid(&self) -> &str {
        self.verified.kid()
    }

    /// That key's status (retired keys still verify).
    pub fn key_status(&self) -> KeyStatus {
        self.verified.key_status()
    }

    /// The watermark to store and pass to the next [`open`]: `max(previous, now, issued_at)`.
    pub fn watermark(&self) -> DateTime<Utc> {
        self.watermark
    }
}

/// Decrypts and checks an offline envelope (see the [module docs](self)).
///
/// # Errors
///
/// Every [`OfflineError`] variant; crypto failures say nothing about where they failed.
pub fn open<T: DeserializeOwned + OfflineTerms>(
    envelope: &OfflineEnvelope,
    license_key: &str,
    keys: &PublicKeySet,
    binding_key: &str,
    now: DateTime<Utc>,
    skew_tolerance: TimeDelta,
    watermark: Option<DateTime<Utc>>,
) -> Result<VerifiedOffline<T>, OfflineError> {
    let salt =
        b64_decode_array::<OFFLINE_SALT_LEN>(&envelope.salt).ok_or(OfflineError::Malformed)?;
    let nonce =
        b64_decode_array::<OFFLINE_NONCE_LEN>(&envelope.nonce).ok_or(OfflineError::Malformed)?;
    let ciphertext = b64_decode(&envelope.ciphertext).ok_or(OfflineError::Malformed)?;
    if ciphertext.len() < OFFLINE_TAG_LEN {
        return Err(OfflineError::Malformed);
    }
    if keys.status(&envelope.kid).is_none() {
        return Err(OfflineError::UnknownKey);
    }

    let plaintext = offline_cipher(license_key, &salt)
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &ciphertext,
                aad: envelope.kid.as_bytes(),
            },
        )
        .map_err(|_| OfflineError::DecryptionFailed)?;

    let inner: EnvelopeIn =
        serde_json::from_slice(&plaintext).map_err(|_| OfflineError::Malformed)?;
    if inner.signature.kid != envelope.kid {
        return Err(OfflineError::Malformed);
    }
    let verified = Unverified::<T>::from_parts(inner.data, inner.signature).verify(keys)?;

    let data = verified.data();
    let expected = binding_sha256(binding_key);
    if !bool::from(expected.as_bytes().ct_eq(data.binding_sha256().as_bytes())) {
        return Err(OfflineError::BindingMismatch);
    }

    let skew = skew_tolerance.max(TimeDelta::zero());
    let issued_at = data.issued_at();
    let expires_at = data.offline_expires_at();
    // Checked arithmetic: an out-of-range sum means "unbounded" on that side, never a panic.
    if watermark.is_some_and(|mark| now.checked_add_signed(skew).is_some_and(|n| n < mark)) {
        return Err(OfflineError::ClockMovedBackwards);
    }
    if issued_at
        .checked_sub_signed(skew)
        .is_some_and(|start| now < start)
    {
        return Err(OfflineError::NotYetValid);
    }
    if expires_at
        .checked_add_signed(skew)
        .is_some_and(|end| now > end)
    {
        return Err(OfflineError::Expired);
    }

    let watermark = watermark
        .into_iter()
        .chain([now, issued_at])
        .max()
        .unwrap_or(now);
    Ok(VerifiedOffline {
        verified,
        watermark,
    })
}
