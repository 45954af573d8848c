//! Management records, shaped exactly as the contract's schemas.
//!
//! Secret material is never part of a record's wire form: a [`License`] keeps only
//! `license_key_prefix`/`license_key_last4` for display and the SHA-256 of the key in
//! [`License::key_hash`], which is skipped by serde.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::crypto::SecretHash;

use super::{
    ApiKeyId, AuditActorType, ContractId, CustomFieldCode, CustomFieldId, CustomFieldResourceType,
    CustomFieldValueType, CustomerCode, CustomerId, DeliveryStatus, DeviceBindingKind, DeviceId,
    DeviceStatus, FeatureCode, FeatureId, LeaseId, LicenseId, LicenseStatus, LicenseType,
    ManagementScope, Metadata, OrderId, OrderStatus, PolicyCode, PolicyId, PoolName, ProductCode,
    ProductId, ProductVersionId, ResetPeriod, Signing, SubscriptionId, SubscriptionStatus, UserId,
    WebhookId,
};

/// A product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub code: ProductCode,
    pub metadata: Metadata,
    /// Which key ring signs the product's answers (an extension). The engine reports the
    /// ring it signs with; the stored value is only what was last asked for.
    #[serde(default)]
    pub signing: Signing,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A released version of a product; the catalog version eligibility checks against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductVersion {
    pub id: ProductVersionId,
    pub product_id: ProductId,
    /// Valid semver.
    pub version: String,
    pub released_at: DateTime<Utc>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The rules a license follows. Every field beyond the contract's is documented at its place;
/// defaults for fields a create request omits are in [`PolicyDefaults`](crate::rules::policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: PolicyId,
    pub product_id: ProductId,
    pub name: String,
    pub code: PolicyCode,
    pub license_type: LicenseType,
    /// Hardware and container activations that may be active at once.
    pub max_activations: u32,
    /// Concurrent floating leases; absent means the policy is not floating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_floating_users: Option<u32>,
    /// Container activations that may be active at once (within `max_activations`); absent
    /// means only `max_activations` limits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_container_instances: Option<u32>,
    /// How long a floating lease lives without a heartbeat.
    pub floating_timeout_minutes: u32,
    /// Days a non-trial license stays usable after `expires_at`.
    pub grace_period_days: u32,
    /// How often clients should validate; drives `next_check_at`.
    pub validation_interval_minutes: u32,
    /// When true, a lease expires `floating_timeout_minutes` after its last heartbeat; when
    /// false, after checkout or its last heartbeat, whichever is later, but heartbeats are
    /// optional because checkin is expected.
    pub require_heartbeat: bool,
    pub allow_offline_activation: bool,
    /// How long an offline envelope stays valid.
    pub offline_grace_days: u32,
    pub allow_vm: bool,
    pub allow_container: bool,
    /// Ownership transfers allowed over the license's life.
    pub max_transfers: u32,
    /// How often an activated device must be heard from (an extension); absent means never.
    /// A device silent past this plus `device_heartbeat_grace_minutes` is released
    /// ([`device_heartbeat`](crate::rules::device_heartbeat)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_heartbeat_minutes: Option<u32>,
    /// Minutes of silence tolerated past `device_heartbeat_minutes` before the release.
    #[serde(default)]
    pub device_heartbeat_grace_minutes: u32,
    /// The longest a floating seat may be borrowed for offline use, in hours (an extension);
    /// absent means borrowing is not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_borrow_hours: Option<u32>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product feature that licenses can be granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub id: FeatureId,
    pub product_id: ProductId,
    pub code: FeatureCode,
    pub name: String,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub code: CustomerCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A management API key. The token itself is shown once at creation; only its hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub key_prefix: String,
    pub scopes: Vec<ManagementScope>,
    /// CIDR blocks the token may be used from; empty means anywhere.
    pub allowed_cidrs: Vec<String>,
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The management user whose sign-in session this token is (an extension): it acts with
    /// that user's current role while the user is active, and its events name the user.
    /// `None` for machine tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the token.
    #[serde(skip)]
    pub token_hash: SecretHash,
}

impl ApiKey {
    /// Whether the key grants `required` (`admin` grants everything).
    pub fn has_scope(&self, required: ManagementScope) -> bool {
        self.scopes.iter().any(|s| s.satisfies(required))
    }

    /// Whether the key may be used at `now` (active and not expired); CIDRs are the host's
    /// check because only it knows the peer address.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether the key is an admin key usable at `now`: one that can still create tokens (the
    /// last such key is never revoked, [`AccessStore::revoke_api_key`](crate::store::AccessStore::revoke_api_key)).
    pub fn is_admin_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.is_usable_at(now) && self.has_scope(ManagementScope::Admin)
    }

    /// Whether revoking this key at `now` leaves a way back in: it is not an admin key usable
    /// now, or another of `keys` is. The rule stores apply atomically in
    /// [`AccessStore::revoke_api_key`](crate::store::AccessStore::revoke_api_key).
    pub fn may_be_revoked_among<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a ApiKey>,
        now: DateTime<Utc>,
    ) -> bool {
        !self.is_admin_usable_at(now)
            || keys
                .into_iter()
                .any(|k| k.id != self.id && k.is_admin_usable_at(now))
    }

    /// Whether the key is a sign-in session (it names a user) that expired before `at`:
    /// what [`AccessStore::purge_sessions`](crate::store::AccessStore::purge_sessions)
    /// deletes. Machine tokens are never purged, expired or not: their record is the
    /// operator's.
    pub fn is_session_expired_before(&self, at: DateTime<Utc>) -> bool {
        self.user_id.is_some() && self.expires_at.is_some_and(|e| e < at)
    }
}

/// A subscription record from a billing system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub product_id: ProductId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    pub external_system: String,
    pub external_id: String,
    pub status: SubscriptionStatus,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order record from a commerce system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub product_id: ProductId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    pub external_system: String,
    pub external_id: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<DateTime<Utc>>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A custom field definition of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDefinition {
    pub id: CustomFieldId,
    pub product_id: ProductId,
    pub resource_type: CustomFieldResourceType,
    pub code: CustomFieldCode,
    pub name: String,
    pub value_type: CustomFieldValueType,
    pub is_required: bool,
    pub enum_options: Vec<String>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A typed custom field value; exactly one variant matches the definition's `value_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    Datetime(DateTime<Utc>),
    Enum(String),
}

impl CustomValue {
    /// The value type this value has.
    pub fn value_type(&self) -> CustomFieldValueType {
        match self {
            Self::String(_) => CustomFieldValueType::String,
            Self::Integer(_) => CustomFieldValueType::Integer,
            Self::Boolean(_) => CustomFieldValueType::Boolean,
            Self::Datetime(_) => CustomFieldValueType::Datetime,
            Self::Enum(_) => CustomFieldValueType::Enum,
        }
    }
}

/// A custom field value of a license or customer, joined with its definition as the contract's
/// `CustomFieldValue` schema shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldValue {
    pub definition_id: CustomFieldId,
    pub product_id: ProductId,
    pub resource_type: CustomFieldResourceType,
    pub resource_id: String,
    pub code: CustomFieldCode,
    pub name: String,
    pub value_type: CustomFieldValueType,
    pub is_required: bool,
    pub enum_options: Vec<String>,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer_value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean_value: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime_value: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_value: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl CustomFieldValue {
    /// This value as the contract shows it on `resource_id`: joined with its definition as
    /// the definition is now (its name, options or metadata may change after the value was
    /// set).
    pub fn joined_with(&self, def: &CustomFieldDefinition, resource_id: &str) -> Self {
        Self {
            definition_id: def.id.clone(),
            product_id: def.product_id.clone(),
            resource_type: def.resource_type,
            resource_id: resource_id.to_owned(),
            code: def.code.clone(),
            name: def.name.clone(),
            value_type: def.value_type,
            is_required: def.is_required,
            enum_options: def.enum_options.clone(),
            metadata: def.metadata.clone(),
            ..self.clone()
        }
    }
}

/// A license.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    pub id: LicenseId,
    pub product_id: ProductId,
    pub policy_id: PolicyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    /// Extension: the pool the license waits in, unassigned, until
    /// `POST /api/v1/pools/{pool}/assign` hands it to a customer (which clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolName>,
    /// Extension: the reseller contract the license was generated under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<ContractId>,
    /// Extension: the license users it is assigned to, each with a seat limit of their own.
    /// A license with any is user-based: its devices are activated with a user's credentials
    /// ([`rules::license_users`](crate::rules::license_users)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<AssignedUser>,
    /// The stored status: `active`, `suspended` or `revoked` (expiry is derived, see
    /// [`rules::status`](crate::rules::status)). Management reads show the effective status.
    pub status: LicenseStatus,
    pub license_key_prefix: String,
    pub license_key_last4: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    pub active_device_count: u32,
    pub times_activated: u32,
    pub times_transferred: u32,
    pub total_consumptions: i64,
    pub entitlement_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_expires_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// SHA-256 of the license key.
    #[serde(skip)]
    pub key_hash: SecretHash,
    /// When a client last validated (not part of the contract's `License` schema).
    #[serde(skip)]
    pub last_validated_at: Option<DateTime<Utc>>,
}

/// A license user assigned to a license (an extension), with how many devices that user may
/// activate on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedUser {
    pub user_id: UserId,
    /// Active devices this user may hold on the license (within the license's own limit).
    pub max_activations: u32,
    pub assigned_at: DateTime<Utc>,
}

/// A feature granted to a license, with its usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseFeature {
    pub license_id: LicenseId,
    pub feature_id: FeatureId,
    pub feature_code: FeatureCode,
    pub feature_name: String,
    pub enabled: bool,
    /// The quota per period; absent means unmetered (unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumptions: Option<i64>,
    /// Units consumed in the current period.
    pub total_consumptions: i64,
    /// `max_consumptions - total_consumptions`, never below zero; absent when unmetered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
    /// Beyond the contract: whether consumption may go past the quota.
    #[serde(default)]
    pub allow_overages: bool,
    /// Beyond the contract: how far past the quota, when overages are allowed; absent means
    /// without bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overages: Option<i64>,
    /// Beyond the contract: when the counter starts again.
    #[serde(default = "reset_never")]
    pub reset_period: ResetPeriod,
    /// Beyond the contract: start of the current consumption period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_started_at: Option<DateTime<Utc>>,
    /// Beyond the contract: whether negative amounts (credits back) are accepted.
    #[serde(default)]
    pub allow_negative: bool,
    /// Beyond the contract: the feature's own floating pool (leases checked out with its
    /// `feature_code`); absent means the feature is not floating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating_seats: Option<u32>,
    /// Beyond the contract: how long a lease of the feature's pool lives without a heartbeat;
    /// absent means the policy's `floating_timeout_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating_timeout_minutes: Option<u32>,
}

fn reset_never() -> ResetPeriod {
    ResetPeriod::Never
}

/// A device binding of a license.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub license_id: LicenseId,
    pub binding_kind: DeviceBindingKind,
    /// The identity the binding is keyed by (see [`Binding::key`](crate::rules::Binding)).
    pub binding_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub is_vm: bool,
    pub is_container: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    pub status: DeviceStatus,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validated_at: Option<DateTime<Utc>>,
    /// The end of the latest offline license issued to the device: the heartbeat sweep never
    /// releases it before then (it may be working offline with a valid license).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_until: Option<DateTime<Utc>>,
    /// Extension: the license user who activated the device, on a user-based license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// An air-gapped device's release key (Ed25519, public, base64), from its activation
    /// request: its signed release file frees the seat
    /// ([`air_gap`](crate::crypto::air_gap)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_key: Option<String>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A floating lease (not a contract record; leases are visible through runtime responses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    pub license_id: LicenseId,
    /// The device id reported to the lease holder.
    pub device_id: DeviceId,
    pub binding_key: String,
    /// SHA-256 of the lease token.
    pub token_hash: SecretHash,
    /// The `app_version` given at checkout, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The feature whose pool the lease holds a slot of; absent for the license's own pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_code: Option<FeatureCode>,
    /// Set on a borrowed lease: it holds its slot until then without heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrowed_until: Option<DateTime<Utc>>,
    pub checked_out_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set when checked in; a checked-in lease no longer holds a slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<DateTime<Utc>>,
}

impl Lease {
    /// Whether the lease holds a slot at `now`: not checked in and not past its expiry.
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.checked_in_at.is_none() && now < self.expires_at
    }
}

/// A recorded consumption (a credit when `amount` is negative): kept so a replayed
/// `event_id` counts once, and the usage ledger's row.
///
/// The product, customer, order, subscription and feature code are the license's when the
/// consumption was recorded, so usage stays with the customer who used it after a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumptionRecord {
    pub license_id: LicenseId,
    pub event_id: String,
    pub feature_id: FeatureId,
    pub amount: i64,
    pub recorded_at: DateTime<Utc>,
    pub feature_code: FeatureCode,
    pub product_id: ProductId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

impl ConsumptionRecord {
    /// `amount` units of feature `feature_id` (`feature_code`) recorded on `license` at `at`
    /// under `event_id`, with the license's product, customer, order and subscription.
    pub fn new(
        license: &License,
        feature_id: FeatureId,
        feature_code: FeatureCode,
        event_id: String,
        amount: i64,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            license_id: license.id.clone(),
            event_id,
            feature_id,
            amount,
            recorded_at: at,
            feature_code,
            product_id: license.product_id.clone(),
            customer_id: license.customer_id.clone(),
            order_id: license.order_id.clone(),
            subscription_id: license.subscription_id.clone(),
        }
    }
}

/// An entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Assigned by the store, strictly increasing.
    pub sequence: i64,
    pub event_type: String,
    pub actor_type: AuditActorType,
    pub actor_id: String,
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Redacted: never holds a secret, fingerprint or other binding value.
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A webhook endpoint. The secret is shown once on create or rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub name: String,
    pub url: String,
    pub secret_prefix: String,
    /// Empty means every event.
    pub event_types: Vec<String>,
    pub is_active: bool,
    /// When a delivery to the endpoint was last attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// How that attempt went: `delivered` or `failed` (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_status: Option<DeliveryStatus>,
    /// The status code the endpoint answered it with, if it answered (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    /// Since when every attempt to the endpoint has failed; cleared by a success or an
    /// update of the endpoint (an extension). An endpoint failing for long enough is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{license, policy};

    #[test]
    fn secrets_never_serialize_and_names_match_the_contract() {
        let p = policy(LicenseType::TimeLimited);
        let l = license(&p);
        let json = serde_json::to_value(&l).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            !keys
                .iter()
                .any(|k| k.contains("hash") || k.contains("last_validated"))
        );
        for required in [
            "id",
            "product_id",
            "policy_id",
            "status",
            "license_key_prefix",
            "license_key_last4",
            "active_device_count",
            "times_activated",
            "times_transferred",
            "total_consumptions",
            "entitlement_version",
            "metadata",
            "created_at",
            "updated_at",
        ] {
            assert!(keys.contains(&required), "{required}");
        }
        assert!(
            !keys.contains(&"customer_id"),
            "absent optionals are omitted"
        );
        let back: Policy = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
