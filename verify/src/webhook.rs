//! The `Licentia-Signature` header of webhook deliveries (DESIGN 4.3).
//!
//! `Licentia-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`: the
//! HMAC key is the UTF-8 bytes of the whole secret string (`whsec_…`), the message the decimal
//! timestamp, a `.`, then the raw body. During a secret rotation a sender may include several
//! `v1=` entries; a receiver accepts the delivery if any matches. Entries with other names
//! are ignored. [`verify_webhook`] refuses timestamps further than `tolerance` from `now`
//! (replays), and compares in constant time.

use alloc::string::String;
use alloc::vec::Vec;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::encoding::{hex_decode_array, hex_encode};
use crate::error::WebhookError;

/// The header's name.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "Licentia-Signature";
/// The recommended tolerance for [`verify_webhook`]: 5 minutes.
pub const DEFAULT_WEBHOOK_TOLERANCE: TimeDelta = TimeDelta::minutes(5);
/// At most this many `v1` entries are read from one header.
pub const MAX_WEBHOOK_SIGNATURES: usize = 8;

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(alloc::format!("{t}").as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1` value for `secret`, timestamp `t` and `body`: lowercase hex of the HMAC (the
/// signing side uses this too, so there is one definition of the MAC).
pub fn webhook_mac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    hex_encode(&mac(secret, t, body).finalize().into_bytes())
}

struct Parsed {
    t: i64,
    v1: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<Parsed, WebhookError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or(WebhookError::Malformed)?;
        match name {
            "t" => {
                if t.is_some()
                    || value.is_empty()
                    || value.len() > 18
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(WebhookError::Malformed);
                }
                t = Some(value.parse::<i64>().map_err(|_| WebhookError::Malformed)?);
            }
            "v1" => {
                if v1.len() == MAX_WEBHOOK_SIGNATURES {
                    return Err(WebhookError::Malformed);
                }
                v1.push(hex_decode_array::<32>(value).ok_or(WebhookError::Malformed)?);
            }
            _ => {}
        }
    }
    match t {
        Some(t) if !v1.is_empty() => Ok(Parsed { t, v1 }),
        _ => Err(WebhookError::Malformed),
    }
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
    secret: &str,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), WebhookError> {
    let parsed = parse_header(header)?;
    let expected = mac(secret, parsed.t, body);
    // Check every entry so timing does not reveal which one matched.
    let mut ok = false;
    for candidate in &parsed.v1 {
        ok |= expected.clone().verify_slice(candidate).is_ok();
    }
    if !ok {
        return Err(WebhookError::SignatureMismatch);
    }
    let sent = DateTime::from_timestamp(parsed.t, 0).ok_or(WebhookError::Malformed)?;
    if (now - sent).abs() > tolerance.abs() {
        return Err(WebhookError::TimestampOutOfTolerance);
    }
    Ok(())
}
