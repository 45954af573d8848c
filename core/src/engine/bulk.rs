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

use super::catalog::parse_id;
use super::licenses::{LicenseCreated, ManagementCall, present};
use super::requests::LicenseCreate;
use super::runner::{Idempotency, ResponseBody, plain_body};
use super::templates::apply_template;
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{Contract, LicenseTemplate, PoolName, TemplateId};
use crate::rules::allocation;
use crate::store::{IdempotencyRecord, NewLicenses, Store, StoreError};

/// `raw` as a pool name, or `INVALID_FIELD` `pool`.
pub(super) fn parse_pool(raw: &str) -> Result<PoolName, EngineError> {
    raw.parse()
        .map_err(|e: crate::model::CodeError| EngineError::invalid("pool", e.to_string()))
}

/// The most licenses one bulk call creates.
pub const MAX_BULK_LICENSES: u32 = 1000;

/// The body of `POST /api/v1/licenses/bulk`: a license's fields as for one license, and
/// `count`. One flat object; a member of neither is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkLicenseCreate {
    /// How many licenses, 1 to [`MAX_BULK_LICENSES`].
    pub count: u32,
    /// The template each is made from (its product, policy, duration, features and
    /// metadata); `product_id` and `policy_id` may then be left out.
    pub template_id: Option<String>,
    /// Created unassigned into this pool (then `customer_id` must be left out), for
    /// `POST /api/v1/pools/{pool}/assign` to hand out later.
    pub pool: Option<String>,
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
        for (member, value) in [("template_id", &self.template_id), ("pool", &self.pool)] {
            if let Some(v) = value {
                map.insert(member.into(), Value::from(v.as_str()));
            }
        }
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
        let mut text = |member: &str| match map.remove(member) {
            Some(t) => String::deserialize(t).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        };
        let template_id = text("template_id")?;
        let pool = text("pool")?;
        if template_id.is_some() {
            // The template names them; empty means "the template's".
            for member in ["product_id", "policy_id"] {
                map.entry(member).or_insert_with(|| Value::from(""));
            }
        }
        let license = LicenseCreate::deserialize(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self {
            count,
            template_id,
            pool,
            license,
        })
    }
}

/// What one call creates: one license (answered as one) or several (answered as a list).
#[derive(Clone, Copy)]
pub(super) enum Shape {
    One,
    Many,
}

/// Where new licenses go.
pub(super) enum Destination {
    /// Nowhere in particular.
    Direct,
    /// Unassigned, into a pool.
    Pool(PoolName),
    /// Issued under a contract, within its quota.
    Contract(Contract),
}

/// One creating call: what it is (for its idempotency key) and what it makes.
pub(super) struct Creation<'a, Q> {
    pub(super) op: &'static str,
    /// What the idempotency key's request hash is taken of.
    pub(super) hashed: &'a Q,
    pub(super) license: LicenseCreate,
    pub(super) template: Option<&'a str>,
    pub(super) count: usize,
    pub(super) shape: Shape,
    pub(super) destination: Destination,
}

/// The scope of a caller's creating calls' idempotency keys (so two API keys never collide).
pub(super) fn creation_scope(actor: &Actor) -> String {
    format!("create:{}:{}", actor.actor_type.as_str(), actor.actor_id)
}

/// `count` within 1 to [`MAX_BULK_LICENSES`].
pub(super) fn check_count(count: u32) -> Result<usize, EngineError> {
    if !(1..=MAX_BULK_LICENSES).contains(&count) {
        return Err(EngineError::invalid(
            "count",
            format!("count must be 1 to {MAX_BULK_LICENSES}"),
        ));
    }
    Ok(count as usize)
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
            Creation {
                op: "create_license",
                hashed: &req.clone(),
                license: req,
                template: None,
                count: 1,
                shape: Shape::One,
                destination: Destination::Direct,
            },
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
        let count = check_count(req.count)?;
        let destination = match &req.pool {
            None => Destination::Direct,
            Some(_) if req.license.customer_id.is_some() => {
                return Err(EngineError::invalid(
                    "customer_id",
                    "a pooled license is unassigned: leave customer_id out",
                ));
            }
            Some(pool) => Destination::Pool(parse_pool(pool)?),
        };
        self.create(
            actor,
            call,
            Creation {
                op: "create_licenses",
                hashed: &req,
                license: req.license.clone(),
                template: req.template_id.as_deref(),
                count,
                shape: Shape::Many,
                destination,
            },
        )
        .await
    }

    /// The template `id`, with `req` completed from it: its product and policy (the
    /// request's, when given, must be the same), its expiry unless the request has one, its
    /// metadata under the request's.
    pub(super) async fn template_for(
        &self,
        id: &str,
        req: &mut LicenseCreate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<LicenseTemplate, EngineError> {
        let t = self
            .store
            .get_template(&parse_id::<TemplateId>(id, "license_template")?)
            .await?;
        for (field, given, own) in [
            ("product_id", &mut req.product_id, t.product_id.as_str()),
            ("policy_id", &mut req.policy_id, t.policy_id.as_str()),
        ] {
            if given.is_empty() {
                *given = own.to_owned();
            } else if given != own {
                return Err(EngineError::invalid(
                    field,
                    format!("{field} differs from the template's"),
                ));
            }
        }
        if req.expires_at.is_none() {
            req.expires_at = Self::template_expiry(&t, now);
        }
        let mut metadata = t.metadata.clone();
        metadata.extend(req.metadata.take().unwrap_or_default());
        req.metadata = Some(metadata);
        Ok(t)
    }

    /// Creates what `c` asks for, answered as its shape says, keyed by the call's
    /// idempotency key.
    pub(super) async fn create<Q: Serialize>(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        c: Creation<'_, Q>,
    ) -> Result<ResponseBody, EngineError> {
        let Creation {
            op,
            hashed,
            license: mut req,
            template,
            count,
            shape,
            destination,
        } = c;
        let idempotency =
            Idempotency::new(creation_scope(actor), call.idempotency_key, op, hashed)?;
        if let Some(asked) = &idempotency
            && let Some(stored) = self.store.find_idempotency(&asked.key).await?
        {
            return ResponseBody::replay(stored, asked);
        }
        if let Destination::Contract(c) = &destination {
            // A quick refusal before any key is made (a replay above is answered even once
            // the quota is used up); the store decides again under its lock.
            allocation::admit(c, count as u32).map_err(EngineError::Denied)?;
        }
        let now = self.now();
        let template = match template {
            Some(id) => Some(self.template_for(id, &mut req, now).await?),
            None => None,
        };
        let (product, policy, terms) = self.license_terms(&req).await?;
        let template = match template {
            Some(t) => Some((self.template_parts(&t).await?, t)),
            None => None,
        };
        let mut licenses = Vec::with_capacity(count);
        let mut features = Vec::new();
        let mut custom_values = Vec::new();
        let mut events = Vec::with_capacity(count);
        let mut created = Vec::with_capacity(count);
        for _ in 0..count {
            let (plan, key) = self.new_license(product.clone(), &policy, terms.clone(), now)?;
            events.extend(actor.events(plan.events, now));
            let mut license = match &template {
                Some((parts, t)) => {
                    let (license, assigned, assigned_events) =
                        apply_template(t, &policy, &parts.features, plan.outcome, now)?;
                    let (values, value_events) = parts.values_for(&license, now);
                    features.extend(assigned);
                    custom_values.extend(values);
                    events.extend(actor.events(assigned_events, now));
                    events.extend(actor.events(value_events, now));
                    license
                }
                None => plan.outcome,
            };
            match &destination {
                Destination::Direct => {}
                Destination::Pool(pool) => license.pool = Some(pool.clone()),
                Destination::Contract(c) => license.contract_id = Some(c.id.clone()),
            }
            created.push(LicenseCreated {
                license: present(license.clone(), &policy, now),
                license_key: key.expose_secret().to_owned(),
            });
            licenses.push(license);
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
        let written = match &destination {
            Destination::Contract(c) => self
                .store
                .insert_contract_licenses(
                    &c.id,
                    NewLicenses::of(&licenses)
                        .with_features(&features)
                        .with_custom_values(&custom_values),
                    events,
                    record,
                    |c| allocation::admit(c, count as u32),
                )
                .await
                .map(|admitted| admitted.map_err(EngineError::Denied)),
            _ => self
                .store
                .insert_licenses(
                    NewLicenses::of(&licenses)
                        .with_features(&features)
                        .with_custom_values(&custom_values),
                    events,
                    record,
                )
                .await
                .map(Ok),
        };
        match written {
            Ok(Ok(())) => Ok(ResponseBody::fresh(body)),
            Ok(Err(refused)) => self.refused(refused, idempotency.as_ref()).await,
            Err(e) => self.raced(e, idempotency.as_ref()).await,
        }
    }

    /// `refused`, a keyed write's refusal, unless the same request under the same key was
    /// answered meanwhile: a retry racing the first call (still holding the licenses or the
    /// quota it took) must get that call's answer, not a refusal caused by it.
    pub(super) async fn refused(
        &self,
        refused: EngineError,
        idempotency: Option<&Idempotency>,
    ) -> Result<ResponseBody, EngineError> {
        if let Some(asked) = idempotency
            && let Some(stored) = self.store.find_idempotency(&asked.key).await?
        {
            return ResponseBody::replay(stored, asked);
        }
        Err(refused)
    }

    /// `e`, the failure of a keyed write; when it is the key itself, taken by another call
    /// that raced in meanwhile, the answer that call stored.
    pub(super) async fn raced(
        &self,
        e: StoreError,
        idempotency: Option<&Idempotency>,
    ) -> Result<ResponseBody, EngineError> {
        match e {
            StoreError::AlreadyExists {
                entity: "idempotency_record",
                ..
            } => {
                let asked = idempotency.ok_or(EngineError::IdempotencyConflict)?;
                match self.store.find_idempotency(&asked.key).await? {
                    Some(stored) => ResponseBody::replay(stored, asked),
                    None => Err(EngineError::IdempotencyConflict),
                }
            }
            e => Err(e.into()),
        }
    }
}
