//! Two server instances: two engines, each on its own pool, on one database and one license
//! at once. The limits hold exactly, because they come from the database's row locks and
//! constraints, not from either process.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use licentia_core::engine::requests::{FeatureCreate, LicenseCreate, ProductCreate};
use licentia_core::engine::{Actor, Credential, Engine, EngineError, ManualClock, RuntimeCall};
use licentia_core::model::{
    ConsumeRequest, DeviceActivateRequest, DeviceRegistrationRequest, DeviceStatus,
    FeatureAssignRequest, FloatingBorrowRequest, LicenseId, LicenseType, PolicyDraft,
    RuntimeBindingRequest, SecretString,
};
use licentia_core::rules::DenialCode;
use licentia_core::store::{LicenseStore, Limit};
use licentia_storage_postgres::PostgresStore;
use licentia_storage_postgres::testing::{fresh_database, store_on};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

type Instance = Arc<Engine<PostgresStore, Arc<ManualClock>, ChaCha20Rng>>;

const TASKS: usize = 24;
const SEATS: u32 = 3;
const FLOATING_SLOTS: u32 = 2;
const QUOTA: i64 = 7;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// Two engines on two pools of one fresh database; the second loads the keys the first made.
async fn two_instances() -> (Instance, Instance) {
    let (a, b, _) = two_instances_with_clock().await;
    (a, b)
}

/// [`two_instances`] and the clock both read.
async fn two_instances_with_clock() -> (Instance, Instance, Arc<ManualClock>) {
    let options = fresh_database().await;
    let clock = Arc::new(ManualClock::new(t0()));
    let a = Engine::start(
        store_on(options.clone()).await,
        clock.clone(),
        ChaCha20Rng::from_seed([1; 32]),
    )
    .await
    .unwrap();
    let b = Engine::start(
        store_on(options).await,
        clock.clone(),
        ChaCha20Rng::from_seed([2; 32]),
    )
    .await
    .unwrap();
    assert_eq!(
        a.public_keys(),
        b.public_keys(),
        "both instances sign with the stored keys"
    );
    (Arc::new(a), Arc::new(b), clock)
}

struct Fixture {
    license: LicenseId,
    key: String,
}

async fn fixture(e: &Instance, draft: PolicyDraft) -> Fixture {
    let admin = Actor::system();
    let product = e
        .create_product(
            &admin,
            ProductCreate {
                name: "Editor".into(),
                code: "editor".into(),
                metadata: None,
                signing: None,
            },
        )
        .await
        .unwrap();
    let policy = e
        .create_policy(
            &admin,
            product.id.as_str(),
            PolicyDraft {
                name: Some("Team".into()),
                code: Some("team".into()),
                license_type: Some(LicenseType::Perpetual),
                ..draft
            },
        )
        .await
        .unwrap();
    let feature = e
        .create_feature(
            &admin,
            product.id.as_str(),
            FeatureCreate {
                name: "Export".into(),
                code: "export".into(),
                metadata: None,
            },
        )
        .await
        .unwrap();
    let created = e
        .create_license(
            &admin,
            LicenseCreate {
                product_id: product.id.to_string(),
                policy_id: policy.id.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let assign = FeatureAssignRequest {
        feature_id: feature.id.clone(),
        enabled: None,
        max_consumptions: Some(QUOTA),
        expires_at: None,
        metadata: None,
        allow_overages: None,
        max_overages: None,
        reset_period: None,
        allow_negative: None,
        floating_seats: None,
        floating_timeout_minutes: None,
    };
    e.assign_feature(&admin, created.license.id.as_str(), &assign)
        .await
        .unwrap();
    Fixture {
        license: created.license.id,
        key: created.license_key,
    }
}

fn call<'a>(key: &'a str, idempotency_key: Option<&'a str>) -> RuntimeCall<'a> {
    RuntimeCall {
        credential: Credential::LicenseKey(key),
        idempotency_key,
        request_id: "req_instances",
        ip_address: None,
    }
}

fn device(fingerprint: String) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fingerprint),
        ..Default::default()
    }
}

/// The denial code of a refused call.
fn code(r: &Result<licentia_core::engine::ResponseBody, EngineError>) -> Option<DenialCode> {
    match r {
        Err(EngineError::Denied(d)) => Some(d.primary().code),
        _ => None,
    }
}

/// Runs `TASKS` calls at once, alternating instances; returns each result.
async fn race<F, Fut>(a: &Instance, b: &Instance, f: F) -> Vec<Result<bool, EngineError>>
where
    F: Fn(Instance, usize) -> Fut,
    Fut: Future<Output = Result<bool, EngineError>> + Send + 'static,
{
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(f(engine, i))
        })
        .collect();
    let mut out = Vec::with_capacity(TASKS);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn successes(results: &[Result<bool, EngineError>]) -> usize {
    for r in results {
        if let Err(e) = r {
            panic!("a racing call failed instead of being decided: {e:?}");
        }
    }
    results.iter().filter(|r| matches!(r, Ok(true))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hold_the_seat_limit_exactly() {
    let (a, b) = two_instances().await;
    let f = Arc::new(
        fixture(
            &a,
            PolicyDraft {
                max_activations: Some(i64::from(SEATS)),
                ..Default::default()
            },
        )
        .await,
    );
    let results = race(&a, &b, |e, i| {
        let f = f.clone();
        async move {
            let idem = format!("activation-{i}");
            let r = e
                .activate(call(&f.key, Some(&idem)), &device(format!("machine-{i}")))
                .await;
            match code(&r) {
                Some(DenialCode::ActivationLimitReached) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    assert_eq!(successes(&results), SEATS as usize);

    let license = a.store().get_license(&f.license).await.unwrap();
    assert_eq!(license.active_device_count, SEATS);
    let active = b
        .store()
        .list_devices(&f.license, Limit::new(Some(200)))
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .count();
    assert_eq!(active, SEATS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hold_the_floating_limit_exactly() {
    let (a, b) = two_instances().await;
    let f = Arc::new(
        fixture(
            &a,
            PolicyDraft {
                max_floating_users: Some(i64::from(FLOATING_SLOTS)),
                ..Default::default()
            },
        )
        .await,
    );
    let results = race(&a, &b, |e, i| {
        let f = f.clone();
        async move {
            let idem = format!("checkout-{i}");
            let r = e
                .checkout(call(&f.key, Some(&idem)), &device(format!("seat-{i}")))
                .await;
            match code(&r) {
                Some(DenialCode::FloatingPoolExhausted) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    assert_eq!(successes(&results), FLOATING_SLOTS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hold_a_feature_pool_exactly() {
    let (a, b) = two_instances().await;
    let f = Arc::new(fixture(&a, PolicyDraft::default()).await);
    let admin = Actor::system();
    let license = a.get_license(f.license.as_str()).await.unwrap();
    let render = a
        .create_feature(
            &admin,
            license.product_id.as_str(),
            FeatureCreate {
                name: "Render".into(),
                code: "render".into(),
                metadata: None,
            },
        )
        .await
        .unwrap();
    let pool = FeatureAssignRequest {
        feature_id: render.id,
        enabled: None,
        max_consumptions: None,
        expires_at: None,
        metadata: None,
        allow_overages: None,
        max_overages: None,
        reset_period: None,
        allow_negative: None,
        floating_seats: Some(2),
        floating_timeout_minutes: None,
    };
    a.assign_feature(&admin, f.license.as_str(), &pool)
        .await
        .unwrap();
    let results = race(&a, &b, |e, i| {
        let f = f.clone();
        async move {
            let idem = format!("render-{i}");
            let r = e
                .checkout_feature(
                    call(&f.key, Some(&idem)),
                    &device(format!("seat-{i}")),
                    Some("render"),
                )
                .await;
            match code(&r) {
                Some(DenialCode::FloatingPoolExhausted) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    assert_eq!(
        successes(&results),
        2,
        "the third and later checkouts are refused"
    );
    // The license's own pool is not the feature's: the policy has none.
    let own = a
        .checkout(call(&f.key, Some("own")), &device("seat-own".into()))
        .await;
    assert_eq!(code(&own), Some(DenialCode::FloatingNotEnabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hold_the_floating_limit_with_borrows() {
    let (a, b) = two_instances().await;
    let f = Arc::new(
        fixture(
            &a,
            PolicyDraft {
                max_floating_users: Some(i64::from(FLOATING_SLOTS)),
                max_borrow_hours: Some(24),
                ..Default::default()
            },
        )
        .await,
    );
    let results = race(&a, &b, |e, i| {
        let f = f.clone();
        async move {
            let idem = format!("borrow-{i}");
            let req = FloatingBorrowRequest {
                fingerprint: Some(format!("seat-{i}")),
                hours: 8,
                ..Default::default()
            };
            // Borrows and checkouts race for the same seats.
            let r = if i % 3 == 0 {
                e.checkout(call(&f.key, Some(&idem)), &device(format!("seat-{i}")))
                    .await
            } else {
                e.borrow(call(&f.key, Some(&idem)), &req).await
            };
            match code(&r) {
                Some(DenialCode::FloatingPoolExhausted) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    assert_eq!(successes(&results), FLOATING_SLOTS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hold_the_quota_and_count_each_event_once() {
    let (a, b) = two_instances().await;
    let f = Arc::new(
        fixture(
            &a,
            PolicyDraft {
                max_activations: Some(1),
                ..Default::default()
            },
        )
        .await,
    );
    a.activate(call(&f.key, Some("seat")), &device("meter".into()))
        .await
        .unwrap();

    // Every event id is sent twice, once through each instance: each counts once, and no
    // more than the quota is ever granted.
    let results = race(&a, &b, |e, i| {
        let f = f.clone();
        async move {
            let req = ConsumeRequest {
                fingerprint: Some("meter".into()),
                feature_code: "export".into(),
                amount: Some(1),
                event_id: format!("usage-{}", i / 2),
                ..Default::default()
            };
            let idem = format!("consume-{i}");
            let r = e.consume(call(&f.key, Some(&idem)), &req).await;
            match code(&r) {
                Some(DenialCode::QuotaExceeded) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    successes(&results);

    let features = a
        .store()
        .list_license_features(&f.license, Limit::default())
        .await
        .unwrap();
    let distinct_events = (TASKS / 2) as i64;
    assert_eq!(features[0].total_consumptions, QUOTA.min(distinct_events));
    let license = b.store().get_license(&f.license).await.unwrap();
    assert_eq!(license.total_consumptions, QUOTA.min(distinct_events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_through_both_instances_answers_one_response() {
    let (a, b) = two_instances().await;
    let f = Arc::new(
        fixture(
            &a,
            PolicyDraft {
                max_activations: Some(i64::from(SEATS)),
                ..Default::default()
            },
        )
        .await,
    );
    let bodies: Vec<Vec<u8>> = {
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
                let f = f.clone();
                tokio::spawn(async move {
                    engine
                        .activate(call(&f.key, Some("same-key")), &device("laptop".into()))
                        .await
                        .map(|r| r.body)
                })
            })
            .collect();
        let mut bodies = Vec::new();
        for h in handles {
            match h.await.unwrap() {
                Ok(body) => bodies.push(body),
                // A racer that lost the insert of the idempotency record is told so; it may
                // retry and get the stored response.
                Err(EngineError::IdempotencyConflict) | Err(EngineError::Conflict(_)) => {}
                Err(e) => panic!("unexpected: {e:?}"),
            }
        }
        bodies
    };
    assert!(!bodies.is_empty());
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every answer is the stored response, byte for byte"
    );
    let replay = b
        .activate(call(&f.key, Some("same-key")), &device("laptop".into()))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.body, bodies[0]);
    let license = a.store().get_license(&f.license).await.unwrap();
    assert_eq!(license.active_device_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sweeping_at_once_release_each_silent_device_once() {
    let (a, b, clock) = two_instances_with_clock().await;
    let seats = 8;
    let f = fixture(
        &a,
        PolicyDraft {
            max_activations: Some(seats),
            device_heartbeat_minutes: Some(5),
            ..Default::default()
        },
    )
    .await;
    for i in 0..seats {
        let e = if i % 2 == 0 { &a } else { &b };
        e.activate(call(&f.key, None), &device(format!("fp-{i}")))
            .await
            .unwrap();
    }
    // One device keeps beating, through the other instance, until just before the sweeps.
    clock.advance(chrono::Duration::minutes(6));
    b.device_heartbeat(call(&f.key, None), &device("fp-0".into()))
        .await
        .unwrap();
    clock.advance(chrono::Duration::minutes(2));

    // Both instances sweep, several times each, at once.
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let e = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { e.release_silent_devices().await })
        })
        .collect();
    let mut released = 0;
    for h in handles {
        released += h
            .await
            .unwrap()
            .expect("a sweep is decided, never failed by a race");
    }
    assert_eq!(
        released,
        u64::try_from(seats - 1).unwrap(),
        "each silent device once"
    );

    let devices = a
        .store()
        .list_devices(&f.license, Limit::new(None))
        .await
        .unwrap();
    let active: Vec<_> = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].fingerprint.as_deref(), Some("fp-0"));
    assert_eq!(
        a.store()
            .get_license(&f.license)
            .await
            .unwrap()
            .active_device_count,
        1,
        "the seat count agrees with the devices"
    );
    let events = a
        .list_events(&licentia_core::store::EventQuery {
            event_type: Some("device.released".into()),
            limit: Limit::new(Some(100)),
            ..Default::default()
        })
        .await
        .unwrap()
        .events;
    assert_eq!(
        events.len(),
        usize::try_from(seats - 1).unwrap(),
        "one event per device"
    );
}

fn registered(serial: &str, secret: &str, fingerprint: String) -> DeviceActivateRequest {
    DeviceActivateRequest {
        serial: serial.to_owned(),
        device_secret: SecretString::new(secret),
        fingerprint: Some(fingerprint),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_bind_one_serial_once_and_hold_the_seats_of_many() {
    let (a, b) = two_instances().await;
    let f = Arc::new(
        fixture(
            &a,
            PolicyDraft {
                max_activations: Some(i64::from(SEATS)),
                ..Default::default()
            },
        )
        .await,
    );
    let admin = Actor::system();
    // One serial from many machines at once: one binds it, every other is REGISTRATION_BOUND.
    let one = a
        .register_device(
            &admin,
            f.license.as_str(),
            DeviceRegistrationRequest {
                serial: "SN-ONE".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let secret = Arc::new(one.device_secret.clone());
    let results = race(&a, &b, |e, i| {
        let secret = secret.clone();
        async move {
            let r = e
                .device_activate(
                    "req",
                    None,
                    &registered("SN-ONE", &secret, format!("m-{i}")),
                )
                .await;
            match code(&r) {
                Some(DenialCode::RegistrationBound) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    assert_eq!(successes(&results), 1, "one machine binds the serial");

    // Many serials at once: the seats (one taken above) hold exactly.
    let mut secrets = Vec::new();
    for i in 0..TASKS {
        let r = b
            .register_device(
                &admin,
                f.license.as_str(),
                DeviceRegistrationRequest {
                    serial: format!("SN-{i}"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        secrets.push(r.device_secret);
    }
    let secrets = Arc::new(secrets);
    let results = race(&a, &b, |e, i| {
        let secrets = secrets.clone();
        async move {
            let r = e
                .device_activate(
                    "req",
                    None,
                    &registered(&format!("SN-{i}"), &secrets[i], format!("dev-{i}")),
                )
                .await;
            match code(&r) {
                Some(DenialCode::ActivationLimitReached) => Ok(false),
                _ => r.map(|_| true),
            }
        }
    })
    .await;
    assert_eq!(successes(&results), SEATS as usize - 1);
    let license = a.store().get_license(&f.license).await.unwrap();
    assert_eq!(license.active_device_count, SEATS);
}
