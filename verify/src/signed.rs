//! Signed runtime answers (DESIGN 4.1): `{"data":<bytes>,"signature":{…},"meta":…}` where the
//! signature is Ed25519 over exactly the bytes of `data` as sent. The verifier keeps the
//! received bytes verbatim ([`RawValue`]) and verifies over them; the data is deserialized
//! only after the signature verified.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::marker::PhantomData;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::VerifyError;
use crate::keys::{KeyStatus, PublicKeySet, Signature};

#[derive(Deserialize)]
pub(crate) struct EnvelopeIn {
    pub(crate) data: Box<RawValue>,
    pub(crate) signature: Signature,
}

/// A signed envelope received from outside, not yet checked.
pub struct Unverified<T> {
    data: Box<RawValue>,
    signature: Signature,
    _data: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Unverified<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unverified")
            .field("data", &self.data.get())
            .field("signature", &self.signature)
            .finish()
    }
}

impl<T> Clone for Unverified<T> {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            signature: self.signature.clone(),
            _data: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Unverified<T> {
    /// Parses an envelope `{"data":…,"signature":{…}, …}`; other members (`meta`) are ignored.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Malformed`] for anything that is not such a JSON object (including an
    /// `alg` other than `Ed25519`).
    pub fn from_envelope_json(bytes: &[u8]) -> Result<Self, VerifyError> {
        let env: EnvelopeIn = serde_json::from_slice(bytes).map_err(|_| VerifyError::Malformed)?;
        Ok(Self::from_parts(env.data, env.signature))
    }

    /// From separately received signed bytes and signature.
    pub fn from_parts(data: Box<RawValue>, signature: Signature) -> Self {
        Self {
            data,
            signature,
            _data: PhantomData,
        }
    }

    /// The `kid` the envelope claims (unverified): a client that does not know it refreshes
    /// its key set before verifying.
    pub fn kid(&self) -> &str {
        &self.signature.kid
    }

    /// Checks the signature over the exact signed bytes with `verify_strict`, then
    /// deserializes them into `T`. Retired keys in `keys` still verify.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Malformed`] (bad base64 or length, wrong algorithm, or signed data that
    /// does not deserialize into `T`), [`VerifyError::UnknownKey`] and
    /// [`VerifyError::BadSignature`].
    pub fn verify(self, keys: &PublicKeySet) -> Result<Verified<T>, VerifyError> {
        let key_status = keys.verify_bytes(self.data.get().as_bytes(), &self.signature)?;
        let data: T = serde_json::from_str(self.data.get()).map_err(|_| VerifyError::Malformed)?;
        Ok(Verified {
            data,
            raw: self.data,
            kid: self.signature.kid,
            key_status,
        })
    }
}

/// Data whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    data: T,
    raw: Box<RawValue>,
    kid: String,
    key_status: KeyStatus,
}

impl<T> Verified<T> {
    /// The verified data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The verified data, by value.
    pub fn into_data(self) -> T {
        self.data
    }

    /// The exact bytes that were signed.
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get().as_bytes()
    }

    /// The id of the key that verified the signature.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// That key's status in the set (`Retired` keys still verify).
    pub fn key_status(&self) -> KeyStatus {
        self.key_status
    }
}
