//! The engine: every runtime and management operation of the Open License v1 contract, over
//! any [`Store`], with the clock and randomness handed in by the host.
//!
//! The engine is the only place that combines storage with the [`rules`](crate::rules): it
//! loads an aggregate, lets a rule decide inside the store's per-license transaction, signs
//! the outcome with the [`KeyRing`](crate::crypto::KeyRing) of the license's product, and stores the idempotency record and events with the
//! effect. Handlers in a host only adapt their protocol to these calls.
//!
//! # Events
//!
//! Every state change appends an event in the same transaction. Types: `product.created`,
//! `product.updated`, `product.deleted`, `product_version.created`, `policy.created`,
//! `policy.updated`, `policy.deleted`, `feature.created`, `customer.created`,
//! `customer.updated`, `customer.deleted`, `custom_field.created`, `custom_field.updated`,
//! `custom_field.deleted`, `custom_field_value.set`, `custom_field_value.cleared`,
//! `order.created`, `order.updated`, `subscription.created`, `subscription.updated`,
//! `license.created`, `license.validated`, `license.renewed`, `license.suspended`,
//! `license.reinstated`, `license.revoked`, `license.transferred`, `license.offline_issued`,
//! `license.feature_assigned`, `license.feature_removed`, `license.assigned`,
//! `contract.created`, `artifact.created`, `artifact.downloaded`, `device.activated`,
//! `device_registration.created`, `device_registration.activated`,
//! `device_registration.session_ended`, `device_registration.deleted`,
//! `license_template.created`, `license_template.updated`, `license_template.deleted`,
//! `device.deactivated`, `device.reset`, `device.blacklisted`, `device.released`,
//! `floating.checked_out`, `floating.borrowed`, `floating.heartbeat`, `floating.checked_in`, `usage.consumed`,
//! `usage.reset`, `api_key.created`, `webhook.created`, `webhook.updated`, `webhook.deleted`,
//! `webhook.secret_rotated`, `webhook.disabled`, `webhook.delivery_retried`, `signing_key.created`, `signing_key.rotated`, `signing_key.retired`. Metadata never holds
//! a secret, a fingerprint or any other binding value.
//!
//! # Idempotency
//!
//! # Reads and writes
//!
//! Writes (activate, deactivate, consume, checkout, heartbeat, checkin, device heartbeat and every management
//! change of a license) run through one transaction runner under the license's exclusive
//! lock, so limits hold exactly. Reads (validate, check, offline) decide on a snapshot
//! ([`LicenseStore::read_license`](crate::store::LicenseStore::read_license)) without any
//! exclusive lock, sign after the store is done, and leave their bookkeeping to be written
//! behind, coalesced per device ([`Engine::flush_touches`] says exactly what a crash can
//! lose: at most the touches not yet flushed, never a seat, lease, unit or idempotency
//! record).
//!
//! # Idempotency
//!
//! Activate, deactivate, consume, floating checkout and checkin (runtime) and renew and
//! transfer (management) take an idempotency key. The record (scope = the license, key, a hash
//! of the operation and its request, the response bytes) is written in the same transaction as
//! the effect. The same key with the same request replays the stored response byte for byte;
//! with another request it is [`EngineError::IdempotencyConflict`]. Refusals are not stored: a
//! client may retry a refused request with the same key once the refusal's cause is gone.

mod access;
mod air_gap;
mod allocation;
mod artifacts;
mod bulk;
mod catalog;
mod clock;
mod commerce;
mod customers;
mod deliveries;
mod error;
mod keys;
mod license_users;
mod licenses;
mod refusals;
mod registrations;
mod report_params;
mod reports;
pub mod requests;
mod retention;
mod runner;
mod runtime;
mod sweep;
mod system_clock;
mod telemetry;
mod templates;
mod touches;
mod users;

use std::sync::{Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;

pub use access::{ApiKeyCreated, WebhookWithSecret};
pub use allocation::MAX_CONTRACT_QUOTA;
pub use artifacts::{DEFAULT_DOWNLOAD_TTL, Download, MAX_ARTIFACT_FIELD_LEN, PlannedArtifact};
pub use bulk::{BulkLicenseCreate, MAX_BULK_LICENSES};
pub use catalog::MAX_NAME_LEN;
pub use clock::{Clock, ManualClock};
pub use deliveries::{Finished, delivery_body};
pub use error::EngineError;
pub use license_users::{LicenseUserAssign, LicenseUserSeat};
pub use licenses::{LicenseCreated, ManagementCall, present};
pub use refusals::MAX_PENDING_REFUSAL_KEYS;
pub use registrations::{DEFAULT_SESSION_TTL, MAX_SERIAL_LEN, RegistrationCreated};
pub use report_params::{ReportParams, Window};
pub use reports::{EXPORT_LEASE, EXPORT_MAX_LEDGER_ROWS, EXPORT_RETENTION, ExportRequest, Report};
pub use retention::{
    DEFAULT_DELIVERY_RETENTION, DEFAULT_IDEMPOTENCY_TTL, DEFAULT_TELEMETRY_RETENTION,
    RUNTIME_ERROR_RETENTION,
};
pub use runner::ResponseBody;
pub use runtime::{Credential, RuntimeCall};
pub use sweep::HEARTBEAT_FLUSH_ALLOWANCE;
pub use system_clock::SystemClock;
pub use templates::MAX_TEMPLATE_DAYS;
pub use touches::{DEFAULT_TOUCH_INTERVAL, MAX_PENDING_TOUCHES};
pub use users::{
    INVITATION_TTL, MAX_EMAIL_LEN, PASSWORD_RESET_TTL, SESSION_TTL, SignInAttempt, SignedIn,
    TotpEnrollment, UserInvite, UserUpdate, UserWithToken,
};

/// Who performs an operation (defined with the store types, whose events name it).
pub use crate::store::Actor;

use crate::crypto::PublicKeyInfo;
use crate::model::KeyStatus;
use crate::store::Store;
use touches::TouchBuffer;

/// The licensing engine over store `S`, clock `C` and RNG `R`.
pub struct Engine<S, C, R> {
    store: S,
    clock: C,
    rng: Mutex<R>,
    keys: RwLock<keys::KeyChain>,
    touches: TouchBuffer,
    refusals: refusals::RefusalTally,
    private_webhook_targets: bool,
    idempotency_ttl: chrono::Duration,
    retry_policy: crate::rules::delivery::RetryPolicy,
    delivery_retention: chrono::Duration,
    telemetry_retention: chrono::Duration,
    session_ttl: chrono::Duration,
}

impl<S, C, R> std::fmt::Debug for Engine<S, C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Starts an engine: loads the signing keys from the store, or generates and stores a first
    /// key when there are none.
    ///
    /// # Errors
    ///
    /// Storage failures, or stored keys that cannot be used.
    pub async fn start(store: S, clock: C, mut rng: R) -> Result<Self, EngineError> {
        let keys = keys::start_chain(&store, clock.now(), &mut rng).await?;
        Ok(Self {
            store,
            clock,
            rng: Mutex::new(rng),
            keys: RwLock::new(keys),
            touches: TouchBuffer::new(DEFAULT_TOUCH_INTERVAL),
            refusals: refusals::RefusalTally::default(),
            private_webhook_targets: false,
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            retry_policy: crate::rules::delivery::RetryPolicy::default(),
            delivery_retention: DEFAULT_DELIVERY_RETENTION,
            telemetry_retention: DEFAULT_TELEMETRY_RETENTION,
            session_ttl: DEFAULT_SESSION_TTL,
        })
    }

    /// The same engine accepting webhook URLs on private, loopback and link-local addresses
    /// (local testing; [`rules::webhook_target`](crate::rules::webhook_target)). Off by
    /// default.
    #[must_use]
    pub fn with_private_webhook_targets(mut self, allow: bool) -> Self {
        self.private_webhook_targets = allow;
        self
    }

    /// Whether webhook URLs may name private, loopback and link-local addresses.
    pub fn private_webhook_targets(&self) -> bool {
        self.private_webhook_targets
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current time by the engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn with_rng<T>(&self, f: impl FnOnce(&mut R) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut rng)
    }
}

/// Whether a key is the one new signatures use.
pub fn is_active(info: &PublicKeyInfo) -> bool {
    info.status == KeyStatus::Active
}
