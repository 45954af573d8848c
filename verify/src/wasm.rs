//! JavaScript bindings (feature `wasm`, for `wasm32-unknown-unknown` with wasm-bindgen).
//!
//! Every function takes and returns strings (JSON, RFC 3339 instants) and throws an `Error`
//! whose message is the refusal (`"invalid signature"`, `"offline envelope has expired"`, …):
//!
//! ```js
//! const v = require("./licentia_verify.js");
//! const data = JSON.parse(v.verifyAnswer(keysJson, responseText)); // throws if forged
//! ```

use alloc::string::{String, ToString};

use chrono::{DateTime, TimeDelta, Utc};
use wasm_bindgen::prelude::*;

use crate::{
    DEFAULT_SKEW_TOLERANCE, DEFAULT_WEBHOOK_TOLERANCE, OfflineEnvelope, OfflineWindow,
    PublicKeySet, Refusal, Unverified,
};

fn keys(json: &str) -> Result<PublicKeySet, JsError> {
    PublicKeySet::from_json(json.as_bytes()).map_err(|e| JsError::new(&e.to_string()))
}

fn instant(s: &str) -> Result<DateTime<Utc>, JsError> {
    s.parse::<DateTime<Utc>>()
        .map_err(|_| JsError::new("expected an RFC 3339 instant"))
}

/// Verifies a signed runtime answer (`{data, signature, meta}`) against a key set (the
/// `/api/v1/system/public-keys` answer or its `data`); returns the signed `data` JSON.
#[wasm_bindgen(js_name = verifyAnswer)]
pub fn verify_answer(keys_json: &str, response: &str) -> Result<String, JsError> {
    let keys = keys(keys_json)?;
    let verified = Unverified::<serde_json::Value>::from_envelope_json(response.as_bytes())
        .and_then(|u| u.verify(&keys))
        .map_err(|e| JsError::new(&e.to_string()))?;
    Ok(String::from_utf8_lossy(verified.signed_bytes()).into_owned())
}

/// Verifies a signed runtime refusal (`{error, signature, meta}`); returns the signed
/// `error` JSON (`{code, message, detail?}`).
#[wasm_bindgen(js_name = verifyRefusal)]
pub fn verify_refusal(keys_json: &str, response: &str) -> Result<String, JsError> {
    let keys = keys(keys_json)?;
    let verified = Unverified::<Refusal>::from_refusal_json(response.as_bytes())
        .and_then(|u| u.verify(&keys))
        .map_err(|e| JsError::new(&e.to_string()))?;
    Ok(String::from_utf8_lossy(verified.signed_bytes()).into_owned())
}

/// Opens an offline envelope at `now` (RFC 3339) with the stored `watermark` (RFC 3339 or
/// empty); returns `{"data": <signed data>, "watermark": "<new watermark>"}`. Store the new
/// watermark and pass it next time.
#[wasm_bindgen(js_name = openOffline)]
pub fn open_offline(
    keys_json: &str,
    envelope_json: &str,
    license_key: &str,
    binding_key: &str,
    now: &str,
    watermark: &str,
) -> Result<String, JsError> {
    let envelope = OfflineEnvelope::from_json(envelope_json.as_bytes())
        .map_err(|e| JsError::new(&e.to_string()))?;
    let watermark = match watermark {
        "" => None,
        w => Some(instant(w)?),
    };
    let opened = crate::open::<OfflineWindow>(
        &envelope,
        license_key,
        &keys(keys_json)?,
        binding_key,
        instant(now)?,
        DEFAULT_SKEW_TOLERANCE,
        watermark,
    )
    .map_err(|e| JsError::new(&e.to_string()))?;
    let data = String::from_utf8_lossy(opened.signed_bytes());
    Ok(alloc::format!(
        "{{\"data\":{data},\"watermark\":\"{}\"}}",
        opened
            .watermark()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ))
}

/// Checks a webhook delivery's `Licentia-Signature` header at `now_unix` (seconds) with the
/// default 5-minute tolerance; throws when it does not verify.
#[wasm_bindgen(js_name = verifyWebhook)]
pub fn verify_webhook(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix: f64,
) -> Result<(), JsError> {
    // Whole seconds of a JavaScript number; out of range is refused like a stale timestamp.
    let now = DateTime::from_timestamp(now_unix as i64, 0)
        .ok_or_else(|| JsError::new("now is out of range"))?;
    crate::verify_webhook(
        secret,
        header,
        body,
        now,
        DEFAULT_WEBHOOK_TOLERANCE.max(TimeDelta::zero()),
    )
    .map_err(|e| JsError::new(&e.to_string()))
}
