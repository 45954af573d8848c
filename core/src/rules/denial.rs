//! Business refusals as values.
//!
//! A rule that refuses returns a [`Denial`] listing every failing rule, not only the first, so
//! a client can fix everything at once and an operator can explain a refusal completely. Each
//! reason has a stable SCREAMING_SNAKE [`DenialCode`]; the code's [`DenialKind`] tells a host
//! which class of failure it is (the HTTP server maps kinds to statuses in one table).

use std::fmt;

use serde::Serialize;

use crate::model::ProductId;

/// What class of failure a code is; a host maps it to its own error space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum DenialKind {
    /// Well-formed but invalid input (HTTP 422).
    Invalid,
    /// The license, device, policy or version state forbids the operation (HTTP 403).
    Forbidden,
    /// A device, lease or assignment the request names does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with recorded state (HTTP 409).
    Conflict,
}

macro_rules! denial_codes {
    ($($(#[$doc:meta])* $variant:ident = ($wire:literal, $kind:ident),)+) => {
        /// A stable reason code. The wire string never changes once published.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DenialCode {
            $($(#[$doc])* $variant,)+
        }

        impl DenialCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [DenialCode] = &[$(DenialCode::$variant),+];

            /// The SCREAMING_SNAKE wire string.
            pub const fn as_str(self) -> &'static str {
                match self { $(DenialCode::$variant => $wire,)+ }
            }

            /// The class of failure.
            pub const fn kind(self) -> DenialKind {
                match self { $(DenialCode::$variant => DenialKind::$kind,)+ }
            }
        }
    };
}

denial_codes! {
    /// The license is suspended.
    LicenseSuspended = ("LICENSE_SUSPENDED", Forbidden),
    /// The license is past its expiry and any grace period.
    LicenseExpired = ("LICENSE_EXPIRED", Forbidden),
    /// The license is revoked.
    LicenseRevoked = ("LICENSE_REVOKED", Forbidden),
    /// The license's `starts_at` is in the future.
    LicenseNotStarted = ("LICENSE_NOT_STARTED", Forbidden),
    /// Every activation seat is taken.
    ActivationLimitReached = ("ACTIVATION_LIMIT_REACHED", Forbidden),
    /// Every container seat (`max_container_instances`) is taken.
    ContainerLimitReached = ("CONTAINER_LIMIT_REACHED", Forbidden),
    /// The binding was blacklisted.
    DeviceBlacklisted = ("DEVICE_BLACKLISTED", Forbidden),
    /// The request comes from a VM and the policy forbids VMs.
    VmNotAllowed = ("VM_NOT_ALLOWED", Forbidden),
    /// The request comes from a container and the policy forbids containers.
    ContainerNotAllowed = ("CONTAINER_NOT_ALLOWED", Forbidden),
    /// The policy allows no floating leases.
    FloatingNotEnabled = ("FLOATING_NOT_ENABLED", Forbidden),
    /// Every floating lease is taken.
    FloatingPoolExhausted = ("FLOATING_POOL_EXHAUSTED", Forbidden),
    /// The policy allows no borrowing of floating seats (`max_borrow_hours`).
    BorrowNotAllowed = ("BORROW_NOT_ALLOWED", Forbidden),
    /// The policy forbids offline licenses.
    OfflineNotAllowed = ("OFFLINE_NOT_ALLOWED", Forbidden),
    /// The serial is activated as another device, which still holds its seat.
    RegistrationBound = ("REGISTRATION_BOUND", Forbidden),
    /// The session belongs to another device than the request's binding.
    SessionDeviceMismatch = ("SESSION_DEVICE_MISMATCH", Forbidden),
    /// The feature is not assigned to the license.
    FeatureNotEntitled = ("FEATURE_NOT_ENTITLED", Forbidden),
    /// The feature is assigned but disabled.
    FeatureDisabled = ("FEATURE_DISABLED", Forbidden),
    /// The feature's assignment has expired.
    FeatureExpired = ("FEATURE_EXPIRED", Forbidden),
    /// The consumption would go past the quota and any allowed overage.
    QuotaExceeded = ("QUOTA_EXCEEDED", Forbidden),
    /// The version is in the catalog but released after the license's eligibility cutoff.
    VersionNotEntitled = ("VERSION_NOT_ENTITLED", Forbidden),
    /// The product has a version catalog and the version is not in it.
    VersionUnknown = ("VERSION_UNKNOWN", Forbidden),
    /// The pool holds fewer unassigned licenses than asked for.
    PoolExhausted = ("POOL_EXHAUSTED", Conflict),
    /// Too many wrong passwords: the management user's account is locked for a while.
    AccountLocked = ("ACCOUNT_LOCKED", Forbidden),
    /// The license is user-based: its devices are activated with a license user's
    /// credentials, not the license key.
    UserCredentialsRequired = ("USER_CREDENTIALS_REQUIRED", Forbidden),
    /// The license user has no license assigned (or not the one named).
    LicenseNotAssigned = ("LICENSE_NOT_ASSIGNED", Forbidden),
    /// The license user has several licenses: the request must name one
    /// (`Licentia-License`).
    LicenseChoiceRequired = ("LICENSE_CHOICE_REQUIRED", Invalid),
    /// The device is activated on the license by another user (or by the license key).
    DeviceHeldByAnotherUser = ("DEVICE_HELD_BY_ANOTHER_USER", Forbidden),
    /// The contract's quota leaves fewer licenses than asked for.
    ContractQuotaExceeded = ("CONTRACT_QUOTA_EXCEEDED", Conflict),
    /// Every allowed ownership transfer has been used.
    TransferLimitReached = ("TRANSFER_LIMIT_REACHED", Forbidden),
    /// No active device with this binding on this license.
    DeviceNotActivated = ("DEVICE_NOT_ACTIVATED", NotFound),
    /// The download token is past its `expires_at`: ask for a new one.
    DownloadExpired = ("DOWNLOAD_EXPIRED", NotFound),
    /// No device with this id on this license.
    DeviceNotFound = ("DEVICE_NOT_FOUND", NotFound),
    /// No live lease with this token.
    LeaseNotFound = ("LEASE_NOT_FOUND", NotFound),
    /// The lease timed out and its slot is gone.
    LeaseExpired = ("LEASE_EXPIRED", NotFound),
    /// The feature is not assigned to the license (management view).
    FeatureNotAssigned = ("FEATURE_NOT_ASSIGNED", NotFound),
    /// The `event_id` was already used with another feature or amount.
    EventIdConflict = ("EVENT_ID_CONFLICT", Conflict),
    /// A hardware request without a fingerprint.
    FingerprintRequired = ("FINGERPRINT_REQUIRED", Invalid),
    /// A container request without any container identity field.
    ContainerIdentityRequired = ("CONTAINER_IDENTITY_REQUIRED", Invalid),
    /// A binding field that is too long or holds control characters.
    InvalidBindingField = ("INVALID_BINDING_FIELD", Invalid),
    /// `app_version` is not semver.
    InvalidAppVersion = ("INVALID_APP_VERSION", Invalid),
    /// A malformed feature code.
    InvalidFeatureCode = ("INVALID_FEATURE_CODE", Invalid),
    /// A zero, out-of-range or (where not allowed) negative amount.
    InvalidAmount = ("INVALID_AMOUNT", Invalid),
    /// An empty or over-long `event_id`.
    InvalidEventId = ("INVALID_EVENT_ID", Invalid),
    /// Renew with both or neither of `expires_at` and `extend_by_days`.
    RenewFieldsInvalid = ("RENEW_FIELDS_INVALID", Invalid),
    /// The license type cannot be renewed (perpetual).
    NotRenewable = ("LICENSE_NOT_RENEWABLE", Invalid),
    /// Dates that contradict the license type or each other.
    InvalidLicenseDates = ("INVALID_LICENSE_DATES", Invalid),
    /// A transfer with nothing to change.
    TransferEmpty = ("TRANSFER_EMPTY", Invalid),
    /// A usage reset that selects no feature, both selectors, or no mutation.
    UsageResetInvalid = ("USAGE_RESET_INVALID", Invalid),
    /// A policy field out of range.
    InvalidPolicyField = ("INVALID_POLICY_FIELD", Invalid),
    /// A management request field that is malformed or out of range.
    InvalidField = ("INVALID_FIELD", Invalid),
    /// A link to a record of another product (order, subscription, policy, feature).
    CrossProductLink = ("CROSS_PRODUCT_LINK", Invalid),
    /// The license is revoked and cannot change any more.
    LicenseRevokedImmutable = ("LICENSE_REVOKED_IMMUTABLE", Conflict),
    /// A webhook URL whose host is (or names) an address deliveries may not reach.
    WebhookUrlNotAllowed = ("WEBHOOK_URL_NOT_ALLOWED", Invalid),
    /// Revoking this token would leave no active admin token.
    LastAdminToken = ("LAST_ADMIN_TOKEN", Conflict),
}

impl fmt::Display for DenialCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DenialCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One failing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialReason {
    /// The stable code.
    pub code: DenialCode,
    /// The request field the rule looked at, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// A sentence for humans; never holds a secret or a binding value.
    pub message: String,
}

impl DenialReason {
    /// A reason without a field.
    pub fn new(code: DenialCode, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    /// A reason about the request field `field`.
    pub fn field(code: DenialCode, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field),
            message: message.into(),
        }
    }
}

/// Every reason a request was refused; never empty. Two denials are equal when their reasons
/// are.
#[derive(Debug, Clone, Serialize)]
pub struct Denial {
    reasons: Vec<DenialReason>,
    /// The product of the license refused, once the engine knows it: a product with its own
    /// key ring signs the refusal with it.
    #[serde(skip)]
    product: Option<ProductId>,
}

impl PartialEq for Denial {
    fn eq(&self, other: &Self) -> bool {
        self.reasons == other.reasons
    }
}

impl Eq for Denial {}

impl Denial {
    /// A denial with one reason.
    pub fn one(reason: DenialReason) -> Self {
        Self {
            reasons: vec![reason],
            product: None,
        }
    }

    /// `Ok(())` when `reasons` is empty, else a denial with all of them.
    pub fn check(reasons: Vec<DenialReason>) -> Result<(), Denial> {
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Self {
                reasons,
                product: None,
            })
        }
    }

    /// The same denial, about a license of `product`.
    #[must_use]
    pub fn concerning(mut self, product: &ProductId) -> Self {
        self.product = Some(product.clone());
        self
    }

    /// The product of the license refused, when the refusal came after the license was
    /// found: the key ring that signs the refusal is that product's.
    pub fn product(&self) -> Option<&ProductId> {
        self.product.as_ref()
    }

    /// Every reason, in the order the rules ran.
    pub fn reasons(&self) -> &[DenialReason] {
        &self.reasons
    }

    /// The reason a host should report first: invalid input, then the license's own state
    /// (suspended, expired, revoked), then not found, then conflict, then any other refusal.
    /// A request that cannot be read is not judged further; a license that is revoked (which
    /// also frees its seats) or suspended says so before "this device is not activated", so a
    /// client is not sent to re-activate a license that cannot be used; otherwise "this device
    /// is not activated" is more useful than the remaining refusals.
    pub fn primary(&self) -> &DenialReason {
        let rank = |c: DenialCode| match c {
            DenialCode::LicenseSuspended
            | DenialCode::LicenseExpired
            | DenialCode::LicenseRevoked => 1,
            c => match c.kind() {
                DenialKind::Invalid => 0,
                DenialKind::NotFound => 2,
                DenialKind::Conflict => 3,
                DenialKind::Forbidden => 4,
            },
        };
        self.reasons
            .iter()
            .min_by_key(|r| rank(r.code))
            .expect("a denial is never empty")
    }

    /// Whether any reason has `code`.
    pub fn has(&self, code: DenialCode) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for r in &self.reasons {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", r.code, r.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_screaming_snake() {
        let mut seen = std::collections::HashSet::new();
        for c in DenialCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {c}");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_')
            );
        }
    }

    #[test]
    fn primary_prefers_license_state_to_not_found() {
        let d = Denial::check(vec![
            DenialReason::new(DenialCode::DeviceNotActivated, "x"),
            DenialReason::new(DenialCode::LicenseRevoked, "y"),
        ])
        .unwrap_err();
        assert_eq!(d.primary().code, DenialCode::LicenseRevoked);
        let d = Denial::check(vec![
            DenialReason::new(DenialCode::VmNotAllowed, "x"),
            DenialReason::new(DenialCode::DeviceNotActivated, "y"),
        ])
        .unwrap_err();
        assert_eq!(d.primary().code, DenialCode::DeviceNotActivated);
    }

    #[test]
    fn primary_prefers_invalid_input() {
        let d = Denial::check(vec![
            DenialReason::new(DenialCode::LicenseSuspended, "x"),
            DenialReason::new(DenialCode::InvalidAppVersion, "y"),
        ])
        .unwrap_err();
        assert_eq!(d.primary().code, DenialCode::InvalidAppVersion);
        assert!(d.has(DenialCode::LicenseSuspended));
        assert_eq!(
            d.to_string(),
            "LICENSE_SUSPENDED: x; INVALID_APP_VERSION: y"
        );
    }
}
