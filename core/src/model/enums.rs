//! The contract's enumerations, with their wire names.

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every variant, in the contract's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::model::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, $crate::model::UnknownVariant> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::model::UnknownVariant { kind: stringify!($name) }),
                }
            }
        }
    };
}

pub(super) use wire_enum;

wire_enum!(
    /// Where a webhook delivery stands (an extension of the contract).
    DeliveryStatus {
        /// Not delivered yet; attempted again at `next_attempt_at`.
        Pending = "pending",
        /// An attempt was answered 2xx.
        Delivered = "delivered",
        /// Every attempt failed and the retry window closed (a retry request reopens it).
        Failed = "failed",
    }
);

wire_enum!(
    /// Which key ring signs a product's runtime answers, refusals and offline envelopes (an
    /// extension of the contract, `Product.signing`).
    Signing {
        /// The global ring, shared by every product without keys of its own (the default).
        Global = "global",
        /// The product's own ring: a compromise or rotation of it touches no other product.
        Product = "product",
    }
);

// `wire_enum!` cannot mark a `#[default]` variant, so the default is written out.
#[allow(clippy::derivable_impls)]
impl Default for Signing {
    fn default() -> Self {
        Self::Global
    }
}

/// A string that names no variant of the enum `kind`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value")]
pub struct UnknownVariant {
    /// The enum's name.
    pub kind: &'static str,
}

wire_enum!(
    /// What kind of entitlement a license grants; decides which dates it needs.
    LicenseType {
        /// Never expires; may carry a `maintenance_expires_at` cutoff for version eligibility.
        Perpetual = "perpetual",
        /// Valid until `expires_at`, which it requires.
        TimeLimited = "time_limited",
        /// Renewed by a billing system; valid until `expires_at`, which it requires.
        Subscription = "subscription",
        /// A short evaluation; valid until `expires_at`, which it requires; gets no grace period.
        Trial = "trial",
        /// Metered usage; may carry an `expires_at`.
        Consumption = "consumption",
    }
);

wire_enum!(
    /// A license's status: stored (`active`, `suspended`, `revoked`) or effective (all five).
    LicenseStatus {
        /// Usable.
        Active = "active",
        /// Paused by an administrator; reinstating restores it.
        Suspended = "suspended",
        /// Past `expires_at` and past any grace period.
        Expired = "expired",
        /// Permanently ended; no runtime operation succeeds again.
        Revoked = "revoked",
        /// Past `expires_at` but within `grace_period_days`: still usable.
        GracePeriod = "grace_period",
    }
);

wire_enum!(
    /// Billing state of a subscription record.
    SubscriptionStatus {
        /// In a trial period.
        Trialing = "trialing",
        /// Paid and current.
        Active = "active",
        /// A payment failed.
        PastDue = "past_due",
        /// Paused by the customer or vendor.
        Paused = "paused",
        /// Ended.
        Canceled = "canceled",
    }
);

wire_enum!(
    /// State of an order record.
    OrderStatus {
        /// Not yet paid.
        Pending = "pending",
        /// Paid.
        Paid = "paid",
        /// Paid and delivered.
        Fulfilled = "fulfilled",
        /// Canceled before delivery.
        Canceled = "canceled",
        /// Money returned.
        Refunded = "refunded",
    }
);

wire_enum!(
    /// State of a device binding.
    DeviceStatus {
        /// Holds an activation seat.
        Active = "active",
        /// Released by the client.
        Deactivated = "deactivated",
        /// Refused forever.
        Blacklisted = "blacklisted",
        /// Released by an administrator.
        Reset = "reset",
        /// Released because the license ended (revocation).
        Expired = "expired",
    }
);

wire_enum!(
    /// How a device is identified.
    DeviceBindingKind {
        /// By the client's hardware `fingerprint`.
        Hardware = "hardware",
        /// By its container identity (`cluster_id`, `namespace`, `pod_name`, `container_id`).
        Container = "container",
    }
);

wire_enum!(
    /// Who caused an event.
    AuditActorType {
        /// A management token.
        ApiKey = "api_key",
        /// A license key at runtime.
        License = "license",
        /// A person signed in through OIDC.
        OidcSubject = "oidc_subject",
        /// A management user signed in with e-mail and password (an extension).
        User = "user",
        /// The system itself (bootstrap, scheduled work).
        System = "system",
    }
);

wire_enum!(
    /// Which records a custom field applies to.
    CustomFieldResourceType {
        /// Licenses.
        License = "license",
        /// Customers.
        Customer = "customer",
    }
);

wire_enum!(
    /// The type of a custom field's value.
    CustomFieldValueType {
        /// Free text.
        String = "string",
        /// A 64-bit integer.
        Integer = "integer",
        /// `true` or `false`.
        Boolean = "boolean",
        /// An RFC 3339 timestamp.
        Datetime = "datetime",
        /// One of the definition's `enum_options`.
        Enum = "enum",
    }
);

wire_enum!(
    /// A permission of a management token.
    ManagementScope {
        /// Every management operation.
        Admin = "admin",
        /// Read products, versions, policies, features, custom fields, orders, subscriptions.
        ProductRead = "product:read",
        /// Change those.
        ProductWrite = "product:write",
        /// Read licenses, customers, devices.
        LicenseRead = "license:read",
        /// Change licenses and customers.
        LicenseWrite = "license:write",
        /// Reset and blacklist devices.
        DeviceWrite = "device:write",
        /// Read the event log.
        EventRead = "event:read",
        /// Manage webhook endpoints.
        WebhookWrite = "webhook:write",
        /// Read the reports and the activity feed (an extension: the SDK document's scope).
        ReportRead = "report:read",
        /// Create, read and download report exports (an extension).
        ReportExport = "report:export",
        /// Read the operational views: summary, runtime errors, webhook health (an extension).
        OpsRead = "ops:read",
    }
);

/// Whether a signing key signs new responses or only verifies old ones (defined by
/// `licentia-verify`, which reads key sets).
pub use licentia_verify::KeyStatus;

wire_enum!(
    /// How often a feature's consumption counter starts again (beyond the contract).
    ResetPeriod {
        /// Never: the quota is a lifetime total.
        Never = "never",
        /// At every UTC midnight.
        Day = "day",
        /// At every Monday 00:00 UTC.
        Week = "week",
        /// At 00:00 UTC on the first of every month.
        Month = "month",
        /// At 00:00 UTC on January 1st.
        Year = "year",
    }
);

impl LicenseType {
    /// Whether licenses of this type must carry an `expires_at`.
    pub const fn requires_expiry(self) -> bool {
        matches!(self, Self::TimeLimited | Self::Subscription | Self::Trial)
    }

    /// Whether licenses of this type may carry an `expires_at` at all.
    pub const fn allows_expiry(self) -> bool {
        !matches!(self, Self::Perpetual)
    }

    /// Whether licenses of this type may carry a `maintenance_expires_at`.
    pub const fn allows_maintenance_cutoff(self) -> bool {
        matches!(self, Self::Perpetual)
    }

    /// Whether licenses of this type get the policy's grace period after expiry.
    /// Trials end exactly when they say.
    pub const fn gets_grace_period(self) -> bool {
        !matches!(self, Self::Trial)
    }
}

impl ManagementScope {
    /// Whether a token holding `self` may perform an operation that requires `required`.
    pub fn satisfies(self, required: ManagementScope) -> bool {
        self == Self::Admin || self == required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for s in ManagementScope::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<ManagementScope>().unwrap(), *s);
        }
        assert_eq!(LicenseStatus::GracePeriod.as_str(), "grace_period");
        assert!("nope".parse::<LicenseType>().is_err());
    }

    #[test]
    fn admin_satisfies_everything() {
        for s in ManagementScope::ALL {
            assert!(ManagementScope::Admin.satisfies(*s));
        }
        assert!(!ManagementScope::LicenseRead.satisfies(ManagementScope::LicenseWrite));
    }
}
