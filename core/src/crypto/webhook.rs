//! The `Licentia-Signature` header of webhook deliveries (DESIGN 4.3).
//!
//! # Format
//!
//! `Licentia-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`
//!
//! - the HMAC key is the UTF-8 bytes of the whole [`WebhookSecret`] string (`whsec_…`);
//! - the message is the decimal timestamp, a `.`, then the raw request body bytes;
//! - `v1` is 64 lowercase hex characters.
//!
//! During a secret rotation the sender may include several `v1=` entries (one per valid
//! secret, see [`sign_webhook_all`]); a receiver accepts the delivery if any of them matches
//! its secret. Entries with other names (future schemes) are ignored. Including the timestamp
//! in the MAC lets receivers refuse replays: [`verify_webhook`] refuses timestamps further than
//! `tolerance` from `now` in either direction ([`DEFAULT_WEBHOOK_TOLERANCE`], 5 minutes).
//! Comparison is constant-time (`hmac`'s `verify_slice`).

use chrono::{DateTime, TimeDelta, Utc};
use licentia_verify::webhook_mac_hex;

use super::error::WebhookError;
use super::secrets::WebhookSecret;

pub use licentia_verify::{
    DEFAULT_WEBHOOK_TOLERANCE, MAX_WEBHOOK_SIGNATURES, WEBHOOK_SIGNATURE_HEADER,
};

/// The `Licentia-Signature` value for `body` under a stored endpoint secret, which may be a
/// generated `whsec_…` secret or one the vendor chose (any 16..=256 ASCII characters): the HMAC
/// key is the UTF-8 bytes of the whole string, as for [`sign_webhook`].
pub fn sign_webhook_with_secret(secret: &str, body: &[u8], now: DateTime<Utc>) -> String {
    let t = now.timestamp();
    format!("t={t},v1={}", webhook_mac_hex(secret, t, body))
}

/// The header value for `body` sent at `now`: `t=<unix>,v1=<hex>`.
pub fn sign_webhook(secret: &WebhookSecret, body: &[u8], now: DateTime<Utc>) -> String {
    sign_webhook_all(&[secret], body, now)
}

/// The header value with one `v1` entry per secret, in order (for rotations).
pub fn sign_webhook_all(secrets: &[&WebhookSecret], body: &[u8], now: DateTime<Utc>) -> String {
    let t = now.timestamp();
    let mut out = format!("t={t}");
    for secret in secrets {
        out.push_str(",v1=");
        out.push_str(&webhook_mac_hex(secret.expose_secret(), t, body));
    }
    out
}

/// Checks a delivery's `Licentia-Signature` header against `secret` and the raw `body`.
///
/// # Errors
///
/// [`WebhookError::Malformed`] for a header not of the documented shape,
/// [`WebhookError::SignatureMismatch`] when no `v1` entry matches, and
/// [`WebhookError::TimestampOutOfTolerance`] when the (authentic) timestamp is more than
/// `tolerance` away from `now`.
pub fn verify_webhook(
    secret: &WebhookSecret,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), WebhookError> {
    licentia_verify::verify_webhook(secret.expose_secret(), header, body, now, tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U").unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    #[test]
    fn known_answer() {
        // Python: hmac.new(b"whsec_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
        //                  b'1795341600.{"a":1}', hashlib.sha256).hexdigest()
        let h = sign_webhook(&secret(), br#"{"a":1}"#, now());
        assert_eq!(
            h,
            "t=1795341600,v1=f8db6201aed5b0a6f9a7f57d16678c172e3844c5055683117fff1fd704100feb"
        );
    }

    #[test]
    fn round_trip_and_tolerance() {
        let body = br#"{"event":"license.created"}"#;
        let h = sign_webhook(&secret(), body, now());
        let tol = DEFAULT_WEBHOOK_TOLERANCE;
        assert_eq!(verify_webhook(&secret(), &h, body, now(), tol), Ok(()));
        assert_eq!(
            verify_webhook(&secret(), &h, body, now() + tol, tol),
            Ok(())
        );
        assert_eq!(
            verify_webhook(&secret(), &h, body, now() - tol, tol),
            Ok(())
        );
        assert_eq!(
            verify_webhook(
                &secret(),
                &h,
                body,
                now() + tol + TimeDelta::seconds(1),
                tol
            ),
            Err(WebhookError::TimestampOutOfTolerance),
            "stale"
        );
        assert_eq!(
            verify_webhook(
                &secret(),
                &h,
                body,
                now() - tol - TimeDelta::seconds(1),
                tol
            ),
            Err(WebhookError::TimestampOutOfTolerance),
            "from the future"
        );
        // Extreme inputs never panic.
        for tol in [TimeDelta::MIN, TimeDelta::MAX] {
            for at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let _ = verify_webhook(&secret(), &h, body, at, tol);
                let _ = verify_webhook(
                    &secret(),
                    &sign_webhook(&secret(), body, at),
                    body,
                    now(),
                    tol,
                );
            }
        }
    }

    #[test]
    fn tampering() {
        let body = br#"{"event":"license.created"}"#;
        let h = sign_webhook(&secret(), body, now());
        let tol = DEFAULT_WEBHOOK_TOLERANCE;
        let other = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            verify_webhook(&other, &h, body, now(), tol),
            Err(WebhookError::SignatureMismatch)
        );
        assert_eq!(
            verify_webhook(&secret(), &h, br#"{"event":"license.deleted"}"#, now(), tol),
            Err(WebhookError::SignatureMismatch)
        );
        // Moving the timestamp invalidates the MAC.
        let shifted = h.replace("t=1795341600", "t=1795341601");
        assert_eq!(
            verify_webhook(&secret(), &shifted, body, now(), tol),
            Err(WebhookError::SignatureMismatch)
        );
        // Flip one hex digit of the MAC.
        let mut bytes = h.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(
            verify_webhook(&secret(), &flipped, body, now(), tol),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn rotation_with_multiple_entries() {
        let body = b"{}";
        let old = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let h = sign_webhook_all(&[&old, &secret()], body, now());
        assert_eq!(h.matches("v1=").count(), 2);
        let tol = DEFAULT_WEBHOOK_TOLERANCE;
        assert_eq!(verify_webhook(&old, &h, body, now(), tol), Ok(()));
        assert_eq!(verify_webhook(&secret(), &h, body, now(), tol), Ok(()));
        // Unknown schemes are ignored; whitespace after commas is tolerated.
        let h2 = format!("{}, v0=abc", h.replace(",", ", "));
        assert_eq!(verify_webhook(&secret(), &h2, body, now(), tol), Ok(()));
    }

    #[test]
    fn malformed_headers() {
        let tol = DEFAULT_WEBHOOK_TOLERANCE;
        let v1 = "0".repeat(64);
        for h in [
            String::new(),
            "t=1795341600".to_owned(),
            format!("v1={v1}"),
            format!("t=abc,v1={v1}"),
            format!("t=-5,v1={v1}"),
            format!("t=1,t=2,v1={v1}"),
            "t=1795341600,v1=zz".to_owned(),
            format!("t=1795341600,v1={}", "A".repeat(64)),
            format!("t=1795341600,v1={v1},garbage"),
            format!("t=99999999999999999999,v1={v1}"),
            format!("t=1795341600{}", format!(",v1={v1}").repeat(9)),
        ] {
            assert_eq!(
                verify_webhook(&secret(), &h, b"", now(), tol),
                Err(WebhookError::Malformed),
                "{h:?}"
            );
        }
    }

    #[test]
    fn sign_with_a_stored_secret_matches_the_typed_secret() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let typed = WebhookSecret::parse("whsec_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U").unwrap();
        assert_eq!(
            sign_webhook_with_secret("whsec_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", b"{}", now),
            sign_webhook(&typed, b"{}", now)
        );
        let custom = sign_webhook_with_secret("my-own-secret-value-123456", b"{}", now);
        assert!(custom.starts_with("t=1800000000,v1="));
        assert_eq!(custom.len(), "t=1800000000,v1=".len() + 64);
    }
}
