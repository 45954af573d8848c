//! Error types of the crypto module.
//!
//! Verification errors are deliberately coarse: they say *which check* refused the input (so a
//! caller can map it to a status or a user message) but never *where* in the bytes the problem
//! was, and their `Display` texts are generic. An attacker probing a verifier learns nothing
//! beyond "refused".

use thiserror::Error;

/// Why a value could not be written as canonical JSON (DESIGN 4.1).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// The value holds a floating point number; signed data carries integers only.
    #[error("canonical JSON does not allow floating point numbers")]
    Float,
    /// The value holds an integer outside `-(2^53 - 1) ..= 2^53 - 1`.
    #[error("canonical JSON integers must satisfy |n| < 2^53")]
    IntegerOutOfRange,
    /// The value holds a pre-serialized raw JSON fragment, whose bytes cannot be vouched for.
    #[error("canonical JSON does not allow raw JSON fragments")]
    RawFragment,
    /// The value's `Serialize` implementation failed (for example a map with non-string keys).
    #[error("value cannot be serialized as JSON: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// Why key material or a key ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A `kid` is empty, too long or not an ASCII identifier.
    #[error("invalid key id")]
    InvalidKid,
    /// A public key is not base64 of 32 bytes encoding a valid Ed25519 point.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A stored secret seed is not base64 of exactly 32 bytes.
    #[error("invalid secret key material")]
    InvalidSeed,
    /// The algorithm is not Ed25519.
    #[error("unsupported key algorithm")]
    UnsupportedAlgorithm,
    /// Two keys share a `kid`.
    #[error("duplicate key id")]
    DuplicateKid,
    /// A key ring needs exactly one active key and has none.
    #[error("key ring has no active key")]
    NoActiveKey,
    /// A key ring needs exactly one active key and has several.
    #[error("key ring has more than one active key")]
    MultipleActiveKeys,
    /// Keys of different rings (the global one, a product's) were put in one ring.
    #[error("keys of different products in one key ring")]
    MixedProducts,
    /// No key with that `kid` is in the ring.
    #[error("unknown key id")]
    UnknownKid,
    /// The active key cannot be removed; rotate first.
    #[error("the active key cannot be removed")]
    ActiveKeyRemoval,
    /// A master key is not base64 of 32 bytes.
    #[error("invalid master key")]
    InvalidMasterKey,
    /// A sealed seed did not open: another master key, another `kid`, or altered bytes.
    #[error("sealed key material did not open")]
    SealBroken,
}

pub use licentia_verify::{OfflineError, VerifyError, WebhookError};

impl From<licentia_verify::KeySetError> for KeyError {
    fn from(e: licentia_verify::KeySetError) -> Self {
        match e {
            licentia_verify::KeySetError::InvalidKid => Self::InvalidKid,
            licentia_verify::KeySetError::DuplicateKid => Self::DuplicateKid,
            _ => Self::InvalidPublicKey,
        }
    }
}

/// Why a string is not a well-formed secret (license key, token, webhook secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SecretParseError {
    /// The string does not start with the expected prefix (`lsk_`, `lkm_`, `lft_`, `whsec_`).
    #[error("secret has the wrong prefix")]
    WrongPrefix,
    /// The part after the prefix does not have the expected length.
    #[error("secret has the wrong length")]
    WrongLength,
    /// The part after the prefix holds a character outside `A-Z2-7`.
    #[error("secret holds an invalid character")]
    InvalidCharacter,
}

/// Why a string is not a hex SHA-256 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("expected 64 lowercase hex characters")]
pub struct HashParseError;
