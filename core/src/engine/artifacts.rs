//! Release artifacts and entitled downloads (extensions).
//!
//! - Management describes each file of a version ([`Engine::plan_artifact`], then
//!   [`Engine::record_artifact`] once the host has stored the bytes: the engine does no I/O,
//!   and an artifact is listed only once its bytes are where it says).
//! - A device asks for the signed manifest of a version ([`Engine::manifest`]): the rules of
//!   validate apply (license usable, device activated) with the version as its `app_version`,
//!   so a version past the license's eligibility is `VERSION_NOT_ENTITLED`.
//! - It asks for one artifact ([`Engine::grant_download`]) and gets a signed grant with a
//!   short-lived download token: the token is itself signed by the key ring (so any instance
//!   checks it without shared state) and names the artifact, the license and its expiry.
//! - The host serves the bytes to whoever holds the token ([`Engine::redeem_download`]),
//!   which appends an `artifact.downloaded` event per download.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Duration;
use rand_core::CryptoRng;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::catalog::{check_name, parse_id};
use super::runner::ResponseBody;
use super::runtime::RuntimeCall;
use super::{Actor, Clock, Engine, EngineError};
use crate::crypto::Unverified;
use crate::model::{
    Artifact, ArtifactCreate, ArtifactId, ArtifactSource, DownloadClaims, DownloadGrant,
    DownloadRequest, ManifestData, ManifestEntry, ProductId, ProductVersionId,
    RuntimeBindingRequest, Timestamp,
};
use crate::rules::{Denial, DenialCode, DenialReason, DomainEvent, Read, activation};
use crate::store::Store;
use licentia_verify::encoding::hex_encode;

/// How long a download token is good for unless the host says otherwise.
pub const DEFAULT_DOWNLOAD_TTL: Duration = Duration::minutes(5);

/// What a download token's claims say they are for.
const DOWNLOAD_PURPOSE: &str = "licentia-download-v1";

/// Longest filename, platform, arch or content type, in characters.
pub const MAX_ARTIFACT_FIELD_LEN: usize = 255;

/// An artifact described and checked, with the bytes the host must store at its key before
/// [`Engine::record_artifact`] (none for an external one).
#[derive(Debug, Clone)]
pub struct PlannedArtifact {
    /// The record to store.
    pub artifact: Artifact,
    /// The bytes, for a stored artifact.
    pub content: Option<Vec<u8>>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::invalid(field, message)
}

/// `value`, when given, as a short printable token (no control characters, no separators).
fn short(field: &'static str, value: Option<&str>) -> Result<Option<String>, EngineError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_ARTIFACT_FIELD_LEN || v.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!(
                "{field} must be at most {MAX_ARTIFACT_FIELD_LEN} characters without control characters"
            ),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// A file name a download may be saved as: no path, nothing hidden by control characters.
fn filename(raw: &str) -> Result<String, EngineError> {
    let name =
        short("filename", Some(raw))?.ok_or_else(|| invalid("filename", "filename is required"))?;
    if name.contains(['/', '\\', '"']) || name == "." || name == ".." {
        return Err(invalid(
            "filename",
            "filename must be a plain name: no '/', '\\' or '\"'",
        ));
    }
    Ok(name)
}

fn content_type(raw: Option<&str>) -> Result<String, EngineError> {
    let Some(t) = short("content_type", raw)? else {
        return Ok("application/octet-stream".into());
    };
    let valid = t.split_once('/').is_some_and(|(a, b)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
        };
        token(a) && token(b.split(';').next().unwrap_or_default().trim())
    }) && t.bytes().all(|c| c == b' ' || c.is_ascii_graphic());
    if !valid {
        return Err(invalid(
            "content_type",
            "content_type must be a media type, e.g. application/zip",
        ));
    }
    Ok(t)
}

fn sha256_hex(raw: &str) -> Result<String, EngineError> {
    if raw.len() == 64 && raw.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(invalid(
            "sha256",
            "sha256 must be 64 hexadecimal characters",
        ))
    }
}

/// The signed token of `claims`: the signed envelope, base64url without padding.
fn encode_token(envelope: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(envelope)
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Checks `req` for version `version` of product `product` and describes the artifact:
    /// its bytes (`upload`, or decoded from `content_base64`; their size and SHA-256 computed
    /// and checked against any given) or the `url` where they are (then `size` and `sha256`
    /// are required). Writes nothing.
    ///
    /// # Errors
    ///
    /// `NotFound` product or version (also a version of another product); `INVALID_FIELD`
    /// for a missing name or filename, a filename with a path, neither or both of `url` and
    /// `content_base64`, a URL that is not `http(s)://`, content that is not base64, or a
    /// size or SHA-256 that does not match the content.
    pub async fn plan_artifact(
        &self,
        product: &str,
        version: &str,
        req: ArtifactCreate,
        upload: Option<Vec<u8>>,
    ) -> Result<PlannedArtifact, EngineError> {
        let product: ProductId = parse_id(product, "product")?;
        let version = self
            .store
            .get_version(&parse_id::<ProductVersionId>(version, "product_version")?)
            .await?;
        if version.product_id != product {
            return Err(EngineError::NotFound {
                entity: "product_version",
            });
        }
        let id = self.with_rng(|r| ArtifactId::generate(r));
        let filename = filename(&req.filename)?;
        let given_sha = req.sha256.as_deref().map(sha256_hex).transpose()?;
        let bytes = match (req.content_base64, upload) {
            (Some(b64), None) => Some(STANDARD.decode(b64.as_bytes()).map_err(|_| {
                invalid("content_base64", "content_base64 must be standard base64")
            })?),
            (None, upload) => upload,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "content_base64",
                    "give the bytes once: content_base64 or the body",
                ));
            }
        };
        let (source, size, sha256, content) = match (req.url, bytes) {
            (Some(url), None) => {
                let url = url.trim().to_owned();
                let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
                if !scheme_ok || url.len() > 2048 || !url.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(
                        "url",
                        "url must be an http:// or https:// URL in ASCII (percent-encode the rest)",
                    ));
                }
                let size = req
                    .size
                    .ok_or_else(|| invalid("size", "size is required with url"))?;
                let sha =
                    given_sha.ok_or_else(|| invalid("sha256", "sha256 is required with url"))?;
                (ArtifactSource::External { url }, size, sha, None)
            }
            (None, Some(bytes)) => {
                let size = bytes.len() as u64;
                let sha = hex_encode(&Sha256::digest(&bytes));
                if req.size.is_some_and(|s| s != size) {
                    return Err(invalid("size", "size differs from the content's"));
                }
                if given_sha.as_ref().is_some_and(|s| s != &sha) {
                    return Err(invalid("sha256", "sha256 differs from the content's"));
                }
                let key = format!("artifacts/{}/{}", id, filename);
                (ArtifactSource::Stored { key }, size, sha, Some(bytes))
            }
            _ => {
                return Err(invalid(
                    "content_base64",
                    "give exactly one of the bytes (content_base64 or the body) and url",
                ));
            }
        };
        let now = self.now();
        let artifact = Artifact {
            id,
            product_id: product,
            version_id: version.id,
            version: version.version,
            name: check_name("name", &req.name)?,
            platform: short("platform", req.platform.as_deref())?,
            arch: short("arch", req.arch.as_deref())?,
            filename,
            size,
            sha256,
            content_type: content_type(req.content_type.as_deref())?,
            source,
            created_at: now,
        };
        Ok(PlannedArtifact { artifact, content })
    }

    /// Stores `artifact` (planned by [`Self::plan_artifact`]; its bytes stored by the host)
    /// with an `artifact.created` event.
    ///
    /// # Errors
    ///
    /// `NotFound` version (deleted meanwhile), storage failures.
    pub async fn record_artifact(
        &self,
        actor: &Actor,
        artifact: &Artifact,
    ) -> Result<(), EngineError> {
        let e = DomainEvent::new(
            "artifact.created",
            "artifact",
            artifact.id.as_str(),
            [
                ("product_id", json!(artifact.product_id)),
                ("version_id", json!(artifact.version_id)),
                ("sha256", json!(artifact.sha256)),
            ],
        );
        let now = self.now();
        self.store
            .insert_artifact(artifact, vec![actor.event(e, now)])
            .await?;
        Ok(())
    }

    /// Artifacts of version `version` of product `product`, by name, platform and arch.
    ///
    /// # Errors
    ///
    /// `NotFound` product or version.
    pub async fn list_artifacts(
        &self,
        product: &str,
        version: &str,
    ) -> Result<Vec<Artifact>, EngineError> {
        let product: ProductId = parse_id(product, "product")?;
        let version = self
            .store
            .get_version(&parse_id::<ProductVersionId>(version, "product_version")?)
            .await?;
        if version.product_id != product {
            return Err(EngineError::NotFound {
                entity: "product_version",
            });
        }
        Ok(self.store.list_artifacts(&version.id).await?)
    }

    /// The signed manifest of `version` for the calling device: the artifacts it may fetch.
    /// Decided as validate decides (and noted as a validation), with `version` as the
    /// request's `app_version`.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`]; `VERSION_UNKNOWN` for a version not in the product's catalog,
    /// `VERSION_NOT_ENTITLED` for one past the license's eligibility.
    pub async fn manifest(
        &self,
        call: RuntimeCall<'_>,
        version: &str,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        let req = RuntimeBindingRequest {
            app_version: Some(version.to_owned()),
            ..req.clone()
        };
        let op = self.op("manifest", call, &req, Some(&req), false).await?;
        let ((license, entry), decided) = self
            .read(op, |agg, now| {
                let read = activation::validate(agg, &req, now)?;
                let entry = cataloged(agg)?;
                Ok(Read {
                    outcome: (
                        (agg.license.id.clone(), agg.license.product_id.clone()),
                        entry,
                    ),
                    touch: read.touch,
                })
            })
            .await?;
        let artifacts = self.store.list_artifacts(&entry.id).await?;
        let data = ManifestData {
            license_id: license.0,
            product_id: license.1,
            version: entry.version,
            artifacts: artifacts.iter().map(ManifestEntry::from).collect(),
            issued_at: Timestamp::new(decided.now),
        };
        self.signed_read(call, (data, decided))
    }

    /// A signed grant to download `req.artifact_id` for the calling device, good for `ttl`:
    /// decided as [`Self::manifest`] decides for the artifact's version.
    ///
    /// # Errors
    ///
    /// As [`Self::manifest`]; `NotFound` artifact (also one of another product).
    pub async fn grant_download(
        &self,
        call: RuntimeCall<'_>,
        req: &DownloadRequest,
        ttl: Duration,
    ) -> Result<ResponseBody, EngineError> {
        let artifact = self
            .store
            .get_artifact(&parse_id(&req.artifact_id, "artifact")?)
            .await?;
        let binding = RuntimeBindingRequest {
            app_version: Some(artifact.version.clone()),
            ..req.binding()
        };
        let op = self
            .op("download", call, &binding, Some(&binding), false)
            .await?;
        let product = artifact.product_id.clone();
        let (license, decided) = self
            .read(op, |agg, now| {
                if agg.license.product_id != product {
                    return Err(Denial::one(DenialReason::field(
                        DenialCode::VersionUnknown,
                        "artifact_id",
                        "the artifact is of another product",
                    )));
                }
                let read = activation::validate(agg, &binding, now)?;
                cataloged(agg)?;
                Ok(Read {
                    outcome: agg.license.id.clone(),
                    touch: read.touch,
                })
            })
            .await?;
        let expires_at = Timestamp::new(decided.now + ttl);
        let claims = DownloadClaims {
            purpose: DOWNLOAD_PURPOSE.into(),
            artifact_id: artifact.id.clone(),
            license_id: license,
            expires_at,
        };
        // A download token is the server's own: the global ring signs and verifies it.
        let envelope = self
            .with_signer(None, |keys| keys.sign_at(decided.now, &claims))
            .map_err(EngineError::internal)?;
        let envelope = serde_json::to_vec(&envelope).map_err(EngineError::internal)?;
        let grant = DownloadGrant {
            artifact_id: artifact.id,
            url: format!("/api/v1/downloads/{}", encode_token(&envelope)),
            sha256: artifact.sha256,
            size: artifact.size,
            expires_at,
        };
        self.signed_read(call, (grant, decided))
    }

    /// The artifact a download token grants, checked: signed by this ring (retired keys
    /// too), meant as a download token, not expired. Writes nothing: the host records the
    /// download with [`Self::record_download`] once it serves bytes.
    ///
    /// # Errors
    ///
    /// `NotFound { entity: "download" }` for a token that does not verify;
    /// `DOWNLOAD_EXPIRED` (404) past its expiry; `NotFound` artifact (deleted since).
    pub async fn redeem_download(&self, token: &str) -> Result<Download, EngineError> {
        let forged = || EngineError::NotFound { entity: "download" };
        let envelope = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| forged())?;
        let claims = Unverified::<DownloadClaims>::from_envelope_json(&envelope)
            .and_then(|u| self.with_signer(None, |keys| u.verify(&keys.public_key_set())))
            .map_err(|_| forged())?
            .into_data();
        if claims.purpose != DOWNLOAD_PURPOSE {
            return Err(forged());
        }
        if self.now() >= claims.expires_at.get() {
            return Err(EngineError::denied(
                DenialCode::DownloadExpired,
                None,
                "the download token has expired: ask for a new one",
            ));
        }
        let artifact = self.store.get_artifact(&claims.artifact_id).await?;
        Ok(Download {
            artifact,
            license_id: claims.license_id,
        })
    }

    /// Appends the `artifact.downloaded` event of `download` being served (`bytes`: the
    /// range, when only part of the file is).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn record_download(
        &self,
        download: &Download,
        bytes: Option<std::ops::Range<u64>>,
        ip_address: Option<&str>,
    ) -> Result<(), EngineError> {
        let a = &download.artifact;
        let range = bytes.map(|r| json!([r.start, r.end]));
        let e = DomainEvent::new(
            "artifact.downloaded",
            "artifact",
            a.id.as_str(),
            [
                ("license_id", json!(download.license_id)),
                ("version_id", json!(a.version_id)),
                ("range", range.unwrap_or(serde_json::Value::Null)),
            ],
        );
        let actor = Actor::license(&download.license_id, ip_address.map(str::to_owned));
        let now = self.now();
        self.store.append_events(vec![actor.event(e, now)]).await?;
        Ok(())
    }
}

/// A download token redeemed: the artifact, and the license it was granted to.
#[derive(Debug, Clone)]
pub struct Download {
    /// What to serve.
    pub artifact: Artifact,
    /// Who it was granted to.
    pub license_id: crate::model::LicenseId,
}

/// The catalog entry of the request's version, or `VERSION_UNKNOWN` (also for a product
/// without a catalog: a manifest lists a version's files, so the version must exist).
fn cataloged(agg: &crate::rules::LicenseAggregate) -> Result<crate::model::ProductVersion, Denial> {
    agg.versions.entry.clone().ok_or_else(|| {
        Denial::one(DenialReason::field(
            DenialCode::VersionUnknown,
            "version",
            "the version is not in the product's catalog",
        ))
    })
}
