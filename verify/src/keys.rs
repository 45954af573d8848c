//! The public key set clients verify with, as `GET /api/v1/system/public-keys` lists it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::encoding::b64_decode_array;
use crate::error::{KeySetError, UnknownKeyStatus, VerifyError};

/// Longest key id accepted, in bytes.
pub const MAX_KID_LEN: usize = 128;

/// The only signature algorithm: Ed25519 (RFC 8032, pure, no context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519, wire name `"Ed25519"`.
    #[default]
    #[serde(rename = "Ed25519")]
    Ed25519,
}

impl Algorithm {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "Ed25519",
        }
    }
}

/// The contract's `Signature` object: `{"alg":"Ed25519","kid":…,"value":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Always [`Algorithm::Ed25519`]; any other value fails to deserialize.
    pub alg: Algorithm,
    /// The id of the key that signed.
    pub kid: String,
    /// Standard padded base64 of the 64-byte signature.
    pub value: String,
}

/// Whether a signing key signs new responses or only verifies old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyStatus {
    /// Signs new responses.
    #[serde(rename = "active")]
    Active,
    /// Kept so earlier signatures still verify.
    #[serde(rename = "retired")]
    Retired,
}

impl KeyStatus {
    /// Every variant, in the contract's order.
    pub const ALL: &'static [KeyStatus] = &[KeyStatus::Active, KeyStatus::Retired];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyStatus {
    type Err = UnknownKeyStatus;

    fn from_str(s: &str) -> Result<Self, UnknownKeyStatus> {
        match s {
            "active" => Ok(KeyStatus::Active),
            "retired" => Ok(KeyStatus::Retired),
            _ => Err(UnknownKeyStatus),
        }
    }
}

/// Checks a key id: 1 to [`MAX_KID_LEN`] bytes of `[A-Za-z0-9._:-]`.
///
/// # Errors
///
/// [`KeySetError::InvalidKid`].
pub fn check_kid(kid: &str) -> Result<(), KeySetError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeySetError::InvalidKid)
    }
}

/// What the set reads of a listed key (other members, like `created_at`, are ignored).
#[derive(Deserialize)]
struct Listed {
    kid: String,
    #[serde(rename = "algorithm")]
    _algorithm: Algorithm,
    public_key: String,
    status: KeyStatus,
}

/// The keys signatures are checked against, by `kid`. Retired keys still verify.
#[derive(Clone, Default)]
pub struct PublicKeySet {
    keys: BTreeMap<String, (VerifyingKey, KeyStatus)>,
}

impl fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PublicKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the key `kid` (standard padded base64 of 32 raw bytes) with `status`.
    ///
    /// # Errors
    ///
    /// [`KeySetError::InvalidKid`], [`KeySetError::InvalidPublicKey`] for a key that is not a
    /// valid Ed25519 point, [`KeySetError::DuplicateKid`].
    pub fn insert(
        &mut self,
        kid: String,
        public_key: &str,
        status: KeyStatus,
    ) -> Result<(), KeySetError> {
        check_kid(&kid)?;
        let bytes = b64_decode_array::<32>(public_key).ok_or(KeySetError::InvalidPublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeySetError::InvalidPublicKey)?;
        if self.keys.contains_key(&kid) {
            return Err(KeySetError::DuplicateKid);
        }
        self.keys.insert(kid, (key, status));
        Ok(())
    }

    /// Parses the JSON array of `PublicKey` objects (the management envelope's `data`), or
    /// the whole envelope `{"data": [...], …}`.
    ///
    /// # Errors
    ///
    /// [`KeySetError::InvalidPublicKey`] for JSON that is not such an array, and as
    /// [`PublicKeySet::insert`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeySetError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Document {
            Keys(Vec<Listed>),
            Envelope { data: Vec<Listed> },
        }
        let listed =
            match serde_json::from_slice(bytes).map_err(|_| KeySetError::InvalidPublicKey)? {
                Document::Keys(k) | Document::Envelope { data: k } => k,
            };
        let mut set = Self::new();
        for k in listed {
            set.insert(k.kid, &k.public_key, k.status)?;
        }
        Ok(set)
    }

    /// Removes a key; signatures it made stop verifying. Returns whether it was present.
    pub fn remove(&mut self, kid: &str) -> bool {
        self.keys.remove(kid).is_some()
    }

    /// The status of `kid`, if it is in the set.
    pub fn status(&self, kid: &str) -> Option<KeyStatus> {
        self.keys.get(kid).map(|(_, s)| *s)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies `signature` over exactly `data` with `verify_strict`. Returns the key's
    /// status.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Malformed`] for a bad algorithm or signature encoding,
    /// [`VerifyError::UnknownKey`], [`VerifyError::BadSignature`].
    pub fn verify_bytes(
        &self,
        data: &[u8],
        signature: &Signature,
    ) -> Result<KeyStatus, VerifyError> {
        if signature.alg != Algorithm::Ed25519 {
            return Err(VerifyError::Malformed);
        }
        let sig_bytes = b64_decode_array::<64>(&signature.value).ok_or(VerifyError::Malformed)?;
        let (key, status) = self
            .keys
            .get(&signature.kid)
            .ok_or(VerifyError::UnknownKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig_bytes);
        key.verify_strict(data, &sig)
            .map_err(|_| VerifyError::BadSignature)?;
        Ok(*status)
    }
}
