//! The nine runtime operations: a license key in, a signed decision out.

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Engine, EngineError};
use crate::crypto::{LeaseToken, LicenseKey, canonical_json, seal};
use crate::model::{
    AuditActorType, ConsumeRequest, DeviceId, FloatingLeaseRequest, LeaseId, RuntimeBindingRequest,
    Timestamp,
};
use crate::rules::{
    Binding, Denial, DenialCode, DenialReason, LicenseAggregate, Plan, activation, floating,
    metering, offline, version,
};
use crate::store::{
    AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, LicenseSelector, Loaded, NewEvent,
    Store, StoreError,
};

use super::{Actor, Clock};

/// The credentials and bookkeeping of one runtime request.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeCall<'a> {
    /// The license key from `Authorization: License <key>`.
    pub license_key: &'a str,
    /// The `Idempotency-Key`, where the operation takes one.
    pub idempotency_key: Option<&'a str>,
    /// Echoed in the response's `meta.request_id`.
    pub request_id: &'a str,
    /// The caller's address, recorded in events.
    pub ip_address: Option<&'a str>,
}

/// A complete response body: `{"data":…,"signature":…,"meta":…}` for signed responses,
/// `{"data":…,"meta":…}` for the offline envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResponse {
    /// The exact bytes to send.
    pub body: Vec<u8>,
    /// Whether this is a stored response replayed for a repeated idempotency key.
    pub replayed: bool,
}

#[derive(Serialize)]
struct Meta<'a> {
    request_id: &'a str,
    timestamp: Timestamp,
}

/// What an operation declares to the shared runner.
struct Op<'a> {
    name: &'static str,
    call: RuntimeCall<'a>,
    /// Canonical request bytes (for the idempotency hash).
    request: Vec<u8>,
    binding_key: Option<String>,
    app_version: Option<semver::Version>,
    event_id: Option<String>,
    idempotent: bool,
}

pub(crate) fn request_hash(op: &str, request: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(op.as_bytes());
    h.update(b"\n");
    h.update(request);
    h.finalize().into()
}

fn binding_hints(req: &RuntimeBindingRequest) -> (Option<String>, Option<semver::Version>) {
    let key = Binding::from_request(req).ok().map(|b| b.key().to_owned());
    let version = req
        .app_version
        .as_deref()
        .and_then(|v| version::parse_app_version(v).ok());
    (key, version)
}

fn body_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|(_, v)| v.len() + 12).sum());
    out.push(b'{');
    for (i, (k, v)) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
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
    ) -> Result<SignedResponse, EngineError> {
        let device_id = self.with_rng(|rng| DeviceId::generate(rng));
        let op = self.op("activate", call, req, true)?;
        self.run_signed(op, |agg, now| {
            activation::activate(agg, req, device_id, now)
        })
        .await
    }

    /// Validates an activated device and refreshes its validation timestamps.
    ///
    /// # Errors
    ///
    /// As [`Self::activate`]; a device not activated is `Denied` with `DEVICE_NOT_ACTIVATED`.
    pub async fn validate(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<SignedResponse, EngineError> {
        let op = self.op("validate", call, req, false)?;
        self.run_signed(op, |agg, now| activation::validate(agg, req, now))
            .await
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
    ) -> Result<SignedResponse, EngineError> {
        let op = self.op("check", call, req, false)?;
        self.run_signed(op, |agg, now| activation::check(agg, req, now))
            .await
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
    ) -> Result<SignedResponse, EngineError> {
        // Checked before the request is written canonically (for the idempotency hash),
        // which refuses such integers: a client error, not an internal one.
        if let Some(reason) = req.amount.and_then(metering::amount_out_of_range) {
            return Err(Denial::one(reason).into());
        }
        let mut op = self.op_plain("consume", call, req, true)?;
        let (key, version) = binding_hints(&req.binding());
        op.binding_key = key;
        op.app_version = version;
        op.event_id = Some(req.event_id.clone());
        self.run_signed(op, |agg, now| metering::consume(agg, req, now))
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
    ) -> Result<SignedResponse, EngineError> {
        let op = self.op("deactivate", call, req, true)?;
        self.run_signed(op, |agg, now| activation::deactivate(agg, req, now))
            .await
    }

    /// Checks out a floating lease (idempotent).
    ///
    /// # Errors
    ///
    /// As [`Self::activate`].
    pub async fn checkout(
        &self,
        call: RuntimeCall<'_>,
        req: &RuntimeBindingRequest,
    ) -> Result<SignedResponse, EngineError> {
        let new = self.with_rng(|rng| {
            let token = LeaseToken::generate(rng);
            floating::NewLease {
                lease_id: LeaseId::generate(rng),
                device_id: DeviceId::generate(rng),
                token_hash: token.hash(),
                token: token.expose_secret().to_owned(),
            }
        });
        let op = self.op("checkout", call, req, true)?;
        self.run_signed(op, |agg, now| floating::checkout(agg, req, new, now))
            .await
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
    ) -> Result<SignedResponse, EngineError> {
        let hash = lease_hash(req);
        let op = self.op_plain("heartbeat", call, req, false)?;
        self.run_signed(op, |agg, now| floating::heartbeat(agg, &hash?, now))
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
    ) -> Result<SignedResponse, EngineError> {
        // A malformed token is refused inside the transaction, after a repeated idempotency
        // key was replayed or refused (409), like every other refusal.
        let hash = lease_hash(req);
        let op = self.op_plain("checkin", call, req, true)?;
        self.run_signed(op, |agg, now| floating::checkin(agg, &hash?, now))
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
    ) -> Result<SignedResponse, EngineError> {
        let op = self.op("offline", call, req, false)?;
        let license_key = call.license_key;
        self.run(op, |agg, now| {
            let plan = offline::offline(agg, req, now)?;
            let envelope = self
                .with_keys(|keys| self.with_rng(|rng| seal(keys, license_key, &plan.outcome, rng)))
                .map_err(|e| EngineError::Internal(Box::new(e)))?;
            let data =
                serde_json::to_vec(&envelope).map_err(|e| EngineError::Internal(Box::new(e)))?;
            Ok(plan.map(|_| vec![("data", data)]))
        })
        .await
    }

    fn op<'a>(
        &self,
        name: &'static str,
        call: RuntimeCall<'a>,
        req: &RuntimeBindingRequest,
        idempotent: bool,
    ) -> Result<Op<'a>, EngineError> {
        let mut op = self.op_plain(name, call, req, idempotent)?;
        let (key, version) = binding_hints(req);
        op.binding_key = key;
        op.app_version = version;
        Ok(op)
    }

    fn op_plain<'a, T: Serialize>(
        &self,
        name: &'static str,
        call: RuntimeCall<'a>,
        req: &T,
        idempotent: bool,
    ) -> Result<Op<'a>, EngineError> {
        let request = canonical_json(req).map_err(|e| EngineError::Internal(Box::new(e)))?;
        Ok(Op {
            name,
            call,
            request,
            binding_key: None,
            app_version: None,
            event_id: None,
            idempotent,
        })
    }

    /// Runs a rule whose outcome is signed.
    async fn run_signed<T: Serialize>(
        &self,
        op: Op<'_>,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<T>, Denial> + Send,
    ) -> Result<SignedResponse, EngineError> {
        self.run(op, |agg, now| {
            let plan = decide(agg, now)?;
            let signed = self
                .with_keys(|keys| keys.sign(&plan.outcome))
                .map_err(|e| EngineError::Internal(Box::new(e)))?;
            let signature = serde_json::to_vec(signed.signature())
                .map_err(|e| EngineError::Internal(Box::new(e)))?;
            let data = signed.data_bytes().to_vec();
            Ok(plan.map(|_| vec![("data", data), ("signature", signature)]))
        })
        .await
    }

    /// The shared runner: authenticate by key hash, replay or refuse a repeated idempotency key,
    /// decide under the license lock, and store effect, events and response together.
    async fn run(
        &self,
        op: Op<'_>,
        decide: impl FnOnce(
            &LicenseAggregate,
            DateTime<Utc>,
        ) -> Result<Plan<Vec<(&'static str, Vec<u8>)>>, EngineError>
        + Send,
    ) -> Result<SignedResponse, EngineError> {
        let key =
            LicenseKey::parse(op.call.license_key).map_err(|_| EngineError::InvalidCredentials)?;
        let now = self.clock.now();
        let idempotency = match (op.idempotent, op.call.idempotency_key) {
            (true, Some(k)) => Some((k.to_owned(), request_hash(op.name, &op.request))),
            _ => None,
        };
        // Runtime keys are scoped by the license key (known before the license is loaded);
        // management keys by the license id, so the two credentials never collide.
        let scope = format!("license_key:{}", key.hash());
        let idempotency_key = idempotency.as_ref().map(|(k, _)| IdempotencyKey {
            scope: scope.clone(),
            key: k.clone(),
        });
        let query = AggregateQuery {
            selector: Some(LicenseSelector::KeyHash(key.hash())),
            binding_key: op.binding_key,
            app_version: op.app_version,
            consumption_event_id: op.event_id,
            idempotency: idempotency_key,
        };
        let request_id = op.call.request_id;
        let ip = op.call.ip_address.map(str::to_owned);
        let result = self
            .store
            .transact_license(query, move |loaded: Loaded<'_>| {
                let agg = loaded.aggregate;
                if let (Some(stored), Some((_, hash))) = (loaded.idempotency, &idempotency) {
                    return Decision::nothing(if &stored.request_hash == hash {
                        Ok(SignedResponse {
                            body: stored.body.clone(),
                            replayed: true,
                        })
                    } else {
                        Err(EngineError::IdempotencyConflict)
                    });
                }
                let plan = match decide(agg, now) {
                    Ok(plan) => plan,
                    Err(e) => return Decision::nothing(Err(e)),
                };
                let meta = match serde_json::to_vec(&Meta {
                    request_id,
                    timestamp: Timestamp::new(now),
                }) {
                    Ok(m) => m,
                    Err(e) => return Decision::nothing(Err(EngineError::Internal(Box::new(e)))),
                };
                let mut parts: Vec<(&str, &[u8])> = plan
                    .outcome
                    .iter()
                    .map(|(k, v)| (*k, v.as_slice()))
                    .collect();
                parts.push(("meta", &meta));
                let body = body_of(&parts);
                let actor = Actor {
                    actor_type: AuditActorType::License,
                    actor_id: agg.license.id.to_string(),
                    ip_address: ip,
                };
                let events: Vec<NewEvent> = actor.events(plan.events, now);
                let record = idempotency.map(|(k, hash)| IdempotencyRecord {
                    key: IdempotencyKey { scope, key: k },
                    request_hash: hash,
                    status: 200,
                    body: body.clone(),
                    created_at: now,
                });
                Decision {
                    mutations: plan.mutations,
                    events,
                    idempotency: record,
                    outcome: Ok(SignedResponse {
                        body,
                        replayed: false,
                    }),
                }
            })
            .await;
        match result {
            Ok(outcome) => outcome,
            Err(StoreError::NotFound { entity: "license" }) => Err(EngineError::InvalidCredentials),
            // Two requests with one key raced: the loser sees the winner's record on retry.
            Err(StoreError::AlreadyExists {
                entity: "idempotency_record",
                ..
            }) => Err(EngineError::IdempotencyConflict),
            Err(e) => Err(e.into()),
        }
    }
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
