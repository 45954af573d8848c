//! Storage traits and their contract (DESIGN 3).
//!
//! The core decides; stores persist and look up. Every backend implements the traits below
//! and runs the one conformance suite (`conformance`, behind the feature of that name).
//!
//! # Contract (every trait)
//!
//! - **Stores never read the clock and never decide policy.** Timestamps arrive in the
//!   records; refusals come from [`rules`](crate::rules).
//! - **Per-license atomicity.** [`LicenseStore::transact_license`] loads the license
//!   aggregate under an exclusive per-license lock, calls the closure exactly once, and applies
//!   its mutations, events and idempotency record in one transaction. Nothing half-applied is
//!   ever visible; no retry loops, no sleeps. Unrelated licenses never wait on each other.
//! - **Reads take no exclusive lock.** [`LicenseStore::read_license`] returns a consistent
//!   snapshot of the same aggregate (one committed state: never half of a write) without
//!   waiting for, or making wait, any other reader; readers of one license run in parallel.
//! - **Touches only move time forward.** [`LicenseStore::record_touches`] applies read
//!   bookkeeping with [`Touch::apply_to_device`](crate::rules::Touch::apply_to_device) and
//!   [`Touch::apply_to_license`](crate::rules::Touch::apply_to_license) semantics (a
//!   timestamp never moves back, no other field changes), so a late batch never undoes a newer
//!   write.
//! - **Events are written with their change.** Every write method takes the events that
//!   describe it and appends them in the same transaction. Sequences strictly increase.
//!   The same transaction writes the events' webhook deliveries ([`DeliveryStore`]).
//! - **Uniqueness is the store's.** Product codes; policy and feature codes per product;
//!   custom field codes per product and resource type; customer codes; license key hashes;
//!   API key token hashes; idempotency keys per scope; consumption `event_id`s per license;
//!   device registration serials and session token hashes; user e-mails and token hashes.
//!   A collision is [`StoreError::AlreadyExists`], never an overwrite.
//! - **Lists** return at most `limit` records, newest first (`created_at` desc, id desc),
//!   unless a method says otherwise.
//!
//! # Errors
//!
//! Every method returns [`StoreError`]: `NotFound` for a missing record the call names,
//! `AlreadyExists` for a unique collision, `Conflict` for a write other records forbid,
//! `Unavailable` when the backend cannot be reached, `Backend` for anything else.

mod allocation;
mod artifact;
mod delivery;
mod error;
mod registration;
mod report;
mod telemetry;
mod types;
mod user;

use std::future::Future;

pub use allocation::{AllocationStore, OUTSIDE_CONTRACT_QUOTA, all_under, outside_contracts};
pub use artifact::ArtifactStore;
pub use delivery::{
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryPage, DeliveryReport, DeliveryStore,
};
pub use error::{BoxError, StoreError};
pub use registration::{REGISTRATION_CHANGED, RegistrationStore};
pub use report::{
    ActivityQuery, ExportArtifact, LedgerPage, LedgerQuery, ReportStore, RuntimeErrorQuery,
    RuntimeErrorReport, UsageFilter, UsageQuery, UsageSummary,
};
pub use telemetry::{TelemetryPage, TelemetryStore};
pub use types::{
    Actor, AggregateQuery, DEFAULT_LIMIT, Decision, EventPage, EventQuery, IdempotencyKey,
    IdempotencyRecord, LicenseQuery, LicenseSelector, Limit, Loaded, MAX_LIMIT, NewEvent,
    NewLicenses, TouchRecord,
};
pub use user::{UserChange, UserQuery, UserStore};

use crate::crypto::StoredKey;
use crate::model::{
    ApiKey, ApiKeyId, CustomFieldDefinition, CustomFieldId, CustomFieldResourceType,
    CustomFieldValue, Customer, CustomerId, Device, DeviceId, Feature, FeatureCode, FeatureId,
    License, LicenseFeature, LicenseId, LicenseTemplate, Order, OrderId, Policy, PolicyId, Product,
    ProductId, ProductVersion, ProductVersionId, SecretHash, Subscription, SubscriptionId,
    TemplateId, WebhookEndpoint, WebhookId,
};
use crate::rules::LicenseAggregate;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// What [`AccessStore::revoke_api_key`] writes for `key`, given every key of the store (or
/// at least the active ones): `None` when it is already revoked (nothing to write), the
/// revoked record otherwise, and [`StoreError::Conflict`] when it is the last admin key usable
/// at `now` ([`ApiKey::may_be_revoked_among`]). Backends call it under the lock that makes
/// the check and the write one step.
///
/// # Errors
///
/// `Conflict`, as above.
pub fn revocation<'a>(
    key: &ApiKey,
    keys: impl IntoIterator<Item = &'a ApiKey>,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<ApiKey>> {
    if !key.is_active {
        return Ok(None);
    }
    if !key.may_be_revoked_among(keys, now) {
        return Err(StoreError::Conflict {
            reason: "the last usable admin key",
        });
    }
    Ok(Some(ApiKey {
        is_active: false,
        ..key.clone()
    }))
}

/// Licenses and everything that hangs off one license.
///
/// # Contract
///
/// See the [module docs](self). In addition:
/// - `insert_license` fails with `AlreadyExists` when the key hash is taken.
/// - `insert_licenses` inserts every license, the feature assignments and custom field
///   values given with them (each naming one of them), its events and the idempotency record
///   in one transaction, or
///   nothing: a taken id or key hash, or a taken idempotency key
///   (`AlreadyExists { entity: "idempotency_record" }`), writes none of them. A reference
///   that does not exist is `NotFound`.
/// - `find_idempotency` returns the record stored under the key, body included, or `None`
///   (also once it was purged).
/// - `transact_license` fails with `NotFound { entity: "license" }` when the selector names no
///   license, without calling the closure. The aggregate holds the license, its policy, every
///   active or blacklisted device plus every device with the query's binding key, every
///   feature assignment, every lease not checked in, the catalog lookup for the query's
///   version and the consumption and idempotency records the query names. A
///   [`Mutation::Consumption`](crate::rules::Mutation::Consumption) whose `event_id` exists
///   already fails the whole transaction with `AlreadyExists`.
///
/// # Errors
///
/// See the [module docs](self).
pub trait LicenseStore: Send + Sync {
    /// Inserts a new license with its events.
    fn insert_license(
        &self,
        license: &License,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Inserts new licenses, all or none, with their feature assignments and custom field
    /// values, their events and the idempotency record of the call that created them.
    fn insert_licenses(
        &self,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The idempotency record stored under `key`, if any.
    fn find_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = StoreResult<Option<IdempotencyRecord>>> + Send;

    /// The license with `id`.
    fn get_license(&self, id: &LicenseId) -> impl Future<Output = StoreResult<License>> + Send;

    /// Licenses matching `query`, newest first.
    fn list_licenses(
        &self,
        query: &LicenseQuery,
    ) -> impl Future<Output = StoreResult<Vec<License>>> + Send;

    /// Runs `decide` on the license's aggregate under its exclusive lock and applies the
    /// decision atomically.
    fn transact_license<T, F>(
        &self,
        query: AggregateQuery,
        decide: F,
    ) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: FnOnce(Loaded<'_>) -> Decision<T> + Send;

    /// A consistent snapshot of the aggregate `query` names, as `transact_license` would load
    /// it, without the exclusive lock: the read path (validate, check, offline). The
    /// idempotency record is not loaded (reads are not idempotent operations).
    fn read_license(
        &self,
        query: &AggregateQuery,
    ) -> impl Future<Output = StoreResult<LicenseAggregate>> + Send;

    /// Applies a batch of read bookkeeping (moves device and license timestamps forward and
    /// appends each touch's event), all or nothing. A touch naming a license or device that no
    /// longer exists is skipped with its event (it was deleted since; nothing to record).
    fn record_touches(
        &self,
        touches: Vec<TouchRecord>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes at most `limit` idempotency records answered before `created_before` and
    /// returns how many it deleted (fewer than `limit`: none older is left).
    ///
    /// # Contract
    ///
    /// Only records with `created_at < created_before` go; a deleted key is unknown from then
    /// on (a later request with it is a new request). Concurrent calls, from this or another
    /// instance, never fail because of each other and never delete a record twice.
    ///
    /// # Errors
    ///
    /// Storage failures.
    fn purge_idempotency(
        &self,
        created_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Licenses with a device the heartbeat sweep releases at `now`: at most `limit` ids of
    /// licenses having an active device for which
    /// [`device_heartbeat::is_silent`](crate::rules::device_heartbeat::is_silent) holds with
    /// `margin`, those silent longest first.
    ///
    /// # Contract
    ///
    /// Selects by exactly that condition (the engine re-decides each license under its lock,
    /// so a license that stopped qualifying since is harmless, but one listed forever would
    /// starve the rest). Each license appears once. A device's `last_seen_at` is the one
    /// stored, touches included.
    ///
    /// # Errors
    ///
    /// Storage failures.
    fn silent_device_licenses(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        margin: chrono::Duration,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<LicenseId>>> + Send;

    /// Devices of a license, newest first.
    fn list_devices(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Device>>> + Send;

    /// One device of a license.
    fn get_device(
        &self,
        license: &LicenseId,
        device: &DeviceId,
    ) -> impl Future<Output = StoreResult<Device>> + Send;

    /// Feature assignments of a license, ordered by feature code.
    fn list_license_features(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<LicenseFeature>>> + Send;
}

/// Products, versions, policies, features, license templates and custom field definitions.
///
/// # Contract
///
/// See the [module docs](self). Deleting a product that still has policies, features, license
/// templates or licenses, or a policy that licenses or templates use, is `Conflict`. Versions
/// are listed newest release first. A template naming a product or policy that does not exist
/// is `NotFound` on insert and update.
///
/// # Errors
///
/// See the [module docs](self).
pub trait CatalogStore: Send + Sync {
    /// Inserts a product.
    fn insert_product(
        &self,
        p: &Product,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The product with `id`.
    fn get_product(&self, id: &ProductId) -> impl Future<Output = StoreResult<Product>> + Send;
    /// Replaces a product.
    fn update_product(
        &self,
        p: &Product,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a product.
    fn delete_product(
        &self,
        id: &ProductId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Products, newest first.
    fn list_products(&self, limit: Limit)
    -> impl Future<Output = StoreResult<Vec<Product>>> + Send;

    /// Inserts a product version (unique per product by version string).
    fn insert_version(
        &self,
        v: &ProductVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The product version with `id`.
    fn get_version(
        &self,
        id: &ProductVersionId,
    ) -> impl Future<Output = StoreResult<ProductVersion>> + Send;
    /// Versions of a product, newest release first.
    fn list_versions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<ProductVersion>>> + Send;

    /// Inserts a policy.
    fn insert_policy(
        &self,
        p: &Policy,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The policy with `id`.
    fn get_policy(&self, id: &PolicyId) -> impl Future<Output = StoreResult<Policy>> + Send;
    /// Replaces a policy.
    fn update_policy(
        &self,
        p: &Policy,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a policy.
    fn delete_policy(
        &self,
        id: &PolicyId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Policies of a product, newest first.
    fn list_policies(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Policy>>> + Send;

    /// Inserts a feature.
    fn insert_feature(
        &self,
        f: &Feature,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The feature with `id`.
    fn get_feature(&self, id: &FeatureId) -> impl Future<Output = StoreResult<Feature>> + Send;
    /// The feature of `product` with `code`.
    fn find_feature(
        &self,
        product: &ProductId,
        code: &FeatureCode,
    ) -> impl Future<Output = StoreResult<Feature>> + Send;
    /// Features of a product, newest first.
    fn list_features(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Feature>>> + Send;

    /// Inserts a license template.
    fn insert_template(
        &self,
        t: &LicenseTemplate,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The template with `id`.
    fn get_template(
        &self,
        id: &TemplateId,
    ) -> impl Future<Output = StoreResult<LicenseTemplate>> + Send;
    /// Replaces a template.
    fn update_template(
        &self,
        t: &LicenseTemplate,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a template.
    fn delete_template(
        &self,
        id: &TemplateId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Templates of a product, newest first.
    fn list_templates(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<LicenseTemplate>>> + Send;

    /// Inserts a custom field definition.
    fn insert_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The definition with `id`.
    fn get_custom_field(
        &self,
        id: &CustomFieldId,
    ) -> impl Future<Output = StoreResult<CustomFieldDefinition>> + Send;
    /// Replaces a definition.
    fn update_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a definition; `Conflict` while a value is set for it (it is in use).
    fn delete_custom_field(
        &self,
        id: &CustomFieldId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Definitions of a product, newest first.
    fn list_custom_fields(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<CustomFieldDefinition>>> + Send;
}

/// Customers and custom field values.
///
/// # Contract
///
/// See the [module docs](self). Deleting a customer that licenses reference is `Conflict`.
/// Custom field values are keyed by (definition, resource); `put_custom_value` with `None`
/// clears.
///
/// # Errors
///
/// See the [module docs](self).
pub trait CustomerStore: Send + Sync {
    /// Inserts a customer.
    fn insert_customer(
        &self,
        c: &Customer,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The customer with `id`.
    fn get_customer(&self, id: &CustomerId) -> impl Future<Output = StoreResult<Customer>> + Send;
    /// Replaces a customer.
    fn update_customer(
        &self,
        c: &Customer,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a customer.
    fn delete_customer(
        &self,
        id: &CustomerId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Customers, newest first.
    fn list_customers(
        &self,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Customer>>> + Send;

    /// Sets (`Some`) or clears (`None`) the value of `definition` on a resource.
    fn put_custom_value(
        &self,
        definition: &CustomFieldId,
        resource_id: &str,
        value: Option<&CustomFieldValue>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Values set on a resource, ordered by code.
    fn list_custom_values(
        &self,
        resource_type: CustomFieldResourceType,
        resource_id: &str,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<CustomFieldValue>>> + Send;
}

/// Orders and subscriptions.
///
/// # Contract
///
/// See the [module docs](self). (external_system, external_id) is unique per product for
/// each kind.
///
/// # Errors
///
/// See the [module docs](self).
pub trait CommerceStore: Send + Sync {
    /// Inserts an order.
    fn insert_order(
        &self,
        o: &Order,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The order with `id`.
    fn get_order(&self, id: &OrderId) -> impl Future<Output = StoreResult<Order>> + Send;
    /// Replaces an order.
    fn update_order(
        &self,
        o: &Order,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Orders of a product, newest first.
    fn list_orders(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Order>>> + Send;

    /// Inserts a subscription.
    fn insert_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The subscription with `id`.
    fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> impl Future<Output = StoreResult<Subscription>> + Send;
    /// Replaces a subscription.
    fn update_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Subscriptions of a product, newest first.
    fn list_subscriptions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Subscription>>> + Send;
}

/// Management API keys, webhook endpoints, signing keys and the event log.
///
/// # Contract
///
/// See the [module docs](self). `find_api_key` looks a key up by the SHA-256 of its token (no
/// secret is ever compared in the clear). A webhook's secret is stored beside the endpoint so
/// deliveries can be signed; it is never part of the [`WebhookEndpoint`] record, and only
/// `get_webhook` returns it. `replace_signing_keys` swaps one key ring atomically (rotation
/// retires the old active key and adds the new one in one step): the global ring, or one
/// product's own, each with at most one active key and each replaced without touching the
/// others. `load_signing_keys` returns every ring's keys, each with its `product_id`.
///
/// # Errors
///
/// See the [module docs](self).
pub trait AccessStore: Send + Sync {
    /// Inserts an API key (unique by token hash).
    fn insert_api_key(
        &self,
        k: &ApiKey,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The key whose token hashes to `hash`.
    fn find_api_key(&self, hash: &SecretHash) -> impl Future<Output = StoreResult<ApiKey>> + Send;
    /// Records a use of the key.
    fn touch_api_key(
        &self,
        id: &ApiKeyId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The key with `id`.
    fn get_api_key(&self, id: &ApiKeyId) -> impl Future<Output = StoreResult<ApiKey>> + Send;
    /// Revokes key `id` (`is_active` becomes `false`, for good) with `events`, and returns it.
    ///
    /// # Contract
    ///
    /// The way back in must survive: when `id` is an admin key usable at `now`
    /// ([`ApiKey::is_admin_usable_at`]) and no other key is, nothing is written and the answer
    /// is [`StoreError::Conflict`]. The check and the write are one atomic step, so two
    /// concurrent revocations of the last two admin keys leave one of them. Revoking a key
    /// that is already inactive is not an error (the record is returned, nothing is written).
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id, `Conflict` as above, storage failures.
    fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: chrono::DateTime<chrono::Utc>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<ApiKey>> + Send;
    /// API keys, newest first.
    fn list_api_keys(&self, limit: Limit) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send;
    /// How many API keys exist (to know whether to bootstrap one).
    fn count_api_keys(&self) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Deletes at most `limit` sign-in sessions that expired before `expired_before`
    /// ([`ApiKey::is_session_expired_before`]) and returns how many it deleted (fewer than
    /// `limit`: none is left).
    ///
    /// # Contract
    ///
    /// Only sessions go (keys with a `user_id`); machine tokens stay, expired or revoked. A
    /// deleted session's token is unknown from then on (it was refused already). Concurrent
    /// calls, from this or another instance, never fail because of each other and never
    /// delete a key twice. No event is appended: the session's opening and end are recorded.
    ///
    /// # Errors
    ///
    /// Storage failures.
    fn purge_sessions(
        &self,
        expired_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Inserts a webhook endpoint with its secret.
    fn insert_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: &str,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The endpoint with `id` and its secret.
    fn get_webhook(
        &self,
        id: &WebhookId,
    ) -> impl Future<Output = StoreResult<(WebhookEndpoint, String)>> + Send;
    /// Replaces an endpoint; `secret` replaces the secret when given.
    fn update_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: Option<&str>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes an endpoint.
    fn delete_webhook(
        &self,
        id: &WebhookId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Endpoints, newest first.
    fn list_webhooks(
        &self,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<WebhookEndpoint>>> + Send;

    /// Every signing key of every ring (the global one, `product_id` `None`, and each
    /// product's own).
    fn load_signing_keys(&self) -> impl Future<Output = StoreResult<Vec<StoredKey>>> + Send;
    /// Replaces the key ring of `ring` (`None`: the global ring; `Some`: that product's own)
    /// with `keys` when its active kid is still `expected_active` (the active kid the caller
    /// saw, `None` for a ring without an active key, e.g. one not yet made or kept only for
    /// verification); `Conflict` otherwise, so two instances rotating at once cannot both
    /// win. The other rings are untouched. The keys are stored under `ring` whatever their
    /// own `product_id` says.
    fn replace_signing_keys(
        &self,
        ring: Option<&ProductId>,
        expected_active: Option<&str>,
        keys: &[StoredKey],
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Events matching `query`, newest first.
    fn list_events(
        &self,
        query: &EventQuery,
    ) -> impl Future<Output = StoreResult<EventPage>> + Send;
    /// Appends events that accompany no other write.
    fn append_events(&self, events: Vec<NewEvent>) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Everything a licentia host needs from storage.
pub trait Store:
    LicenseStore
    + CatalogStore
    + CustomerStore
    + CommerceStore
    + AccessStore
    + DeliveryStore
    + ReportStore
    + TelemetryStore
    + RegistrationStore
    + AllocationStore
    + ArtifactStore
    + UserStore
{
}

impl<S> Store for S where
    S: LicenseStore
        + CatalogStore
        + CustomerStore
        + CommerceStore
        + AccessStore
        + DeliveryStore
        + ReportStore
        + TelemetryStore
        + RegistrationStore
        + AllocationStore
        + ArtifactStore
        + UserStore
{
}
