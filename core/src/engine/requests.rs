//! Management request bodies, decoded strictly (unknown fields are refused), named as the
//! contract's schemas. Rule-bearing bodies (`PolicyDraft`, `RenewRequest`, …) are in
//! [`model`](crate::model).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    CustomFieldResourceType, CustomFieldValueType, ManagementScope, Metadata, OrderStatus, Signing,
    SubscriptionStatus,
};

/// `ProductCreateRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    pub name: String,
    pub code: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Which key ring signs the product's answers (an extension; default `global`).
    #[serde(default)]
    pub signing: Option<Signing>,
}

/// `ProductUpdateRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Switches the product to its own key ring or back to the global one (an extension).
    #[serde(default)]
    pub signing: Option<Signing>,
}

/// `ProductVersionCreateRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionCreate {
    pub version: String,
    /// Defaults to now.
    #[serde(default)]
    pub released_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `FeatureCreateRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureCreate {
    pub name: String,
    pub code: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `CustomerCreateRequest` and `CustomerUpdateRequest` (all optional for updates).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerFields {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `LicenseCreateRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreate {
    pub product_id: String,
    pub policy_id: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub customer_email: Option<String>,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub maintenance_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `APIKeyCreateRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    pub name: String,
    /// Defaults to `["admin"]`.
    #[serde(default)]
    pub scopes: Option<Vec<ManagementScope>>,
    #[serde(default)]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `WebhookEndpointCreateRequest` and `WebhookEndpointUpdateRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFields {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub secret: Option<String>,
    /// Update only: generate and return a new secret.
    #[serde(default)]
    pub rotate_secret: Option<bool>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `OrderCreateRequest` and `OrderUpdateRequest`. An empty `customer_id` or
/// `subscription_id` on update clears the link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderFields {
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub external_system: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub status: Option<OrderStatus>,
    #[serde(default)]
    pub period_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub period_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `SubscriptionCreateRequest` and `SubscriptionUpdateRequest`. An empty `customer_id` on
/// update clears the link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFields {
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub external_system: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub status: Option<SubscriptionStatus>,
    #[serde(default)]
    pub current_period_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub current_period_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancel_at_period_end: Option<bool>,
    #[serde(default)]
    pub canceled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `CustomFieldDefinitionCreateRequest` and `CustomFieldDefinitionUpdateRequest`
/// (`resource_type` and `value_type` cannot change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldFields {
    #[serde(default)]
    pub resource_type: Option<CustomFieldResourceType>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value_type: Option<CustomFieldValueType>,
    #[serde(default)]
    pub is_required: Option<bool>,
    #[serde(default)]
    pub enum_options: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `CustomFieldValueUpsertRequest`: exactly one typed value, or `clear: true`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomValueUpsert {
    #[serde(default)]
    pub clear: Option<bool>,
    #[serde(default)]
    pub string_value: Option<String>,
    #[serde(default)]
    pub integer_value: Option<i64>,
    #[serde(default)]
    pub boolean_value: Option<bool>,
    #[serde(default)]
    pub datetime_value: Option<DateTime<Utc>>,
    #[serde(default)]
    pub enum_value: Option<String>,
}
