//! An async client for the nine runtime operations of a licentia server.
//!
//! - **Idempotent retries.** Every logical call that changes something (activate, consume,
//!   deactivate, checkout, checkin) gets a fresh `Idempotency-Key`, reused on each retry, so
//!   a retry after a lost answer is answered with the first decision, never a second seat or
//!   unit.
//! - **Retries** on network errors, 5xx and 429, with exponential backoff and jitter, and
//!   `Retry-After` honoured (capped by [`Retry::max_delay`]).
//! - **Everything verified.** Answers are Ed25519-checked against the server's key set,
//!   fetched once from `/api/v1/system/public-keys` and refreshed when an answer names a `kid`
//!   the set does not hold — or pinned ([`Client::with_pinned_keys`]), then never fetched.
//!   Refusals (403, 404, 409, 422) are signed too: a verified one is [`Error::Refused`], one
//!   that does not verify is [`Error::Unverified`], never a refusal the app would act on.
//! - **Floating leases.** [`Client::lease`] checks one out and heartbeats it in the
//!   background; dropping the [`FloatingLease`] checks it in.
//! - **Pre-registered devices.** [`Client::registered_device`] then
//!   [`Client::device_activate`] with the serial and secret give a client that calls with the
//!   device's session (`Authorization: Session`), never a license key; a device that kept its
//!   token starts from [`Client::with_session`].
//! - **License users.** On a user-based license, [`Client::license_user`] calls with the
//!   user's e-mail and password, [`Client::sign_in_license_user`] with a session;
//!   [`Client::for_license`] names one of the user's [`Client::licenses`].
//! - **Release downloads.** [`Client::manifest`] lists the files of a version the device may
//!   fetch (signed); [`Client::download`] fetches one through a short-lived grant and checks
//!   its SHA-256.
//! - **Air-gapped devices.** [`air_gap`] writes the request file, opens the envelope file
//!   management answers, and signs the release file.
//! - **Offline.** [`Client::offline`] fetches an envelope; [`open_offline`] opens it with
//!   `licentia-verify` (binding, window, clock watermark). With a [`Cache`] file
//!   ([`Client::with_cache`]) the newest envelope, the key set and the watermark are kept
//!   across runs (written atomically), and [`Client::validate_or_offline`] falls back to the
//!   cached entitlement when the server cannot be reached — refusing a clock set back or an
//!   older envelope.
//!
//! ```no_run
//! # async fn run() -> Result<(), licentia_client::Error> {
//! use licentia_client::Client;
//! use licentia_core::model::RuntimeBindingRequest;
//!
//! let client = Client::new("https://licensing.example.com", "lsk_…")?;
//! let device = RuntimeBindingRequest { fingerprint: Some("fp-1".into()), ..Default::default() };
//! let entitlement = client.activate(&device).await?;
//! println!("{:?} until {:?}", entitlement.data().status, entitlement.data().expires_at);
//! # Ok(()) }
//! ```

pub mod air_gap;
mod cache;
mod lease;

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use licentia_core::crypto::{
    OfflineEnvelope, OfflineError, PublicKeySet, Refusal, Unverified, Verified, VerifiedOffline,
    VerifyError, open,
};
use licentia_core::model::{
    ConsumeRequest, DeactivationData, DeviceActivationData, DeviceHeartbeatData, DownloadGrant,
    FloatingBorrowData, FloatingCheckoutData, FloatingLeaseData, FloatingLeaseRequest,
    ManifestData, RuntimeBindingRequest, RuntimeEntitlementData, TelemetryRecord,
};
use licentia_core::rules::Binding;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest as _;
use tokio::sync::RwLock;

pub use cache::Cache;
pub use lease::FloatingLease;

/// The longest a download may take (the other calls' timeout is far shorter).
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused, and the refusal's signature verified: act on `code`.
    #[error("refused: {} ({})", .0.code, .0.message)]
    Refused(Refusal),
    /// An answer or refusal whose signature did not verify (forged, altered or stripped):
    /// do not act on it.
    #[error("the server's answer did not verify: {0}")]
    Unverified(VerifyError),
    /// The server answered with a status that is not a decision (400, 401, 5xx after the
    /// retries, …).
    #[error("HTTP {status}: {code}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The error code of the body, when it had one.
        code: String,
    },
    /// The server could not be reached (after the retries).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The base URL or the binding is not usable.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The server was unreachable and the cached offline entitlement could not be used.
    #[error("offline: {0}")]
    Offline(OfflineError),
    /// A downloaded file is not the one its signed grant names (size or SHA-256), or a
    /// signed grant or manifest is not the one asked for.
    #[error("download mismatch: {0}")]
    Mismatch(String),
}

/// What [`Client::validate_or_offline`] could establish.
#[derive(Debug)]
pub enum Entitlement {
    /// The server answered (verified).
    Online(Box<Verified<RuntimeEntitlementData>>),
    /// The server could not be reached; the cached offline envelope opened (verified, bound
    /// to this device, inside its window, clock not set back).
    Offline(Box<VerifiedOffline>),
}

impl Error {
    /// The refusal's code, when the server refused.
    pub fn refusal_code(&self) -> Option<&str> {
        match self {
            Error::Refused(r) => Some(&r.code),
            _ => None,
        }
    }
}

/// How calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per logical call, the first included.
    pub attempts: u32,
    /// The first delay (later ones double, with jitter).
    pub first_delay: Duration,
    /// The longest wait between attempts, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// A client of one license on one server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: url::Url,
    /// The license key, or a registered device's session token (empty before it activates),
    /// or a license user's password or session token: what offline envelopes are sealed to.
    license_key: String,
    /// `License`, `Session`, `User` or `Bearer`.
    scheme: &'static str,
    /// What follows the scheme in `Authorization`: the secret itself, or for `User` the
    /// base64 of `e-mail:password`.
    credential: String,
    /// `Licentia-License`: the license a license user acts on.
    license: Option<String>,
    keys: RwLock<Option<PublicKeySet>>,
    pinned: bool,
    retry: Retry,
    cache: Option<Cache>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential is a secret: never in a log line.
        f.debug_struct("Inner")
            .field("base", &self.base.as_str())
            .field("scheme", &self.scheme)
            .field("license", &self.license)
            .field("pinned", &self.pinned)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What one attempt got.
enum Reply {
    Answer(Vec<u8>),
    Refusal(Vec<u8>),
    Other { status: u16, body: Vec<u8> },
}

impl Client {
    /// A client of the server at `base_url` for `license_key`.
    ///
    /// # Errors
    ///
    /// A base URL that is not http(s); a TLS setup reqwest refuses.
    pub fn new(base_url: &str, license_key: &str) -> Result<Self, Error> {
        Self::with_credential(base_url, "License", license_key)
    }

    /// A client of a pre-registered device that has its session token already (from an
    /// earlier [`Client::device_activate`]): `Authorization: Session <token>`, never a license
    /// key. Offline envelopes it fetches are sealed to the token: keep it with them.
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn with_session(base_url: &str, session_token: &str) -> Result<Self, Error> {
        Self::with_credential(base_url, "Session", session_token)
    }

    /// A client of a pre-registered device before it activates: only
    /// [`Client::device_activate`] is of use until then.
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn registered_device(base_url: &str) -> Result<Self, Error> {
        Self::with_credential(base_url, "Session", "")
    }

    /// A client of a license user (user-based licenses) calling with its e-mail and password
    /// (`Authorization: User …`). The server judges the password on every call (tens of
    /// milliseconds); [`Client::sign_in_license_user`] gives a session instead. Offline
    /// envelopes it fetches are sealed to the password.
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn license_user(base_url: &str, email: &str, password: &str) -> Result<Self, Error> {
        let client = Self::with_credential(base_url, "User", password)?;
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"));
        Ok(client.rebuild(|i| i.credential = basic))
    }

    /// Signs a license user in (`POST /api/v1/license/users/sign-in`) and answers a client
    /// calling with the session (`Authorization: Bearer`, 12 hours). Offline envelopes it
    /// fetches are sealed to the session token: keep it with them.
    ///
    /// # Errors
    ///
    /// [`Error::Status`] 401 for a wrong e-mail, password or TOTP code, 403 while the
    /// account is locked; as [`Client::new`].
    pub async fn sign_in_license_user(
        base_url: &str,
        email: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<Self, Error> {
        #[derive(Serialize)]
        struct SignIn<'a> {
            email: &'a str,
            password: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            totp: Option<&'a str>,
        }
        #[derive(serde::Deserialize)]
        struct Session {
            data: Token,
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: String,
        }
        let anonymous = Self::with_credential(base_url, "Bearer", "")?;
        let body = SignIn {
            email,
            password,
            totp,
        };
        let answer = anonymous
            .call_path("/api/v1/license/users/sign-in", &body, false, false)
            .await?;
        let session: Session =
            serde_json::from_slice(&answer).map_err(|e| Error::Invalid(e.to_string()))?;
        let token = session.data.token;
        Ok(anonymous.rebuild(|i| {
            i.credential = token.clone();
            i.license_key = token;
        }))
    }

    /// The same client acting on `license_id` (`Licentia-License`), for a license user with
    /// several licenses ([`Client::licenses`] lists them).
    #[must_use]
    pub fn for_license(self, license_id: &str) -> Self {
        self.rebuild(|i| i.license = Some(license_id.to_owned()))
    }

    /// The licenses assigned to this client's license user
    /// (`GET /api/v1/license/users/licenses`; never a key). Not signed: what to pick from,
    /// not a decision.
    ///
    /// # Errors
    ///
    /// [`Error::Status`] 401 for a client that is not a license user's; network failures.
    pub async fn licenses(&self) -> Result<Vec<licentia_core::model::License>, Error> {
        #[derive(serde::Deserialize)]
        struct Listed {
            data: Vec<licentia_core::model::License>,
        }
        let url = self.url("/api/v1/license/users/licenses")?;
        let answer = self.attempts(url, None, false, true).await?;
        let listed: Listed =
            serde_json::from_slice(&answer).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(listed.data)
    }

    fn with_credential(base_url: &str, scheme: &'static str, secret: &str) -> Result<Self, Error> {
        let base = url::Url::parse(base_url).map_err(|e| Error::Invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Invalid(
                "the base URL must be http:// or https://".into(),
            ));
        }
        // rustls needs a process-wide provider; ring is the one the workspace builds.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("licentia-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                license_key: secret.to_owned(),
                scheme,
                credential: secret.to_owned(),
                license: None,
                keys: RwLock::new(None),
                pinned: false,
                retry: Retry::default(),
                cache: None,
            }),
        })
    }

    /// Activates this pre-registered device with its serial and secret (no license key):
    /// answers the verified activation and a client using the session it carries. Activating
    /// again from the same device keeps its seat and replaces the session.
    ///
    /// # Errors
    ///
    /// [`Error::Status`] 401 for an unknown serial or a wrong secret; [`Error::Refused`]
    /// (`REGISTRATION_BOUND`, `ACTIVATION_LIMIT_REACHED`, …); as [`Client::activate`].
    pub async fn device_activate(
        &self,
        serial: &str,
        device_secret: &str,
        device: &RuntimeBindingRequest,
    ) -> Result<(Client, Verified<DeviceActivationData>), Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            serial: &'a str,
            device_secret: &'a str,
            #[serde(flatten)]
            device: &'a RuntimeBindingRequest,
        }
        let body = Body {
            serial,
            device_secret,
            device,
        };
        let answer = self
            .call_path("/api/v1/device/activate", &body, false, false)
            .await?;
        let verified = self
            .verify(|| Unverified::<DeviceActivationData>::from_envelope_json(&answer))
            .await?;
        let token = verified.data().session.token.clone();
        let client = self.rebuild_ref(|i| {
            i.credential = token.clone();
            i.license_key = token;
            i.scheme = "Session";
        });
        Ok((client, verified))
    }

    /// The same client verifying with `keys` only (never fetched, never refreshed).
    #[must_use]
    pub fn with_pinned_keys(self, keys: PublicKeySet) -> Self {
        self.rebuild(|i| {
            i.keys = RwLock::new(Some(keys));
            i.pinned = true;
        })
    }

    /// The same client keeping `cache`: every verified answer moves its watermark, every
    /// offline envelope fetched is kept, and [`Client::validate_or_offline`] falls back to it.
    #[must_use]
    pub fn with_cache(self, cache: Cache) -> Self {
        self.rebuild(|i| i.cache = Some(cache))
    }

    /// Validates online, or — when the server cannot be reached (transport errors, 5xx after
    /// the retries) — opens the cached offline envelope at `now` (the app's clock), inside
    /// the policy's offline window and refusing a clock set back. A refusal by the server is
    /// returned as is: it is never overridden by a cached entitlement.
    ///
    /// # Errors
    ///
    /// The online call's error when it is a decision; [`Error::Offline`] when the fallback
    /// fails (nothing cached, expired, another device, clock set back).
    pub async fn validate_or_offline(
        &self,
        device: &RuntimeBindingRequest,
        now: DateTime<Utc>,
    ) -> Result<Entitlement, Error> {
        match self.validate(device).await {
            Ok(v) => Ok(Entitlement::Online(Box::new(v))),
            Err(Error::Transport(_)) | Err(Error::Status { status: 500.., .. }) => {
                let Some(cache) = &self.inner.cache else {
                    return Err(Error::Offline(OfflineError::Malformed));
                };
                let keys = match self.inner.keys.read().await.clone() {
                    Some(k) => k,
                    None => cache
                        .keys()
                        .ok_or(Error::Offline(OfflineError::UnknownKey))?,
                };
                cache
                    .open(&self.inner.license_key, &keys, device, now)
                    .map(|o| Entitlement::Offline(Box::new(o)))
                    .map_err(Error::Offline)
            }
            Err(e) => Err(e),
        }
    }

    /// The same client with another retry policy.
    #[must_use]
    pub fn with_retry(self, retry: Retry) -> Self {
        self.rebuild(|i| i.retry = retry)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        self.rebuild_ref(change)
    }

    fn rebuild_ref(&self, change: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            http: i.http.clone(),
            base: i.base.clone(),
            license_key: i.license_key.clone(),
            scheme: i.scheme,
            credential: i.credential.clone(),
            license: i.license.clone(),
            keys: RwLock::new(i.keys.try_read().ok().and_then(|k| k.clone())),
            pinned: i.pinned,
            retry: i.retry,
            cache: i.cache.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Activates this device (a seat), idempotently.
    ///
    /// # Errors
    ///
    /// [`Error`]; a verified refusal is [`Error::Refused`] (`ACTIVATION_LIMIT_REACHED`, …).
    pub async fn activate(
        &self,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<RuntimeEntitlementData>, Error> {
        self.signed("activate", device, true).await
    }

    /// Validates this device's entitlement.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`].
    pub async fn validate(
        &self,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<RuntimeEntitlementData>, Error> {
        self.signed("validate", device, false).await
    }

    /// Checks this device's entitlement (no bookkeeping).
    ///
    /// # Errors
    ///
    /// As [`Client::activate`].
    pub async fn check(
        &self,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<RuntimeEntitlementData>, Error> {
        self.signed("check", device, false).await
    }

    /// Checks one feature of this device's entitlement: the answer's `features` holds only
    /// `feature_code` (the server's `feature_code` extension of check).
    ///
    /// # Errors
    ///
    /// As [`Client::activate`]; a verified refusal `FEATURE_NOT_ASSIGNED` when the license
    /// does not have the feature.
    pub async fn check_feature(
        &self,
        device: &RuntimeBindingRequest,
        feature_code: &str,
    ) -> Result<Verified<RuntimeEntitlementData>, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            device: &'a RuntimeBindingRequest,
            feature_code: &'a str,
        }
        self.signed(
            "check",
            &Body {
                device,
                feature_code,
            },
            false,
        )
        .await
    }

    /// Consumes units of a metered feature, idempotently.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`] (`QUOTA_EXCEEDED`, …).
    pub async fn consume(
        &self,
        req: &ConsumeRequest,
    ) -> Result<Verified<RuntimeEntitlementData>, Error> {
        self.signed("consume", req, true).await
    }

    /// Tells the server this activated device is alive (an extension,
    /// `POST /api/v1/license/device-heartbeat`): under a policy with `device_heartbeat_minutes`,
    /// a device that stops calling this (or validate) within the interval and grace loses its
    /// seat. The answer says when the next heartbeat is due (`next_heartbeat_at`).
    ///
    /// # Errors
    ///
    /// As [`Client::validate`] (`DEVICE_NOT_ACTIVATED`, …).
    pub async fn device_heartbeat(
        &self,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<DeviceHeartbeatData>, Error> {
        self.signed("device-heartbeat", device, false).await
    }

    /// Reports telemetry (an extension, `POST /api/v1/license/telemetry`): any JSON object up
    /// to 16 KiB, stored as sent and flagged against the server's schema (`event`,
    /// `occurred_at`, `app_version`, `fingerprint`, `properties`); returns the stored record.
    /// The answer is not signed (it decides nothing). Retried like every call, so a record
    /// may be stored twice when an answer is lost: at least once.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a payload that is not an object; as [`Client::activate`]
    /// otherwise (`PAYLOAD_TOO_LARGE` is an [`Error::Status`] 413).
    pub async fn telemetry(&self, payload: &serde_json::Value) -> Result<TelemetryRecord, Error> {
        if !payload.is_object() {
            return Err(Error::Invalid("telemetry must be a JSON object".into()));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            data: TelemetryRecord,
        }
        let body = self.call("telemetry", payload, false).await?;
        serde_json::from_slice::<Answer>(&body)
            .map(|a| a.data)
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Deactivates this device (frees its seat), idempotently.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`].
    pub async fn deactivate(
        &self,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<DeactivationData>, Error> {
        self.signed("deactivate", device, true).await
    }

    /// Checks out a floating lease, idempotently.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`] (`FLOATING_POOL_EXHAUSTED`, …).
    pub async fn checkout(
        &self,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<FloatingCheckoutData>, Error> {
        self.signed("floating/checkout", device, true).await
    }

    /// Checks out a floating lease of the feature `feature_code`'s own pool (an extension:
    /// `floating_seats` on the feature's assignment), idempotently. Heartbeat and check it in
    /// with its token as any lease.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`] (`FLOATING_POOL_EXHAUSTED`, `FLOATING_NOT_ENABLED` when the
    /// feature has no pool, `FEATURE_NOT_ASSIGNED`, …).
    pub async fn checkout_feature(
        &self,
        device: &RuntimeBindingRequest,
        feature_code: &str,
    ) -> Result<Verified<FloatingCheckoutData>, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            device: &'a RuntimeBindingRequest,
            feature_code: &'a str,
        }
        let body = Body {
            device,
            feature_code,
        };
        self.signed("floating/checkout", &body, true).await
    }

    /// Borrows a floating seat for `hours` (an extension; the policy's `max_borrow_hours`
    /// allows it), idempotently: the lease holds its seat until the borrow ends without
    /// heartbeats, and the answer's `offline` envelope opens with [`open_offline`] until then
    /// (keep it with [`Cache`] for [`Client::validate_or_offline`]). `feature_code` borrows from
    /// that feature's own pool.
    ///
    /// # Errors
    ///
    /// As [`Client::checkout`] (`BORROW_NOT_ALLOWED`, `FLOATING_POOL_EXHAUSTED`, …).
    pub async fn borrow(
        &self,
        device: &RuntimeBindingRequest,
        hours: u32,
        feature_code: Option<&str>,
    ) -> Result<Verified<FloatingBorrowData>, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            device: &'a RuntimeBindingRequest,
            hours: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            feature_code: Option<&'a str>,
        }
        let body = Body {
            device,
            hours,
            feature_code,
        };
        self.signed("floating/borrow", &body, true).await
    }

    /// Returns a borrowed seat early (an extension; a checkin under its own name),
    /// idempotently. The seat is free at once, but the envelope the borrow returned stays valid
    /// offline until the borrow's end: the application must delete it when returning (the
    /// server trusts it to).
    ///
    /// # Errors
    ///
    /// As [`Client::checkin`].
    pub async fn return_borrowed(
        &self,
        lease_token: &str,
    ) -> Result<Verified<FloatingLeaseData>, Error> {
        let req = FloatingLeaseRequest {
            lease_token: lease_token.to_owned(),
            feature_code: None,
        };
        self.signed("floating/return", &req, true).await
    }

    /// Extends a floating lease.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`].
    pub async fn heartbeat(&self, lease_token: &str) -> Result<Verified<FloatingLeaseData>, Error> {
        let req = FloatingLeaseRequest {
            lease_token: lease_token.to_owned(),
            feature_code: None,
        };
        self.signed("floating/heartbeat", &req, false).await
    }

    /// Returns a floating lease, idempotently.
    ///
    /// # Errors
    ///
    /// As [`Client::activate`].
    pub async fn checkin(&self, lease_token: &str) -> Result<Verified<FloatingLeaseData>, Error> {
        let req = FloatingLeaseRequest {
            lease_token: lease_token.to_owned(),
            feature_code: None,
        };
        self.signed("floating/checkin", &req, true).await
    }

    /// Fetches an offline envelope for this device; open it with [`open_offline`] (now, or
    /// later without the network).
    ///
    /// # Errors
    ///
    /// As [`Client::activate`] (`OFFLINE_NOT_ALLOWED`, …).
    pub async fn offline(&self, device: &RuntimeBindingRequest) -> Result<OfflineEnvelope, Error> {
        let body = self.call("offline", device, false).await?;
        #[derive(serde::Deserialize)]
        struct Answer {
            data: OfflineEnvelope,
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|_| Error::Unverified(VerifyError::Malformed))?;
        if let Some(cache) = &self.inner.cache {
            // Kept only once it opens for this device now (verified, in its window).
            let keys = self.keys().await?;
            let watermark = cache.watermark();
            if let Ok(opened) = open_offline(
                &answer.data,
                &self.inner.license_key,
                &keys,
                device,
                DateTime::<Utc>::from(std::time::SystemTime::now()),
                watermark,
            ) {
                let _ = cache.keep_offline(&answer.data, opened.data().entitlement.issued_at.get());
            }
        }
        Ok(answer.data)
    }

    /// The signed manifest of release `version` for this device (an extension of the
    /// server): the files of that version it may download. Decided as validate is, with
    /// `version` as the device's `app_version`.
    ///
    /// # Errors
    ///
    /// As [`Client::validate`]; a verified refusal `VERSION_NOT_ENTITLED` for a version past
    /// the license's eligibility, `VERSION_UNKNOWN` for one not released.
    pub async fn manifest(
        &self,
        version: &str,
        device: &RuntimeBindingRequest,
    ) -> Result<Verified<ManifestData>, Error> {
        let mut url = self.url("/api/v1/license/manifests/")?;
        url.path_segments_mut()
            .map_err(|()| Error::Invalid("the base URL cannot have a path".into()))?
            .pop_if_empty()
            .push(version);
        let fields = serde_json::to_value(device).map_err(|e| Error::Invalid(e.to_string()))?;
        if let Some(fields) = fields.as_object() {
            let mut query = url.query_pairs_mut();
            for (name, value) in fields {
                match value {
                    serde_json::Value::String(v) => query.append_pair(name, v),
                    serde_json::Value::Bool(v) => query.append_pair(name, &v.to_string()),
                    _ => &mut query,
                };
            }
        }
        let answer = self.attempts(url, None, false, true).await?;
        let manifest = self
            .verify(|| Unverified::<ManifestData>::from_envelope_json(&answer))
            .await?;
        // A signed manifest of another version (replayed by someone in the middle) is not
        // this one.
        if manifest.data().version != version {
            return Err(Error::Mismatch(format!(
                "the manifest is of version {}, {version} was asked for",
                manifest.data().version
            )));
        }
        Ok(manifest)
    }

    /// Downloads artifact `artifact_id` for this device (an extension of the server): a
    /// signed grant, then the file, checked against the grant's size and SHA-256.
    ///
    /// # Errors
    ///
    /// As [`Client::manifest`]; [`Error::Mismatch`] when the bytes are not the ones the
    /// grant names; [`Error::Status`] when the download itself is refused (an expired
    /// token: ask again).
    pub async fn download(
        &self,
        artifact_id: &str,
        device: &RuntimeBindingRequest,
    ) -> Result<Vec<u8>, Error> {
        let mut body = serde_json::to_value(device).map_err(|e| Error::Invalid(e.to_string()))?;
        if let Some(fields) = body.as_object_mut() {
            fields.remove("app_version");
            fields.insert("artifact_id".into(), artifact_id.into());
        }
        let grant: Verified<DownloadGrant> = self.signed("downloads", &body, false).await?;
        let grant = grant.data();
        if grant.artifact_id.as_str() != artifact_id {
            return Err(Error::Mismatch(format!(
                "the grant is for {}, {artifact_id} was asked for",
                grant.artifact_id
            )));
        }
        // A file takes as long as it takes: no overall timeout beyond the connection's own.
        let res = self
            .inner
            .http
            .get(self.url(&grant.url)?)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        if status != 200 {
            return Err(Error::Status {
                status,
                code: error_code(&bytes),
            });
        }
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if bytes.len() as u64 != grant.size || digest != grant.sha256 {
            return Err(Error::Mismatch(format!(
                "got {} bytes with SHA-256 {digest}; the grant names {} bytes with {}",
                bytes.len(),
                grant.size,
                grant.sha256
            )));
        }
        Ok(bytes.to_vec())
    }

    /// The key set answers are verified with (fetched on first use unless pinned).
    ///
    /// # Errors
    ///
    /// The key set cannot be fetched or read.
    pub async fn keys(&self) -> Result<PublicKeySet, Error> {
        if let Some(keys) = self.inner.keys.read().await.clone() {
            return Ok(keys);
        }
        self.refresh_keys().await
    }

    async fn refresh_keys(&self) -> Result<PublicKeySet, Error> {
        let url = self.url("/api/v1/system/public-keys")?;
        let body = self
            .inner
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let keys = PublicKeySet::from_json(&body)
            .map_err(|_| Error::Unverified(VerifyError::Malformed))?;
        if let Some(cache) = &self.inner.cache {
            let _ = cache.keep_keys(&body);
        }
        *self.inner.keys.write().await = Some(keys.clone());
        Ok(keys)
    }

    fn url(&self, path: &str) -> Result<url::Url, Error> {
        self.inner
            .base
            .join(path)
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// A signed operation: the call, then the answer verified (the key set refreshed once
    /// when the answer names a key it does not hold).
    async fn signed<T: DeserializeOwned, B: Serialize>(
        &self,
        op: &str,
        body: &B,
        idempotent: bool,
    ) -> Result<Verified<T>, Error> {
        let answer = self.call(op, body, idempotent).await?;
        let verified = self
            .verify(|| Unverified::<T>::from_envelope_json(&answer))
            .await?;
        if let Some(cache) = &self.inner.cache {
            #[derive(serde::Deserialize)]
            struct Issued {
                issued_at: Option<DateTime<Utc>>,
            }
            // The server's time, verified: the clock cannot be set back behind it.
            if let Ok(Issued {
                issued_at: Some(at),
            }) = serde_json::from_slice(verified.signed_bytes())
            {
                let _ = cache.observe(at);
            }
        }
        Ok(verified)
    }

    /// Verifies what `parse` reads, refreshing the key set once on an unknown key.
    async fn verify<T>(
        &self,
        parse: impl Fn() -> Result<Unverified<T>, VerifyError>,
    ) -> Result<Verified<T>, Error>
    where
        T: DeserializeOwned,
    {
        let keys = self.keys().await?;
        match parse().and_then(|u| u.verify(&keys)) {
            Err(VerifyError::UnknownKey) if !self.inner.pinned => {
                let keys = self.refresh_keys().await?;
                parse()
                    .and_then(|u| u.verify(&keys))
                    .map_err(Error::Unverified)
            }
            other => other.map_err(Error::Unverified),
        }
    }

    /// One logical call: attempts with one idempotency key until an answer, a refusal or
    /// the last attempt.
    async fn call<B: Serialize>(
        &self,
        op: &str,
        body: &B,
        idempotent: bool,
    ) -> Result<Vec<u8>, Error> {
        self.call_path(&format!("/api/v1/license/{op}"), body, idempotent, true)
            .await
    }

    /// [`Self::call`] of `path`, with the credential header when `authorized`.
    async fn call_path<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        idempotent: bool,
        authorized: bool,
    ) -> Result<Vec<u8>, Error> {
        let url = self.url(path)?;
        let payload = serde_json::to_vec(body).map_err(|e| Error::Invalid(e.to_string()))?;
        self.attempts(url, Some(payload), idempotent, authorized)
            .await
    }

    /// Attempts of one logical call of `url`: a POST of `payload`, or a GET without one.
    async fn attempts(
        &self,
        url: url::Url,
        payload: Option<Vec<u8>>,
        idempotent: bool,
        authorized: bool,
    ) -> Result<Vec<u8>, Error> {
        let idempotency_key = idempotent.then(new_idempotency_key).transpose()?;
        let retry = self.inner.retry;
        let mut delays = ExponentialBuilder::new()
            .with_jitter()
            .with_jitter_seed(random_u64())
            .with_min_delay(retry.first_delay)
            .with_max_delay(retry.max_delay)
            .without_max_times()
            .build();
        let mut attempt = 1;
        loop {
            let mut req = match &payload {
                Some(payload) => self
                    .inner
                    .http
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(payload.clone()),
                None => self.inner.http.get(url.clone()),
            };
            if authorized {
                req = req.header(
                    "Authorization",
                    format!("{} {}", self.inner.scheme, self.inner.credential),
                );
                if let Some(license) = &self.inner.license {
                    req = req.header("Licentia-License", license);
                }
            }
            if let Some(key) = &idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            let (reply, retry_after) = match req.send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let retry_after = res
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = res.bytes().await?.to_vec();
                    let reply = match status {
                        200..=299 => Reply::Answer(body),
                        403 | 404 | 409 | 422 => Reply::Refusal(body),
                        _ => Reply::Other { status, body },
                    };
                    (Ok(reply), retry_after)
                }
                Err(e) => (Err(e), None),
            };
            let retryable = match &reply {
                Ok(Reply::Other { status, .. }) => *status == 429 || *status >= 500,
                Ok(_) => false,
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            };
            if !retryable || attempt >= retry.attempts {
                return match reply? {
                    Reply::Answer(body) => Ok(body),
                    Reply::Refusal(body) => {
                        let refusal = self
                            .verify(|| Unverified::<Refusal>::from_refusal_json(&body))
                            .await?;
                        Err(Error::Refused(refusal.into_data()))
                    }
                    Reply::Other { status, body } => Err(Error::Status {
                        status,
                        code: error_code(&body),
                    }),
                };
            }
            let backoff = delays.next().unwrap_or(retry.max_delay);
            let wait = retry_after
                .map_or(backoff, |r| r.max(backoff))
                .min(retry.max_delay);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Opens an offline envelope for `device` at `now`, with the watermark kept from the last
/// open (store the returned [`VerifiedOffline::watermark`]).
///
/// # Errors
///
/// [`OfflineError`]: tampering, another device, outside the window, a clock set back.
pub fn open_offline(
    envelope: &OfflineEnvelope,
    license_key: &str,
    keys: &PublicKeySet,
    device: &RuntimeBindingRequest,
    now: DateTime<Utc>,
    watermark: Option<DateTime<Utc>>,
) -> Result<VerifiedOffline, OfflineError> {
    let binding = Binding::from_request(device).map_err(|_| OfflineError::BindingMismatch)?;
    open(
        envelope,
        license_key,
        keys,
        binding.key(),
        now,
        TimeDelta::minutes(5),
        watermark,
    )
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Without OS randomness the jitter is merely predictable, which is harmless.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// 128 random bits, hex: one per logical call (never a fixed value, which would make every
/// call a replay of the first).
fn new_idempotency_key() -> Result<String, Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
