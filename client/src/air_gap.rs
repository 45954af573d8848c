//! Air-gapped activation from the device's side: write the request file, open the envelope
//! file management sends back, and write the release file that gives the seat back
//! ([`licentia_core::crypto::air_gap`] has the formats).
//!
//! The device verifies the envelope with a key set it already holds (shipped with the app):
//! nothing in the files it receives can be trusted to tell it which keys to trust.
//!
//! ```
//! # fn run() -> Result<(), licentia_client::Error> {
//! use licentia_client::air_gap;
//! use licentia_core::model::RuntimeBindingRequest;
//!
//! let device = RuntimeBindingRequest { fingerprint: Some("plant-7".into()), ..Default::default() };
//! let request = air_gap::activation_request("lsk_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", &device, chrono::Utc::now())?;
//! let file = serde_json::to_string_pretty(&request.file).unwrap(); // carry this to the vendor
//! let keep = request.release_key.seed_base64(); // keep this on the device, secretly
//! # let _ = (file, keep);
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use getrandom::SysRng;
use licentia_core::crypto::air_gap::{
    ActivationRequestFile, OfflineActivationFile, ReleaseFile, ReleaseKey, air_gapped_seal_secret,
};
use licentia_core::crypto::{LicenseKey, OfflineError, PublicKeySet, VerifiedOffline};
use licentia_core::model::RuntimeBindingRequest;
use rand_core::UnwrapErr;

use crate::{Error, open_offline};

/// A request file and the release key it names (keep the key's seed on the device).
#[derive(Debug, Clone)]
pub struct AirGapRequest {
    /// The file to carry to management.
    pub file: ActivationRequestFile,
    /// The device's key for its release file.
    pub release_key: ReleaseKey,
}

/// A request to activate `device` under `license_key`, written at `now`.
///
/// # Errors
///
/// [`Error::Invalid`] for a malformed license key or binding.
pub fn activation_request(
    license_key: &str,
    device: &RuntimeBindingRequest,
    now: DateTime<Utc>,
) -> Result<AirGapRequest, Error> {
    let key = LicenseKey::parse(license_key).map_err(|e| Error::Invalid(e.to_string()))?;
    licentia_core::rules::Binding::from_request(device)
        .map_err(|_| Error::Invalid("the binding is not usable".into()))?;
    let mut rng = UnwrapErr(SysRng);
    let release_key = ReleaseKey::generate(&mut rng);
    let file = ActivationRequestFile::new(&key, device.clone(), &release_key, &mut rng, now);
    Ok(AirGapRequest { file, release_key })
}

/// Opens the envelope of the file management answered, for `device` at `now` (store the
/// returned watermark and pass it next time).
///
/// # Errors
///
/// [`OfflineError`]: tampering, another device or license key, outside its window, a clock
/// set back.
pub fn open_activation(
    file: &OfflineActivationFile,
    license_key: &str,
    keys: &PublicKeySet,
    device: &RuntimeBindingRequest,
    now: DateTime<Utc>,
    watermark: Option<DateTime<Utc>>,
) -> Result<VerifiedOffline, OfflineError> {
    open_offline(
        &file.envelope,
        &air_gapped_seal_secret(license_key),
        keys,
        device,
        now,
        watermark,
    )
}

/// The signed release of the seat `file` took, at `now`: delete the envelope, then carry
/// this to management.
///
/// # Errors
///
/// [`Error::Invalid`] should the release not be representable (never in practice).
pub fn release_file(
    release_key: &ReleaseKey,
    file: &OfflineActivationFile,
    now: DateTime<Utc>,
) -> Result<ReleaseFile, Error> {
    ReleaseFile::sign(
        release_key,
        file.license_id.clone(),
        file.device_id.clone(),
        now,
    )
    .map_err(|e| Error::Invalid(e.to_string()))
}
