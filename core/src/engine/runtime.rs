//! The nine runtime operations: a license key in, a signed decision out.

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde::Serialize;

use super::refusals::RefusalContext;
use super::runner::{Caller, Idempotency, ResponseBody, body_of};
use super::{Clock, Engine, EngineError};
use crate::crypto::{LeaseToken, LicenseKey, seal};
use crate::model::{
    ConsumeRequest, DeviceId, FloatingBorrowData, FloatingBorrowRequest, FloatingLeaseRequest,
    LeaseId, LicenseId, ProductId, RuntimeBindingRequest, RuntimeEndpoint, SecretHash, UserId,
};
use crate::rules::{
    Binding, Denial, DenialCode, DenialReason, LicenseAggregate, Plan, Read, activation,
    device_heartbeat, floating, license_users, metering, offline, version,
};
use crate::store::{
    Actor, AggregateQuery, LicenseQuery, LicenseSelector, Limit, Store, StoreError, TouchRecord,
};

/// How a runtime call authenticates.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: License <key>`: the license key.
    LicenseKey(&'a str),
    /// `Authorization: Session <token>`: a pre-registered device's session
    /// ([`Engine::device_activate`]), which names the license and the device.
    Session(&'a str),
    /// `Authorization: User <base64 e-mail:password>`: a license user's own credentials
    /// ([`rules::license_users`](crate::rules::license_users)). Each call judges the
    /// password (Argon2id, tens of milliseconds): a signed-in session is the fast way.
    User {
        email: &'a str,
        password: &'a str,
        /// The license to act on (`Licentia-License`), needed when the user has several.
        license: Option<&'a str>,
    },
    /// `Authorization: Bearer <token>`: a license user's session
    /// ([`Engine::sign_in_license_user`]).
    UserSession {
        token: &'a str,
        /// As for [`Credential::User`].
        license: Option<&'a str>,
    },
}

impl<'a> Credential<'a> {
    /// The secret itself: what an offline envelope issued to this caller is sealed to (the
    /// license key, or the session token a device keeps with the envelope).
    ///
    /// A user's envelope is sealed to the password, or to the session token.
    pub fn secret(&self) -> &'a str {
        match self {
            Self::LicenseKey(s) | Self::Session(s) => s,
            Self::User { password, .. } => password,
            Self::UserSession { token, .. } => token,
        }
    }
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LicenseKey(_) => "LicenseKey([redacted])",
            Self::Session(_) => "Session([redacted])",
            Self::User { .. } => "User([redacted])",
            Self::UserSession { .. } => "UserSession([redacted])",
        })
    }
}

/// The credentials and bookkeeping of one runtime request.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeCall<'a> {
    /// The license key or device session from the `Authorization` header.
    pub credential: Credential<'a>,
    /// The `Idempotency-Key`, where the operation takes one.
    pub idempotency_key: Option<&'a str>,
    /// Echoed in the response's `meta.request_id`.
    pub request_id: &'a str,
    /// The caller's address, recorded in events.
    pub ip_address: Option<&'a str>,
}

impl<'a> RuntimeCall<'a> {
    /// A call with the license key `key` and nothing else.
    pub fn license_key(key: &'a str, request_id: &'a str) -> Self {
        Self {
            credential: Credential::LicenseKey(key),
            idempotency_key: None,
            request_id,
            ip_address: None,
        }
    }
}

/// When and about what a read was decided: the instant, and the license's product, whose key
/// ring signs the answer.
#[derive(Debug)]
pub(super) struct Decided {
    pub(super) now: DateTime<Utc>,
    pub(super) product: ProductId,
}

/// What the snapshot a read decides on must belong to.
#[derive(Debug, Clone)]
pub(super) enum Expected {
    /// The license whose key hashes to this (a key replaced meanwhile is stale).
    KeyHash(SecretHash),
    /// The session's license, found by id.
    License,
}

/// What a runtime credential names.
pub(super) struct Named {
    pub(super) selector: LicenseSelector,
    /// What its idempotency keys are unique within.
    pub(super) scope: String,
    pub(super) expected: Expected,
    pub(super) user: Option<UserId>,
}

/// What an operation declares to the runners.
pub(super) struct Op<'a> {
    /// Which operation, for the refusal counts (`None`: not counted).
    pub(super) endpoint: Option<RuntimeEndpoint>,
    /// The request's `app_version`, for the refusal counts.
    pub(super) app_version: Option<&'a str>,
    pub(super) request_id: &'a str,
    pub(super) ip_address: Option<&'a str>,
    pub(super) expected: Expected,
    /// The license user acting, for a user's credential.
    pub(super) user: Option<UserId>,
    pub(super) query: AggregateQuery,
    pub(super) idempotency: Option<Idempotency>,
}

pub(super) fn binding_hints(
    req: &RuntimeBindingRequest,
) -> (Option<String>, Option<semver::Version>) {
    let key = Binding::from_request(req).ok().map(|b| b.key().to_owned());
    let version = req
        .app_version
        .as_deref()
        .and_then(|v| version::parse_app_version(v).ok());
    (key, version)
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Activates the request's device (idempotent).
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidCredentials`] for an unknown key, [`EngineError::Denied`] with
    /// every failing rule, [`EngineError::IdempotencyConflict`], storage failures.
    pub async fn activate(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        let device_id = self.with_rng(|rng| DeviceId::generate(rng));
        let op = self.op("activate", call, req, Some(req), true).await?;
        self.write(op, |agg, now| {
            activation::activate(agg, req, device_id, now)
        })
        .await
    }

    /// Validates an activated device. Read-only: decided on a snapshot without any lock; the
    /// validation timestamps and `license.validated` event are written behind, coalesced per
    /// device (see [`Engine::flush_touches`]).
    ///
    /// # Errors
    ///
    /// As [`Self::activate`]; a device not activated is `Denied` with `DEVICE_NOT_ACTIVATED`.
    pub async fn validate(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        let op = self.op("validate", call, req, Some(req), false).await?;
        let read = self.read(op, |agg, now| activation::validate(agg, req, now));
        self.signed_read(call, read.await?)
    }

    /// Reports an activated device's entitlement without changing anything.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`].
    pub async fn check(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        self.check_feature(call, req, None).await
    }

    /// [`Self::check`] reporting only the feature `feature` (`feature_code` on the request):
    /// `FEATURE_NOT_ASSIGNED` when the license does not have it.
    ///
    /// # Errors
    ///
    /// As [`Self::activate`].
    pub async fn check_feature(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
        feature: Option<&str>,
    ) -> Result<ResponseBody, EngineError> {
        let op = self.op("check", call, req, Some(req), false).await?;
        let read = self.read(op, |agg, now| activation::check(agg, req, feature, now));
        self.signed_read(call, read.await?)
    }

    /// Consumes metered usage (idempotent by key, and by `event_id`).
    ///
    /// # Errors
    ///
    /// As [`Self::activate`].
    pub async fn consume(
        &self,
        call: RuntimeCall<'_>,
        req: &ConsumeRequest,
    ) -> Result<ResponseBody, EngineError> {
        // Checked before the request is written canonically (for the idempotency hash),
        // which refuses such integers: a client error, not an internal one.
        if let Some(reason) = req.amount.and_then(metering::amount_out_of_range) {
            return Err(Denial::one(reason).into());
        }
        let binding = req.binding();
        let mut op = self.op("consume", call, req, Some(&binding), true).await?;
        op.query.consumption_event_id = Some(req.event_id.clone());
        self.write(op, |agg, now| metering::consume(agg, req, now))
            .await
    }

    /// Releases the request's activation seat (idempotent).
    ///
    /// # Errors
    ///
    /// As [`Self::activate`].
    pub async fn deactivate(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        let op = self.op("deactivate", call, req, Some(req), true).await?;
        self.write(op, |agg, now| activation::deactivate(agg, req, now))
            .await
    }

    /// Records that an activated device is alive (an extension; see
    /// [`device_heartbeat`]): written at once, under the
    /// license's lock. Not idempotent, like the floating heartbeat: a repeat only moves the
    /// time forward.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`].
    pub async fn device_heartbeat(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        let op = self
            .op("device_heartbeat", call, req, Some(req), false)
            .await?;
        self.write(op, |agg, now| device_heartbeat::heartbeat(agg, req, now))
            .await
    }

    /// Checks out a floating lease of the license's pool (idempotent).
    ///
    /// # Errors
    ///
    /// As [`Self::activate`].
    pub async fn checkout(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        self.checkout_feature(call, req, None).await
    }

    /// [`Self::checkout`] of the license's pool, or with `feature` (`feature_code` on the
    /// request, an extension) of that feature's own pool.
    ///
    /// # Errors
    ///
    /// As [`Self::activate`]; `FEATURE_NOT_ASSIGNED`, `FLOATING_NOT_ENABLED` when the feature
    /// has no pool.
    pub async fn checkout_feature(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
        feature: Option<&str>,
    ) -> Result<ResponseBody, EngineError> {
        /// The request as the client sent it, for the idempotency hash (without a feature,
        /// the same bytes as the binding alone).
        #[derive(Serialize)]
        struct Sent<'a> {
            #[serde(flatten)]
            binding: &'a RuntimeBindingRequest,
            #[serde(skip_serializing_if = "Option::is_none")]
            feature_code: Option<&'a str>,
        }
        let new = self.new_lease();
        let sent = Sent {
            binding: req,
            feature_code: feature,
        };
        let op = self.op("checkout", call, &sent, Some(req), true).await?;
        self.write(op, |agg, now| {
            floating::checkout(agg, req, feature, new, now)
        })
        .await
    }

    /// Borrows a floating seat for offline use (an extension; see
    /// [`floating::borrow`]), idempotently: the answer is the
    /// lease plus an offline envelope sealed to the license key, valid until the borrow ends.
    ///
    /// # Errors
    ///
    /// As [`Self::checkout_feature`]; `BORROW_NOT_ALLOWED`, `INVALID_FIELD` for `hours`.
    pub async fn borrow(
        &self,
        call: RuntimeCall<'_>,
        req: &FloatingBorrowRequest,
    ) -> Result<ResponseBody, EngineError> {
        let binding = req.binding();
        let new = self.new_lease();
        let op = self.op("borrow", call, req, Some(&binding), true).await?;
        let feature = req.feature_code.as_deref();
        self.write_with(
            op,
            |agg, now| floating::borrow(agg, &binding, feature, req.hours, new, now),
            |borrowed, agg| {
                let offline = self
                    .with_signer(Some(&agg.license.product_id), |keys| {
                        self.with_rng(|rng| {
                            seal(keys, call.credential.secret(), &borrowed.offline, rng)
                        })
                    })
                    .map_err(EngineError::internal)?;
                Ok(FloatingBorrowData {
                    lease: borrowed.lease,
                    offline,
                })
            },
        )
        .await
    }

    /// Returns a borrowed (or any) floating lease early, idempotently: a checkin under its own
    /// name (`POST /api/v1/license/floating/return`, an extension).
    ///
    /// # Errors
    ///
    /// As [`Self::checkin`].
    pub async fn return_lease(
        &self,
        call: RuntimeCall<'_>,
        req: &FloatingLeaseRequest,
    ) -> Result<ResponseBody, EngineError> {
        self.end_lease("return", call, req).await
    }

    /// Extends a floating lease.
    ///
    /// # Errors
    ///
    /// As [`Self::activate`]; an unknown token is `Denied` with `LEASE_NOT_FOUND`.
    pub async fn heartbeat(
        &self,
        call: RuntimeCall<'_>,
        req: &FloatingLeaseRequest,
    ) -> Result<ResponseBody, EngineError> {
        let hash = lease_hash(req);
        let op = self.op("heartbeat", call, req, None, false).await?;
        let feature = req.feature_code.as_deref();
        self.write(op, |agg, now| {
            floating::heartbeat(agg, &hash?, feature, now)
        })
        .await
    }

    /// Checks a floating lease in (idempotent).
    ///
    /// # Errors
    ///
    /// As [`Self::heartbeat`].
    pub async fn checkin(
        &self,
        call: RuntimeCall<'_>,
        req: &FloatingLeaseRequest,
    ) -> Result<ResponseBody, EngineError> {
        self.end_lease("checkin", call, req).await
    }

    /// Checkin and return: the lease ends, under the operation's own name (so their
    /// idempotency records stay apart).
    async fn end_lease(
        &self,
        name: &'static str,
        call: RuntimeCall<'_>,
        req: &FloatingLeaseRequest,
    ) -> Result<ResponseBody, EngineError> {
        // A malformed token is refused inside the transaction, after a repeated idempotency
        // key was replayed or refused (409), like every other refusal.
        let hash = lease_hash(req);
        let op = self.op(name, call, req, None, true).await?;
        let feature = req.feature_code.as_deref();
        self.write(op, |agg, now| floating::checkin(agg, &hash?, feature, now))
            .await
    }

    /// Issues an encrypted offline license for an activated device (DESIGN 4.2). The body is
    /// `{"data":{kid,salt,nonce,ciphertext},"meta":…}`.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`]; `OFFLINE_NOT_ALLOWED` when the policy forbids it.
    pub async fn offline(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<ResponseBody, EngineError> {
        let op = self.op("offline", call, req, Some(req), false).await?;
        let read = self
            .read(op, |agg, now| offline::offline(agg, req, now))
            .await?;
        // Sealed after the store is done, like every read is signed.
        let (outcome, decided) = read;
        let envelope = self
            .with_signer(Some(&decided.product), |keys| {
                self.with_rng(|rng| seal(keys, call.credential.secret(), &outcome, rng))
            })
            .map_err(EngineError::internal)?;
        let data = serde_json::to_vec(&envelope).map_err(EngineError::internal)?;
        let body = body_of(&[("data", &data)], call.request_id, decided.now)?;
        Ok(ResponseBody::fresh(body))
    }

    /// The ids and token a new lease gets.
    fn new_lease(&self) -> floating::NewLease {
        self.with_rng(|rng| {
            let token = LeaseToken::generate(rng);
            floating::NewLease {
                lease_id: LeaseId::generate(rng),
                device_id: DeviceId::generate(rng),
                token_hash: token.hash(),
                token: token.expose_secret().to_owned(),
            }
        })
    }

    /// Names the license by the credential (the key's hash, or the session's license), loads
    /// what the binding needs, and keys idempotent operations by the credential (known before
    /// the license is loaded; a management key is scoped by the license id, so they never
    /// collide).
    pub(super) async fn op<'a, Q: Serialize>(
        &self,
        name: &'static str,
        call: RuntimeCall<'a>,
        req: &Q,
        binding: Option<&'a RuntimeBindingRequest>,
        idempotent: bool,
    ) -> Result<Op<'a>, EngineError> {
        let endpoint = endpoint_of(name);
        let reported = binding.and_then(|b| b.app_version.as_deref());
        self.prepare(name, endpoint, reported, call, req, binding, idempotent)
            .await
            .inspect_err(|e| self.note_refusal(endpoint, e, RefusalContext::unknown(reported)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn prepare<'a, Q: Serialize>(
        &self,
        name: &'static str,
        endpoint: Option<RuntimeEndpoint>,
        reported: Option<&'a str>,
        call: RuntimeCall<'a>,
        req: &Q,
        binding: Option<&'a RuntimeBindingRequest>,
        idempotent: bool,
    ) -> Result<Op<'a>, EngineError> {
        let (binding_key, app_version) = binding.map(binding_hints).unwrap_or_default();
        let Named {
            selector,
            scope,
            expected,
            user,
        } = self
            .credential_selector(call.credential, binding_key.as_deref(), call.ip_address)
            .await?;
        let idempotency = match idempotent {
            true => Idempotency::new(scope, call.idempotency_key, name, req)?,
            false => None,
        };
        let query = AggregateQuery {
            selector: Some(selector),
            binding_key,
            app_version,
            ..AggregateQuery::default()
        };
        Ok(Op {
            endpoint,
            app_version: reported,
            request_id: call.request_id,
            ip_address: call.ip_address,
            expected,
            user,
            query,
            idempotency,
        })
    }

    /// The license a credential names, the idempotency scope of its calls, what a snapshot
    /// must match, and the license user acting. A session must belong to the request's
    /// binding (`binding_key`).
    pub(super) async fn credential_selector(
        &self,
        credential: Credential<'_>,
        binding_key: Option<&str>,
        ip_address: Option<&str>,
    ) -> Result<Named, EngineError> {
        let (user, license) = match credential {
            Credential::LicenseKey(key) => {
                let hash = LicenseKey::parse(key)
                    .map_err(|_| EngineError::InvalidCredentials)?
                    .hash();
                return Ok(Named {
                    selector: LicenseSelector::KeyHash(hash),
                    scope: format!("license_key:{hash}"),
                    expected: Expected::KeyHash(hash),
                    user: None,
                });
            }
            Credential::Session(token) => {
                let reg = self.session_registration(token, binding_key).await?;
                return Ok(Named {
                    selector: LicenseSelector::Id(reg.license_id),
                    scope: format!("session:{}", reg.id),
                    expected: Expected::License,
                    user: None,
                });
            }
            Credential::User {
                email,
                password,
                license,
            } => (
                self.license_user_by_password(email, password, ip_address)
                    .await?,
                license,
            ),
            Credential::UserSession { token, license } => {
                (self.license_user_by_session(token).await?, license)
            }
        };
        let license = self.assigned_license(&user.id, license).await?;
        Ok(Named {
            scope: format!("user:{}:{license}", user.id),
            selector: LicenseSelector::Id(license),
            expected: Expected::License,
            user: Some(user.id),
        })
    }

    /// The license a user acts on: the one named (which must be assigned to it), else its
    /// only one.
    async fn assigned_license(
        &self,
        user: &UserId,
        named: Option<&str>,
    ) -> Result<LicenseId, EngineError> {
        let refused = |code, message: &'static str| EngineError::denied(code, None, message);
        let not_assigned = || {
            refused(
                DenialCode::LicenseNotAssigned,
                "this license is not assigned to the user",
            )
        };
        let query = LicenseQuery {
            user_id: Some(user.clone()),
            limit: Limit::new(Some(2)),
            ..LicenseQuery::default()
        };
        if let Some(named) = named {
            let id: LicenseId = named.parse().map_err(|_| not_assigned())?;
            return match self.store.get_license(&id).await {
                Ok(l) if license_users::assignment(&l, user).is_some() => Ok(id),
                Ok(_) | Err(StoreError::NotFound { .. }) => Err(not_assigned()),
                Err(e) => Err(e.into()),
            };
        }
        let mut found = self.store.list_licenses(&query).await?;
        match found.len() {
            0 => Err(not_assigned()),
            1 => Ok(found.remove(0).id),
            _ => Err(refused(
                DenialCode::LicenseChoiceRequired,
                "the user has several licenses: name one with the Licentia-License header",
            )),
        }
    }

    /// A write: decided and signed under the license's lock, stored with its idempotency
    /// record (the stored body must be the one sent). A refusal is counted.
    async fn write<T: Serialize>(
        &self,
        op: Op<'_>,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<T>, Denial> + Send,
    ) -> Result<ResponseBody, EngineError> {
        self.write_with(op, decide, |outcome, _| Ok(outcome)).await
    }

    /// [`Self::write`] whose outcome `present` turns into the signed data first (still under
    /// the lock, so a replay gets exactly what was sent), with the aggregate it was decided
    /// on.
    pub(super) async fn write_with<T, U: Serialize>(
        &self,
        op: Op<'_>,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<T>, Denial> + Send,
        present: impl FnOnce(T, &LicenseAggregate) -> Result<U, EngineError> + Send,
    ) -> Result<ResponseBody, EngineError> {
        let Op {
            endpoint,
            app_version,
            request_id,
            ip_address,
            idempotency,
            query,
            user,
            ..
        } = op;
        let caller = Caller::License { ip_address };
        let binding_key = query.binding_key.clone();
        // What a refusal concerns, noted only when the rule refuses (nothing on success).
        let seen = std::sync::Mutex::new(None);
        let answer = self
            .transact(query, idempotency, caller, |agg, now| {
                let product = &agg.license.product_id;
                let user = user.as_ref();
                let plan = license_users::admit(agg, user, binding_key.as_deref())
                    .and_then(|()| decide(agg, now))
                    .and_then(|plan| license_users::settle(agg, user, plan))
                    .map_err(|d| {
                        *seen
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(RefusalContext::of_license(&agg.license, app_version));
                        d.concerning(product)
                    })?;
                let mut plan = plan.map(Some);
                let data = present(
                    plan.outcome
                        .take()
                        .unwrap_or_else(|| unreachable!("the outcome was just put in")),
                    agg,
                )?;
                let body = self.signed_body(&data, request_id, now, product)?;
                Ok(plan.map(|_| ResponseBody::fresh(body)))
            })
            .await;
        match answer {
            Ok(answer) => Ok(answer.into_response()),
            Err(e) => {
                let context = seen
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .unwrap_or_else(|| RefusalContext::unknown(app_version));
                self.note_refusal(endpoint, &e, context);
                Err(e)
            }
        }
    }

    /// A read: decided on a snapshot without any lock; its touch is noted for writing behind.
    /// Returns the outcome and what it was [`Decided`] at. A refusal is counted.
    pub(super) async fn read<T>(
        &self,
        op: Op<'_>,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Read<T>, Denial>,
    ) -> Result<(T, Decided), EngineError> {
        debug_assert!(op.idempotency.is_none(), "reads take no idempotency key");
        let (endpoint, app_version) = (op.endpoint, op.app_version);
        let mut about = None;
        let result = self.decide_read(op, decide, &mut about).await;
        if let Err(e) = &result {
            let context = about.unwrap_or_else(|| RefusalContext::unknown(app_version));
            self.note_refusal(endpoint, e, context);
        }
        result
    }

    async fn decide_read<T>(
        &self,
        op: Op<'_>,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Read<T>, Denial>,
        about: &mut Option<RefusalContext>,
    ) -> Result<(T, Decided), EngineError> {
        let now = self.now();
        let agg = match self.store.read_license(&op.query).await {
            Ok(agg) => agg,
            Err(StoreError::NotFound { entity: "license" }) => {
                return Err(EngineError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        // A snapshot found by key hash whose key was replaced meanwhile: a stale credential.
        if let Expected::KeyHash(hash) = &op.expected
            && agg.license.key_hash != *hash
        {
            return Err(EngineError::InvalidCredentials);
        }
        // What a refusal concerns, built only when the rule refuses (nothing on success).
        let binding_key = op.query.binding_key.as_deref();
        let read = license_users::admit(&agg, op.user.as_ref(), binding_key)
            .and_then(|()| decide(&agg, now))
            .map_err(|d| {
                *about = Some(RefusalContext::of_license(&agg.license, op.app_version));
                d.concerning(&agg.license.product_id)
            })?;
        if let Some(mut touch) = read.touch {
            touch.event = touch.event.about(&agg.license);
            let actor = Actor::license(&agg.license.id, op.ip_address.map(str::to_owned));
            self.touches.note(TouchRecord::new(touch, &actor));
        }
        let decided = Decided {
            now,
            product: agg.license.product_id,
        };
        Ok((read.outcome, decided))
    }

    /// A read's outcome signed (outside any lock) into a response body.
    pub(super) fn signed_read<T: Serialize>(
        &self,
        call: RuntimeCall<'_>,
        (outcome, decided): (T, Decided),
    ) -> Result<ResponseBody, EngineError> {
        let body = self.signed_body(&outcome, call.request_id, decided.now, &decided.product)?;
        Ok(ResponseBody::fresh(body))
    }

    /// `{"data":…,"signature":…,"meta":…}` with `data` signed by the key that signs for
    /// `product` at `now`.
    fn signed_body<T: Serialize>(
        &self,
        outcome: &T,
        request_id: &str,
        now: DateTime<Utc>,
        product: &ProductId,
    ) -> Result<Vec<u8>, EngineError> {
        let signed = self
            .with_signer(Some(product), |keys| keys.sign_at(now, outcome))
            .map_err(EngineError::internal)?;
        let signature = serde_json::to_vec(signed.signature()).map_err(EngineError::internal)?;
        body_of(
            &[("data", signed.data_bytes()), ("signature", &signature)],
            request_id,
            now,
        )
    }
}

/// The refusal counts' name of the operation `name`.
fn endpoint_of(name: &str) -> Option<RuntimeEndpoint> {
    Some(match name {
        "activate" => RuntimeEndpoint::Activate,
        "validate" => RuntimeEndpoint::Validate,
        "check" => RuntimeEndpoint::Check,
        "consume" => RuntimeEndpoint::Consume,
        "offline" => RuntimeEndpoint::Offline,
        "deactivate" => RuntimeEndpoint::Deactivate,
        "checkout" => RuntimeEndpoint::FloatingCheckout,
        "checkin" => RuntimeEndpoint::FloatingCheckin,
        "heartbeat" => RuntimeEndpoint::FloatingHeartbeat,
        // Extensions outside the SDK's nine (borrow, return, device heartbeat): not counted.
        _ => return None,
    })
}

fn lease_hash(req: &FloatingLeaseRequest) -> Result<crate::model::SecretHash, Denial> {
    LeaseToken::parse(&req.lease_token)
        .map(|t| t.hash())
        .map_err(|_| {
            Denial::one(DenialReason::field(
                DenialCode::LeaseNotFound,
                "lease_token",
                "no such lease",
            ))
        })
}
