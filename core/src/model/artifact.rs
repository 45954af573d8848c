//! Release artifacts and entitled downloads (extensions): the files of a product version,
//! the signed manifest of what a device may fetch, and the short-lived grant to fetch one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ArtifactId, LicenseId, ProductId, ProductVersionId};

/// Where an artifact's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArtifactSource {
    /// In the server's artifact store (`LICENTIA_ARTIFACTS`), under `key`.
    Stored {
        /// The object's path in the store.
        key: String,
    },
    /// Elsewhere: a download redirects there.
    External {
        /// An `https://` (or `http://`) URL.
        url: String,
    },
}

/// A file of a product version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub id: ArtifactId,
    pub product_id: ProductId,
    pub version_id: ProductVersionId,
    /// The version's semver, as the catalog has it.
    pub version: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The name a download is saved as.
    pub filename: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    pub content_type: String,
    pub source: ArtifactSource,
    pub created_at: DateTime<Utc>,
}

/// An artifact as a manifest lists it (signed data: no store paths, no URLs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub id: ArtifactId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

impl From<&Artifact> for ManifestEntry {
    fn from(a: &Artifact) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            platform: a.platform.clone(),
            arch: a.arch.clone(),
            filename: a.filename.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
            content_type: a.content_type.clone(),
        }
    }
}

/// The signed data of `GET /api/v1/license/manifests/{version}`: what the device may fetch
/// of that version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestData {
    pub license_id: LicenseId,
    pub product_id: ProductId,
    pub version: String,
    pub artifacts: Vec<ManifestEntry>,
    pub issued_at: super::Timestamp,
}

/// The signed data of `POST /api/v1/license/downloads`: where to fetch the artifact, until
/// when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadGrant {
    pub artifact_id: ArtifactId,
    /// The path to `GET` (relative to the server): `/api/v1/downloads/<token>`.
    pub url: String,
    pub sha256: String,
    pub size: u64,
    pub expires_at: super::Timestamp,
}

/// What a download token says, signed by the server's key ring (the token is the signed
/// envelope, base64url): this artifact, for this license, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadClaims {
    /// Always `licentia-download-v1`, so no other signed answer passes as a token.
    pub purpose: String,
    pub artifact_id: ArtifactId,
    pub license_id: LicenseId,
    pub expires_at: super::Timestamp,
}

/// The body of `POST /api/v1/products/{id}/versions/{version_id}/artifacts`: the file's
/// description and either its bytes (`content_base64`, stored in the artifact store) or a
/// `url` where they are (then `size` and `sha256` are required, as the server cannot see
/// them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactCreate {
    pub name: String,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub arch: Option<String>,
    pub filename: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub content_base64: Option<String>,
}
