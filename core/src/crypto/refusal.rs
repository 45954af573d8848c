//! Signed runtime refusals (an extension of DESIGN 4.1); the reading side is
//! [`licentia_verify::refusal`], the engine signs them ([`Engine::sign_refusal`](crate::engine::Engine::sign_refusal)).
//!
//! A refusal of one of the nine runtime operations (403, 404, 409, 422) is
//! `{"error":<bytes>,"signature":{"alg":"Ed25519","kid":…,"value":…},"meta":…}`: the same
//! rule as a signed answer, with `error` in the place of `data`. The signature is over exactly
//! the bytes of `error` as sent, which the signer produces with
//! [`canonical_json`](super::canonical::canonical_json) of the [`Refusal`]. So a client can
//! trust a negative answer as it trusts a positive one: a forged `LICENSE_REVOKED` does not
//! verify, and a refusal whose signature was stripped is not a signed refusal at all.
//!
//! What the signature does not say: which request the refusal answers. Like a signed answer,
//! a signed refusal proves who decided, not when or for whom; a client that must know that
//! compares the refusal to its own request (the license it sent) and its own clock.

pub use licentia_verify::Refusal;

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::crypto::{KeyRing, Signature, Unverified, VerifyError};

    fn refusal() -> Refusal {
        Refusal {
            code: "LICENSE_REVOKED".into(),
            message: "the license was revoked".into(),
            detail: None,
        }
    }

    fn envelope(error: &str, signature: &Signature) -> Vec<u8> {
        format!(
            "{{\"error\":{error},\"signature\":{},\"meta\":{{\"request_id\":\"r\"}}}}",
            serde_json::to_string(signature).unwrap()
        )
        .into_bytes()
    }

    #[test]
    fn refusals_verify_and_forgeries_do_not() {
        let ring = KeyRing::generate(&mut ChaCha20Rng::seed_from_u64(7), DateTime::UNIX_EPOCH);
        let keys = ring.public_key_set();
        let signed = ring.sign(&refusal()).unwrap();
        let body = envelope(signed.data_json().get(), signed.signature());
        let verified = Unverified::<Refusal>::from_refusal_json(&body)
            .unwrap()
            .verify(&keys)
            .unwrap();
        assert_eq!(verified.data(), &refusal());

        let forged = signed.data_json().get().replace("REVOKED", "EXPIRED");
        let body = envelope(&forged, signed.signature());
        assert_eq!(
            Unverified::<Refusal>::from_refusal_json(&body)
                .unwrap()
                .verify(&keys)
                .unwrap_err(),
            VerifyError::BadSignature
        );
        let stripped = br#"{"error":{"code":"LICENSE_REVOKED","message":"x"},"meta":{}}"#;
        assert_eq!(
            Unverified::<Refusal>::from_refusal_json(stripped).unwrap_err(),
            VerifyError::Malformed
        );
    }
}
