//! The optional second factor of management users: RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s
//! steps, one step of skew either way), the parameters every authenticator app understands.
//!
//! A code is accepted once: [`TotpSecret::check`] returns the step it matched, and the caller
//! refuses a step not newer than the last one accepted (RFC 6238 §5.2).

use std::fmt;

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

/// Who the authenticator app names as the issuer.
pub const TOTP_ISSUER: &str = "licentia";

/// A TOTP secret (20 random bytes). Zeroized on drop; `Debug` does not show it.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<[u8; 20]>);

impl TotpSecret {
    /// A fresh secret from `rng`.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut bytes = [0u8; 20];
        rng.fill_bytes(&mut bytes);
        Self(Zeroizing::new(bytes))
    }

    /// A stored secret; `None` unless exactly 20 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 20] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }

    /// A secret given in base32 (as [`TotpSecret::to_base32`] writes it); `None` unless it
    /// decodes to 20 bytes.
    pub fn from_base32(s: &str) -> Option<Self> {
        let secret = totp_rs::Secret::try_from_base32(s.trim()).ok()?;
        Self::from_bytes(secret.as_ref())
    }

    /// The raw bytes, to store (sealed where the store can).
    pub fn expose_secret(&self) -> &[u8; 20] {
        &self.0
    }

    fn totp(&self, account: &str) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(self.0.to_vec())
            .with_issuer(Some(TOTP_ISSUER))
            .with_account_name(account.replace(':', "_"))
            .build_noncompliant()
    }

    /// The base32 form an authenticator app accepts typed in.
    pub fn to_base32(&self) -> String {
        self.totp("").secret().to_base32()
    }

    /// The `otpauth://totp/…` URL an authenticator app accepts (as a QR code or a link).
    pub fn otpauth_url(&self, account: &str) -> String {
        self.totp(account)
            .to_url()
            .unwrap_or_else(|_| format!("otpauth://totp/{TOTP_ISSUER}?secret={}", self.to_base32()))
    }

    /// The step `code` matches at `now` (with one step of skew either way), if any.
    pub fn check(&self, code: &str, now: DateTime<Utc>) -> Option<u64> {
        let secs = u64::try_from(now.timestamp()).ok()?;
        self.totp("").check(code.trim(), secs)
    }

    /// The code at `now` (what an authenticator app shows; for tests and tools).
    pub fn code_at(&self, now: DateTime<Utc>) -> String {
        let secs = u64::try_from(now.timestamp()).unwrap_or(0);
        self.totp("").generate(secs).to_string()
    }
}

impl PartialEq for TotpSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

impl Eq for TotpSecret {}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rfc6238_vector_and_skew() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: 287082.
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let at = Utc.timestamp_opt(59, 0).unwrap();
        assert_eq!(secret.code_at(at), "287082");
        assert_eq!(secret.check("287082", at), Some(1));
        // One step either way is accepted, two are not.
        assert_eq!(
            secret.check("287082", at + chrono::Duration::seconds(30)),
            Some(1)
        );
        assert_eq!(
            secret.check("287082", at + chrono::Duration::seconds(61)),
            None
        );
        assert_eq!(secret.check("000000", at), None);
        assert_eq!(secret.check("not a code", at), None);
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let url = secret.otpauth_url("ops@example.com");
        assert!(
            url.starts_with("otpauth://totp/licentia:ops%40example.com?"),
            "{url}"
        );
        assert!(
            url.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{url}"
        );
        assert!(!format!("{secret:?}").contains("GEZ"));
        assert!(TotpSecret::from_bytes(&[0; 19]).is_none());
        assert!(TotpSecret::from_base32(&secret.to_base32()).unwrap() == secret);
        assert!(TotpSecret::from_base32("!!").is_none());
    }
}
