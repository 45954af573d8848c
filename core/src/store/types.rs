//! Values the storage traits take and return.

use chrono::{DateTime, Utc};
use semver::Version;

use crate::model::{
    ApiKeyId, AuditActorType, CustomerId, Event, License, LicenseId, LicenseStatus, Metadata,
    OrderId, PolicyId, ProductId, SecretHash, SubscriptionId,
};
use crate::rules::{DomainEvent, LicenseAggregate, Mutation, Plan, Touch};

/// Default page size of list operations (the contract's `limit` default).
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; larger requests are clamped to it (the contract's `limit` maximum).
pub const MAX_LIMIT: u32 = 200;

/// A page size: defaults to [`DEFAULT_LIMIT`], clamped to `1..=MAX_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    /// The largest page: [`MAX_LIMIT`].
    pub const MAX: Limit = Limit(MAX_LIMIT);

    /// Clamps a requested size; `None` means the default.
    pub fn new(requested: Option<i64>) -> Self {
        match requested {
            None => Self(DEFAULT_LIMIT),
            Some(n) => Self(n.clamp(1, i64::from(MAX_LIMIT)) as u32),
        }
    }

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The size as `usize`.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

/// How a runtime or management call names its license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseSelector {
    /// By id (management).
    Id(LicenseId),
    /// By the SHA-256 of the license key (runtime).
    KeyHash(SecretHash),
}

/// Scope and key of an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// What the key is unique within, e.g. `license:lic_…:activate`.
    pub scope: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
}

/// The stored outcome of an idempotent request, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Scope and key.
    pub key: IdempotencyKey,
    /// SHA-256 of the canonical request, to tell a replay from a reuse.
    pub request_hash: [u8; 32],
    /// The response status (an HTTP status for HTTP hosts).
    pub status: u16,
    /// The response body, exactly as first sent.
    pub body: Vec<u8>,
    /// When it was first answered.
    pub created_at: DateTime<Utc>,
}

/// What [`LicenseStore::transact_license`](super::LicenseStore::transact_license) loads.
#[derive(Debug, Clone, Default)]
pub struct AggregateQuery {
    /// The license (required).
    pub selector: Option<LicenseSelector>,
    /// Load every device with this binding key, whatever its status.
    pub binding_key: Option<String>,
    /// Look this version up in the product's catalog.
    pub app_version: Option<Version>,
    /// Load the earlier consumption with this `event_id`.
    pub consumption_event_id: Option<String>,
    /// Load the idempotency record with this scope and key.
    pub idempotency: Option<IdempotencyKey>,
}

impl AggregateQuery {
    /// A query for `selector` with no extras.
    pub fn new(selector: LicenseSelector) -> Self {
        Self {
            selector: Some(selector),
            ..Self::default()
        }
    }
}

/// What the transaction closure sees.
#[derive(Debug)]
pub struct Loaded<'a> {
    /// The license and everything its rules read.
    pub aggregate: &'a LicenseAggregate,
    /// The stored idempotency record for the query's key, if any.
    pub idempotency: Option<&'a IdempotencyRecord>,
}

/// What the transaction closure decides; applied atomically, all or nothing.
#[derive(Debug)]
pub struct Decision<T> {
    /// Record changes.
    pub mutations: Vec<Mutation>,
    /// Events to append.
    pub events: Vec<NewEvent>,
    /// The idempotency record to store with the effect.
    pub idempotency: Option<IdempotencyRecord>,
    /// Returned to the caller after commit.
    pub outcome: T,
}

impl<T> Decision<T> {
    /// A decision that writes nothing.
    pub fn nothing(outcome: T) -> Self {
        Self {
            mutations: vec![],
            events: vec![],
            idempotency: None,
            outcome,
        }
    }

    /// A rule's plan as a decision: its mutations, and its events as `actor` caused them at
    /// `now`. The one place a [`Plan`] becomes something a store applies (the engine and the
    /// conformance suite both use it).
    pub fn planned(plan: Plan<T>, actor: &Actor, now: DateTime<Utc>) -> Self {
        Self {
            mutations: plan.mutations,
            events: actor.events(plan.events, now),
            idempotency: None,
            outcome: plan.outcome,
        }
    }

    /// The same decision with another outcome.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decision<U> {
        Decision {
            mutations: self.mutations,
            events: self.events,
            idempotency: self.idempotency,
            outcome: f(self.outcome),
        }
    }
}

/// Who performs an operation; events record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The kind of actor.
    pub actor_type: AuditActorType,
    /// Its id (an API key id, a license id, `system`, …).
    pub actor_id: String,
    /// Its network address, when known.
    pub ip_address: Option<String>,
}

impl Actor {
    /// The system itself (bootstrap, maintenance commands).
    pub fn system() -> Self {
        Self {
            actor_type: AuditActorType::System,
            actor_id: "system".into(),
            ip_address: None,
        }
    }

    /// A management API key.
    pub fn api_key(id: &ApiKeyId, ip_address: Option<String>) -> Self {
        Self {
            actor_type: AuditActorType::ApiKey,
            actor_id: id.to_string(),
            ip_address,
        }
    }

    /// A management user signed in for a session (an extension).
    pub fn user(id: &crate::model::UserId, ip_address: Option<String>) -> Self {
        Self {
            actor_type: AuditActorType::User,
            actor_id: id.to_string(),
            ip_address,
        }
    }

    /// A license acting through its key (runtime calls).
    pub fn license(id: &LicenseId, ip_address: Option<String>) -> Self {
        Self {
            actor_type: AuditActorType::License,
            actor_id: id.to_string(),
            ip_address,
        }
    }

    /// `e` as this actor caused it at `now`.
    pub fn event(&self, e: DomainEvent, now: DateTime<Utc>) -> NewEvent {
        NewEvent {
            event_type: e.event_type.to_owned(),
            actor_type: self.actor_type,
            actor_id: self.actor_id.clone(),
            resource_type: e.resource_type.to_owned(),
            resource_id: Some(e.resource_id),
            metadata: e.metadata,
            ip_address: self.ip_address.clone(),
            created_at: now,
        }
    }

    /// Every event of `es` as this actor caused it at `now`.
    pub fn events(&self, es: Vec<DomainEvent>, now: DateTime<Utc>) -> Vec<NewEvent> {
        es.into_iter().map(|e| self.event(e, now)).collect()
    }
}

/// A read's bookkeeping ready to store: the rule's [`Touch`] and its event as the actor
/// caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct TouchRecord {
    /// What to move forward.
    pub touch: Touch,
    /// The event to append with it.
    pub event: NewEvent,
}

impl TouchRecord {
    /// `touch` by `actor`, its event stamped with the touch's time.
    pub fn new(touch: Touch, actor: &Actor) -> Self {
        let event = actor.event(touch.event.clone(), touch.at);
        Self { touch, event }
    }
}

/// An event to append; the store assigns its sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// e.g. `device.activated`.
    pub event_type: String,
    /// Who caused it.
    pub actor_type: AuditActorType,
    /// The actor's id (API key id, license id, `system`).
    pub actor_id: String,
    /// e.g. `device`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// Redacted metadata.
    pub metadata: Metadata,
    /// The caller's address, when known.
    pub ip_address: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl NewEvent {
    /// The stored form with `sequence`.
    pub fn into_event(self, sequence: i64) -> Event {
        Event {
            sequence,
            event_type: self.event_type,
            actor_type: self.actor_type,
            actor_id: self.actor_id,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            metadata: self.metadata,
            ip_address: self.ip_address,
            created_at: self.created_at,
        }
    }
}

/// Filters of `GET /api/v1/events`; `before` is the cursor (sequences lower than it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only sequences lower than this.
    pub before: Option<i64>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Exact resource type.
    pub resource_type: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// Exact actor type.
    pub actor_type: Option<AuditActorType>,
    /// Page size.
    pub limit: Limit,
}

impl EventQuery {
    /// Whether `e` passes the filters (not the cursor).
    pub fn matches(&self, e: &Event) -> bool {
        self.event_type.as_ref().is_none_or(|t| &e.event_type == t)
            && self
                .resource_type
                .as_ref()
                .is_none_or(|t| &e.resource_type == t)
            && self
                .resource_id
                .as_ref()
                .is_none_or(|t| e.resource_id.as_ref() == Some(t))
            && self.actor_type.is_none_or(|t| e.actor_type == t)
    }
}

/// A newest-first page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, highest sequence first.
    pub events: Vec<Event>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// Filters of `GET /api/v1/licenses` that a store evaluates. The effective-status filter is
/// the engine's (it depends on the policy and `now`), which pages with `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseQuery {
    /// Exact product.
    pub product_id: Option<ProductId>,
    /// Exact policy.
    pub policy_id: Option<PolicyId>,
    /// Exact customer.
    pub customer_id: Option<CustomerId>,
    /// Exact order.
    pub order_id: Option<OrderId>,
    /// Exact subscription.
    pub subscription_id: Option<SubscriptionId>,
    /// Waiting unassigned in this pool.
    pub pool: Option<crate::model::PoolName>,
    /// Generated under this contract.
    pub contract_id: Option<crate::model::ContractId>,
    /// `expires_at` strictly before.
    pub expires_before: Option<DateTime<Utc>>,
    /// `expires_at` strictly after.
    pub expires_after: Option<DateTime<Utc>>,
    /// Only stored status equal to this (`active`, `suspended`, `revoked`).
    pub stored_status: Option<LicenseStatus>,
    /// The key as shown: its prefix (`license_key_prefix`, e.g. `lsk_AB12`) or its last four
    /// characters (`license_key_last4`), exactly. Neither identifies a license alone: a
    /// search, not a lookup.
    pub key_hint: Option<String>,
    /// Only licenses assigned to this license user.
    pub user_id: Option<crate::model::UserId>,
    /// Continue after this license in list order (newest first: `created_at` desc, id desc).
    pub after: Option<(DateTime<Utc>, LicenseId)>,
    /// Page size.
    pub limit: Limit,
}

impl LicenseQuery {
    /// Whether `l` passes the filters (not the cursor).
    pub fn matches(&self, l: &crate::model::License) -> bool {
        self.product_id.as_ref().is_none_or(|x| &l.product_id == x)
            && self.policy_id.as_ref().is_none_or(|x| &l.policy_id == x)
            && self
                .customer_id
                .as_ref()
                .is_none_or(|x| l.customer_id.as_ref() == Some(x))
            && self
                .order_id
                .as_ref()
                .is_none_or(|x| l.order_id.as_ref() == Some(x))
            && self
                .subscription_id
                .as_ref()
                .is_none_or(|x| l.subscription_id.as_ref() == Some(x))
            && self
                .pool
                .as_ref()
                .is_none_or(|x| l.pool.as_ref() == Some(x))
            && self
                .contract_id
                .as_ref()
                .is_none_or(|x| l.contract_id.as_ref() == Some(x))
            && self
                .expires_before
                .is_none_or(|t| l.expires_at.is_some_and(|e| e < t))
            && self
                .expires_after
                .is_none_or(|t| l.expires_at.is_some_and(|e| e > t))
            && self
                .user_id
                .as_ref()
                .is_none_or(|u| l.users.iter().any(|a| &a.user_id == u))
            && self.stored_status.is_none_or(|s| l.status == s)
            && self
                .key_hint
                .as_ref()
                .is_none_or(|k| &l.license_key_prefix == k || &l.license_key_last4 == k)
    }

    /// Whether `l` comes after the cursor in list order.
    pub fn is_after_cursor(&self, l: &crate::model::License) -> bool {
        match &self.after {
            None => true,
            Some((at, id)) => (l.created_at, &l.id) < (*at, id),
        }
    }
}

/// Licenses created together, with the feature assignments and custom field values they are
/// created with (each naming one of them): what
/// [`LicenseStore::insert_licenses`](super::LicenseStore::insert_licenses) writes.
#[derive(Debug, Clone, Copy)]
pub struct NewLicenses<'a> {
    /// The licenses.
    pub licenses: &'a [License],
    /// Their feature assignments.
    pub features: &'a [crate::model::LicenseFeature],
    /// Their custom field values.
    pub custom_values: &'a [crate::model::CustomFieldValue],
}

impl<'a> NewLicenses<'a> {
    /// `licenses` alone.
    pub fn of(licenses: &'a [License]) -> Self {
        Self {
            licenses,
            features: &[],
            custom_values: &[],
        }
    }

    /// The same, with `features` assigned.
    pub fn with_features(self, features: &'a [crate::model::LicenseFeature]) -> Self {
        Self { features, ..self }
    }

    /// The same, with `custom_values` set.
    pub fn with_custom_values(self, custom_values: &'a [crate::model::CustomFieldValue]) -> Self {
        Self {
            custom_values,
            ..self
        }
    }

    /// Whether every assignment and value names one of the licenses.
    pub fn references_hold(&self) -> bool {
        let ours = |id: &crate::model::LicenseId| self.licenses.iter().any(|l| &l.id == id);
        self.features.iter().all(|f| ours(&f.license_id))
            && self.custom_values.iter().all(|v| {
                v.resource_type == crate::model::CustomFieldResourceType::License
                    && self.licenses.iter().any(|l| l.id.as_str() == v.resource_id)
            })
    }
}
