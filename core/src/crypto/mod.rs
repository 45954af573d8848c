//! Cryptographic formats: signed runtime envelopes, offline envelopes and secrets (DESIGN 4).
//!
//! Everything here is sans-I/O: randomness comes in as `&mut impl CryptoRng` and time as
//! `now: DateTime<Utc>`; nothing reads the clock or the OS RNG.
//!
//! The reading side (key sets, [`Unverified`] → [`Verified`], [`open`], [`verify_webhook`],
//! refusals) is [`licentia_verify`], re-exported here: one implementation, which the
//! protected program can also use alone (`no_std`, WebAssembly). This module adds the signing
//! side: the [`KeyRing`], canonical JSON, sealing, secrets.
//!
//! | module | what |
//! |---|---|
//! | [`canonical`] | the exact JSON bytes that get signed: compact, declared order, ASCII-only, integers only |
//! | [`signing`] | Ed25519 [`KeyRing`] with rotation, [`PublicKeySet`], [`Signed`], and the [`Unverified`] → [`Verified`] typestate |
//! | [`offline`] | offline envelopes: HKDF-SHA256 + AES-256-GCM around a signed entitlement, with skew tolerance and a clock watermark |
//! | [`password`] | Argon2id password hashes of management users |
//! | [`totp`] | the TOTP second factor of management users |
//! | [`secrets`] | license keys, management tokens, lease tokens, device secrets, session tokens and webhook secrets; [`SecretHash`] |
//! | [`webhook`] | the `Licentia-Signature` header |
//! | [`refusal`] | signed runtime refusals |
//! | [`air_gap`] | air-gapped activation request and release files |
//! | [`error`] | the error enums; crypto failures are opaque |
//!
//! Golden vectors generated from a fixed seed live in `core/tests/vectors/` with a README
//! explaining how to verify them from DESIGN section 4 alone.
//!
//! # Example
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use licentia_core::crypto::{KeyRing, Unverified};
//! # use rand_core::{Infallible, TryCryptoRng, TryRng};
//! # struct Rng(u8);
//! # impl TryRng for Rng {
//! #     type Error = Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Infallible> { Ok(u32::from(self.next())) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Infallible> { Ok(u64::from(self.next())) }
//! #     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
//! #         dst.iter_mut().for_each(|b| *b = self.next()); Ok(())
//! #     }
//! # }
//! # impl Rng { fn next(&mut self) -> u8 { self.0 = self.0.wrapping_mul(31).wrapping_add(7); self.0 } }
//! # impl TryCryptoRng for Rng {}
//! # let mut rng = Rng(1); // in real code: a CSPRNG from the host
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
//! let ring = KeyRing::generate(&mut rng, now);
//!
//! // Server: sign, send `{"data":…,"signature":…}`.
//! let signed = ring.sign(&serde_json::json!({"license_id": "lic_1", "note": "é"})).unwrap();
//! assert_eq!(signed.data_bytes(), br#"{"license_id":"lic_1","note":"\u00e9"}"#);
//! let wire = signed.to_envelope_json();
//!
//! // Client: verify against the published public keys.
//! let keys = licentia_core::crypto::key_set(ring.public_keys()).unwrap();
//! let verified = Unverified::<serde_json::Value>::from_envelope_json(&wire)
//!     .unwrap()
//!     .verify(&keys)
//!     .unwrap();
//! assert_eq!(verified.data()["note"], "é");
//! ```

pub mod air_gap;
pub mod canonical;
mod encoding;
pub mod error;
pub mod master;
pub mod offline;
pub mod password;
pub mod refusal;
pub mod secrets;
pub mod signing;
pub mod totp;
pub mod webhook;

pub use canonical::{MAX_SAFE_INTEGER, canonical_json, canonical_json_string};
pub use error::{
    CanonicalError, HashParseError, KeyError, OfflineError, SecretParseError, VerifyError,
    WebhookError,
};
pub use master::MasterKey;
pub use offline::{
    DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, VerifiedOffline, binding_sha256, open, seal,
};
pub use password::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordError, PasswordHash};
pub use refusal::Refusal;
pub use secrets::{
    DeviceSecret, LeaseToken, LicenseKey, ManagementToken, SecretHash, SessionToken, UserToken,
    WebhookSecret,
};
pub use signing::{
    Algorithm, KeyRing, PublicKeyInfo, PublicKeySet, SecretSeed, Signature, Signed, StoredKey,
    Unverified, Verified, key_set,
};
pub use totp::{TOTP_ISSUER, TotpSecret};
pub use webhook::{
    DEFAULT_WEBHOOK_TOLERANCE, sign_webhook, sign_webhook_all, sign_webhook_with_secret,
    verify_webhook,
};
