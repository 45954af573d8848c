//! The client's cache file: the newest offline envelope and the clock watermark, kept across
//! runs so the app can fall back to its offline entitlement when the server cannot be reached,
//! and so a clock set back (or an older envelope put in place) is refused.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use licentia_core::crypto::{OfflineEnvelope, OfflineError, PublicKeySet, VerifiedOffline};
use licentia_core::model::RuntimeBindingRequest;
use serde::{Deserialize, Serialize};

use crate::open_offline;

/// What the cache file holds (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CacheFile {
    /// The newest offline envelope fetched.
    offline: Option<OfflineEnvelope>,
    /// The latest instant seen: verified answers' `issued_at`, opens' `now`.
    watermark: Option<DateTime<Utc>>,
    /// The `issued_at` of the cached envelope, to refuse replacing it with an older one.
    offline_issued_at: Option<DateTime<Utc>>,
    /// The key set as last fetched (public), to verify offline.
    keys: Option<String>,
}

/// A cache file the app names; every write replaces it atomically (a temporary file beside
/// it, then a rename), so a crash never leaves half a file.
#[derive(Debug, Clone)]
pub struct Cache {
    path: PathBuf,
}

impl Cache {
    /// The cache at `path` (created on first write).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }

    fn load(&self) -> CacheFile {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn store(&self, file: &CacheFile) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(file)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Keeps the key set's JSON as fetched.
    pub(crate) fn keep_keys(&self, json: &[u8]) -> std::io::Result<()> {
        let mut file = self.load();
        file.keys = Some(String::from_utf8_lossy(json).into_owned());
        self.store(&file)
    }

    /// The key set kept by [`Cache::keep_keys`].
    pub(crate) fn keys(&self) -> Option<PublicKeySet> {
        PublicKeySet::from_json(self.load().keys?.as_bytes()).ok()
    }

    /// The stored watermark.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        self.load().watermark
    }

    /// Moves the watermark forward to `seen` (never back).
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn observe(&self, seen: DateTime<Utc>) -> std::io::Result<()> {
        let mut file = self.load();
        if file.watermark.is_none_or(|w| w < seen) {
            file.watermark = Some(seen);
            self.store(&file)?;
        }
        Ok(())
    }

    /// Keeps `envelope` (opened and verified by the caller, issued at `issued_at`) unless the
    /// cached one is newer.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn keep_offline(
        &self,
        envelope: &OfflineEnvelope,
        issued_at: DateTime<Utc>,
    ) -> std::io::Result<()> {
        let mut file = self.load();
        if file
            .offline_issued_at
            .is_some_and(|cached| cached > issued_at)
        {
            return Ok(());
        }
        file.offline = Some(envelope.clone());
        file.offline_issued_at = Some(issued_at);
        file.watermark = file.watermark.max(Some(issued_at));
        self.store(&file)
    }

    /// Opens the cached envelope for `device` at `now` with the stored watermark, and stores
    /// the new watermark.
    ///
    /// # Errors
    ///
    /// [`OfflineError::Malformed`] when nothing is cached; every other [`OfflineError`]
    /// (`ClockMovedBackwards` for a clock set back, `Expired` past the offline window).
    pub fn open(
        &self,
        license_key: &str,
        keys: &PublicKeySet,
        device: &RuntimeBindingRequest,
        now: DateTime<Utc>,
    ) -> Result<VerifiedOffline, OfflineError> {
        let file = self.load();
        let envelope = file.offline.as_ref().ok_or(OfflineError::Malformed)?;
        let opened = open_offline(envelope, license_key, keys, device, now, file.watermark)?;
        // Keeping the watermark is what catches a clock set back next time; failing to write
        // it must not refuse the app its entitlement now.
        let _ = self.observe(opened.watermark());
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kid: &str) -> OfflineEnvelope {
        OfflineEnvelope {
            kid: kid.into(),
            salt: String::new(),
            nonce: String::new(),
            ciphertext: String::new(),
        }
    }

    #[test]
    fn an_older_envelope_never_replaces_a_newer_one_and_the_watermark_only_grows() {
        let path =
            std::env::temp_dir().join(format!("licentia-cache-unit-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let cache = Cache::new(&path);
        let t = |h: i64| DateTime::UNIX_EPOCH + chrono::TimeDelta::hours(h);
        cache.keep_offline(&envelope("new"), t(10)).unwrap();
        cache.keep_offline(&envelope("old"), t(5)).unwrap();
        assert_eq!(cache.load().offline.unwrap().kid, "new");
        assert_eq!(cache.watermark(), Some(t(10)));
        cache.observe(t(3)).unwrap();
        assert_eq!(
            cache.watermark(),
            Some(t(10)),
            "the watermark never moves back"
        );
        cache.observe(t(12)).unwrap();
        assert_eq!(cache.watermark(), Some(t(12)));
        assert!(!path.with_extension("tmp").exists(), "written by rename");
        let _ = std::fs::remove_file(&path);
    }
}
