//! Device registrations and their sessions (an extension): see
//! [`DeviceRegistration`](crate::model::DeviceRegistration).

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{Limit, NewEvent, StoreResult};
use crate::model::{DeviceRegistration, LicenseId, RegistrationId, SecretHash};

/// The `Conflict` reason a store gives when a [`Mutation::Registration`]'s expected device no
/// longer matches (or the registration is gone).
///
/// [`Mutation::Registration`]: crate::rules::Mutation::Registration
pub const REGISTRATION_CHANGED: &str = "the device registration changed meanwhile";

/// Registration storage.
///
/// A registration is written here when it is created, deleted or its session ended or
/// extended. Its activation (the device it binds, the session it gets) is written by the
/// license's transaction, as [`Mutation::Registration`](crate::rules::Mutation), so the seat
/// and the registration change together under the license's lock.
///
/// # Contract
///
/// - `insert_registration` stores the record and appends `events` atomically. A license
///   that does not exist is `NotFound { entity: "license" }`; a serial already registered
///   (on any license) is `AlreadyExists { entity: "device_registration", field: "serial" }`.
/// - `get_registration`, `find_registration` (by serial) and `find_session` (by the
///   session's token hash) return the record as last written, hashes included, or
///   `NotFound { entity: "device_registration" }`. A registration without a session is never
///   found by `find_session`, and a session token hash names at most one registration.
/// - `list_registrations` returns one license's registrations by serial, at most `limit`; an
///   unknown license lists nothing.
/// - `delete_registration` removes it (its session with it) and appends `events`
///   atomically, or is `NotFound`.
/// - `end_session` clears its session and appends `events` atomically, returning the record
///   as it was before; `NotFound` when there is no such registration.
/// - `extend_session` sets the session's `expires_at` only when the registration's session
///   still has `token_hash`, and says whether it did (a session replaced or ended meanwhile
///   is left alone).
///
/// # Errors
///
/// As above, `Unavailable` when the backend cannot be reached, `Backend` for anything else.
pub trait RegistrationStore: Send + Sync {
    /// Stores a new registration.
    fn insert_registration(
        &self,
        r: &DeviceRegistration,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The registration with `id`.
    fn get_registration(
        &self,
        id: &RegistrationId,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send;

    /// The registration with `serial`.
    fn find_registration(
        &self,
        serial: &str,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send;

    /// The registration whose session token hashes to `token_hash`.
    fn find_session(
        &self,
        token_hash: &SecretHash,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send;

    /// A license's registrations, by serial.
    fn list_registrations(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<DeviceRegistration>>> + Send;

    /// Deletes a registration.
    fn delete_registration(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Ends a registration's session; returns the registration as it was.
    fn end_session(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send;

    /// Moves the session's expiry, if it is still the one with `token_hash`.
    fn extend_session(
        &self,
        id: &RegistrationId,
        token_hash: &SecretHash,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}
