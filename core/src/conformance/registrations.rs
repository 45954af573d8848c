//! Device registrations: stored and found by id, serial and session; serials unique; the
//! session ended and extended only as the contract says; an activation written by the
//! license's transaction only while the registration's device is the one expected, so
//! concurrent activations of one serial bind it once.

use std::future::Future;
use std::pin::Pin;

use chrono::Duration;

use crate::model::{
    DeviceId, DeviceRegistration, DeviceSession, LicenseId, LicenseType, RuntimeEntitlementData,
    SecretHash,
};
use crate::rules::registration::{self, NewSession};
use crate::rules::{Denial, DenialCode};
use crate::store::{
    AggregateQuery, EventQuery, Limit, REGISTRATION_CHANGED, Store, StoreError, StoreResult,
};

use super::fixtures::{at, binding, by_id, parse, seed, system_event, t0};
use super::{Spawner, decision, expect_already_exists, expect_not_found, ok, run_concurrently};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Registration `n` of `license`, never activated.
pub fn registration(license: &LicenseId, n: u32, serial: &str) -> DeviceRegistration {
    DeviceRegistration {
        id: parse(&format!("dreg_{n:04}")),
        license_id: license.clone(),
        serial: serial.to_owned(),
        manufacturer: Some("Acme".into()),
        model: n.is_multiple_of(2).then(|| "Edge 2".into()),
        secret_prefix: "dsk_ABCD".into(),
        secret_hash: SecretHash::of(&format!("dsk_secret_{n}")),
        device_id: None,
        binding_key: None,
        activated_at: None,
        session: None,
        created_at: at(i64::from(n)),
    }
}

fn session(n: u32, expires_in: i64) -> DeviceSession {
    DeviceSession {
        id: parse(&format!("dses_{n:04}")),
        token_hash: SecretHash::of(&format!("dst_token_{n}")),
        issued_at: t0(),
        expires_at: at(expires_in),
    }
}

/// Activates `reg` as `fingerprint` through `transact_license` with the registration rule;
/// the store's answer (a `Conflict` when the registration changed) and the rule's.
async fn activate_registered<S: Store>(
    store: &S,
    reg: DeviceRegistration,
    fingerprint: &str,
    n: u32,
) -> StoreResult<Result<(RuntimeEntitlementData, DeviceSession), Denial>> {
    let req = binding(fingerprint);
    let query = AggregateQuery {
        binding_key: Some(fingerprint.to_owned()),
        ..by_id(&reg.license_id)
    };
    let device: DeviceId = parse(&format!("dev_r{n:04}"));
    let new = NewSession {
        id: parse(&format!("dses_a{n:04}")),
        token_hash: SecretHash::of(&format!("dst_activation_{n}")),
        ttl: Duration::days(7),
    };
    let now = t0();
    store
        .transact_license(query, move |l| {
            decision(
                l.aggregate,
                now,
                registration::activate(l.aggregate, &reg, &req, device, new, now),
            )
        })
        .await
}

/// Round trips by id, serial and session (hashes included); serials unique across licenses;
/// a missing license `NotFound`; lists by serial, per license, within the limit; delete and
/// end_session as the contract says, with their events; extend_session only for the
/// session it names.
pub async fn registrations_round_trip_and_stay_unique<S: Store>(store: S) {
    let one = seed(&store, 1, LicenseType::Perpetual, |_| {})
        .await
        .license
        .id;
    let two = seed(&store, 2, LicenseType::Perpetual, |_| {})
        .await
        .license
        .id;
    let b = registration(&one, 1, "SN-B");
    let a = registration(&one, 2, "SN-A");
    let mut c = registration(&one, 3, "SN-C");
    c.session = Some(session(3, 3600));
    for r in [&b, &a, &c] {
        ok(
            store
                .insert_registration(r, vec![ev("device_registration.created", r)])
                .await,
            "insert_registration",
        );
    }
    assert_eq!(
        ok(store.get_registration(&b.id).await, "get_registration"),
        b,
        "a registration comes back as stored, its secret hash included"
    );
    assert_eq!(
        ok(store.find_registration("SN-A").await, "find_registration"),
        a,
        "a registration is found by its serial"
    );
    let found = ok(
        store.find_session(&SecretHash::of("dst_token_3")).await,
        "find_session",
    );
    assert_eq!(
        found, c,
        "a registration is found by its session's token hash, hash included"
    );
    expect_not_found(
        store.find_session(&SecretHash::of("dst_token_1")).await,
        "find_session of a registration without a session",
    );
    expect_not_found(store.find_registration("SN-Z").await, "find_registration");
    expect_not_found(
        store.get_registration(&parse("dreg_9999")).await,
        "get_registration",
    );
    expect_already_exists(
        store
            .insert_registration(&registration(&two, 4, "SN-A"), vec![])
            .await,
        "insert_registration of a serial registered on another license",
    );
    match store
        .insert_registration(&registration(&parse("lic_9999"), 5, "SN-X"), vec![])
        .await
    {
        Err(StoreError::NotFound { entity: "license" }) => {}
        other => panic!("a registration of a missing license is NotFound license, got {other:?}"),
    }
    let listed = ok(
        store.list_registrations(&one, Limit::new(Some(10))).await,
        "list_registrations",
    );
    let serials: Vec<&str> = listed.iter().map(|r| r.serial.as_str()).collect();
    assert_eq!(
        serials,
        ["SN-A", "SN-B", "SN-C"],
        "a license's registrations list by serial"
    );
    assert_eq!(
        ok(
            store.list_registrations(&one, Limit::new(Some(2))).await,
            "list_registrations"
        )
        .len(),
        2,
        "lists honour their limit"
    );
    assert!(
        ok(
            store.list_registrations(&two, Limit::new(Some(10))).await,
            "list_registrations"
        )
        .is_empty(),
        "another license's registrations are not listed"
    );

    // extend_session names the session it extends.
    assert!(
        !ok(
            store
                .extend_session(&c.id, &SecretHash::of("dst_other"), at(7200))
                .await,
            "extend_session"
        ),
        "extend_session of another token changes nothing"
    );
    assert!(
        ok(
            store
                .extend_session(&c.id, &SecretHash::of("dst_token_3"), at(7200))
                .await,
            "extend_session"
        ),
        "extend_session of the live session applies"
    );
    let extended = ok(store.get_registration(&c.id).await, "get_registration");
    assert_eq!(
        extended
            .session
            .as_ref()
            .map(|s| (s.expires_at, s.token_hash)),
        Some((at(7200), SecretHash::of("dst_token_3"))),
        "extend_session moves expires_at only"
    );

    // end_session returns the record as it was and clears the session.
    let events_before = event_count(&store).await;
    let before = ok(
        store
            .end_session(&c.id, vec![ev("device_registration.session_ended", &c)])
            .await,
        "end_session",
    );
    assert_eq!(
        before, extended,
        "end_session returns the registration as it was"
    );
    assert_eq!(
        ok(store.get_registration(&c.id).await, "get_registration").session,
        None,
        "end_session clears the session"
    );
    expect_not_found(
        store.find_session(&SecretHash::of("dst_token_3")).await,
        "find_session after end_session",
    );
    assert!(
        !ok(
            store
                .extend_session(&c.id, &SecretHash::of("dst_token_3"), at(9000))
                .await,
            "extend_session"
        ),
        "an ended session is not extended"
    );
    expect_not_found(
        store.end_session(&parse("dreg_9999"), vec![]).await,
        "end_session of a missing registration",
    );

    ok(
        store
            .delete_registration(&b.id, vec![ev("device_registration.deleted", &b)])
            .await,
        "delete_registration",
    );
    expect_not_found(
        store.get_registration(&b.id).await,
        "get_registration after delete",
    );
    expect_not_found(
        store.find_registration("SN-B").await,
        "find_registration after delete",
    );
    expect_not_found(
        store.delete_registration(&b.id, vec![]).await,
        "delete_registration of a missing registration",
    );
    assert_eq!(
        event_count(&store).await,
        events_before + 2,
        "end_session and delete_registration append their events"
    );
    ok(
        store
            .insert_registration(&registration(&two, 6, "SN-B"), vec![])
            .await,
        "a deleted registration's serial may be registered again",
    );
}

fn ev(event_type: &str, r: &DeviceRegistration) -> crate::store::NewEvent {
    system_event(event_type, "device_registration", r.id.as_str(), t0())
}

async fn event_count<S: Store>(store: &S) -> usize {
    let page = ok(
        store
            .list_events(&EventQuery {
                limit: Limit::new(Some(200)),
                ..EventQuery::default()
            })
            .await,
        "list_events",
    );
    page.events.len()
}

/// An activation's registration write applies with the seat, and makes its session findable;
/// one expecting a device the registration no longer has is `Conflict` with nothing of its
/// decision written; activating again from the bound device keeps the seat and replaces the
/// session; another binding is `REGISTRATION_BOUND` while the seat is held.
pub async fn registration_activations_compare_and_set<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    let reg = registration(&s.license.id, 1, "SN-1");
    ok(
        store.insert_registration(&reg, vec![]).await,
        "insert_registration",
    );

    let (data, first) = ok(
        activate_registered(&store, reg.clone(), "fp-1", 1).await,
        "activate",
    )
    .unwrap_or_else(|d| panic!("a first activation is admitted, got {d}"));
    let bound = ok(store.find_session(&first.token_hash).await, "find_session");
    assert_eq!(
        (
            bound.device_id.as_ref(),
            bound.binding_key.as_deref(),
            bound.session.as_ref()
        ),
        (Some(&data.device_id), Some("fp-1"), Some(&first)),
        "the activation binds the registration and stores its session"
    );

    // The same stale read again: the registration is bound now.
    match activate_registered(&store, reg.clone(), "fp-2", 2).await {
        Err(StoreError::Conflict { reason }) => assert_eq!(reason, REGISTRATION_CHANGED),
        other => panic!(
            "an activation expecting a device the registration no longer has is Conflict \
             ({REGISTRATION_CHANGED}), got {other:?}"
        ),
    }
    let agg = super::fixtures::load(&store, by_id(&s.license.id)).await;
    assert_eq!(
        agg.active_devices().count(),
        1,
        "a refused registration write leaves the decision's device unwritten"
    );

    // From the fresh record: the same device keeps its seat and gets a new session.
    let (again, second) = ok(
        activate_registered(&store, bound.clone(), "fp-1", 3).await,
        "activate",
    )
    .unwrap_or_else(|d| panic!("activating again from the bound device is admitted, got {d}"));
    assert_eq!(
        again.device_id, data.device_id,
        "activating again keeps the seat"
    );
    expect_not_found(
        store.find_session(&first.token_hash).await,
        "find_session of a replaced session",
    );
    ok(
        store.find_session(&second.token_hash).await,
        "find_session of the new session",
    );

    let fresh = ok(store.get_registration(&reg.id).await, "get_registration");
    match ok(
        activate_registered(&store, fresh, "fp-3", 4).await,
        "activate",
    ) {
        Err(d) => assert!(d.has(DenialCode::RegistrationBound), "got {d}"),
        Ok(_) => panic!("another binding is refused while the bound device holds its seat"),
    }
}

/// Concurrent first activations of one serial from distinct bindings, each from the same
/// read of it: exactly one binds it and takes a seat; every other write is `Conflict`.
pub async fn concurrent_activations_of_one_serial_bind_it_once<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const TASKS: u32 = 16;
    let s = seed(&store, 1, LicenseType::Perpetual, |p| {
        p.max_activations = 50
    })
    .await;
    let reg = registration(&s.license.id, 1, "SN-1");
    ok(
        store.insert_registration(&reg, vec![]).await,
        "insert_registration",
    );
    type Activated = StoreResult<Result<(RuntimeEntitlementData, DeviceSession), Denial>>;
    let tasks: Vec<Boxed<Activated>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let reg = reg.clone();
            Box::pin(async move { activate_registered(&store, reg, &format!("fp-{i}"), i).await })
                as Boxed<Activated>
        })
        .collect();
    let results = run_concurrently(&spawner, tasks).await;
    let mut bound = Vec::new();
    for r in results {
        match r {
            Ok(Ok((data, _))) => bound.push(data.device_id),
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("each activation binds or is Conflict, got {other:?}"),
        }
    }
    assert_eq!(
        bound.len(),
        1,
        "exactly one concurrent activation binds the serial"
    );
    let agg = super::fixtures::load(&store, by_id(&s.license.id)).await;
    assert_eq!(agg.active_devices().count(), 1, "and only it took a seat");
    assert_eq!(
        ok(store.get_registration(&reg.id).await, "get_registration").device_id,
        Some(bound.remove(0)),
        "the registration names the device that took the seat"
    );
}
