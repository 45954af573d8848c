//! Pre-registered devices (an extension): activation by serial and device secret, and the
//! session the device then uses instead of the license key.
//!
//! A registration is one seat's worth of identity. Its first activation binds it to the
//! request's binding; activating again from that binding is idempotent (the same seat, a new
//! session replacing the old one), and from another binding is refused with
//! `REGISTRATION_BOUND` while the bound device still holds its seat (once it was reset,
//! deactivated or released, the serial may bind anew). Every seat rule is activate's
//! ([`activation::activate`]).
//!
//! A session lasts the session TTL and is extended while it is used: a call made when less
//! than half of it remains moves its end to a full TTL from then ([`extension_due`]), so a
//! busy device writes its session at most once per half TTL.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::{Binding, Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Mutation};
use super::{Plan, activation};
use crate::model::{
    DeviceId, DeviceRegistration, DeviceSession, RuntimeBindingRequest, RuntimeEntitlementData,
    SecretHash, SessionId,
};

/// The session a device activation issues (its token is the engine's to hand out).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// SHA-256 of its token.
    pub token_hash: SecretHash,
    /// How long it lasts before it is extended.
    pub ttl: TimeDelta,
}

/// Activates `reg`'s device for `req` on the license `agg` (the registration's), with a new
/// session. The outcome is the activation's data and the session as stored.
///
/// # Errors
///
/// `REGISTRATION_BOUND` when the serial's device holds its seat under another binding; every
/// refusal of [`activation::activate`].
pub fn activate(
    agg: &LicenseAggregate,
    reg: &DeviceRegistration,
    req: &RuntimeBindingRequest,
    new_device_id: DeviceId,
    session: NewSession,
    now: DateTime<Utc>,
) -> Result<Plan<(RuntimeEntitlementData, DeviceSession)>, Denial> {
    // A binding activate refuses makes no key here; activate then says why.
    let binding_key = Binding::from_request(req).ok().map(|b| b.key().to_owned());
    if let (Some(bound), Some(key)) = (&reg.binding_key, &binding_key)
        && bound != key
        && agg.active_device(bound).is_some()
    {
        return Err(Denial::one(DenialReason::new(
            DenialCode::RegistrationBound,
            "this serial is activated as another device; reset that device to move it",
        )));
    }
    let plan = activation::activate(agg, req, new_device_id, now)?;
    let data = plan.outcome;
    let session = DeviceSession {
        id: session.id,
        token_hash: session.token_hash,
        issued_at: now,
        expires_at: now.checked_add_signed(session.ttl).unwrap_or(now),
    };
    let mut updated = reg.clone();
    updated.device_id = Some(data.device_id.clone());
    updated.binding_key = binding_key;
    updated.activated_at = reg.activated_at.or(Some(now));
    updated.session = Some(session.clone());

    let mut mutations = plan.mutations;
    mutations.push(Mutation::Registration {
        registration: updated,
        expected_device: reg.device_id.clone(),
    });
    let mut events = plan.events;
    events.push(DomainEvent::new(
        "device_registration.activated",
        "device_registration",
        reg.id.as_str(),
        [
            ("device_id", json!(data.device_id)),
            ("session_id", json!(session.id)),
        ],
    ));
    Ok(Plan {
        mutations,
        events,
        outcome: (data, session),
    })
}

/// Why a session token does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefused {
    /// The registration has no session (it was ended or replaced).
    Ended,
    /// The session's end has passed.
    Expired,
}

/// The live session of `reg` at `now`.
///
/// # Errors
///
/// [`SessionRefused`] saying why there is none.
pub fn live_session(
    reg: &DeviceRegistration,
    now: DateTime<Utc>,
) -> Result<&DeviceSession, SessionRefused> {
    let session = reg.session.as_ref().ok_or(SessionRefused::Ended)?;
    if now >= session.expires_at {
        return Err(SessionRefused::Expired);
    }
    Ok(session)
}

/// The session's new end when a call at `now` should extend it (less than half of `ttl`
/// remains), else `None`.
pub fn extension_due(
    session: &DeviceSession,
    ttl: TimeDelta,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let remaining = session.expires_at.signed_duration_since(now);
    (remaining < ttl / 2).then(|| now.checked_add_signed(ttl).unwrap_or(now))
}

/// Whether `binding_key` (the request's) is the binding the session's registration is bound
/// to; a request without a binding (a lease call) names none and passes.
///
/// # Errors
///
/// `SESSION_DEVICE_MISMATCH` otherwise.
pub fn same_device(reg: &DeviceRegistration, binding_key: Option<&str>) -> Result<(), Denial> {
    match binding_key {
        Some(key) if reg.binding_key.as_deref() != Some(key) => {
            Err(Denial::one(DenialReason::new(
                DenialCode::SessionDeviceMismatch,
                "this session belongs to another device",
            )))
        }
        _ => Ok(()),
    }
}
