//! Pre-registered devices (an extension): management registers a serial on a license and gets
//! a device secret shown once; the device activates with serial and secret
//! ([`Engine::device_activate`]) and then calls the runtime operations with its session
//! ([`Credential::Session`](super::Credential::Session)), never with the license key. The
//! rules are [`rules::registration`](crate::rules::registration).

use chrono::TimeDelta;
use rand_core::CryptoRng;
use serde_json::json;

use super::catalog::parse_id;
use super::runner::ResponseBody;
use super::runtime::{Expected, Op, binding_hints};
use super::{Actor, Clock, Engine, EngineError};
use crate::crypto::{DeviceSecret, SessionToken};
use crate::model::{
    DeviceActivateRequest, DeviceActivationData, DeviceId, DeviceRegistration,
    DeviceRegistrationRequest, IssuedSession, LicenseId, RegistrationId, SecretHash, SessionId,
};
use crate::rules::DomainEvent;
use crate::rules::registration::{self, NewSession};
use crate::store::{
    AggregateQuery, LicenseSelector, Limit, REGISTRATION_CHANGED, Store, StoreError,
};

/// How long a device session lasts unless it is used ([`Engine::with_session_ttl`]): 7 days.
pub const DEFAULT_SESSION_TTL: TimeDelta = TimeDelta::days(7);

/// Longest serial, manufacturer and model, in bytes.
pub const MAX_SERIAL_LEN: usize = 128;

/// A registration as created: the secret is in no store and is shown this once.
#[derive(Clone, serde::Serialize)]
pub struct RegistrationCreated {
    /// The registration.
    pub registration: DeviceRegistration,
    /// The device secret (`dsk_…`), to be put on the device.
    pub device_secret: String,
}

impl std::fmt::Debug for RegistrationCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationCreated")
            .field("registration", &self.registration)
            .field("device_secret", &"[redacted]")
            .finish()
    }
}

fn check_text(field: &'static str, v: &str) -> Result<String, EngineError> {
    let v = v.trim();
    if v.is_empty() || v.len() > MAX_SERIAL_LEN || v.chars().any(char::is_control) {
        return Err(EngineError::invalid(
            field,
            format!("{field} must be 1 to {MAX_SERIAL_LEN} bytes without control characters"),
        ));
    }
    Ok(v.to_owned())
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// The same engine with device sessions lasting `ttl` (at least a minute) unless used;
    /// [`DEFAULT_SESSION_TTL`] otherwise. A call made with less than half of it left extends
    /// the session to a full `ttl` from then.
    #[must_use]
    pub fn with_session_ttl(mut self, ttl: TimeDelta) -> Self {
        self.session_ttl = ttl.max(TimeDelta::minutes(1));
        self
    }

    /// Registers a device by serial on license `license`; the secret is returned once.
    ///
    /// # Errors
    ///
    /// `INVALID_FIELD` for an empty or over-long serial, manufacturer or model; `NotFound`
    /// license; `AlreadyExists` serial (registrations are unique by serial across licenses).
    pub async fn register_device(
        &self,
        actor: &Actor,
        license: &str,
        req: DeviceRegistrationRequest,
    ) -> Result<RegistrationCreated, EngineError> {
        let license_id: LicenseId = parse_id(license, "license")?;
        let serial = check_text("serial", &req.serial)?;
        let manufacturer = req
            .manufacturer
            .as_deref()
            .map(|m| check_text("manufacturer", m))
            .transpose()?;
        let model = req
            .model
            .as_deref()
            .map(|m| check_text("model", m))
            .transpose()?;
        let now = self.now();
        let (id, secret) =
            self.with_rng(|rng| (RegistrationId::generate(rng), DeviceSecret::generate(rng)));
        let registration = DeviceRegistration {
            id,
            license_id,
            serial,
            manufacturer,
            model,
            secret_prefix: secret.prefix().to_owned(),
            secret_hash: secret.hash(),
            device_id: None,
            binding_key: None,
            activated_at: None,
            session: None,
            created_at: now,
        };
        let e = DomainEvent::new(
            "device_registration.created",
            "device_registration",
            registration.id.as_str(),
            [("license_id", json!(registration.license_id))],
        );
        self.store
            .insert_registration(&registration, vec![actor.event(e, now)])
            .await?;
        Ok(RegistrationCreated {
            registration,
            device_secret: secret.expose_secret().to_owned(),
        })
    }

    /// A license's registrations, by serial.
    ///
    /// # Errors
    ///
    /// `NotFound` license; storage failures.
    pub async fn list_device_registrations(
        &self,
        license: &str,
        limit: Limit,
    ) -> Result<Vec<DeviceRegistration>, EngineError> {
        let license = self.get_license(license).await?.id;
        Ok(self.store.list_registrations(&license, limit).await?)
    }

    /// The registration `id` of license `license`.
    ///
    /// # Errors
    ///
    /// `NotFound` (also for a registration of another license); storage failures.
    pub async fn get_device_registration(
        &self,
        license: &str,
        id: &str,
    ) -> Result<DeviceRegistration, EngineError> {
        let license: LicenseId = parse_id(license, "license")?;
        let id: RegistrationId = parse_id(id, "device_registration")?;
        match self.store.get_registration(&id).await? {
            r if r.license_id == license => Ok(r),
            _ => Err(EngineError::NotFound {
                entity: "device_registration",
            }),
        }
    }

    /// Deletes a registration: its serial and secret no longer activate and its session ends.
    /// The device it activated keeps its seat until it is reset, deactivated or released.
    ///
    /// # Errors
    ///
    /// As [`Self::get_device_registration`].
    pub async fn delete_device_registration(
        &self,
        actor: &Actor,
        license: &str,
        id: &str,
    ) -> Result<(), EngineError> {
        let r = self.get_device_registration(license, id).await?;
        let now = self.now();
        let e = DomainEvent::new(
            "device_registration.deleted",
            "device_registration",
            r.id.as_str(),
            [("license_id", json!(r.license_id))],
        );
        Ok(self
            .store
            .delete_registration(&r.id, vec![actor.event(e, now)])
            .await?)
    }

    /// Ends a registration's session (revokes it): the device must activate again. Returns
    /// the registration without its session.
    ///
    /// # Errors
    ///
    /// As [`Self::get_device_registration`].
    pub async fn end_device_session(
        &self,
        actor: &Actor,
        license: &str,
        id: &str,
    ) -> Result<DeviceRegistration, EngineError> {
        let r = self.get_device_registration(license, id).await?;
        let now = self.now();
        let e = DomainEvent::new(
            "device_registration.session_ended",
            "device_registration",
            r.id.as_str(),
            [
                ("license_id", json!(r.license_id)),
                ("session_id", json!(r.session.as_ref().map(|s| &s.id))),
            ],
        );
        let mut before = self
            .store
            .end_session(&r.id, vec![actor.event(e, now)])
            .await?;
        before.session = None;
        Ok(before)
    }

    /// Activates a pre-registered device by serial and secret, with no license key: the seat
    /// rules are activate's, activating again from the same device keeps its seat, and the
    /// answer carries a new session (replacing any earlier one) for the device's later calls.
    /// The answer is signed; it is not idempotent by key (activating again is itself
    /// idempotent, with a new session each time).
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidCredentials`] for an unknown serial or a wrong secret (the two
    /// are not told apart); `Denied` with `REGISTRATION_BOUND` or any refusal of activate;
    /// `Conflict` when the registration changed under each of three tries; storage failures.
    pub async fn device_activate(
        &self,
        request_id: &str,
        ip_address: Option<&str>,
        req: &DeviceActivateRequest,
    ) -> Result<ResponseBody, EngineError> {
        let binding = req.binding();
        // The registration is read before the license's lock; the store refuses the write if
        // another activation bound it meanwhile, and the second try reads it again.
        let mut tries = 0;
        loop {
            tries += 1;
            let reg = self.registered(req).await?;
            match self
                .activate_registered(reg, &binding, request_id, ip_address)
                .await
            {
                // Still changing on the third try: the 409 tells the device to retry.
                Err(EngineError::Conflict(reason))
                    if reason == REGISTRATION_CHANGED && tries < 3 => {}
                r => return r,
            }
        }
    }

    /// The registration of `req`'s serial when its secret matches.
    async fn registered(
        &self,
        req: &DeviceActivateRequest,
    ) -> Result<DeviceRegistration, EngineError> {
        let given = DeviceSecret::parse(req.device_secret.expose_secret())
            .map(|s| s.hash())
            .unwrap_or_default();
        let reg = match self.store.find_registration(req.serial.trim()).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => return Err(EngineError::InvalidCredentials),
            Err(e) => return Err(e.into()),
        };
        // Constant-time ([`SecretHash`]'s equality); a malformed secret hashes to nothing stored.
        if given == SecretHash::default() || given != reg.secret_hash {
            return Err(EngineError::InvalidCredentials);
        }
        Ok(reg)
    }

    async fn activate_registered(
        &self,
        reg: DeviceRegistration,
        binding: &crate::model::RuntimeBindingRequest,
        request_id: &str,
        ip_address: Option<&str>,
    ) -> Result<ResponseBody, EngineError> {
        let (binding_key, app_version) = binding_hints(binding);
        let op = Op {
            endpoint: None,
            app_version: binding.app_version.as_deref(),
            request_id,
            ip_address,
            expected: Expected::License,
            user: None,
            query: AggregateQuery {
                selector: Some(LicenseSelector::Id(reg.license_id.clone())),
                binding_key,
                app_version,
                ..AggregateQuery::default()
            },
            idempotency: None,
        };
        let (device_id, token, session_id) = self.with_rng(|rng| {
            (
                DeviceId::generate(rng),
                SessionToken::generate(rng),
                SessionId::generate(rng),
            )
        });
        let session = NewSession {
            id: session_id,
            token_hash: token.hash(),
            ttl: self.session_ttl,
        };
        let registration_id = reg.id.clone();
        self.write_with(
            op,
            |agg, now| registration::activate(agg, &reg, binding, device_id, session, now),
            |(activation, session), _| {
                Ok(DeviceActivationData {
                    registration_id,
                    activation,
                    session: IssuedSession {
                        id: session.id,
                        token: token.expose_secret().to_owned(),
                        expires_at: session.expires_at,
                    },
                })
            },
        )
        .await
    }

    /// The registration whose live session `token` is, when it belongs to the request's
    /// binding; extends the session when it is due.
    pub(super) async fn session_registration(
        &self,
        token: &str,
        binding_key: Option<&str>,
    ) -> Result<DeviceRegistration, EngineError> {
        let hash = SessionToken::parse(token)
            .map_err(|_| EngineError::InvalidCredentials)?
            .hash();
        let reg = match self.store.find_session(&hash).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => return Err(EngineError::InvalidCredentials),
            Err(e) => return Err(e.into()),
        };
        let now = self.now();
        let session =
            registration::live_session(&reg, now).map_err(|_| EngineError::InvalidCredentials)?;
        registration::same_device(&reg, binding_key)?;
        if let Some(until) = registration::extension_due(session, self.session_ttl, now) {
            self.store.extend_session(&reg.id, &hash, until).await?;
        }
        Ok(reg)
    }
}
