//! License templates (an extension): a policy plus the defaults a new license of it gets —
//! a duration, feature assignments with their quotas, metadata — so billing creates licenses
//! by naming a template.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FeatureAssignRequest, Metadata, PolicyId, ProductId, TemplateId};

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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
}
