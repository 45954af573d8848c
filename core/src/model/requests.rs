//! Request bodies the rules take, decoded strictly (unknown fields are refused).
//!
//! These are the contract's request schemas that carry licensing decisions. Bodies that only
//! create catalog records are the engine's concern.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CustomerId, FeatureId, LicenseType, Metadata, OrderId, SubscriptionId};

/// The contract's `RuntimeBindingRequest`: who is asking, and from what.
///
/// Hardware requests use `fingerprint` and leave `is_container` false. Container requests set
/// `is_container` and supply at least one of `cluster_id`, `namespace`, `pod_name` or
/// `container_id`. [`Binding::from_request`](crate::rules::Binding::from_request) checks this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeBindingRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default)]
    pub is_vm: bool,
    #[serde(default)]
    pub is_container: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

/// A closed request body made of the binding fields (as [`RuntimeBindingRequest`]) plus
/// `$field`s of its own, with its binding part by copy (`binding`) or by move (`From`). One
/// object, not `flatten`: serde refuses unknown fields only on a struct that is not
/// flattened.
macro_rules! binding_request {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub fingerprint: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub hostname: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub os: Option<String>,
            #[serde(default)]
            pub is_vm: bool,
            #[serde(default)]
            pub is_container: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub container_id: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub cluster_id: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub namespace: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub pod_name: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub app_version: Option<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// The binding part of the request.
            pub fn binding(&self) -> RuntimeBindingRequest {
                RuntimeBindingRequest {
                    fingerprint: self.fingerprint.clone(),
                    hostname: self.hostname.clone(),
                    os: self.os.clone(),
                    is_vm: self.is_vm,
                    is_container: self.is_container,
                    container_id: self.container_id.clone(),
                    cluster_id: self.cluster_id.clone(),
                    namespace: self.namespace.clone(),
                    pod_name: self.pod_name.clone(),
                    app_version: self.app_version.clone(),
                }
            }
        }

        impl From<$name> for RuntimeBindingRequest {
            fn from(r: $name) -> Self {
                Self {
                    fingerprint: r.fingerprint,
                    hostname: r.hostname,
                    os: r.os,
                    is_vm: r.is_vm,
                    is_container: r.is_container,
                    container_id: r.container_id,
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    pod_name: r.pod_name,
                    app_version: r.app_version,
                }
            }
        }
    };
}

binding_request! {
    /// The body of `POST /api/v1/license/consume`.
    ///
    /// The contract writes it as an `allOf` of two closed objects, which no body can satisfy;
    /// the intended body (DESIGN 5) is one object: the binding fields plus `feature_code`,
    /// `amount` and `event_id`. Anything else is refused.
    ConsumeRequest {
        /// The metered feature. Validated by the rule so a bad code gets a clear 422.
        feature_code: String,
        /// Units to consume; defaults to 1. Negative amounts give credits back where allowed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<i64>,
        /// The client's id for this consumption: replaying it counts once.
        event_id: String,
    }
}

binding_request! {
    /// The body of `POST /api/v1/device/activate` (an extension): a pre-registered device's
    /// serial and secret, and its binding fields as for activate.
    DeviceActivateRequest {
        /// The serial it was registered with.
        serial: String,
        /// The secret shown when it was registered.
        device_secret: super::SecretString,
    }
}

binding_request! {
    /// The body of `POST /api/v1/license/check` and `POST /api/v1/license/floating/checkout`:
    /// the binding fields, and (an extension) a `feature_code` — for check the one feature to
    /// report, for checkout the feature whose own floating pool to take a slot of. One closed
    /// object, as for consume.
    FeatureBindingRequest {
        /// The feature (extension); absent: every feature (check), the license's pool
        /// (checkout).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feature_code: Option<String>,
    }
}

binding_request! {
    /// The body of `POST /api/v1/license/floating/borrow` (an extension): the binding fields,
    /// how many `hours` to borrow a floating seat for, and optionally the `feature_code` of the
    /// feature whose own pool to borrow from.
    FloatingBorrowRequest {
        /// How long to borrow for: 1 up to the policy's `max_borrow_hours`.
        hours: u32,
        /// The feature whose pool to borrow from; absent: the license's pool.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feature_code: Option<String>,
    }
}

/// The body of check.
pub type CheckRequest = FeatureBindingRequest;
/// The body of floating checkout.
pub type FloatingCheckoutRequest = FeatureBindingRequest;

impl FeatureBindingRequest {
    /// The binding part and the feature asked for, moved out (nothing is copied).
    pub fn into_parts(mut self) -> (RuntimeBindingRequest, Option<String>) {
        let feature = self.feature_code.take();
        (self.into(), feature)
    }
}

/// The body of floating heartbeat and checkin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingLeaseRequest {
    pub lease_token: String,
    /// Extension: the feature whose pool the lease is of; when given it must be the lease's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_code: Option<String>,
}

/// The contract's `LicenseRenewRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_by_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

/// The contract's `LicenseTransferRequest`. `customer_id: ""` clears the linked customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub reset_devices: bool,
}

/// The contract's `LicenseFeatureAssignRequest`, with the metering extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureAssignRequest {
    pub feature_id: FeatureId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumptions: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Extension: allow consumption past the quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_overages: Option<bool>,
    /// Extension: how far past the quota (absent: without bound when overages are allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overages: Option<i64>,
    /// Extension: periodic reset of the counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_period: Option<super::ResetPeriod>,
    /// Extension: accept negative amounts (credits back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_negative: Option<bool>,
    /// Extension: the feature's own floating pool size (0: not floating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating_seats: Option<i64>,
    /// Extension: how long the pool's leases live without a heartbeat (0: the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating_timeout_minutes: Option<i64>,
}

/// The contract's `LicenseFeatureUsageResetRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageResetRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_credits: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumptions: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_consumptions: Option<i64>,
    #[serde(default)]
    pub reset_consumed: bool,
}

/// Every `Policy` field as optional: the body of policy create and update (an extension of
/// the contract's narrower `PolicyCreateRequest`/`PolicyUpdateRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDraft {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_type: Option<LicenseType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_activations: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_floating_users: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_container_instances: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating_timeout_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_interval_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_heartbeat: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_offline_activation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_grace_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_vm: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_container: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_transfers: Option<i64>,
    /// `0` turns device heartbeats off (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_heartbeat_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_heartbeat_grace_minutes: Option<i64>,
    /// `0` turns borrowing off (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_borrow_hours: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// The license fields a create request decides, after ids are resolved by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseTerms {
    pub customer_id: Option<CustomerId>,
    pub order_id: Option<OrderId>,
    pub subscription_id: Option<SubscriptionId>,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub maintenance_expires_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
}

binding_request! {
    /// The body of `POST /api/v1/license/downloads` (an extension): the artifact to fetch
    /// and the binding fields of the device asking, as for validate.
    DownloadRequest {
        /// The artifact (of a version the license is entitled to).
        artifact_id: String,
    }
}
