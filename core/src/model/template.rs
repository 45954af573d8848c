//! License templates (an extension): a policy plus the defaults a new license of it gets —
//! a duration, feature assignments with their quotas, metadata — so billing creates licenses
//! by naming a template.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CustomFieldId, FeatureAssignRequest, Metadata, PolicyId, ProductId, TemplateId};

/// A product's license template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseTemplate {
    pub id: TemplateId,
    pub product_id: ProductId,
    pub name: String,
    /// The policy of the licenses made from it (the product's).
    pub policy_id: PolicyId,
    /// A new license expires this many days after its creation unless the request says when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_days: Option<u32>,
    /// Assigned to every new license, as `POST /api/v1/licenses/{id}/features` assigns them.
    pub features: Vec<FeatureAssignRequest>,
    /// A new license's metadata starts from this (the request's members win).
    pub metadata: Metadata,
    /// Set on every new license, as `PUT /api/v1/licenses/{id}/custom-fields/{field_id}`
    /// sets them.
    #[serde(default)]
    pub custom_fields: Vec<TemplateCustomValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A custom field value a template gives its licenses: a license field definition of the
/// template's product and exactly one value of its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateCustomValue {
    pub field_id: CustomFieldId,
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
}

/// The body of `POST` (name and policy_id required) and `PATCH` (each member given replaces
/// the template's; `duration_days: 0` removes the duration)
/// `/api/v1/products/{id}/license-templates…`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseTemplateFields {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub policy_id: Option<String>,
    #[serde(default)]
    pub duration_days: Option<u32>,
    #[serde(default)]
    pub features: Option<Vec<FeatureAssignRequest>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub custom_fields: Option<Vec<TemplateCustomValue>>,
}
