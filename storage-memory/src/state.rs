//! The data behind a [`MemoryStore`](crate::MemoryStore) and the locks around it.
//!
//! Lock order (a thread holding one may only take those after it):
//! one license's writer lock (async) → its `state` → `catalog` → `licenses` → a license's committed row → `idempotency` →
//! `access` → `events`.
//! No code path takes a license mutex while holding any of the others, so no cycle exists.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use licentia_core::crypto::StoredKey;
use licentia_core::model::{
    ApiKey, ApiKeyId, Artifact, ArtifactId, ConsumptionRecord, Contract, ContractId,
    CustomFieldDefinition, CustomFieldId, CustomFieldValue, Customer, CustomerCode, CustomerId,
    Device, DeviceId, Event, Feature, FeatureId, Lease, LeaseId, License, LicenseFeature,
    LicenseId, LicenseTemplate, Order, OrderId, Policy, PolicyId, Product, ProductCode, ProductId,
    ProductVersion, ProductVersionId, SecretHash, Subscription, SubscriptionId, TemplateId,
    UsageRow, WebhookEndpoint, WebhookId,
};
use licentia_core::store::{
    EventPage, EventQuery, IdempotencyKey, IdempotencyRecord, Limit, NewEvent, StoreError,
    StoreResult,
};
use parking_lot::{Mutex, RwLock};

use crate::delivery::Outbox;

/// Everything a store holds; shared by every clone of the store.
#[derive(Default)]
pub(crate) struct Inner {
    /// Products, versions, policies, features, custom fields and their values, customers,
    /// orders and subscriptions.
    pub(crate) catalog: RwLock<Catalog>,
    /// Which licenses exist (committed rows) and where each one's lock is.
    pub(crate) licenses: RwLock<LicenseIndex>,
    /// Idempotency records, unique by (scope, key) across the store, as the contract says.
    pub(crate) idempotency: Mutex<HashMap<IdempotencyKey, IdempotencyRecord>>,
    /// API keys, webhook endpoints and signing keys.
    pub(crate) access: RwLock<Access>,
    /// The append-only event log and its sequence counter.
    pub(crate) events: Mutex<EventLog>,
    /// Runtime refusal counts and report exports.
    pub(crate) reports: Mutex<crate::report::Reports>,
    /// Telemetry records by number.
    pub(crate) telemetry: Mutex<crate::telemetry::TelemetryLog>,
    /// Device registrations. Locked after the license index and idempotency records, before
    /// the event log.
    pub(crate) registrations: Mutex<crate::registration::Registrations>,
    /// Management users by id. Locked before the event log.
    pub(crate) users: Mutex<HashMap<licentia_core::model::UserId, licentia_core::model::User>>,
}

/// (product, external system, external id): unique per product for orders and subscriptions.
pub(crate) type ExternalRef = (ProductId, String, String);

#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) products: HashMap<ProductId, Product>,
    pub(crate) product_codes: HashMap<ProductCode, ProductId>,
    /// Per product, kept sorted newest release first.
    pub(crate) versions: HashMap<ProductId, Vec<ProductVersion>>,
    pub(crate) version_ids: HashMap<ProductVersionId, ProductId>,
    /// Per product, the version each semver precedence resolves to (keyed by
    /// [`precedence_key`](licentia_core::rules::version::precedence_key)): the first entry in release order among those equal by
    /// precedence, which is what [`find_in_catalog`](licentia_core::rules::version::find_in_catalog) would return from `versions`.
    /// Runtime calls look versions up here, so their cost does not grow with the catalog.
    pub(crate) version_lookup: HashMap<ProductId, HashMap<semver::Version, ProductVersion>>,
    pub(crate) policies: HashMap<PolicyId, Policy>,
    pub(crate) templates: HashMap<TemplateId, LicenseTemplate>,
    pub(crate) contracts: HashMap<ContractId, Contract>,
    pub(crate) artifacts: HashMap<ArtifactId, Artifact>,
    pub(crate) features: HashMap<FeatureId, Feature>,
    pub(crate) custom_fields: HashMap<CustomFieldId, CustomFieldDefinition>,
    /// resource id → definition → value.
    pub(crate) custom_values: HashMap<String, HashMap<CustomFieldId, CustomFieldValue>>,
    pub(crate) customers: HashMap<CustomerId, Customer>,
    pub(crate) customer_codes: HashMap<CustomerCode, CustomerId>,
    pub(crate) orders: HashMap<OrderId, Order>,
    pub(crate) order_refs: HashMap<ExternalRef, OrderId>,
    pub(crate) subscriptions: HashMap<SubscriptionId, Subscription>,
    pub(crate) subscription_refs: HashMap<ExternalRef, SubscriptionId>,
}

impl Catalog {
    pub(crate) fn require_product(&self, id: &ProductId) -> StoreResult<&Product> {
        self.products
            .get(id)
            .ok_or(StoreError::not_found("product"))
    }

    pub(crate) fn require_policy(&self, id: &PolicyId) -> StoreResult<&Policy> {
        self.policies.get(id).ok_or(StoreError::not_found("policy"))
    }

    pub(crate) fn require_customer(&self, id: &CustomerId) -> StoreResult<&Customer> {
        self.customers
            .get(id)
            .ok_or(StoreError::not_found("customer"))
    }

    pub(crate) fn require_order(&self, id: &OrderId) -> StoreResult<&Order> {
        self.orders.get(id).ok_or(StoreError::not_found("order"))
    }

    pub(crate) fn require_subscription(&self, id: &SubscriptionId) -> StoreResult<&Subscription> {
        self.subscriptions
            .get(id)
            .ok_or(StoreError::not_found("subscription"))
    }

    /// Checks that the records `license` refers to exist, like foreign keys would. Only the
    /// references that differ from `before` are checked (the others were checked when they
    /// were written, and what they name cannot be deleted while referenced).
    pub(crate) fn check_license_refs(
        &self,
        license: &License,
        before: Option<&License>,
    ) -> StoreResult<()> {
        let changed = |f: fn(&License) -> Option<&str>| {
            f(license).is_some() && before.is_none_or(|b| f(b) != f(license))
        };
        if changed(|l| Some(l.product_id.as_str())) {
            self.require_product(&license.product_id)?;
        }
        if changed(|l| Some(l.policy_id.as_str())) {
            self.require_policy(&license.policy_id)?;
        }
        if changed(|l| l.customer_id.as_ref().map(|x| x.as_str()))
            && let Some(id) = &license.customer_id
        {
            self.require_customer(id)?;
        }
        if changed(|l| l.order_id.as_ref().map(|x| x.as_str()))
            && let Some(id) = &license.order_id
        {
            self.require_order(id)?;
        }
        if changed(|l| l.subscription_id.as_ref().map(|x| x.as_str()))
            && let Some(id) = &license.subscription_id
        {
            self.require_subscription(id)?;
        }
        Ok(())
    }
}

/// The licenses: committed rows for readers and the lock of each license's state.
#[derive(Default)]
pub(crate) struct LicenseIndex {
    pub(crate) by_id: HashMap<LicenseId, LicenseEntry>,
    pub(crate) by_key: HashMap<SecretHash, LicenseId>,
}

impl LicenseIndex {
    /// Whether any license satisfies `f` (used by deletes that references forbid).
    pub(crate) fn any(&self, f: impl Fn(&License) -> bool) -> bool {
        self.by_id.values().any(|e| f(&e.row.read()))
    }
}

pub(crate) struct LicenseEntry {
    /// The committed license row, so license reads and lists never wait for a transaction.
    /// Its own lock lets a commit publish a new row under a shared lock of the index.
    pub(crate) row: RwLock<License>,
    /// Everything that hangs off the license, behind the license's own locks.
    pub(crate) cell: Arc<LicenseCell>,
}

/// One license's locks. Writers (transactions, touches) queue on `writer`, an async mutex, so
/// a writer waiting for another yields its runtime worker instead of blocking it; `state` is
/// held only to copy a snapshot out or to publish a commit, so readers of one license run in
/// parallel and wait for nothing longer than a publish.
pub(crate) struct LicenseCell {
    pub(crate) writer: tokio::sync::Mutex<()>,
    pub(crate) state: RwLock<LicenseState>,
}

impl LicenseCell {
    pub(crate) fn new(license: License) -> Self {
        Self {
            writer: tokio::sync::Mutex::new(()),
            state: RwLock::new(LicenseState::new(license)),
        }
    }
}

/// One license's records; written only with the license's writer lock and `state` held.
pub(crate) struct LicenseState {
    pub(crate) license: License,
    pub(crate) devices: HashMap<DeviceId, Device>,
    pub(crate) features: HashMap<FeatureId, LicenseFeature>,
    /// Leases not checked in (a checked-in lease is removed, as the aggregate does).
    pub(crate) leases: HashMap<LeaseId, Lease>,
    /// Consumptions by `event_id`.
    pub(crate) consumptions: HashMap<String, ConsumptionRecord>,
}

impl LicenseState {
    pub(crate) fn new(license: License) -> Self {
        Self {
            license,
            devices: HashMap::new(),
            features: HashMap::new(),
            leases: HashMap::new(),
            consumptions: HashMap::new(),
        }
    }
}

#[derive(Default)]
pub(crate) struct Access {
    pub(crate) api_keys: HashMap<ApiKeyId, ApiKey>,
    pub(crate) api_key_hashes: HashMap<SecretHash, ApiKeyId>,
    /// Each endpoint with its secret.
    pub(crate) webhooks: HashMap<WebhookId, (WebhookEndpoint, String)>,
    pub(crate) signing_keys: Vec<StoredKey>,
}

/// The event log: sequences are assigned under its lock, so the log is in sequence order.
#[derive(Default)]
pub(crate) struct EventLog {
    events: Vec<Event>,
    last_sequence: i64,
    /// The webhook deliveries of these events, written as they are appended.
    outbox: Outbox,
    /// Every recorded consumption, numbered, in the order recorded (written with its events).
    pub(crate) usage: Vec<UsageRow>,
}

impl EventLog {
    /// Appends `events` and writes their webhook deliveries.
    pub(crate) fn append(&mut self, events: Vec<NewEvent>) {
        self.events.reserve(events.len());
        for e in events {
            self.last_sequence += 1;
            let event = e.into_event(self.last_sequence);
            self.outbox.fan_out(&event);
            self.events.push(event);
        }
    }

    /// Numbers and keeps a recorded consumption (the usage ledger).
    pub(crate) fn record_usage(&mut self, record: ConsumptionRecord) {
        let sequence = self.usage.last().map_or(1, |r| r.sequence + 1);
        self.usage.push(UsageRow { sequence, record });
    }

    /// The events, oldest first.
    pub(crate) fn events(&self) -> &[Event] {
        &self.events
    }

    pub(crate) fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    pub(crate) fn outbox_and_events(&mut self) -> (&mut Outbox, &[Event]) {
        (&mut self.outbox, &self.events)
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn page(&self, q: &EventQuery) -> EventPage {
        let (events, next_cursor) = newest_page(
            &self.events,
            |e| e.sequence,
            q.before,
            q.limit,
            |e| q.matches(e),
        );
        EventPage {
            events,
            next_cursor,
        }
    }
}

/// A cursor page of `items` (numbered by `sequence`, oldest first): those numbered below
/// `before` that pass `keep`, newest first, at most `limit`, and the cursor of the next page.
pub(crate) fn newest_page<T: Clone>(
    items: &[T],
    sequence: impl Fn(&T) -> i64,
    before: Option<i64>,
    limit: Limit,
    keep: impl Fn(&T) -> bool,
) -> (Vec<T>, Option<i64>) {
    let end = match before {
        Some(before) => items.partition_point(|i| sequence(i) < before),
        None => items.len(),
    };
    let limit = limit.as_usize();
    let mut page = Vec::with_capacity(limit.min(end));
    let mut more = false;
    for i in items[..end].iter().rev().filter(|i| keep(i)) {
        if page.len() == limit {
            more = true;
            break;
        }
        page.push(i.clone());
    }
    let next_cursor = if more {
        page.last().map(&sequence)
    } else {
        None
    };
    (page, next_cursor)
}

/// Sorts `items` by `cmp` and clones the first `limit`.
pub(crate) fn page<'a, T: Clone + 'a>(
    items: impl Iterator<Item = &'a T>,
    cmp: impl Fn(&T, &T) -> Ordering,
    limit: Limit,
) -> Vec<T> {
    let mut refs: Vec<&T> = items.collect();
    refs.sort_unstable_by(|a, b| cmp(a, b));
    refs.into_iter().take(limit.as_usize()).cloned().collect()
}

/// Newest first: `created_at` descending, then id descending.
pub(crate) fn newest_first<K: Ord, I: Ord + ?Sized>(a: (K, &I), b: (K, &I)) -> Ordering {
    b.0.cmp(&a.0).then_with(|| b.1.cmp(a.1))
}
