//! What a rule decides: mutations to persist, events to record, an outcome to return.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{
    ConsumptionRecord, Device, DeviceId, DeviceRegistration, FeatureId, Lease, License,
    LicenseFeature, LicenseId, Metadata,
};

/// One change to persist, always a whole record so a store applies it without logic.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Mutation {
    /// Replace the license row.
    License(License),
    /// Insert or replace a device (keyed by id).
    Device(Device),
    /// Insert or replace a floating lease (keyed by id).
    Lease(Lease),
    /// Insert or replace a feature assignment (keyed by license and feature).
    LicenseFeature(LicenseFeature),
    /// Remove a feature assignment.
    RemoveLicenseFeature(FeatureId),
    /// Record a consumption `event_id` so a replay counts once.
    Consumption(ConsumptionRecord),
    /// Write a registration's activation (its device, binding and session), only while its
    /// `device_id` is still `expected_device`: otherwise (or when it is gone) the store
    /// refuses the whole decision with `Conflict`, so two activations of one serial never
    /// both bind it.
    Registration {
        registration: DeviceRegistration,
        expected_device: Option<DeviceId>,
    },
}

impl Mutation {
    /// The license the mutation writes to, when it names one. A store refuses a decision
    /// whose mutations name another license than the one it locked.
    pub fn license_id(&self) -> Option<&LicenseId> {
        match self {
            Self::License(l) => Some(&l.id),
            Self::Device(d) => Some(&d.license_id),
            Self::Lease(l) => Some(&l.license_id),
            Self::LicenseFeature(f) => Some(&f.license_id),
            Self::Consumption(c) => Some(&c.license_id),
            Self::Registration { registration, .. } => Some(&registration.license_id),
            Self::RemoveLicenseFeature(_) => None,
        }
    }
}

/// A domain event, before the store gives it a sequence number and the engine an actor.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// e.g. `device.activated`.
    pub event_type: &'static str,
    /// e.g. `device`.
    pub resource_type: &'static str,
    /// The id of the resource.
    pub resource_id: String,
    /// Redacted metadata: never a secret or a binding value.
    pub metadata: Metadata,
}

impl DomainEvent {
    /// An event with metadata built from `pairs`.
    pub fn new(
        event_type: &'static str,
        resource_type: &'static str,
        resource_id: impl Into<String>,
        pairs: impl IntoIterator<Item = (&'static str, Value)>,
    ) -> Self {
        Self {
            event_type,
            resource_type,
            resource_id: resource_id.into(),
            metadata: pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    /// The same event naming the license it concerns: `license_id`, `product_id` and, where
    /// the license has them, `customer_id`, `order_id` and `subscription_id` are added to the
    /// metadata unless the rule set them. Reports filter the event log by these.
    pub fn about(mut self, license: &License) -> Self {
        let ids = [
            ("license_id", Some(license.id.as_str())),
            ("product_id", Some(license.product_id.as_str())),
            (
                "customer_id",
                license.customer_id.as_ref().map(|c| c.as_str()),
            ),
            ("order_id", license.order_id.as_ref().map(|o| o.as_str())),
            (
                "subscription_id",
                license.subscription_id.as_ref().map(|s| s.as_str()),
            ),
        ];
        for (key, id) in ids {
            if let Some(id) = id {
                self.metadata
                    .entry(key)
                    .or_insert_with(|| Value::String(id.to_owned()));
            }
        }
        self
    }
}

/// A rule's decision: apply `mutations` and `events` atomically, then return `outcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<T> {
    /// Changes to persist, in order.
    pub mutations: Vec<Mutation>,
    /// Events to append in the same transaction.
    pub events: Vec<DomainEvent>,
    /// What the caller gets back.
    pub outcome: T,
}

impl<T> Plan<T> {
    /// A plan that changes nothing.
    pub fn read_only(outcome: T) -> Self {
        Self {
            mutations: Vec::new(),
            events: Vec::new(),
            outcome,
        }
    }

    /// Whether applying the plan changes nothing.
    pub fn is_read_only(&self) -> bool {
        self.mutations.is_empty() && self.events.is_empty()
    }

    /// The same changes with another outcome.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Plan<U> {
        Plan {
            mutations: self.mutations,
            events: self.events,
            outcome: f(self.outcome),
        }
    }
}

/// A read-only decision (validate, check, offline): the outcome and the bookkeeping the read
/// leaves behind. Nothing in it counts against a limit, so a host may write the touch later,
/// coalesced, off the request path (DESIGN 7).
#[derive(Debug, Clone, PartialEq)]
pub struct Read<T> {
    /// What the caller gets back.
    pub outcome: T,
    /// Who was seen, when; `None` when the read leaves no trace (check).
    pub touch: Option<Touch>,
}

impl<T> Read<T> {
    /// A read that leaves no trace.
    pub fn untraced(outcome: T) -> Self {
        Self {
            outcome,
            touch: None,
        }
    }
}

/// What a touch records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TouchKind {
    /// A validation: the device's `last_seen_at` and `last_validated_at` and the license's
    /// `last_validated_at` move to the touch's time; event `license.validated`.
    Validated,
    /// An offline license was issued: the device's `last_seen_at` moves; event
    /// `license.offline_issued`.
    OfflineIssued,
}

/// Bookkeeping of one read: a device was seen at `at`. Applying it only ever moves timestamps
/// forward ([`Touch::apply_to_device`], [`Touch::apply_to_license`]), so touches may be
/// applied late, merged or out of order without undoing a newer write.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    /// What was recorded.
    pub kind: TouchKind,
    /// The license.
    pub license_id: LicenseId,
    /// The device seen.
    pub device_id: DeviceId,
    /// When.
    pub at: DateTime<Utc>,
    /// For an offline issue: the end of the license issued (the device's `offline_until`).
    pub offline_until: Option<DateTime<Utc>>,
    /// The event that describes it.
    pub event: DomainEvent,
}

impl Touch {
    /// Moves the device's timestamps forward to the touch's time (never back).
    pub fn apply_to_device(&self, device: &mut Device) {
        if device.last_seen_at < self.at {
            device.last_seen_at = self.at;
        }
        if self.kind == TouchKind::Validated && device.last_validated_at.is_none_or(|t| t < self.at)
        {
            device.last_validated_at = Some(self.at);
        }
        if let Some(until) = self.offline_until
            && device.offline_until.is_none_or(|t| t < until)
        {
            device.offline_until = Some(until);
        }
    }

    /// Moves the license's `last_validated_at` forward to a validation's time (never back).
    pub fn apply_to_license(&self, license: &mut License) {
        if self.kind == TouchKind::Validated
            && license.last_validated_at.is_none_or(|t| t < self.at)
        {
            license.last_validated_at = Some(self.at);
        }
    }
}
