//! The reading side of licentia's wire formats, for the programs a license protects: a
//! desktop app, a device agent, firmware, a web page (WebAssembly). `#![no_std]` with `alloc`;
//! no I/O, no clock, no randomness: `now` is an argument.
//!
//! | module | verifies |
//! |---|---|
//! | [`keys`] | the public key set (`GET /api/v1/system/public-keys`) |
//! | [`signed`] | signed runtime answers `{data, signature}`: [`Unverified`] → [`Verified`] |
//! | [`refusal`] | signed runtime refusals `{error, signature}` |
//! | [`offline`] | offline envelopes: HKDF-SHA256 + AES-256-GCM, inner signature, binding, window, watermark |
//! | [`webhook`] | the `Licentia-Signature` header of webhook deliveries |
//!
//! `licentia-core` uses this crate for every verification, so there is one implementation of
//! the formats' reading side; core adds the signing side.
//!
//! ```
//! use licentia_verify::{PublicKeySet, Unverified, VerifyError};
//!
//! let keys = PublicKeySet::from_json(br#"[{"kid":"key_1","algorithm":"Ed25519",
//!     "public_key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","status":"active",
//!     "created_at":"2026-11-22T10:00:00Z"}]"#).unwrap();
//! // An answer signed by another key is refused, whatever it says.
//! let forged = br#"{"data":{"status":"active"},"signature":{"alg":"Ed25519","kid":"key_2",
//!     "value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}}"#;
//! let err = Unverified::<serde_json::Value>::from_envelope_json(forged)
//!     .unwrap()
//!     .verify(&keys)
//!     .unwrap_err();
//! assert_eq!(err, VerifyError::UnknownKey);
//! ```

// The JavaScript bindings are a cdylib, which needs an allocator and a panic handler: with
// the `wasm` feature the crate links std (wasm32-unknown-unknown has one); without it, none.
#![cfg_attr(not(feature = "wasm"), no_std)]

extern crate alloc;

pub mod encoding;
pub mod error;
pub mod keys;
pub mod offline;
pub mod refusal;
pub mod signed;
#[cfg(feature = "wasm")]
pub mod wasm;
pub mod webhook;

pub use error::{KeySetError, OfflineError, UnknownKeyStatus, VerifyError, WebhookError};
pub use keys::{Algorithm, KeyStatus, PublicKeySet, Signature};
pub use offline::{
    DEFAULT_SKEW_TOLERANCE, OFFLINE_HKDF_INFO, OFFLINE_NONCE_LEN, OFFLINE_SALT_LEN,
    OFFLINE_TAG_LEN, OfflineEnvelope, OfflineTerms, OfflineWindow, VerifiedOffline, binding_sha256,
    open,
};
pub use refusal::Refusal;
pub use signed::{Unverified, Verified};
pub use webhook::{
    DEFAULT_WEBHOOK_TOLERANCE, MAX_WEBHOOK_SIGNATURES, WEBHOOK_SIGNATURE_HEADER, verify_webhook,
    webhook_mac_hex,
};
