//! Release artifacts and entitled downloads (extensions): management of a version's files,
//! the runtime manifest and download grants, and the download itself.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use licentia_core::engine::PlannedArtifact;
use licentia_core::model::{
    Artifact, ArtifactCreate, ArtifactSource, DownloadRequest, RuntimeBindingRequest,
};
use licentia_core::store::Store;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStoreExt, PutPayload};
use serde::Deserialize;

use super::created;
use super::runtime::{answer, call};
use crate::artifacts::{Wanted, wanted};
use crate::auth::scope::{ProductRead, ProductWrite};
use crate::auth::{Auth, License, PeerAddr};
use crate::error::{ApiError, codes};
use crate::extract::{Json, Path, Query};
use crate::request_id::RequestId;
use crate::state::App;

type R = Result<Response, ApiError>;

pub(super) fn routes<S: Store + 'static>() -> Router<App<S>> {
    Router::new()
        .route(
            "/api/v1/products/{id}/versions/{version_id}/artifacts",
            // The body layer already held the body to its limit (the upload limit for raw
            // uploads, see `is_upload`).
            get(list::<S>).post(create::<S>.layer(DefaultBodyLimit::disable())),
        )
        .route("/api/v1/license/manifests/{version}", get(manifest::<S>))
        .route("/api/v1/license/downloads", post(grant::<S>))
        .route("/api/v1/downloads/{token}", get(download::<S>))
}

/// Whether a request is an artifact's raw upload (the body limit layer gives those their
/// own, larger limit): `POST …/artifacts` with `Content-Type: application/octet-stream`.
pub(crate) fn is_upload(method: &axum::http::Method, path: &str, headers: &HeaderMap) -> bool {
    method == axum::http::Method::POST
        && path.starts_with("/api/v1/products/")
        && path.ends_with("/artifacts")
        && is_octets(headers)
}

fn is_octets(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"))
}

/// The description of a raw upload, in the query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: String,
    filename: String,
    platform: Option<String>,
    arch: Option<String>,
    content_type: Option<String>,
    sha256: Option<String>,
}

/// `POST …/artifacts`: JSON ([`ArtifactCreate`]: a `url`, or small bytes in
/// `content_base64`), or the raw bytes as `application/octet-stream` with the description in
/// the query string. Stored bytes are written before the record, so a listed artifact's
/// bytes are always there.
async fn create<S: Store + 'static>(
    State(app): State<App<S>>,
    auth: Auth<ProductWrite>,
    rid: RequestId,
    Path((product, version)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Body,
) -> R {
    // Raw uploads arrive unread (see `crate::body::read_whole`): read now, authenticated.
    let octets = is_octets(&headers);
    let config = app.config();
    let (max, timeout) = match octets {
        true => (
            config.artifacts.upload_limit,
            config.artifacts.upload_timeout,
        ),
        false => (config.body_limit, config.limits.body_timeout),
    };
    // Raw uploads are held in memory until stored: only a few at once.
    let _turn = match octets {
        true => app.upload_turn().await,
        false => None,
    };
    let body = match crate::body::read_limited(body, max, timeout).await {
        Ok(bytes) => bytes,
        Err(refusal) => return Ok(refusal),
    };
    let (req, upload) = if octets {
        let q = axum::extract::Query::<UploadQuery>::try_from_uri(&uri)
            .map_err(|r| {
                ApiError::bad_request(codes::INVALID_QUERY, "a query parameter is invalid")
                    .with_detail(r.body_text())
            })?
            .0;
        let req = ArtifactCreate {
            name: q.name,
            filename: q.filename,
            platform: q.platform,
            arch: q.arch,
            content_type: q.content_type,
            sha256: q.sha256,
            ..ArtifactCreate::default()
        };
        (req, Some(Vec::from(body)))
    } else {
        (crate::extract::decode::<ArtifactCreate>(&body)?, None)
    };
    let PlannedArtifact { artifact, content } = app
        .engine()
        .plan_artifact(&product, &version, req, upload)
        .await?;
    let key = match (&artifact.source, content) {
        (ArtifactSource::Stored { key }, Some(bytes)) => {
            let key = ObjectPath::from(key.as_str());
            app.artifacts()
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(stored_failed)?;
            Some(key)
        }
        _ => None,
    };
    if let Err(e) = app.engine().record_artifact(&auth.actor, &artifact).await {
        // Nothing names those bytes: take them back.
        if let Some(key) = key {
            let _ = app.artifacts().delete(&key).await;
        }
        return Err(e.into());
    }
    created(&rid, &artifact)
}

fn stored_failed(e: object_store::Error) -> ApiError {
    tracing::error!(error = %e, "the artifact store failed");
    match e {
        // The record names bytes the store does not have (removed behind the server's back):
        // retrying will not help.
        object_store::Error::NotFound { .. } => ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            "the artifact's file is missing from the artifact store",
        ),
        _ => ApiError::unavailable(),
    }
}

async fn list<S: Store + 'static>(
    State(app): State<App<S>>,
    _: Auth<ProductRead>,
    rid: RequestId,
    Path((product, version)): Path<(String, String)>,
) -> R {
    super::ok(
        &rid,
        &app.engine().list_artifacts(&product, &version).await?,
    )
}

/// `GET /api/v1/license/manifests/{version}?fingerprint=…`: the binding fields are the
/// query's (a GET has no body).
async fn manifest<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Path(version): Path<String>,
    Query(binding): Query<RuntimeBindingRequest>,
) -> R {
    let r = app
        .engine()
        .manifest(call(&license, None, &rid), &version, &binding)
        .await;
    answer(&app, "manifest", r)
}

async fn grant<S: Store + 'static>(
    State(app): State<App<S>>,
    license: License,
    rid: RequestId,
    Json(req): Json<DownloadRequest>,
) -> R {
    let ttl = i64::try_from(app.config().artifacts.download_ttl_secs)
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .unwrap_or(licentia_core::engine::DEFAULT_DOWNLOAD_TTL);
    let r = app
        .engine()
        .grant_download(call(&license, None, &rid), &req, ttl)
        .await;
    answer(&app, "download", r)
}

/// `GET /api/v1/downloads/{token}`: the bytes (one byte range on request), or a redirect to
/// an external artifact's URL. The token is the credential.
async fn download<S: Store + 'static>(
    State(app): State<App<S>>,
    method: axum::http::Method,
    PeerAddr(ip): PeerAddr,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> R {
    let engine = app.engine();
    let download = engine.redeem_download(&token).await?;
    let artifact = &download.artifact;
    let key = match &artifact.source {
        ArtifactSource::External { url } => {
            let location = HeaderValue::from_str(url).map_err(|_| ApiError::internal())?;
            if method != axum::http::Method::HEAD {
                engine
                    .record_download(&download, None, ip.as_deref())
                    .await?;
            }
            let mut res = StatusCode::FOUND.into_response();
            res.headers_mut().insert(header::LOCATION, location);
            return Ok(res);
        }
        ArtifactSource::Stored { key } => ObjectPath::from(key.as_str()),
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, range) = match wanted(range, artifact.size) {
        Wanted::Whole => (StatusCode::OK, None),
        Wanted::Part(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        Wanted::Unsatisfiable => {
            let mut res = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                codes::RANGE_NOT_SATISFIABLE,
                "the range starts past the end of the file",
            )
            .into_response();
            let total = HeaderValue::from_str(&format!("bytes */{}", artifact.size))
                .map_err(|_| ApiError::internal())?;
            res.headers_mut().insert(header::CONTENT_RANGE, total);
            return Ok(res);
        }
    };
    let options = GetOptions {
        range: range.clone().map(GetRange::Bounded),
        ..GetOptions::default()
    };
    let got = app
        .artifacts()
        .get_opts(&key, options)
        .await
        .map_err(stored_failed)?;
    let length = got.range.end - got.range.start;
    // A HEAD only asks what a download would be.
    if method != axum::http::Method::HEAD {
        engine
            .record_download(&download, range.clone(), ip.as_deref())
            .await?;
    }
    let mut res = Response::new(Body::from_stream(got.into_stream()));
    *res.status_mut() = status;
    file_headers(res.headers_mut(), artifact, length, range)?;
    Ok(res)
}

fn file_headers(
    h: &mut HeaderMap,
    a: &Artifact,
    length: u64,
    range: Option<std::ops::Range<u64>>,
) -> Result<(), ApiError> {
    let value = |s: String| HeaderValue::from_str(&s).map_err(|_| ApiError::internal());
    h.insert(header::CONTENT_TYPE, value(a.content_type.clone())?);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // The planned filename has no quote, slash or control character.
    h.insert(
        header::CONTENT_DISPOSITION,
        value(format!("attachment; filename=\"{}\"", a.filename))
            .or_else(|_| Ok::<_, ApiError>(HeaderValue::from_static("attachment")))?,
    );
    h.insert(header::ETAG, value(format!("\"{}\"", a.sha256))?);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Some(r) = range {
        h.insert(
            header::CONTENT_RANGE,
            value(format!("bytes {}-{}/{}", r.start, r.end - 1, a.size))?,
        );
    }
    Ok(())
}
