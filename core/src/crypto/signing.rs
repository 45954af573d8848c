//! Ed25519 signed runtime envelopes and the key ring (DESIGN 4.1).
//!
//! # Format
//!
//! A signed runtime response is `{"data":<bytes>,"signature":{"alg":"Ed25519","kid":…,
//! "value":…},"meta":…}` where `value` is the standard padded base64 of the Ed25519 signature
//! over **exactly the bytes of `data` as sent**. The signer produces those bytes with
//! [`canonical_json`](super::canonical::canonical_json), so any SDK that parses and re-emits
//! `data` the Python/JavaScript way gets the same bytes; a verifier in this crate does not even
//! need that property, because it keeps the received bytes verbatim
//! ([`serde_json::value::RawValue`]) and verifies over them.
//!
//! # Keys
//!
//! A [`KeyRing`] holds the signing keys: exactly one [`KeyStatus::Active`] key signs, any
//! number of [`KeyStatus::Retired`] keys stay listed in [`KeyRing::public_keys`] so signatures
//! made before a [rotation](KeyRing::rotate) still verify. Stores persist keys through
//! [`KeyRing::export`] / [`KeyRing::from_stored`] as [`StoredKey`]s, whose 32-byte Ed25519 seed
//! is a [`SecretSeed`]: zeroized on drop and redacted in `Debug`.
//!
//! # Verification typestate
//!
//! Untrusted bytes become an [`Unverified<T>`]; only [`Unverified::verify`] against a
//! [`PublicKeySet`] turns it into a [`Verified<T>`], whose data is deserialized *after* the
//! signature check. Verification uses `verify_strict` (no small-order keys or `R` points, no
//! non-canonical `S`).

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use ed25519_dalek::Signer as _;
use ed25519_dalek::SigningKey;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::canonical::canonical_json_string;
use super::encoding::{b64_decode_array, b64_encode};
use super::error::{CanonicalError, KeyError};
use crate::model::{KeyStatus, ProductId, Timestamp};
pub use licentia_verify::keys::MAX_KID_LEN;
pub use licentia_verify::{Algorithm, PublicKeySet, Signature, Unverified, Verified};

/// The contract's `PublicKey` object, as listed by `GET /api/v1/system/public-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// The key id.
    pub kid: String,
    /// Always [`Algorithm::Ed25519`].
    pub algorithm: Algorithm,
    /// Standard padded base64 of the 32 raw public key bytes.
    pub public_key: String,
    /// Whether the key signs new responses or is only kept for verification.
    pub status: KeyStatus,
    /// When the key was created.
    pub created_at: Timestamp,
    /// When a key published ahead of use starts signing (`keys rotate --activate-in`); absent
    /// for keys that sign now or signed before. An extension of the contract's `PublicKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_at: Option<Timestamp>,
    /// The product whose own key ring holds the key; absent for the global ring, which signs
    /// for every product without keys of its own. An extension of the contract's `PublicKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
}

/// A 32-byte Ed25519 secret seed, as persisted by a store.
///
/// Zeroized on drop; `Debug` prints `SecretSeed([redacted])`. There is deliberately no
/// `Display`, `Serialize` or `PartialEq`.
#[derive(Clone)]
pub struct SecretSeed(Zeroizing<[u8; 32]>);

impl SecretSeed {
    /// Wraps raw seed bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Parses the standard padded base64 of 32 bytes (see [`SecretSeed::to_base64`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidSeed`] when `s` is not base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = b64_decode_array::<32>(s).ok_or(KeyError::InvalidSeed)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The raw seed bytes. Handle with care.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The seed as standard padded base64, in a zeroizing string (for storage).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(b64_encode(&self.0[..]))
    }
}

impl fmt::Debug for SecretSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSeed([redacted])")
    }
}

/// One key of a [`KeyRing`] in its storable form.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The key id (an ASCII identifier, see [`crate::model`] ids).
    pub kid: String,
    /// Active or retired.
    pub status: KeyStatus,
    /// When the key was created.
    pub created_at: Timestamp,
    /// A key published ahead of use: stored `Retired` with the instant it starts signing
    /// ([`KeyRing::rotate_at`]). `None` for every other key.
    pub activates_at: Option<Timestamp>,
    /// The product whose ring holds the key (`None`: the global ring).
    pub product_id: Option<ProductId>,
    /// The secret seed.
    pub seed: SecretSeed,
}

impl StoredKey {
    /// The key's public information as stored (for a ring kept only for verification, whose
    /// keys are all retired).
    pub fn public_info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            kid: self.kid.clone(),
            algorithm: Algorithm::Ed25519,
            public_key: b64_encode(
                SigningKey::from_bytes(self.seed.expose_secret())
                    .verifying_key()
                    .as_bytes(),
            ),
            status: self.status,
            created_at: self.created_at,
            activates_at: self.activates_at,
            product_id: self.product_id.clone(),
        }
    }
}

/// A signing key with its metadata. The secret half never appears in `Debug` and is zeroized on
/// drop (ed25519-dalek's `zeroize` feature).
struct KeyEntry {
    kid: String,
    status: KeyStatus,
    created_at: Timestamp,
    activates_at: Option<Timestamp>,
    signing: SigningKey,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field(
                "public_key",
                &b64_encode(self.signing.verifying_key().as_bytes()),
            )
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl KeyEntry {
    fn new(rng: &mut (impl CryptoRng + ?Sized), now: DateTime<Utc>) -> Self {
        let kid = random_kid(rng);
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self {
            kid,
            status: KeyStatus::Active,
            created_at: Timestamp::new(now),
            activates_at: None,
            signing: SigningKey::from_bytes(&seed),
        }
    }

    fn info_as(
        &self,
        status: KeyStatus,
        activates_at: Option<Timestamp>,
        product: Option<&ProductId>,
    ) -> PublicKeyInfo {
        PublicKeyInfo {
            kid: self.kid.clone(),
            algorithm: Algorithm::Ed25519,
            public_key: b64_encode(self.signing.verifying_key().as_bytes()),
            status,
            created_at: self.created_at,
            activates_at,
            product_id: product.cloned(),
        }
    }

    /// Whether it is a key published ahead whose time has come at `now`.
    fn due(&self, now: DateTime<Utc>) -> bool {
        self.activates_at.is_some_and(|at| at.get() <= now)
    }
}

/// A `kid` must be a non-empty ASCII identifier (`[A-Za-z0-9._:-]`, at most [`MAX_KID_LEN`]
/// bytes): it is written unescaped into signed data and used as AES-GCM associated data.
fn check_kid(kid: &str) -> Result<(), KeyError> {
    licentia_verify::keys::check_kid(kid).map_err(KeyError::from)
}

/// `key_` + 26 lowercase base32 characters (130 random bits), like the model's ids.
fn random_kid(rng: &mut (impl CryptoRng + ?Sized)) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 26];
    rng.fill_bytes(&mut bytes);
    let mut kid = String::with_capacity(30);
    kid.push_str("key_");
    kid.extend(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)])),
    );
    kid
}

/// The signing keys: exactly one active key plus the retired ones, oldest first. A ring is
/// the global one or a product's own ([`KeyRing::product`]).
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<KeyEntry>,
    product: Option<ProductId>,
}

impl KeyRing {
    /// A global ring with one fresh active key created at `now`.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized), now: DateTime<Utc>) -> Self {
        Self {
            keys: vec![KeyEntry::new(rng, now)],
            product: None,
        }
    }

    /// A ring of `product`'s own with one fresh active key created at `now`, plus `earlier`:
    /// the product's keys kept from an earlier ring (all retired, see
    /// [`KeyRing::retire_all`]), so that what they signed still verifies.
    ///
    /// # Errors
    ///
    /// As [`KeyRing::from_stored`] for `earlier` (one of them active, or of another product,
    /// is refused).
    pub fn generate_for(
        product: ProductId,
        earlier: Vec<StoredKey>,
        rng: &mut (impl CryptoRng + ?Sized),
        now: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        let mut fresh = KeyEntry::new(rng, now);
        while earlier.iter().any(|k| k.kid == fresh.kid) {
            fresh = KeyEntry::new(rng, now);
        }
        let fresh = StoredKey {
            kid: fresh.kid.clone(),
            status: KeyStatus::Active,
            created_at: fresh.created_at,
            activates_at: None,
            product_id: Some(product),
            seed: SecretSeed::from_bytes(fresh.signing.to_bytes()),
        };
        Self::from_stored(earlier.into_iter().chain([fresh]))
    }

    /// The product whose own ring this is; `None` for the global ring.
    pub fn product(&self) -> Option<&ProductId> {
        self.product.as_ref()
    }

    /// Every key retired, in storable form: the ring kept only so that what it signed still
    /// verifies (a product back on the global ring). A key published ahead never signed and
    /// is dropped.
    pub fn retire_all(&self) -> Vec<StoredKey> {
        let mut keys = self.export();
        keys.retain(|k| k.activates_at.is_none());
        for k in &mut keys {
            k.status = KeyStatus::Retired;
        }
        keys
    }

    /// Rebuilds a ring from stored keys.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] for a kid that is not an ASCII identifier,
    /// [`KeyError::DuplicateKid`], [`KeyError::MixedProducts`] for keys of different rings,
    /// and [`KeyError::NoActiveKey`] / [`KeyError::MultipleActiveKeys`] unless exactly one
    /// key is active.
    pub fn from_stored(keys: impl IntoIterator<Item = StoredKey>) -> Result<Self, KeyError> {
        let mut entries: Vec<KeyEntry> = Vec::new();
        let mut product = None;
        for k in keys {
            check_kid(&k.kid)?;
            if entries.iter().any(|e| e.kid == k.kid) {
                return Err(KeyError::DuplicateKid);
            }
            match &product {
                None => product = Some(k.product_id.clone()),
                Some(p) if *p != k.product_id => return Err(KeyError::MixedProducts),
                Some(_) => {}
            }
            entries.push(KeyEntry {
                signing: SigningKey::from_bytes(k.seed.expose_secret()),
                kid: k.kid,
                status: k.status,
                created_at: k.created_at,
                activates_at: k.activates_at,
            });
        }
        match entries
            .iter()
            .filter(|e| e.status == KeyStatus::Active)
            .count()
        {
            0 => return Err(KeyError::NoActiveKey),
            1 => {}
            _ => return Err(KeyError::MultipleActiveKeys),
        }
        entries.sort_by_key(|e| e.created_at);
        Ok(Self {
            keys: entries,
            product: product.flatten(),
        })
    }

    /// Every key in storable form, oldest first. The seeds are secret: persist them encrypted
    /// or in a secret store.
    pub fn export(&self) -> Vec<StoredKey> {
        self.keys
            .iter()
            .map(|k| StoredKey {
                kid: k.kid.clone(),
                status: k.status,
                created_at: k.created_at,
                activates_at: k.activates_at,
                product_id: self.product.clone(),
                seed: SecretSeed::from_bytes(k.signing.to_bytes()),
            })
            .collect()
    }

    /// Makes a fresh key active (created at `now`) and retires the previous active key.
    /// Returns the new key's public information.
    pub fn rotate(
        &mut self,
        rng: &mut (impl CryptoRng + ?Sized),
        now: DateTime<Utc>,
    ) -> PublicKeyInfo {
        self.rotate_at(rng, now, now)
    }

    /// Makes a fresh key (created at `now`) that signs from `activates_at` on. Until then it
    /// is published ([`KeyRing::public_keys_at`]) but the current key keeps signing
    /// ([`KeyRing::sign_at`]): every instance that reloads the ring within that time lists
    /// the new key before any instance signs with it, so a client that refreshes its key set
    /// on an unknown kid never fails. `activates_at <= now` rotates at once.
    ///
    /// A key published earlier whose time has come becomes the active one first; one still
    /// waiting is replaced by the new one (it never signed).
    pub fn rotate_at(
        &mut self,
        rng: &mut (impl CryptoRng + ?Sized),
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> PublicKeyInfo {
        self.settle(now);
        self.keys.retain(|k| k.activates_at.is_none());
        let mut entry = KeyEntry::new(rng, now);
        // A random 130-bit kid does not collide in practice; regenerate if it ever does.
        while self.keys.iter().any(|k| k.kid == entry.kid) {
            entry = KeyEntry::new(rng, now);
        }
        if activates_at <= now {
            for k in &mut self.keys {
                k.status = KeyStatus::Retired;
            }
        } else {
            entry.status = KeyStatus::Retired;
            entry.activates_at = Some(Timestamp::new(activates_at));
        }
        let info = entry.info_as(KeyStatus::Active, entry.activates_at, self.product());
        self.keys.push(entry);
        info
    }

    /// Makes a published key whose time has come at `now` the active one (stored form).
    fn settle(&mut self, now: DateTime<Utc>) {
        let Some(due) = self
            .keys
            .iter()
            .filter(|k| k.due(now))
            .max_by_key(|k| k.activates_at)
            .map(|k| k.kid.clone())
        else {
            return;
        };
        for k in &mut self.keys {
            if k.kid == due {
                k.status = KeyStatus::Active;
                k.activates_at = None;
            } else if k.due(now) {
                // An older schedule overtaken by a newer one: it never signed.
                k.activates_at = None;
            } else if k.activates_at.is_none() {
                k.status = KeyStatus::Retired;
            }
        }
    }

    /// The key that signs at `now`: a published key whose time has come, else the active one.
    fn signer(&self, now: DateTime<Utc>) -> &KeyEntry {
        self.keys
            .iter()
            .filter(|k| k.due(now))
            .max_by_key(|k| k.activates_at)
            .unwrap_or_else(|| self.active())
    }

    /// Drops a retired key for good: signatures it made stop verifying once clients refresh
    /// their public key set.
    ///
    /// # Errors
    ///
    /// [`KeyError::UnknownKid`], or [`KeyError::ActiveKeyRemoval`] for the active key.
    pub fn remove(&mut self, kid: &str) -> Result<(), KeyError> {
        let pos = self
            .keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or(KeyError::UnknownKid)?;
        if self.keys[pos].status == KeyStatus::Active {
            return Err(KeyError::ActiveKeyRemoval);
        }
        self.keys.remove(pos);
        Ok(())
    }

    fn active(&self) -> &KeyEntry {
        self.keys
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .unwrap_or_else(|| unreachable!("a KeyRing always holds exactly one active key"))
    }

    /// The active key's id.
    pub fn active_kid(&self) -> &str {
        &self.active().kid
    }

    /// The public keys, oldest first, as stored (a key published ahead shows as retired with
    /// its `activates_at`). Servers list [`KeyRing::public_keys_at`].
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        self.keys
            .iter()
            .map(|k| k.info_as(k.status, None, self.product()))
            .collect()
    }

    /// The public keys at `now`, oldest first: what `GET /api/v1/system/public-keys` lists.
    /// The key that signs at `now` is `active`; a key published ahead of use is `active` too,
    /// with its `activates_at` (it verifies nothing yet, but clients should have it); the
    /// others are `retired`.
    pub fn public_keys_at(&self, now: DateTime<Utc>) -> Vec<PublicKeyInfo> {
        let signer = self.signer(now).kid.as_str();
        self.keys
            .iter()
            .map(|k| {
                let product = self.product();
                if k.kid == signer {
                    k.info_as(KeyStatus::Active, None, product)
                } else if k.activates_at.is_some_and(|at| at.get() > now) {
                    k.info_as(KeyStatus::Active, k.activates_at, product)
                } else {
                    k.info_as(KeyStatus::Retired, None, product)
                }
            })
            .collect()
    }

    /// When the next key published ahead starts signing, if one is waiting at `now`.
    pub fn next_activation(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .filter_map(|k| k.activates_at.map(Timestamp::get))
            .filter(|at| *at > now)
            .min()
    }

    /// The verification set for this ring's keys.
    pub fn public_key_set(&self) -> PublicKeySet {
        let mut set = PublicKeySet::new();
        for k in &self.keys {
            // The ring's kids are checked and distinct, its keys valid points.
            let _ = set.insert(
                k.kid.clone(),
                &b64_encode(k.signing.verifying_key().as_bytes()),
                k.status,
            );
        }
        set
    }

    /// Signs `data` with the active key: serializes it to canonical JSON and signs those bytes.
    ///
    /// # Errors
    ///
    /// A [`CanonicalError`] when `data` holds floats, out-of-range integers or raw JSON.
    pub fn sign<T: Serialize + ?Sized>(&self, data: &T) -> Result<Signed<T>, CanonicalError> {
        self.sign_with(self.active(), data)
    }

    /// Signs `data` with the key that signs at `now`: the active key, or a key published ahead
    /// whose time has come ([`KeyRing::rotate_at`]).
    ///
    /// # Errors
    ///
    /// As [`KeyRing::sign`].
    pub fn sign_at<T: Serialize + ?Sized>(
        &self,
        now: DateTime<Utc>,
        data: &T,
    ) -> Result<Signed<T>, CanonicalError> {
        self.sign_with(self.signer(now), data)
    }

    /// Signs `data` with a specific key of the ring, even a retired one. Meant for tests and
    /// golden vectors; servers sign with [`KeyRing::sign`].
    ///
    /// # Errors
    ///
    /// As [`KeyRing::sign`]; `None` when no key has that `kid`.
    pub fn sign_with_kid<T: Serialize + ?Sized>(
        &self,
        kid: &str,
        data: &T,
    ) -> Option<Result<Signed<T>, CanonicalError>> {
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        Some(self.sign_with(key, data))
    }

    fn sign_with<T: Serialize + ?Sized>(
        &self,
        key: &KeyEntry,
        data: &T,
    ) -> Result<Signed<T>, CanonicalError> {
        let text = canonical_json_string(data)?;
        let sig = key.signing.sign(text.as_bytes());
        let data = RawValue::from_string(text).map_err(CanonicalError::Serialize)?;
        Ok(Signed {
            data,
            signature: Signature {
                alg: Algorithm::Ed25519,
                kid: key.kid.clone(),
                value: b64_encode(&sig.to_bytes()),
            },
            _data: PhantomData,
        })
    }
}

/// Signed data: the exact canonical `data` bytes and their [`Signature`].
///
/// Serializes as `{"data":<the exact bytes>,"signature":{…}}` (with `serde_json`, which writes
/// the raw bytes verbatim); a server that adds `meta` embeds [`Signed::data_json`] and
/// [`Signed::signature`] in its own envelope type.
pub struct Signed<T: ?Sized> {
    data: Box<RawValue>,
    signature: Signature,
    _data: PhantomData<fn() -> Box<T>>,
}

impl<T: ?Sized> Signed<T> {
    /// The signed bytes (canonical JSON, ASCII).
    pub fn data_bytes(&self) -> &[u8] {
        self.data.get().as_bytes()
    }

    /// The signed bytes as a raw JSON value, to embed verbatim in an envelope.
    pub fn data_json(&self) -> &RawValue {
        &self.data
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The compact envelope `{"data":…,"signature":{…}}` as bytes.
    pub fn to_envelope_json(&self) -> Vec<u8> {
        // Serializing a RawValue and a struct of strings into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("infallible serialization"))
    }
}

impl<T: ?Sized> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            signature: self.signature.clone(),
            _data: PhantomData,
        }
    }
}

impl<T: ?Sized> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("data", &self.data.get())
            .field("signature", &self.signature)
            .finish()
    }
}

impl<T: ?Sized> Serialize for Signed<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SignedRef {
            data: &self.data,
            signature: &self.signature,
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct SignedRef<'a> {
    data: &'a RawValue,
    signature: &'a Signature,
}

/// Builds a verification set from the published list (`GET /api/v1/system/public-keys`).
///
/// # Errors
///
/// [`KeyError::InvalidPublicKey`] when a key is not base64 of a valid 32-byte Ed25519 point,
/// [`KeyError::InvalidKid`] and [`KeyError::DuplicateKid`].
pub fn key_set(infos: impl IntoIterator<Item = PublicKeyInfo>) -> Result<PublicKeySet, KeyError> {
    let mut set = PublicKeySet::new();
    for info in infos {
        set.insert(info.kid, &info.public_key, info.status)?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::VerifyError;
    use chrono::TimeZone;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([7; 32])
    }

    #[test]
    fn sign_and_verify() {
        let ring = KeyRing::generate(&mut rng(), now());
        let signed = ring.sign(&json!({"a": 1, "b": "é"})).unwrap();
        assert_eq!(signed.data_bytes(), br#"{"a":1,"b":"\u00e9"}"#);
        let env = signed.to_envelope_json();
        let un = Unverified::<Value>::from_envelope_json(&env).unwrap();
        assert_eq!(un.kid(), ring.active_kid());
        let v = un.verify(&ring.public_key_set()).unwrap();
        assert_eq!(v.data()["b"], "é");
        assert_eq!(v.kid(), ring.active_kid());
        assert_eq!(v.key_status(), KeyStatus::Active);
        assert_eq!(v.signed_bytes(), signed.data_bytes());
    }

    #[test]
    fn a_key_published_ahead_signs_only_from_its_time() {
        let mut r = rng();
        let mut ring = KeyRing::generate(&mut r, now());
        let old = ring.active_kid().to_owned();
        let at = now() + chrono::Duration::seconds(60);
        let new = ring.rotate_at(&mut r, now(), at);
        assert_eq!(new.activates_at, Some(Timestamp::new(at)));
        let before = now() + chrono::Duration::seconds(59);
        let after = now() + chrono::Duration::seconds(60);
        let kid = |t| {
            ring.sign_at(t, &json!({"a": 1}))
                .unwrap()
                .signature()
                .kid
                .clone()
        };
        assert_eq!(
            kid(before),
            old,
            "the current key signs until the new one's time"
        );
        assert_eq!(kid(after), new.kid, "then the new key signs");
        assert_eq!(ring.active_kid(), old, "the stored form is unchanged");
        // Listed ahead: both active, the new one with its time; afterwards the old is retired.
        let listed = |t| {
            ring.public_keys_at(t)
                .into_iter()
                .map(|k| (k.kid, k.status, k.activates_at))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            listed(before),
            vec![
                (old.clone(), KeyStatus::Active, None),
                (new.kid.clone(), KeyStatus::Active, Some(Timestamp::new(at)))
            ]
        );
        assert_eq!(
            listed(after),
            vec![
                (old.clone(), KeyStatus::Retired, None),
                (new.kid.clone(), KeyStatus::Active, None)
            ]
        );
        assert_eq!(ring.next_activation(before), Some(at));
        assert_eq!(ring.next_activation(after), None);
        // The stored form survives a reload; a later rotation settles the due key first.
        let mut reloaded = KeyRing::from_stored(ring.export()).unwrap();
        assert_eq!(reloaded.public_keys_at(before), ring.public_keys_at(before));
        let third = reloaded.rotate_at(&mut r, after, after);
        assert_eq!(reloaded.active_kid(), third.kid);
        let statuses: Vec<_> = reloaded
            .export()
            .into_iter()
            .map(|k| (k.kid, k.status, k.activates_at))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (old, KeyStatus::Retired, None),
                (new.kid, KeyStatus::Retired, None),
                (third.kid, KeyStatus::Active, None)
            ]
        );
        // A key still waiting is replaced by a newer rotation (it never signed).
        let mut ring = KeyRing::generate(&mut r, now());
        let waiting = ring.rotate_at(&mut r, now(), at);
        let replacing = ring.rotate_at(&mut r, now(), at);
        let kids: Vec<_> = ring.public_keys().into_iter().map(|k| k.kid).collect();
        assert!(!kids.contains(&waiting.kid) && kids.contains(&replacing.kid));
    }

    #[test]
    fn envelope_with_meta_and_whitespace_in_data() {
        // Bytes as sent are what is verified: whitespace inside `data` breaks the signature.
        let ring = KeyRing::generate(&mut rng(), now());
        let signed = ring.sign(&json!({"a": 1})).unwrap();
        let sig = serde_json::to_string(signed.signature()).unwrap();
        let ok = format!(r#"{{ "meta": {{"x": 1}}, "data" : {{"a":1}} , "signature": {sig} }}"#);
        let keys = ring.public_key_set();
        assert!(
            Unverified::<Value>::from_envelope_json(ok.as_bytes())
                .unwrap()
                .verify(&keys)
                .is_ok()
        );
        let spaced = format!(r#"{{"data":{{"a": 1}},"signature":{sig}}}"#);
        assert_eq!(
            Unverified::<Value>::from_envelope_json(spaced.as_bytes())
                .unwrap()
                .verify(&keys)
                .unwrap_err(),
            VerifyError::BadSignature
        );
    }

    #[test]
    fn distinct_outcomes() {
        let mut r = rng();
        let mut ring = KeyRing::generate(&mut r, now());
        let old = ring.sign(&json!({"n": 1})).unwrap();
        ring.rotate(&mut r, now());
        let keys = ring.public_key_set();

        // Retired but known: accepted, status reported.
        let v = Unverified::<Value>::from_parts(old.data.clone(), old.signature.clone())
            .verify(&keys)
            .unwrap();
        assert_eq!(v.key_status(), KeyStatus::Retired);

        // Unknown kid.
        let mut sig = old.signature.clone();
        sig.kid = "key_unknown".into();
        let e = Unverified::<Value>::from_parts(old.data.clone(), sig)
            .verify(&keys)
            .unwrap_err();
        assert_eq!(e, VerifyError::UnknownKey);

        // Bad base64 / wrong length.
        for value in ["!!!", "AAAA", ""] {
            let mut sig = old.signature.clone();
            sig.value = value.into();
            let e = Unverified::<Value>::from_parts(old.data.clone(), sig)
                .verify(&keys)
                .unwrap_err();
            assert_eq!(e, VerifyError::Malformed);
        }

        // Wrong algorithm or bad JSON.
        let env = String::from_utf8(old.to_envelope_json()).unwrap();
        let rs = env.replace("Ed25519", "RS256");
        assert_eq!(
            Unverified::<Value>::from_envelope_json(rs.as_bytes()).unwrap_err(),
            VerifyError::Malformed
        );
        assert_eq!(
            Unverified::<Value>::from_envelope_json(b"{\"data\":").unwrap_err(),
            VerifyError::Malformed
        );

        // Bad signature: other data.
        let e = Unverified::<Value>::from_parts(
            RawValue::from_string("{\"n\":2}".into()).unwrap(),
            old.signature.clone(),
        )
        .verify(&keys)
        .unwrap_err();
        assert_eq!(e, VerifyError::BadSignature);

        // Verified, but data has the wrong shape for T.
        let e = Unverified::<Vec<u8>>::from_parts(old.data.clone(), old.signature.clone())
            .verify(&keys)
            .unwrap_err();
        assert_eq!(e, VerifyError::Malformed);
    }

    #[test]
    fn rotation_export_import() {
        let mut r = rng();
        let mut ring = KeyRing::generate(&mut r, now());
        let first = ring.active_kid().to_owned();
        let info = ring.rotate(&mut r, now() + chrono::Duration::days(1));
        assert_eq!(info.status, KeyStatus::Active);
        assert_ne!(info.kid, first);
        let pubs = ring.public_keys();
        assert_eq!(pubs.len(), 2);
        assert_eq!(pubs[0].status, KeyStatus::Retired);
        assert_eq!(pubs[1].status, KeyStatus::Active);

        let stored = ring.export();
        let debug = format!("{stored:?}");
        assert!(debug.contains("redacted"));
        for k in &stored {
            assert!(!debug.contains(k.seed.to_base64().as_str()));
        }
        assert!(!format!("{ring:?}").contains(stored[0].seed.to_base64().as_str()));

        let back = KeyRing::from_stored(stored.clone()).unwrap();
        assert_eq!(back.public_keys(), pubs);
        let seed = SecretSeed::from_base64(&stored[0].seed.to_base64()).unwrap();
        assert_eq!(seed.expose_secret(), stored[0].seed.expose_secret());

        let mut two_active = stored.clone();
        two_active[0].status = KeyStatus::Active;
        assert_eq!(
            KeyRing::from_stored(two_active).unwrap_err(),
            KeyError::MultipleActiveKeys
        );
        assert_eq!(
            KeyRing::from_stored(stored[..1].to_vec()).unwrap_err(),
            KeyError::NoActiveKey
        );
        let mut dup = stored.clone();
        dup[0].kid = dup[1].kid.clone();
        assert_eq!(
            KeyRing::from_stored(dup).unwrap_err(),
            KeyError::DuplicateKid
        );

        let mut ring = back;
        assert_eq!(ring.remove(&info.kid), Err(KeyError::ActiveKeyRemoval));
        assert_eq!(ring.remove("nope"), Err(KeyError::UnknownKid));
        ring.remove(&first).unwrap();
        assert_eq!(ring.public_keys().len(), 1);
    }

    #[test]
    fn a_product_ring_names_its_product_and_keeps_its_keys_when_retired() {
        let mut r = rng();
        let product: ProductId = "prod_aaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
        let ring = KeyRing::generate_for(product.clone(), vec![], &mut r, now()).unwrap();
        assert_eq!(ring.product(), Some(&product));
        let listed = ring.public_keys_at(now());
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].product_id.as_ref(), Some(&product));
        assert_eq!(
            serde_json::to_value(&listed[0]).unwrap()["product_id"],
            product.as_str()
        );
        assert!(
            ring.export()
                .iter()
                .all(|k| k.product_id == Some(product.clone()))
        );

        // Back on the global ring: every key retired, a key published ahead dropped.
        let mut ahead = KeyRing::from_stored(ring.export()).unwrap();
        let pending = ahead.rotate_at(&mut r, now(), now() + chrono::Duration::hours(1));
        let kept = ahead.retire_all();
        assert_eq!(kept.len(), 1, "the key published ahead never signed");
        assert_eq!(kept[0].kid, ring.active_kid());
        assert!(kept.iter().all(|k| k.status == KeyStatus::Retired));
        assert!(kept.iter().all(|k| k.kid != pending.kid));
        assert_eq!(
            kept[0].public_info(),
            ring.public_keys()[0].clone().retired()
        );
        assert_eq!(
            KeyRing::from_stored(kept.clone()).unwrap_err(),
            KeyError::NoActiveKey
        );

        // Signing again: a fresh key beside the kept ones.
        let again = KeyRing::generate_for(product.clone(), kept.clone(), &mut r, now()).unwrap();
        assert_eq!(again.public_keys().len(), 2);
        assert_ne!(again.active_kid(), ring.active_kid());
        // Kept keys must all be retired and of that product.
        let mut active = kept.clone();
        active[0].status = KeyStatus::Active;
        assert_eq!(
            KeyRing::generate_for(product.clone(), active, &mut r, now()).unwrap_err(),
            KeyError::MultipleActiveKeys
        );
        let mut global = kept;
        global[0].product_id = None;
        assert_eq!(
            KeyRing::generate_for(product, global, &mut r, now()).unwrap_err(),
            KeyError::MixedProducts
        );
    }

    impl PublicKeyInfo {
        fn retired(mut self) -> Self {
            self.status = KeyStatus::Retired;
            self
        }
    }

    #[test]
    fn public_key_info_wire_shape() {
        let ring = KeyRing::generate(&mut rng(), now());
        let json = serde_json::to_value(&ring.public_keys()[0]).unwrap();
        let obj = json.as_object().unwrap();
        assert_eq!(
            obj.keys().collect::<Vec<_>>(),
            ["algorithm", "created_at", "kid", "public_key", "status"]
        );
        assert_eq!(obj["algorithm"], "Ed25519");
        assert_eq!(obj["status"], "active");
        assert_eq!(obj["created_at"], "2026-11-22T10:00:00Z");
        assert_eq!(obj["public_key"].as_str().unwrap().len(), 44);
        let set = PublicKeySet::from_json(
            serde_json::to_string(&ring.public_keys())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(set.len(), 1);

        let mut bad = ring.public_keys();
        bad[0].public_key = b64_encode(&[0u8; 31]);
        assert_eq!(
            crate::crypto::key_set(bad).unwrap_err(),
            KeyError::InvalidPublicKey
        );
    }
}
