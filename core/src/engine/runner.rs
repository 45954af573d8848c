//! The one transaction runner and the response bodies it builds.
//!
//! Every write on a license — runtime (activate, deactivate, consume, checkout, heartbeat,
//! checkin) and management (renew, transfer, suspend, reinstate, revoke, device reset and
//! blacklist, feature assignment, usage reset) — goes through [`Engine::transact`]: it replays
//! or refuses a repeated idempotency key, lets the rule decide under the license's lock, and
//! hands the store the effect, the events and the idempotency record together. Reads
//! (validate, check, offline) go through [`Engine::read`](super::Engine) in `runtime.rs`, which
//! takes no lock.

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Clock, Engine, EngineError};
use crate::crypto::canonical_json;
use crate::model::{LicenseId, Timestamp};
use crate::rules::{LicenseAggregate, Plan};
use crate::store::{
    Actor, AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, Store, StoreError,
};

/// A complete response body and whether it is a replay: `{"data":…,"signature":…,"meta":…}`
/// for signed runtime answers, `{"data":…,"meta":…}` for the offline envelope and for
/// idempotent management answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBody {
    /// The exact bytes to send.
    pub body: Vec<u8>,
    /// Whether this is a stored response replayed for a repeated idempotency key.
    pub replayed: bool,
}

impl ResponseBody {
    pub(crate) fn fresh(body: Vec<u8>) -> Self {
        Self {
            body,
            replayed: false,
        }
    }

    /// The stored answer of `stored` for `asked`: replayed when the request is the one stored,
    /// else `IdempotencyConflict`.
    pub(crate) fn replay(
        stored: IdempotencyRecord,
        asked: &Idempotency,
    ) -> Result<Self, EngineError> {
        if stored.request_hash == asked.request_hash {
            Ok(Self {
                body: stored.body,
                replayed: true,
            })
        } else {
            Err(EngineError::IdempotencyConflict)
        }
    }
}

/// `meta` of every response body.
#[derive(Serialize)]
struct Meta<'a> {
    request_id: &'a str,
    timestamp: Timestamp,
}

/// Builds `{"<name>":<json>,…,"meta":{request_id,timestamp}}` from parts already written as
/// JSON (signed `data` must be sent as the exact bytes that were signed).
pub(crate) fn body_of(
    parts: &[(&str, &[u8])],
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, EngineError> {
    let meta = serde_json::to_vec(&Meta {
        request_id,
        timestamp: Timestamp::new(now),
    })
    .map_err(EngineError::internal)?;
    let mut out = Vec::with_capacity(parts.iter().map(|(_, v)| v.len() + 12).sum::<usize>() + 80);
    out.push(b'{');
    for (k, v) in parts.iter().chain([&("meta", &meta[..])]) {
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v);
    }
    out.push(b'}');
    Ok(out)
}

/// `{"data":<value>,"meta":…}` (unsigned).
pub(crate) fn plain_body<T: Serialize>(
    data: &T,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, EngineError> {
    let data = serde_json::to_vec(data).map_err(EngineError::internal)?;
    body_of(&[("data", &data)], request_id, now)
}

/// An idempotency key with the hash of the request it came with.
#[derive(Debug, Clone)]
pub(crate) struct Idempotency {
    pub(crate) key: IdempotencyKey,
    pub(crate) request_hash: [u8; 32],
}

impl Idempotency {
    /// The key `key` (when the client sent one) within `scope`, for operation `op` with
    /// `request` (hashed in its canonical form, so a replay is told from a reuse).
    pub(crate) fn new<Q: Serialize>(
        scope: String,
        key: Option<&str>,
        op: &str,
        request: &Q,
    ) -> Result<Option<Self>, EngineError> {
        let Some(key) = key else { return Ok(None) };
        let request = canonical_json(request).map_err(EngineError::internal)?;
        let mut h = Sha256::new();
        h.update(op.as_bytes());
        h.update(b"\n");
        h.update(&request);
        Ok(Some(Self {
            key: IdempotencyKey {
                scope,
                key: key.to_owned(),
            },
            request_hash: h.finalize().into(),
        }))
    }

    /// Management scope: keys are per license id, so they never collide with a runtime key
    /// (scoped by the license key's hash).
    pub(crate) fn management_scope(id: &LicenseId) -> String {
        format!("license:{id}")
    }
}

/// Who a transaction's events name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Caller<'a> {
    /// A management actor.
    Actor(&'a Actor),
    /// The license itself, through its key (runtime); known once the license is loaded.
    License { ip_address: Option<&'a str> },
}

impl Caller<'_> {
    fn actor(self, agg: &LicenseAggregate) -> Actor {
        match self {
            Self::Actor(a) => a.clone(),
            Self::License { ip_address } => {
                Actor::license(&agg.license.id, ip_address.map(str::to_owned))
            }
        }
    }
}

/// What a transaction returns: a fresh outcome, or the body stored for a repeated key.
pub(crate) enum Answer<T> {
    Fresh(T),
    Replayed(Vec<u8>),
}

impl Answer<ResponseBody> {
    pub(crate) fn into_response(self) -> ResponseBody {
        match self {
            Self::Fresh(r) => r,
            Self::Replayed(body) => ResponseBody {
                body,
                replayed: true,
            },
        }
    }
}

/// An outcome that is stored as the idempotency record's body, when it has one.
pub(crate) trait Recorded {
    fn recorded_body(&self) -> Option<&[u8]>;
}

impl Recorded for ResponseBody {
    fn recorded_body(&self) -> Option<&[u8]> {
        Some(&self.body)
    }
}

/// A management outcome that is returned as a value, never stored for replay.
pub(crate) struct Unrecorded<T>(pub(crate) T);

impl<T> Recorded for Unrecorded<T> {
    fn recorded_body(&self) -> Option<&[u8]> {
        None
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// The shared runner: replays or refuses a repeated idempotency key, decides under the
    /// license's lock, and stores effect, events and response together.
    ///
    /// A license a runtime caller names that does not exist is `InvalidCredentials` (it
    /// learns nothing more); for a management caller it is `NotFound`.
    pub(crate) async fn transact<T: Recorded + Send>(
        &self,
        mut query: AggregateQuery,
        idempotency: Option<Idempotency>,
        caller: Caller<'_>,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<T>, EngineError> + Send,
    ) -> Result<Answer<T>, EngineError> {
        // A runtime caller learns nothing more about a license its credential does not name.
        let by_credential = matches!(caller, Caller::License { .. });
        query.idempotency = idempotency.as_ref().map(|i| i.key.clone());
        let now = self.now();
        let result = self
            .store
            .transact_license(query, move |loaded| {
                if let (Some(stored), Some(idem)) = (loaded.idempotency, &idempotency) {
                    return Decision::nothing(if stored.request_hash == idem.request_hash {
                        Ok(Answer::Replayed(stored.body.clone()))
                    } else {
                        Err(EngineError::IdempotencyConflict)
                    });
                }
                let agg = loaded.aggregate;
                let mut plan = match decide(agg, now) {
                    Ok(plan) => plan,
                    Err(e) => return Decision::nothing(Err(e)),
                };
                plan.events = plan
                    .events
                    .into_iter()
                    .map(|e| e.about(&agg.license))
                    .collect();
                let record = idempotency.and_then(|i| {
                    let body = plan.outcome.recorded_body()?.to_vec();
                    Some(IdempotencyRecord {
                        key: i.key,
                        request_hash: i.request_hash,
                        status: 200,
                        body,
                        created_at: now,
                    })
                });
                let mut decision = Decision::planned(plan, &caller.actor(agg), now);
                decision.idempotency = record;
                decision.map(|t| Ok(Answer::Fresh(t)))
            })
            .await;
        match result {
            Ok(outcome) => outcome,
            Err(StoreError::NotFound { entity: "license" }) if by_credential => {
                Err(EngineError::InvalidCredentials)
            }
            // Two requests with one key raced: the loser sees the winner's record on retry.
            Err(StoreError::AlreadyExists {
                entity: "idempotency_record",
                ..
            }) => Err(EngineError::IdempotencyConflict),
            Err(e) => Err(e.into()),
        }
    }
}
