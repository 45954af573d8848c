//! User-based licenses (an extension): a license assigned to license users
//! ([`UserRole::Licensee`](crate::model::UserRole)), each of whom may hold
//! `max_activations` devices on it, within the license's own limit.
//!
//! Every runtime operation runs these rules around its own, with the user its credential
//! names (`None` for the license key or a device session):
//!
//! - [`admit`], before: a user acts only on a license assigned to it
//!   (`LICENSE_NOT_ASSIGNED`), and only on the devices it activated: a binding active under
//!   another user, or under the license key, is `DEVICE_HELD_BY_ANOTHER_USER`.
//! - [`settle`], after: a seat the decision newly takes is the acting user's. It counts
//!   against that user's `max_activations` as well as the license's (`ACTIVATION_LIMIT_REACHED`
//!   naming the user's seats), and the device records the user. On a user-based license the
//!   license key takes no new seat (`USER_CREDENTIALS_REQUIRED`); it still validates, checks
//!   and releases, being the license's own credential.
//!
//! Management [`assign`]s a user (again: a new seat limit) and [`unassign`]s one, which
//! releases every device the user holds on the license.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::{AssignedUser, Device, DeviceStatus, License, UserId};

use super::{Denial, DenialCode, DenialReason, DomainEvent, LicenseAggregate, Mutation, Plan};

/// The seat limit a new assignment gets when the request names none.
pub const DEFAULT_USER_ACTIVATIONS: u32 = 1;

/// The assignment of `user` on the license, if any.
pub fn assignment<'a>(license: &'a License, user: &UserId) -> Option<&'a AssignedUser> {
    license.users.iter().find(|a| &a.user_id == user)
}

/// Refuses a user acting on a license not assigned to it, or on a binding another holds.
pub fn admit(
    agg: &LicenseAggregate,
    user: Option<&UserId>,
    binding_key: Option<&str>,
) -> Result<(), Denial> {
    let Some(user) = user else {
        return Ok(());
    };
    if assignment(&agg.license, user).is_none() {
        return Err(not_assigned());
    }
    let held = binding_key
        .and_then(|k| agg.active_device(k))
        .is_some_and(|d| d.user_id.as_ref() != Some(user));
    match held {
        true => Err(Denial::one(DenialReason::new(
            DenialCode::DeviceHeldByAnotherUser,
            "this device is activated on the license by another user",
        ))),
        false => Ok(()),
    }
}

/// Accounts the seats `plan` newly takes to `user`: refused beyond the user's limit, or
/// when the license is user-based and no user acts; the new devices record the user.
pub fn settle<T>(
    agg: &LicenseAggregate,
    user: Option<&UserId>,
    mut plan: Plan<T>,
) -> Result<Plan<T>, Denial> {
    let was_active = |d: &Device| {
        agg.devices
            .iter()
            .any(|x| x.id == d.id && x.status == DeviceStatus::Active)
    };
    let new_seats: Vec<&mut Device> = plan
        .mutations
        .iter_mut()
        .filter_map(|m| match m {
            Mutation::Device(d) if d.status == DeviceStatus::Active && !was_active(d) => Some(d),
            _ => None,
        })
        .collect();
    if new_seats.is_empty() {
        return Ok(plan);
    }
    let Some(user) = user else {
        return match agg.license.users.is_empty() {
            true => Ok(plan),
            false => Err(Denial::one(DenialReason::new(
                DenialCode::UserCredentialsRequired,
                "this license is user-based: activate with a license user's credentials",
            ))),
        };
    };
    let Some(seat) = assignment(&agg.license, user) else {
        return Err(not_assigned());
    };
    let held = agg
        .active_devices()
        .filter(|d| d.user_id.as_ref() == Some(user))
        .count();
    if held + new_seats.len() > seat.max_activations as usize {
        return Err(Denial::one(DenialReason::new(
            DenialCode::ActivationLimitReached,
            format!(
                "all {} of this user's activation seats are taken",
                seat.max_activations
            ),
        )));
    }
    let mut stamped = Vec::with_capacity(new_seats.len());
    for d in new_seats {
        d.user_id = Some(user.clone());
        stamped.push(d.id.as_str().to_owned());
    }
    // The seat's events name the user who took it.
    for e in &mut plan.events {
        if e.resource_type == "device" && stamped.contains(&e.resource_id) {
            e.metadata.insert("user_id".into(), json!(user));
        }
    }
    Ok(plan)
}

/// Assigns `user` (a license user the caller has checked) with a seat limit, or changes the
/// limit of an assignment. A lower limit releases nothing: the user takes no new seat until
/// it is under the limit again.
pub fn assign(
    agg: &LicenseAggregate,
    user: &UserId,
    max_activations: u32,
    now: DateTime<Utc>,
) -> Result<Plan<AssignedUser>, Denial> {
    if max_activations == 0 {
        return Err(Denial::one(DenialReason::field(
            DenialCode::InvalidAmount,
            "max_activations",
            "max_activations must be at least 1",
        )));
    }
    let mut license = agg.license.clone();
    let seat = match license.users.iter_mut().find(|a| &a.user_id == user) {
        Some(a) if a.max_activations == max_activations => return Ok(Plan::read_only(a.clone())),
        Some(a) => {
            a.max_activations = max_activations;
            a.clone()
        }
        None => {
            let a = AssignedUser {
                user_id: user.clone(),
                max_activations,
                assigned_at: now,
            };
            license.users.push(a.clone());
            a
        }
    };
    license.updated_at = now;
    let event = DomainEvent::new(
        "license.user_assigned",
        "license",
        license.id.as_str(),
        [
            ("user_id", json!(user)),
            ("max_activations", json!(max_activations)),
        ],
    );
    Ok(Plan {
        mutations: vec![Mutation::License(license)],
        events: vec![event],
        outcome: seat,
    })
}

/// Removes `user`'s assignment and releases every device it holds on the license (each
/// `device.deactivated` with `reason: "user_unassigned"`).
pub fn unassign(
    agg: &LicenseAggregate,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<Plan<()>, Denial> {
    if assignment(&agg.license, user).is_none() {
        return Err(not_assigned());
    }
    let mut license = agg.license.clone();
    license.users.retain(|a| &a.user_id != user);
    let mut mutations = Vec::new();
    let mut events = Vec::new();
    for d in agg
        .active_devices()
        .filter(|d| d.user_id.as_ref() == Some(user))
    {
        let mut released = d.clone();
        released.status = DeviceStatus::Deactivated;
        released.updated_at = now;
        license.active_device_count = license.active_device_count.saturating_sub(1);
        events.push(DomainEvent::new(
            "device.deactivated",
            "device",
            d.id.as_str(),
            [
                ("license_id", json!(license.id)),
                ("previous_status", json!(d.status)),
                ("reason", json!("user_unassigned")),
            ],
        ));
        mutations.push(Mutation::Device(released));
    }
    license.updated_at = now;
    events.push(DomainEvent::new(
        "license.user_unassigned",
        "license",
        license.id.as_str(),
        [("user_id", json!(user))],
    ));
    mutations.push(Mutation::License(license));
    Ok(Plan {
        mutations,
        events,
        outcome: (),
    })
}

fn not_assigned() -> Denial {
    Denial::one(DenialReason::new(
        DenialCode::LicenseNotAssigned,
        "this license is not assigned to the user",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceId, LicenseType, RuntimeBindingRequest};
    use crate::rules::{Binding, activation, testing};

    fn base() -> LicenseAggregate {
        testing::aggregate(testing::policy(LicenseType::Perpetual))
    }

    fn user(n: char) -> UserId {
        format!("usr_{}", n.to_string().repeat(26)).parse().unwrap()
    }

    fn req(fp: &str) -> RuntimeBindingRequest {
        RuntimeBindingRequest {
            fingerprint: Some(fp.into()),
            ..RuntimeBindingRequest::default()
        }
    }

    fn device_id(n: char) -> DeviceId {
        format!("dev_{}", n.to_string().repeat(26)).parse().unwrap()
    }

    /// Activates `fp` as `who` and applies the plan to `agg`.
    fn activate(
        agg: &mut LicenseAggregate,
        who: Option<&UserId>,
        fp: &str,
        id: char,
    ) -> Result<(), Denial> {
        let now = testing::t0();
        let binding = Binding::from_request(&req(fp)).unwrap();
        admit(agg, who, Some(binding.key()))?;
        let plan = activation::activate(agg, &req(fp), device_id(id), now)?;
        let plan = settle(agg, who, plan)?;
        agg.apply(&plan.mutations);
        Ok(())
    }

    fn agg_with_users(seats: &[(char, u32)], max: u32) -> LicenseAggregate {
        let mut agg = base();
        agg.policy.max_activations = max;
        for (u, n) in seats {
            let plan = assign(&agg, &user(*u), *n, testing::t0()).unwrap();
            agg.apply(&plan.mutations);
        }
        agg
    }

    #[test]
    fn a_user_takes_seats_up_to_its_own_limit_within_the_license() {
        let mut agg = agg_with_users(&[('a', 2), ('b', 2)], 3);
        let (a, b) = (user('a'), user('b'));
        activate(&mut agg, Some(&a), "fp-1", '1').unwrap();
        activate(&mut agg, Some(&a), "fp-2", '2').unwrap();
        let d = activate(&mut agg, Some(&a), "fp-3", '3').unwrap_err();
        assert!(d.has(DenialCode::ActivationLimitReached), "{d:?}");
        assert!(d.reasons()[0].message.contains("this user's"), "{d:?}");
        // The second user has seats of its own, until the license's three are taken.
        activate(&mut agg, Some(&b), "fp-3", '3').unwrap();
        let d = activate(&mut agg, Some(&b), "fp-4", '4').unwrap_err();
        assert!(d.has(DenialCode::ActivationLimitReached), "{d:?}");
        assert!(!d.reasons()[0].message.contains("this user's"), "{d:?}");
        let mine = agg
            .active_devices()
            .filter(|d| d.user_id == Some(a.clone()));
        assert_eq!(mine.count(), 2);
        // Activating an own device again takes no seat.
        activate(&mut agg, Some(&a), "fp-1", '9').unwrap();
    }

    #[test]
    fn a_users_seat_and_its_event_name_the_user() {
        let agg = agg_with_users(&[('a', 1)], 5);
        let plan = activation::activate(&agg, &req("fp-1"), device_id('1'), testing::t0());
        let plan = settle(&agg, Some(&user('a')), plan.unwrap()).unwrap();
        let activated = plan
            .events
            .iter()
            .find(|e| e.event_type == "device.activated")
            .unwrap();
        assert_eq!(activated.metadata["user_id"], json!(user('a')));
        let stamped = plan
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::Device(d) if d.user_id == Some(user('a'))));
        assert!(stamped, "the device records its user");
    }

    #[test]
    fn another_users_device_and_an_unassigned_user_are_refused() {
        let mut agg = agg_with_users(&[('a', 1), ('b', 1)], 5);
        activate(&mut agg, Some(&user('a')), "fp-1", '1').unwrap();
        let d = activate(&mut agg, Some(&user('b')), "fp-1", '2').unwrap_err();
        assert!(d.has(DenialCode::DeviceHeldByAnotherUser), "{d:?}");
        let d = activate(&mut agg, Some(&user('c')), "fp-2", '3').unwrap_err();
        assert!(d.has(DenialCode::LicenseNotAssigned), "{d:?}");
    }

    #[test]
    fn the_key_takes_no_seat_on_a_user_based_license_and_any_on_a_key_based_one() {
        let mut agg = agg_with_users(&[('a', 1)], 5);
        let d = activate(&mut agg, None, "fp-1", '1').unwrap_err();
        assert!(d.has(DenialCode::UserCredentialsRequired), "{d:?}");
        // A user's device is the license's too: the key may act on it.
        activate(&mut agg, Some(&user('a')), "fp-1", '1').unwrap();
        admit(&agg, None, Some("fp-1")).unwrap();

        let mut keyed = base();
        activate(&mut keyed, None, "fp-1", '1').unwrap();
        assert_eq!(keyed.active_devices().next().unwrap().user_id, None);
    }

    #[test]
    fn unassigning_releases_the_users_devices_only() {
        let mut agg = agg_with_users(&[('a', 2), ('b', 1)], 5);
        activate(&mut agg, Some(&user('a')), "fp-1", '1').unwrap();
        activate(&mut agg, Some(&user('a')), "fp-2", '2').unwrap();
        activate(&mut agg, Some(&user('b')), "fp-3", '3').unwrap();
        assert_eq!(agg.license.active_device_count, 3);
        let plan = unassign(&agg, &user('a'), testing::t0()).unwrap();
        assert_eq!(plan.events.len(), 3);
        agg.apply(&plan.mutations);
        assert_eq!(agg.license.active_device_count, 1);
        assert_eq!(agg.active_devices().count(), 1);
        assert!(assignment(&agg.license, &user('a')).is_none());
        let d = unassign(&agg, &user('a'), testing::t0()).unwrap_err();
        assert!(d.has(DenialCode::LicenseNotAssigned));
    }

    #[test]
    fn assigning_again_changes_the_limit_and_zero_is_refused() {
        let agg = agg_with_users(&[('a', 1)], 5);
        let same = assign(&agg, &user('a'), 1, testing::t0()).unwrap();
        assert!(same.mutations.is_empty());
        let more = assign(&agg, &user('a'), 3, testing::t0()).unwrap();
        assert_eq!(more.outcome.max_activations, 3);
        let d = assign(&agg, &user('a'), 0, testing::t0()).unwrap_err();
        assert!(d.has(DenialCode::InvalidAmount));
    }
}
