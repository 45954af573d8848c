//! The domain model: every record and enumeration of the Open License v1 contract.
//!
//! Serde names are exactly the contract's. Ids are typed ([`LicenseId`], [`DeviceId`], …) and
//! codes validated ([`FeatureCode`], …), so a value of these types is always well-formed.

mod allocation;
mod artifact;
mod code;
mod delivery;
mod enums;
mod ids;
mod records;
mod registration;
mod report;
mod requests;
mod runtime;
mod telemetry;
mod template;
mod time;
mod user;

pub use allocation::{Contract, ContractCreate, ContractLicensesCreate, PoolAssign};
pub use artifact::{
    Artifact, ArtifactCreate, ArtifactSource, DownloadClaims, DownloadGrant, ManifestData,
    ManifestEntry,
};
pub use code::{
    CodeError, CustomFieldCode, CustomerCode, FeatureCode, MAX_CODE_LEN, PolicyCode, PoolName,
    ProductCode,
};
pub use delivery::{Delivery, DeliveryAttempt, DeliveryId};
pub use enums::{
    AuditActorType, CustomFieldResourceType, CustomFieldValueType, DeliveryStatus,
    DeviceBindingKind, DeviceStatus, KeyStatus, LicenseStatus, LicenseType, ManagementScope,
    OrderStatus, ResetPeriod, Signing, SubscriptionStatus, UnknownVariant,
};
pub use ids::{
    ApiKeyId, ArtifactId, ContractId, CustomFieldId, CustomerId, DeviceId, ExportId, FeatureId,
    IdError, LeaseId, LicenseId, MAX_ID_LEN, OrderId, PolicyId, ProductId, ProductVersionId,
    RegistrationId, SessionId, SubscriptionId, TemplateId, UserId, WebhookId,
};
pub use records::{
    ApiKey, AssignedUser, ConsumptionRecord, CustomFieldDefinition, CustomFieldValue, CustomValue,
    Customer, Device, Event, Feature, Lease, License, LicenseFeature, Order, Policy, Product,
    ProductVersion, SecretHash, Subscription, WebhookEndpoint,
};
pub use registration::{
    DeviceActivationData, DeviceRegistration, DeviceRegistrationRequest, DeviceSession,
    IssuedSession, SecretString,
};
pub use report::{
    Activity, ERROR_BUCKET_FINEST, ErrorBucket, ErrorDimension, ExportFormat, ExportStatus,
    LedgerAction, LedgerEntry, ReportExport, ReportKind, ResultClass, RuntimeEndpoint,
    RuntimeErrorCount, RuntimeErrorGroup, RuntimeErrorKey, UsageBucket, UsageDimension, UsageGroup,
    UsageRow, UsageTotals, bucket_start,
};
pub use requests::{
    CheckRequest, ConsumeRequest, DeviceActivateRequest, DownloadRequest, FeatureAssignRequest,
    FeatureBindingRequest, FloatingBorrowRequest, FloatingCheckoutRequest, FloatingLeaseRequest,
    LicenseTerms, PolicyDraft, RenewRequest, RuntimeBindingRequest, TransferRequest,
    UsageResetRequest,
};
pub use runtime::{
    DeactivationData, DeviceHeartbeatData, FeatureEntitlement, FloatingBorrowData,
    FloatingCheckoutData, FloatingLeaseData, FloatingOccupancy, OfflineEntitlementData,
    RuntimeEntitlementData, VersionEligibility,
};
pub use telemetry::{NewTelemetry, TelemetryId, TelemetryRecord};
pub use template::{LicenseTemplate, LicenseTemplateFields, TemplateCustomValue};
pub use time::Timestamp;
pub use user::{PendingToken, User, UserRole, UserStatus, UserTokenPurpose};

/// A public signing key as `GET /api/v1/system/public-keys` lists it (the contract's
/// `PublicKey`).
pub use crate::crypto::PublicKeyInfo as PublicKey;

/// Free-form metadata object attached to most records.
pub type Metadata = serde_json::Map<String, serde_json::Value>;
