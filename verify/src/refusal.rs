//! Signed runtime refusals (an extension of DESIGN 4.1).
//!
//! A refusal of one of the nine runtime operations (403, 404, 409, 422) is
//! `{"error":<bytes>,"signature":{"alg":"Ed25519","kid":…,"value":…},"meta":…}`: the same
//! rule as a signed answer, with `error` in the place of `data`. So a client can trust a
//! negative answer as it trusts a positive one: a forged `LICENSE_REVOKED` does not verify,
//! and a refusal whose signature was stripped is not a signed refusal at all.
//!
//! What the signature does not say: which request the refusal answers. Like a signed answer,
//! a signed refusal proves who decided, not when or for whom; a client that must know that
//! compares the refusal to its own request (the license it sent) and its own clock.

use alloc::boxed::Box;
use alloc::string::String;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::VerifyError;
use crate::keys::Signature;
use crate::signed::Unverified;

/// The `error` object of a refusal: the contract's `Error` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The stable code (`LICENSE_REVOKED`, `ACTIVATION_LIMIT_REACHED`, …).
    pub code: String,
    /// A human-readable message.
    pub message: String,
    /// Every failing rule, when there is more to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Deserialize)]
struct RefusalIn {
    error: Box<RawValue>,
    signature: Signature,
}

impl Unverified<Refusal> {
    /// Parses a refusal `{"error":…,"signature":{…}, …}`; other members (`meta`) are ignored.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Malformed`] for anything else, including an unsigned error envelope.
    pub fn from_refusal_json(bytes: &[u8]) -> Result<Self, VerifyError> {
        let r: RefusalIn = serde_json::from_slice(bytes).map_err(|_| VerifyError::Malformed)?;
        Ok(Self::from_parts(r.error, r.signature))
    }
}
