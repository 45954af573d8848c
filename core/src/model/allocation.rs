//! Pools and reseller contracts (extensions): licenses made ahead of a sale and handed out
//! later. A pool holds unassigned licenses until `POST /api/v1/pools/{pool}/assign` gives N of
//! them, at random, to a customer; a contract lets a reseller generate licenses up to a
//! quota, and a revoked one gives its place back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ContractId, CustomerId, Metadata, PolicyId, ProductId, TemplateId};

/// A reseller's contract: licenses of one product and policy (or template), at most
/// `license_quota` of them not revoked at any time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub id: ContractId,
    pub name: String,
    /// The reseller; every license generated under the contract is theirs.
    pub customer_id: CustomerId,
    pub product_id: ProductId,
    pub policy_id: PolicyId,
    /// The template generated licenses are made from, when the contract names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<TemplateId>,
    /// How many of its licenses may be not revoked at once.
    pub license_quota: u32,
    /// How many of its licenses are not revoked: counted by the store on every read, so it is
    /// never stored apart from the licenses themselves.
    #[serde(default)]
    pub licenses_issued: u32,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Contract {
    /// How many more licenses the quota allows now.
    pub fn remaining(&self) -> u32 {
        self.license_quota.saturating_sub(self.licenses_issued)
    }
}

/// The body of `POST /api/v1/contracts`: a reseller, and either a template (its product and
/// policy then come from it) or a product and policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractCreate {
    pub customer_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub policy_id: Option<String>,
    #[serde(default)]
    pub template_id: Option<String>,
    pub license_quota: u32,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// The body of `POST /api/v1/contracts/{id}/licenses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractLicensesCreate {
    /// How many licenses, 1 to the bulk maximum and at most what the quota leaves.
    pub count: u32,
}

/// The body of `POST /api/v1/pools/{pool}/assign`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolAssign {
    /// Who gets the licenses.
    pub customer_id: String,
    /// How many, 1 to the bulk maximum.
    pub count: u32,
}
