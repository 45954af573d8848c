//! Idempotent license creation (an extension): `POST /api/v1/licenses` with an
//! `Idempotency-Key`, and `POST /api/v1/licenses/bulk`, which creates up to
//! [`MAX_BULK_LICENSES`] licenses at once, all or none.
//!
//! A retried billing webhook must not create a second license: the key (scoped by the caller,
//! so two API keys never collide) and a hash of the request are stored with the licenses in
//! the same transaction, and a repeat answers the stored bytes, keys included. The answer
//! holds the license keys, so the stored copy is a secret: the PostgreSQL backend seals it
//! under the master key when one is configured, and it is purged with every idempotency record
//! after the idempotency TTL; from then on only the keys' hashes remain.

use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::licenses::{LicenseCreated, ManagementCall, present};
use super::requests::LicenseCreate;
use super::runner::{Idempotency, ResponseBody, plain_body};
use super::{Actor, Clock, Engine, EngineError};
use crate::store::{IdempotencyRecord, Store, StoreError};

/// The most licenses one bulk call creates.
pub const MAX_BULK_LICENSES: u32 = 1000;

/// The body of `POST /api/v1/licenses/bulk`: a license's fields as for one license, and
/// `count`. One flat object; a member of neither is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkLicenseCreate {
    /// How many licenses, 1 to [`MAX_BULK_LICENSES`].
    pub count: u32,
    /// What each of them is.
    pub license: LicenseCreate,
}

impl Serialize for BulkLicenseCreate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map =
            match serde_json::to_value(&self.license).map_err(serde::ser::Error::custom)? {
                Value::Object(m) => m,
                _ => Map::new(),
            };
        map.insert("count".into(), Value::from(self.count));
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BulkLicenseCreate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = Map::deserialize(d)?;
        let count = map
            .remove("count")
            .ok_or_else(|| D::Error::missing_field("count"))?;
        let count = u32::deserialize(count).map_err(D::Error::custom)?;
        let license = LicenseCreate::deserialize(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self { count, license })
    }
}

/// What one call creates: one license (answered as one) or several (answered as a list).
#[derive(Clone, Copy)]
enum Shape {
    One,
    Many,
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// [`Self::create_license`] keyed by `call.idempotency_key` when there is one: the same
    /// key with the same request answers the stored bytes (`replayed`), with another request
    /// `IdempotencyConflict`. Answers `{"data":<LicenseCreated>,"meta":…}`.
    ///
    /// # Errors
    ///
    /// As [`Self::create_license`]; `IdempotencyConflict`.
    pub async fn create_license_once(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        req: LicenseCreate,
    ) -> Result<ResponseBody, EngineError> {
        self.create(
            actor,
            call,
            "create_license",
            &req.clone(),
            req,
            1,
            Shape::One,
        )
        .await
    }

    /// Creates `req.count` licenses alike, all or none, answered as
    /// `{"data":[<LicenseCreated>…],"meta":…}` with every key shown once; keyed by
    /// `call.idempotency_key` as [`Self::create_license_once`].
    ///
    /// # Errors
    ///
    /// `INVALID_FIELD` for a `count` of 0 or over [`MAX_BULK_LICENSES`]; as
    /// [`Self::create_license_once`].
    pub async fn create_licenses(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        req: BulkLicenseCreate,
    ) -> Result<ResponseBody, EngineError> {
        if !(1..=MAX_BULK_LICENSES).contains(&req.count) {
            return Err(EngineError::invalid(
                "count",
                format!("count must be 1 to {MAX_BULK_LICENSES}"),
            ));
        }
        let count = req.count as usize;
        self.create(
            actor,
            call,
            "create_licenses",
            &req,
            req.license.clone(),
            count,
            Shape::Many,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create<Q: Serialize>(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        op: &'static str,
        hashed: &Q,
        req: LicenseCreate,
        count: usize,
        shape: Shape,
    ) -> Result<ResponseBody, EngineError> {
        let scope = format!("create:{}:{}", actor.actor_type.as_str(), actor.actor_id);
        let idempotency = Idempotency::new(scope, call.idempotency_key, op, hashed)?;
        if let Some(asked) = &idempotency
            && let Some(stored) = self.store.find_idempotency(&asked.key).await?
        {
            return ResponseBody::replay(stored, asked);
        }
        let (product, policy, terms) = self.license_terms(&req).await?;
        let now = self.now();
        let mut licenses = Vec::with_capacity(count);
        let mut events = Vec::with_capacity(count);
        let mut created = Vec::with_capacity(count);
        for _ in 0..count {
            let (plan, key) = self.new_license(product.clone(), &policy, terms.clone(), now)?;
            events.extend(actor.events(plan.events, now));
            created.push(LicenseCreated {
                license: present(plan.outcome.clone(), &policy, now),
                license_key: key.expose_secret().to_owned(),
            });
            licenses.push(plan.outcome);
        }
        let body = match shape {
            Shape::One => plain_body(&created[0], call.request_id, now)?,
            Shape::Many => plain_body(&created, call.request_id, now)?,
        };
        let record = idempotency.as_ref().map(|i| IdempotencyRecord {
            key: i.key.clone(),
            request_hash: i.request_hash,
            status: 201,
            body: body.clone(),
            created_at: now,
        });
        match self.store.insert_licenses(&licenses, events, record).await {
            Ok(()) => Ok(ResponseBody::fresh(body)),
            // The same key raced in from another call: answer what it stored.
            Err(StoreError::AlreadyExists {
                entity: "idempotency_record",
                ..
            }) => {
                let asked = idempotency
                    .as_ref()
                    .ok_or(EngineError::IdempotencyConflict)?;
                match self.store.find_idempotency(&asked.key).await? {
                    Some(stored) => ResponseBody::replay(stored, asked),
                    None => Err(EngineError::IdempotencyConflict),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
