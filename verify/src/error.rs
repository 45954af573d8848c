//! Why something did not verify. Crypto failures are opaque: they say what failed, never where
//! inside a primitive.

use thiserror::Error;

/// Why a signed envelope (an answer or a refusal) did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The envelope is not well-formed: bad JSON, missing fields, an algorithm other than
    /// `Ed25519`, a signature that is not base64 of 64 bytes, or signed data that does not
    /// have the expected shape.
    #[error("malformed signed envelope")]
    Malformed,
    /// The signature names a `kid` that is not in the public key set.
    #[error("signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify over the signed bytes.
    #[error("invalid signature")]
    BadSignature,
}

/// Why an offline envelope was refused (DESIGN 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// Not well-formed: bad JSON or base64, wrong salt or nonce length, a decrypted payload that
    /// is not a signed envelope of offline entitlement data, or an inner `kid` that differs from
    /// the envelope's.
    #[error("malformed offline envelope")]
    Malformed,
    /// The envelope names a `kid` that is not in the public key set.
    #[error("offline envelope signed by an unknown key")]
    UnknownKey,
    /// Decryption failed: wrong license key, or the envelope was altered.
    #[error("offline envelope could not be decrypted")]
    DecryptionFailed,
    /// The inner signature does not verify.
    #[error("invalid offline envelope signature")]
    BadSignature,
    /// The envelope is bound to another device.
    #[error("offline envelope is bound to another device")]
    BindingMismatch,
    /// `now` is before `issued_at` minus the skew tolerance.
    #[error("offline envelope is not yet valid")]
    NotYetValid,
    /// `now` is after `offline_expires_at` plus the skew tolerance.
    #[error("offline envelope has expired")]
    Expired,
    /// `now` plus the skew tolerance is before the caller's watermark: the clock was set back.
    #[error("the clock moved backwards")]
    ClockMovedBackwards,
}

impl From<VerifyError> for OfflineError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Malformed => Self::Malformed,
            VerifyError::UnknownKey => Self::UnknownKey,
            VerifyError::BadSignature => Self::BadSignature,
        }
    }
}

/// Why a webhook delivery's `Licentia-Signature` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The header is not `t=<unix>,v1=<hex>[,v1=<hex>…]`.
    #[error("malformed signature header")]
    Malformed,
    /// No `v1` signature matches the body.
    #[error("no matching webhook signature")]
    SignatureMismatch,
    /// The timestamp is further from `now` than the tolerance (stale or from the future).
    #[error("webhook timestamp outside the tolerance")]
    TimestampOutOfTolerance,
}

/// Why a public key set could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// Not a JSON array of public keys, or a key that is not base64 of a valid 32-byte
    /// Ed25519 point.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A `kid` that is empty, too long or holds characters outside `[A-Za-z0-9._:-]`.
    #[error("invalid key id")]
    InvalidKid,
    /// Two keys with one `kid`.
    #[error("duplicate key id")]
    DuplicateKid,
}

/// A string that names no [`KeyStatus`](crate::KeyStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("unknown key status")]
pub struct UnknownKeyStatus;
