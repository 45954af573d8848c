//! The engine end to end over the memory store: every runtime operation signed and
//! verifiable, idempotency replayed byte for byte, management flows, time travel with a
//! manual clock (no sleeps).

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use licentia_core::crypto::{self, PublicKeySet, Unverified};
use licentia_core::engine::requests::{
    CustomFieldFields, CustomValueUpsert, CustomerFields, FeatureCreate, LicenseCreate,
    OrderFields, ProductCreate, SubscriptionFields,
};
use licentia_core::engine::{
    Actor, Clock, Credential, Engine, EngineError, ManagementCall, ManualClock, RuntimeCall,
};
use licentia_core::model::*;
use licentia_core::rules::DenialCode;
use licentia_core::store::{EventQuery, LicenseQuery, Limit};
use licentia_storage_memory::MemoryStore;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

type TestEngine = Engine<MemoryStore, Arc<ManualClock>, ChaCha20Rng>;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

async fn engine() -> (TestEngine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let e = Engine::start(
        MemoryStore::new(),
        clock.clone(),
        ChaCha20Rng::from_seed([9; 32]),
    )
    .await
    .unwrap();
    (e, clock)
}

fn admin() -> Actor {
    Actor::system()
}

struct Fixture {
    product: Product,
    policy: Policy,
    feature: Feature,
    license: License,
    key: String,
}

async fn fixture(e: &TestEngine, draft: PolicyDraft) -> Fixture {
    let product = e
        .create_product(
            &admin(),
            ProductCreate {
                name: "Editor".into(),
                code: "editor".into(),
                metadata: None,
                signing: None,
            },
        )
        .await
        .unwrap();
    let draft = PolicyDraft {
        name: Some("Pro".into()),
        code: Some("pro".into()),
        license_type: Some(LicenseType::Subscription),
        ..draft
    };
    let policy = e
        .create_policy(&admin(), product.id.as_str(), draft)
        .await
        .unwrap();
    let feature = e
        .create_feature(
            &admin(),
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
            &admin(),
            LicenseCreate {
                product_id: product.id.to_string(),
                policy_id: policy.id.to_string(),
                expires_at: Some(t0() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let req = FeatureAssignRequest {
        feature_id: feature.id.clone(),
        enabled: None,
        max_consumptions: Some(5),
        expires_at: None,
        metadata: None,
        allow_overages: None,
        max_overages: None,
        reset_period: None,
        allow_negative: None,
        floating_seats: None,
        floating_timeout_minutes: None,
    };
    e.assign_feature(&admin(), created.license.id.as_str(), &req)
        .await
        .unwrap();
    Fixture {
        product,
        policy,
        feature,
        license: created.license,
        key: created.license_key,
    }
}

fn call<'a>(key: &'a str, idem: Option<&'a str>) -> RuntimeCall<'a> {
    RuntimeCall {
        credential: Credential::LicenseKey(key),
        idempotency_key: idem,
        request_id: "req_1",
        ip_address: Some("127.0.0.1"),
    }
}

fn hw(fp: &str) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fp.into()),
        ..Default::default()
    }
}

fn keys(e: &TestEngine) -> PublicKeySet {
    licentia_core::crypto::key_set(e.public_keys()).unwrap()
}

fn verify<T: serde::de::DeserializeOwned>(e: &TestEngine, body: &[u8]) -> T {
    Unverified::<T>::from_envelope_json(body)
        .unwrap()
        .verify(&keys(e))
        .unwrap()
        .into_data()
}

fn denied(r: Result<impl std::fmt::Debug, EngineError>) -> Vec<DenialCode> {
    match r {
        Err(EngineError::Denied(d)) => d.reasons().iter().map(|r| r.code).collect(),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn runtime_flow_signs_every_response() {
    let (e, clock) = engine().await;
    let draft = PolicyDraft {
        max_activations: Some(2),
        max_floating_users: Some(1),
        ..Default::default()
    };
    let f = fixture(&e, draft).await;

    let a = e
        .activate(call(&f.key, Some("k1")), &hw("fp-1"))
        .await
        .unwrap();
    let data: RuntimeEntitlementData = verify(&e, &a.body);
    assert_eq!(data.license_id, f.license.id);
    assert_eq!(data.status, LicenseStatus::Active);
    assert_eq!(data.features[0].remaining, Some(5));
    let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(body["meta"]["request_id"], "req_1");

    // Same key, same request: the stored bytes, signature included.
    clock.advance(Duration::seconds(5));
    let again = e
        .activate(call(&f.key, Some("k1")), &hw("fp-1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.body, a.body);
    // Same key, another request: conflict.
    assert!(matches!(
        e.activate(call(&f.key, Some("k1")), &hw("fp-2")).await,
        Err(EngineError::IdempotencyConflict)
    ));

    let v = e.validate(call(&f.key, None), &hw("fp-1")).await.unwrap();
    let vd: RuntimeEntitlementData = verify(&e, &v.body);
    assert_eq!(vd.issued_at, Timestamp::new(t0() + Duration::seconds(5)));
    let c = e.check(call(&f.key, None), &hw("fp-1")).await.unwrap();
    let _: RuntimeEntitlementData = verify(&e, &c.body);
    assert_eq!(
        denied(e.check(call(&f.key, None), &hw("nope")).await),
        vec![DenialCode::DeviceNotActivated]
    );

    let consume = ConsumeRequest {
        fingerprint: Some("fp-1".into()),
        feature_code: "export".into(),
        amount: Some(2),
        event_id: "ev-1".into(),
        ..Default::default()
    };
    let u = e.consume(call(&f.key, Some("c1")), &consume).await.unwrap();
    let ud: RuntimeEntitlementData = verify(&e, &u.body);
    assert_eq!(ud.features[0].remaining, Some(3));
    // An amount beyond ±(2^53 - 1) is the client's error, not an internal one (found by
    // the runtime_requests fuzz target).
    for amount in [(1_i64 << 53), -(1_i64 << 53), i64::MAX, i64::MIN] {
        let huge = ConsumeRequest {
            amount: Some(amount),
            event_id: "ev-huge".into(),
            ..consume.clone()
        };
        assert_eq!(
            denied(e.consume(call(&f.key, Some("c-huge")), &huge).await),
            vec![DenialCode::InvalidAmount]
        );
    }
    // The same event_id under another idempotency key counts once.
    let u2 = e.consume(call(&f.key, Some("c2")), &consume).await.unwrap();
    let ud2: RuntimeEntitlementData = verify(&e, &u2.body);
    assert_eq!(ud2.features[0].remaining, Some(3));

    // Offline: decrypt with the license key, verify, check the binding.
    let o = e.offline(call(&f.key, None), &hw("fp-1")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&o.body).unwrap();
    let envelope: crypto::OfflineEnvelope = serde_json::from_value(body["data"].clone()).unwrap();
    let opened = crypto::open(
        &envelope,
        &f.key,
        &keys(&e),
        "fp-1",
        e.now(),
        crypto::DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .unwrap();
    assert_eq!(opened.data().entitlement.license_id, f.license.id);
    assert!(
        crypto::open(
            &envelope,
            &f.key,
            &keys(&e),
            "fp-other",
            e.now(),
            crypto::DEFAULT_SKEW_TOLERANCE,
            None
        )
        .is_err()
    );

    // Floating.
    let co = e
        .checkout(call(&f.key, Some("f1")), &hw("fp-9"))
        .await
        .unwrap();
    let cod: FloatingCheckoutData = verify(&e, &co.body);
    assert_eq!(
        denied(e.checkout(call(&f.key, Some("f2")), &hw("fp-8")).await),
        vec![DenialCode::FloatingPoolExhausted]
    );
    let lease = FloatingLeaseRequest {
        lease_token: cod.lease_token.clone(),
        feature_code: None,
    };
    let hb = e.heartbeat(call(&f.key, None), &lease).await.unwrap();
    let _: FloatingLeaseData = verify(&e, &hb.body);
    let ci = e.checkin(call(&f.key, Some("f3")), &lease).await.unwrap();
    let _: FloatingLeaseData = verify(&e, &ci.body);
    e.checkout(call(&f.key, Some("f4")), &hw("fp-8"))
        .await
        .unwrap();
    let bogus = FloatingLeaseRequest {
        lease_token: "not-a-token".into(),
        feature_code: None,
    };
    assert_eq!(
        denied(e.heartbeat(call(&f.key, None), &bogus).await),
        vec![DenialCode::LeaseNotFound]
    );

    let d = e
        .deactivate(call(&f.key, Some("d1")), &hw("fp-1"))
        .await
        .unwrap();
    let dd: DeactivationData = verify(&e, &d.body);
    assert_eq!(dd.device_id, data.device_id);
    assert_eq!(
        e.get_license(f.license.id.as_str())
            .await
            .unwrap()
            .active_device_count,
        0
    );
}

#[tokio::test]
async fn unknown_or_malformed_keys_are_invalid_credentials() {
    let (e, _) = engine().await;
    let f = fixture(&e, PolicyDraft::default()).await;
    let other = crypto::LicenseKey::generate(&mut ChaCha20Rng::from_seed([1; 32]));
    for key in ["", "lsk_short", other.expose_secret()] {
        assert!(
            matches!(
                e.validate(call(key, None), &hw("a")).await,
                Err(EngineError::InvalidCredentials)
            ),
            "{key}"
        );
    }
    assert!(e.validate(call(&f.key, None), &hw("a")).await.is_err());
}

#[tokio::test]
async fn admin_state_changes_reach_runtime_and_the_event_log() {
    let (e, clock) = engine().await;
    let f = fixture(&e, PolicyDraft::default()).await;
    e.activate(call(&f.key, Some("a")), &hw("fp"))
        .await
        .unwrap();
    let s = e
        .suspend_license(&admin(), f.license.id.as_str())
        .await
        .unwrap();
    assert_eq!(s.status, LicenseStatus::Suspended);
    assert_eq!(
        denied(e.validate(call(&f.key, None), &hw("fp")).await),
        vec![DenialCode::LicenseSuspended]
    );
    e.reinstate_license(&admin(), f.license.id.as_str())
        .await
        .unwrap();
    e.validate(call(&f.key, None), &hw("fp")).await.unwrap();

    // Time travel: past the expiry the license reads as expired.
    clock.advance(Duration::days(31));
    assert_eq!(
        e.get_license(f.license.id.as_str()).await.unwrap().status,
        LicenseStatus::Expired
    );
    let expired = e
        .list_licenses(LicenseQuery::default(), Some(LicenseStatus::Expired))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert!(
        e.list_licenses(LicenseQuery::default(), Some(LicenseStatus::Active))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        denied(e.validate(call(&f.key, None), &hw("fp")).await),
        vec![DenialCode::LicenseExpired]
    );

    let renew = RenewRequest {
        extend_by_days: Some(30),
        ..Default::default()
    };
    let mc = ManagementCall {
        idempotency_key: Some("r1"),
        request_id: "req_r",
    };
    let r1 = e
        .renew_license(&admin(), mc, f.license.id.as_str(), &renew)
        .await
        .unwrap();
    let r2 = e
        .renew_license(&admin(), mc, f.license.id.as_str(), &renew)
        .await
        .unwrap();
    assert_eq!(r1.body, r2.body);
    assert!(r2.replayed);
    let other = RenewRequest {
        extend_by_days: Some(31),
        ..Default::default()
    };
    assert!(matches!(
        e.renew_license(&admin(), mc, f.license.id.as_str(), &other)
            .await,
        Err(EngineError::IdempotencyConflict)
    ));
    e.validate(call(&f.key, None), &hw("fp")).await.unwrap();
    assert!(
        e.flush_touches().await.unwrap() >= 1,
        "the validation is written behind, at the next flush"
    );

    let page = e.list_events(&EventQuery::default()).await.unwrap();
    let types: Vec<&str> = page
        .events
        .iter()
        .map(|ev| ev.event_type.as_str())
        .collect();
    for t in [
        "license.created",
        "device.activated",
        "license.suspended",
        "license.reinstated",
        "license.renewed",
        "license.validated",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert!(
        page.events
            .windows(2)
            .all(|w| w[0].sequence > w[1].sequence),
        "newest first"
    );
    let activated = page
        .events
        .iter()
        .find(|ev| ev.event_type == "device.activated")
        .unwrap();
    assert_eq!(activated.actor_type, AuditActorType::License);
    assert_eq!(activated.ip_address.as_deref(), Some("127.0.0.1"));
    let text = serde_json::to_string(&page.events).unwrap();
    assert!(
        !text.contains("\"fp\""),
        "binding values never reach events"
    );
    assert!(!text.contains(&f.key), "secrets never reach events");
}

#[tokio::test]
async fn rotated_keys_still_verify_old_signatures() {
    let (e, _) = engine().await;
    let f = fixture(&e, PolicyDraft::default()).await;
    let before = e
        .activate(call(&f.key, Some("a")), &hw("fp"))
        .await
        .unwrap();
    let info = e.rotate_keys(&admin()).await.unwrap();
    assert_eq!(info.status, KeyStatus::Active);
    assert_eq!(e.public_keys().len(), 2);
    let _: RuntimeEntitlementData = verify(&e, &before.body);
    let after = e.validate(call(&f.key, None), &hw("fp")).await.unwrap();
    let sig: serde_json::Value = serde_json::from_slice(&after.body).unwrap();
    assert_eq!(sig["signature"]["kid"], info.kid.as_str());
    // A second engine on the same store loads the same keys.
    let e2 = Engine::start(
        e.store().clone(),
        Arc::new(ManualClock::new(t0())),
        ChaCha20Rng::from_seed([3; 32]),
    )
    .await
    .unwrap();
    assert_eq!(e2.public_keys(), e.public_keys());
}

#[tokio::test]
async fn license_links_follow_the_contract() {
    let (e, _) = engine().await;
    let f = fixture(&e, PolicyDraft::default()).await;
    let other = e
        .create_product(
            &admin(),
            ProductCreate {
                name: "Other".into(),
                code: "other".into(),
                metadata: None,
                signing: None,
            },
        )
        .await
        .unwrap();
    let sub = e
        .create_subscription(
            &admin(),
            f.product.id.as_str(),
            SubscriptionFields {
                external_system: Some("stripe".into()),
                external_id: Some("sub_1".into()),
                status: Some(SubscriptionStatus::Active),
                current_period_start: Some(t0()),
                current_period_end: Some(t0() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let order = e
        .create_order(
            &admin(),
            f.product.id.as_str(),
            OrderFields {
                subscription_id: Some(sub.id.to_string()),
                external_system: Some("stripe".into()),
                external_id: Some("in_1".into()),
                status: Some(OrderStatus::Paid),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let base = LicenseCreate {
        product_id: f.product.id.to_string(),
        policy_id: f.policy.id.to_string(),
        expires_at: Some(t0() + Duration::days(30)),
        ..Default::default()
    };
    let l = e
        .create_license(
            &admin(),
            LicenseCreate {
                order_id: Some(order.id.to_string()),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        l.license.subscription_id.as_ref(),
        Some(&sub.id),
        "subscription inferred from the order"
    );
    let cross = e
        .create_license(
            &admin(),
            LicenseCreate {
                product_id: other.id.to_string(),
                ..base.clone()
            },
        )
        .await;
    assert_eq!(denied(cross), vec![DenialCode::CrossProductLink]);
    assert!(matches!(
        e.create_license(
            &admin(),
            LicenseCreate {
                customer_id: Some("cus_missing".into()),
                ..base.clone()
            }
        )
        .await,
        Err(EngineError::NotFound { entity: "customer" })
    ));
    assert_eq!(
        denied(
            e.create_license(
                &admin(),
                LicenseCreate {
                    expires_at: None,
                    ..base
                }
            )
            .await
        ),
        vec![DenialCode::InvalidLicenseDates]
    );
    assert!(matches!(
        e.create_feature(
            &admin(),
            f.product.id.as_str(),
            FeatureCreate {
                name: "x".into(),
                code: "export".into(),
                metadata: None
            }
        )
        .await,
        Err(EngineError::AlreadyExists { .. })
    ));
    let _ = f.feature;
}

#[tokio::test]
async fn custom_values_are_typed() {
    let (e, _) = engine().await;
    let f = fixture(&e, PolicyDraft::default()).await;
    let def = e
        .create_custom_field(
            &admin(),
            f.product.id.as_str(),
            CustomFieldFields {
                resource_type: Some(CustomFieldResourceType::License),
                code: Some("seats".into()),
                name: Some("Seats".into()),
                value_type: Some(CustomFieldValueType::Integer),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let lid = f.license.id.as_str();
    let set = e
        .put_custom_value(
            &admin(),
            CustomFieldResourceType::License,
            lid,
            def.id.as_str(),
            CustomValueUpsert {
                integer_value: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(set.integer_value, Some(7));
    let wrong = e
        .put_custom_value(
            &admin(),
            CustomFieldResourceType::License,
            lid,
            def.id.as_str(),
            CustomValueUpsert {
                string_value: Some("7".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(denied(wrong), vec![DenialCode::InvalidField]);
    assert_eq!(
        e.list_custom_values(CustomFieldResourceType::License, lid, Limit::default())
            .await
            .unwrap()
            .len(),
        1
    );
    e.put_custom_value(
        &admin(),
        CustomFieldResourceType::License,
        lid,
        def.id.as_str(),
        CustomValueUpsert {
            clear: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        e.list_custom_values(CustomFieldResourceType::License, lid, Limit::default())
            .await
            .unwrap()
            .is_empty()
    );
    let customer = e
        .create_customer(
            &admin(),
            CustomerFields {
                name: Some("Ada".into()),
                code: Some("ada".into()),
                email: Some("ada@example.com".into()),
                metadata: None,
            },
        )
        .await
        .unwrap();
    // A license field is not a customer field.
    assert!(matches!(
        e.put_custom_value(
            &admin(),
            CustomFieldResourceType::Customer,
            customer.id.as_str(),
            def.id.as_str(),
            CustomValueUpsert {
                integer_value: Some(1),
                ..Default::default()
            }
        )
        .await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test]
async fn bootstrap_and_authentication() {
    let (e, clock) = engine().await;
    let first = e.bootstrap_admin(None).await.unwrap().unwrap();
    assert!(
        e.bootstrap_admin(None).await.unwrap().is_none(),
        "only once"
    );
    let key = e.authenticate(&first.token).await.unwrap();
    assert!(key.has_scope(ManagementScope::LicenseWrite));
    let actor = Actor::api_key(&key.id, None);
    let limited = e
        .create_api_key(
            &actor,
            licentia_core::engine::requests::ApiKeyCreate {
                name: "reader".into(),
                scopes: Some(vec![ManagementScope::LicenseRead]),
                allowed_cidrs: Some(vec!["10.0.0.0/8".into()]),
                expires_at: Some(t0() + Duration::hours(1)),
            },
        )
        .await
        .unwrap();
    let k = e.authenticate(&limited.token).await.unwrap();
    assert!(
        k.has_scope(ManagementScope::LicenseRead) && !k.has_scope(ManagementScope::LicenseWrite)
    );
    assert!(!serde_json::to_string(&k).unwrap().contains(&limited.token));
    clock.advance(Duration::hours(2));
    assert!(matches!(
        e.authenticate(&limited.token).await,
        Err(EngineError::InvalidCredentials)
    ));
    assert!(matches!(
        e.authenticate("lkm_nope").await,
        Err(EngineError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn expired_sessions_are_purged_and_machine_tokens_stay() {
    use licentia_core::engine::{SESSION_TTL, UserInvite};
    let (e, clock) = engine().await;
    let first = e.bootstrap_admin(None).await.unwrap().unwrap();
    let invited = e
        .invite_user(
            &admin(),
            UserInvite {
                email: "ops@example.com".into(),
                role: UserRole::Admin,
            },
        )
        .await
        .unwrap();
    e.redeem_user_token(&invited.token, "correct horse battery")
        .await
        .unwrap();
    let early = e
        .sign_in("ops@example.com", "correct horse battery", None, None)
        .await
        .unwrap();
    clock.advance(Duration::hours(1));
    let late = e
        .sign_in("ops@example.com", "correct horse battery", None, None)
        .await
        .unwrap();
    assert_eq!(e.purge_sessions().await.unwrap(), 0, "both are live");

    clock.advance(SESSION_TTL - Duration::minutes(30));
    assert_eq!(
        e.purge_sessions().await.unwrap(),
        1,
        "the first one expired"
    );
    assert!(matches!(
        e.authenticate(&early.token).await,
        Err(EngineError::InvalidCredentials)
    ));
    e.authenticate(&late.token)
        .await
        .expect("the later session still works");
    clock.advance(Duration::days(400));
    assert_eq!(e.purge_sessions().await.unwrap(), 1);
    let left: Vec<_> = e
        .list_api_keys(Limit::default())
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.user_id)
        .collect();
    assert_eq!(left, vec![None], "the machine token stays");
    e.authenticate(&first.token)
        .await
        .expect("the bootstrap token is not a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engine_calls_run_concurrently_and_hold_the_limits() {
    let (e, _) = engine().await;
    let f = fixture(
        &e,
        PolicyDraft {
            max_activations: Some(10),
            ..Default::default()
        },
    )
    .await;
    let e = Arc::new(e);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let e = e.clone();
        let key = f.key.clone();
        tasks.push(tokio::spawn(async move {
            let idem = format!("k{i}");
            e.activate(call(&key, Some(&idem)), &hw(&format!("fp-{i}")))
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 10);
    assert_eq!(
        e.get_license(f.license.id.as_str())
            .await
            .unwrap()
            .active_device_count,
        10
    );
}

#[tokio::test]
async fn devices_outside_the_seats_can_be_blacklisted_and_license_state_is_reported_first() {
    let (e, _clock) = engine().await;
    let draft = PolicyDraft {
        max_activations: Some(2),
        max_floating_users: Some(1),
        ..Default::default()
    };
    let f = fixture(&e, draft).await;
    let lid = f.license.id.as_str();

    // A deactivated device is no longer in the aggregate's seats, yet an administrator can
    // blacklist it (and blacklisting or resetting twice changes nothing).
    let a = e
        .activate(call(&f.key, Some("a1")), &hw("fp-1"))
        .await
        .unwrap();
    let data: RuntimeEntitlementData = verify(&e, &a.body);
    let dev = data.device_id.to_string();
    e.deactivate(call(&f.key, Some("d1")), &hw("fp-1"))
        .await
        .unwrap();
    let d = e.blacklist_device(&admin(), lid, &dev).await.unwrap();
    assert_eq!(d.status, DeviceStatus::Blacklisted);
    let d = e.blacklist_device(&admin(), lid, &dev).await.unwrap();
    assert_eq!(d.status, DeviceStatus::Blacklisted);
    assert_eq!(
        denied(e.activate(call(&f.key, Some("a2")), &hw("fp-1")).await),
        vec![DenialCode::DeviceBlacklisted]
    );
    let b = e
        .activate(call(&f.key, Some("a3")), &hw("fp-2"))
        .await
        .unwrap();
    let dev2 = verify::<RuntimeEntitlementData>(&e, &b.body)
        .device_id
        .to_string();
    let r = e.reset_device(&admin(), lid, &dev2).await.unwrap();
    assert_eq!(r.status, DeviceStatus::Reset);
    let r = e.reset_device(&admin(), lid, &dev2).await.unwrap();
    assert_eq!(r.status, DeviceStatus::Reset);
    assert!(matches!(
        e.reset_device(&admin(), lid, "dev_aaaaaaaaaaaaaaaaaaaaaaaaaa")
            .await,
        Err(EngineError::NotFound { .. })
    ));

    // A checkin with a repeated idempotency key is replayed or refused before its token is
    // judged, even a malformed one.
    let co = e
        .checkout(call(&f.key, Some("c1")), &hw("fp-3"))
        .await
        .unwrap();
    let lease: serde_json::Value = serde_json::from_slice(&co.body).unwrap();
    let token = lease["data"]["lease_token"].as_str().unwrap().to_owned();
    e.checkin(
        call(&f.key, Some("ci1")),
        &FloatingLeaseRequest {
            lease_token: token.clone(),
            feature_code: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        e.checkin(
            call(&f.key, Some("ci1")),
            &FloatingLeaseRequest {
                lease_token: "not-a-token".into(),
                feature_code: None,
            },
        )
        .await,
        Err(EngineError::IdempotencyConflict)
    ));

    // Revoking frees every seat; a validation then reports the revocation first.
    e.activate(call(&f.key, Some("a4")), &hw("fp-4"))
        .await
        .unwrap();
    e.revoke_license(&admin(), lid).await.unwrap();
    match e.validate(call(&f.key, None), &hw("fp-4")).await {
        Err(EngineError::Denied(d)) => assert_eq!(d.primary().code, DenialCode::LicenseRevoked),
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Validations are read-only on the request path: their bookkeeping waits for a flush, is
/// coalesced per device over the interval (one write, one `license.validated` per device per
/// interval), and a later interval is written again. A check leaves nothing; offline issues
/// are recorded the same way.
#[tokio::test]
async fn validation_bookkeeping_is_written_behind_and_coalesced_per_device() {
    let (e, clock) = engine().await;
    let e = e.with_touch_interval(Duration::seconds(60));
    let draft = PolicyDraft {
        max_activations: Some(2),
        allow_offline_activation: Some(true),
        ..Default::default()
    };
    let f = fixture(&e, draft).await;
    let id = f.license.id.as_str();
    for fp in ["a", "b"] {
        e.activate(call(&f.key, None), &hw(fp)).await.unwrap();
    }
    let validated = |e: &TestEngine| {
        let e = e.store().clone();
        async move {
            licentia_core::store::AccessStore::list_events(
                &e,
                &EventQuery {
                    event_type: Some("license.validated".into()),
                    ..EventQuery::default()
                },
            )
            .await
            .unwrap()
            .events
            .len()
        }
    };

    clock.advance(Duration::seconds(5));
    let first = Clock::now(&*clock);
    for _ in 0..10 {
        e.validate(call(&f.key, None), &hw("a")).await.unwrap();
        e.check(call(&f.key, None), &hw("a")).await.unwrap();
    }
    e.validate(call(&f.key, None), &hw("b")).await.unwrap();
    assert_eq!(
        validated(&e).await,
        0,
        "nothing is written on the request path"
    );
    assert_eq!(
        e.get_license(id).await.unwrap().last_validated_at,
        None,
        "the store lags until the flush"
    );
    assert_eq!(
        e.pending_touches(),
        2,
        "one touch per device in the interval"
    );
    assert_eq!(e.flush_touches().await.unwrap(), 2);
    assert_eq!(validated(&e).await, 2, "one license.validated per device");
    assert_eq!(
        e.get_license(id).await.unwrap().last_validated_at,
        Some(first)
    );

    clock.advance(Duration::seconds(30));
    e.validate(call(&f.key, None), &hw("a")).await.unwrap();
    assert_eq!(
        e.flush_touches().await.unwrap(),
        0,
        "still within a's interval"
    );

    clock.advance(Duration::seconds(31));
    let later = Clock::now(&*clock);
    e.validate(call(&f.key, None), &hw("a")).await.unwrap();
    e.offline(call(&f.key, None), &hw("a")).await.unwrap();
    assert_eq!(
        e.flush_touches().await.unwrap(),
        2,
        "a new interval: written again"
    );
    assert_eq!(validated(&e).await, 3);
    let devices = e.list_devices(id, Limit::default()).await.unwrap();
    let a = devices
        .iter()
        .find(|d| d.fingerprint.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(a.last_validated_at, Some(later));
    assert_eq!(a.last_seen_at, later);
    assert_eq!(
        e.get_license(id).await.unwrap().last_validated_at,
        Some(later)
    );
    assert_eq!(e.dropped_touches(), 0);
}

#[tokio::test]
async fn idempotency_records_expire_after_their_time_to_live() {
    let (e, clock) = engine().await;
    let e = e.with_idempotency_ttl(Duration::hours(24));
    let f = fixture(
        &e,
        PolicyDraft {
            max_activations: Some(5),
            ..Default::default()
        },
    )
    .await;
    e.activate(call(&f.key, Some("k1")), &hw("a"))
        .await
        .unwrap();
    // Within the time to live the key is a replay, and another request with it a reuse.
    assert!(matches!(
        e.activate(call(&f.key, Some("k1")), &hw("b")).await,
        Err(EngineError::IdempotencyConflict)
    ));
    clock.advance(Duration::hours(23));
    assert_eq!(
        e.purge_idempotency().await.unwrap(),
        0,
        "kept for the whole time to live"
    );
    clock.advance(Duration::hours(2));
    assert!(e.purge_idempotency().await.unwrap() >= 1);
    // Purged: the same key is a new request, decided anew.
    let again = e
        .activate(call(&f.key, Some("k1")), &hw("b"))
        .await
        .unwrap();
    assert!(!again.replayed);
}

async fn error_report(e: &TestEngine, pairs: &[(&str, &str)]) -> serde_json::Value {
    let params = licentia_core::engine::ReportParams::from_pairs(pairs.iter().copied());
    e.runtime_error_report(&params).await.unwrap()
}

#[tokio::test]
async fn runtime_refusals_are_counted_per_bucket_written_behind_and_bounded() {
    use licentia_core::engine::MAX_PENDING_REFUSAL_KEYS;
    let (e, clock) = engine().await;
    let f = fixture(&e, PolicyDraft::default()).await;
    // Three refusals of one kind in one five-minute bucket, one after it, one unknown key.
    for _ in 0..3 {
        let r = e.validate(call(&f.key, None), &hw("never-activated")).await;
        assert_eq!(denied(r), [DenialCode::DeviceNotActivated]);
    }
    assert_eq!(
        e.pending_runtime_errors(),
        1,
        "one key in memory, counted three times"
    );
    assert_eq!(
        error_report(&e, &[]).await["total"],
        0,
        "nothing is written before a flush"
    );
    clock.advance(Duration::minutes(5));
    e.validate(call(&f.key, None), &hw("never-activated"))
        .await
        .unwrap_err();
    e.check(call("LK-not-a-key", None), &hw("x"))
        .await
        .unwrap_err();
    assert_eq!(e.flush_runtime_errors().await.unwrap(), 3);
    assert_eq!(e.pending_runtime_errors(), 0);

    let by_time = error_report(
        &e,
        &[
            ("group_by", "time,reason_code"),
            ("bucket", "5m"),
            ("license_id", f.license.id.as_str()),
        ],
    )
    .await;
    let counts: Vec<i64> = by_time["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [3, 1], "two five-minute buckets: {by_time}");
    let product = error_report(&e, &[("product_id", f.product.id.as_str())]).await;
    assert_eq!(
        product["total"], 4,
        "the license's refusals carry its product"
    );
    let unknown = error_report(&e, &[("group_by", "result_class,endpoint")]).await;
    assert!(
        unknown["groups"].as_array().unwrap().iter().any(|g| {
            g["result_class"] == "unauthorized" && g["endpoint"] == "check" && g["count"] == 1
        }),
        "an unknown key is counted without a license: {unknown}"
    );

    // Past the bound, new keys lose their license and version instead of growing memory.
    let extra = 25;
    for n in 0..MAX_PENDING_REFUSAL_KEYS + extra {
        let req = RuntimeBindingRequest {
            app_version: Some(format!("9.9.{n}")),
            ..hw("never-activated")
        };
        e.validate(call(&f.key, None), &req).await.unwrap_err();
    }
    assert_eq!(e.coarsened_refusals(), extra as u64);
    assert_eq!(e.pending_runtime_errors(), MAX_PENDING_REFUSAL_KEYS + 1);
    e.flush_runtime_errors().await.unwrap();
    let total = error_report(&e, &[("endpoint", "validate")]).await;
    assert_eq!(
        total["total"].as_i64().unwrap(),
        4 + (MAX_PENDING_REFUSAL_KEYS + extra) as i64,
        "every refusal is still counted"
    );
    let one_version = error_report(&e, &[("app_version", "9.9.7")]).await;
    assert_eq!(
        one_version["total"], 1,
        "a version counted before the bound keeps its key"
    );

    // Counts older than the retention are purged.
    clock.advance(licentia_core::engine::RUNTIME_ERROR_RETENTION + Duration::minutes(10));
    assert!(e.purge_reports().await.unwrap() > 0);
    assert_eq!(error_report(&e, &[]).await["total"], 0);
}

#[tokio::test]
async fn report_exports_are_produced_downloadable_and_expire() {
    use licentia_core::engine::{EXPORT_RETENTION, ExportRequest};
    let (e, clock) = engine().await;
    let draft = PolicyDraft {
        max_activations: Some(1),
        ..Default::default()
    };
    let f = fixture(&e, draft).await;
    e.activate(call(&f.key, None), &hw("a")).await.unwrap();
    for (n, amount) in [2, 3].into_iter().enumerate() {
        let req = ConsumeRequest {
            fingerprint: Some("a".into()),
            feature_code: "export".into(),
            amount: Some(amount),
            event_id: format!("ev-{n}"),
            ..Default::default()
        };
        e.consume(call(&f.key, Some(&format!("k-{n}"))), &req)
            .await
            .unwrap();
    }
    let mut filters = Metadata::new();
    filters.insert("product_id".into(), serde_json::json!(f.product.id));
    let export = e
        .create_export(
            &admin(),
            ExportRequest {
                report_kind: ReportKind::UsageLedger,
                format: Some(ExportFormat::Csv),
                filters: filters.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(export.status, ExportStatus::Pending);
    assert!(matches!(
        e.export_file(export.id.as_str()).await,
        Err(EngineError::Conflict(_))
    ));
    // The same request digests the same; the digest is over kind, format and filters.
    clock.advance(Duration::seconds(1));
    let again = e
        .create_export(
            &admin(),
            ExportRequest {
                report_kind: ReportKind::UsageLedger,
                format: Some(ExportFormat::Csv),
                filters,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.digest, export.digest);
    assert_ne!(again.id, export.id);

    let (claimed, report) = e.produce_export().await.unwrap().expect("a pending export");
    assert_eq!(claimed.id, export.id, "the oldest first");
    let report = report.unwrap();
    let amounts: Vec<i64> = report
        .rows
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [3, 2], "the ledger's rows, newest first");
    assert!(
        e.finish_export(&claimed.id, Ok(b"a,b\n".to_vec()))
            .await
            .unwrap()
    );
    let (ready, file) = e.export_file(export.id.as_str()).await.unwrap();
    assert_eq!(ready.status, ExportStatus::Ready);
    assert_eq!(file, b"a,b\n");
    assert_eq!(ready.artifact_digest.len(), 64);

    // A bad filter is refused at creation; one the report cannot serve fails with a reason.
    let mut bad = Metadata::new();
    bad.insert("bucket".into(), serde_json::json!("2h"));
    let refused = e
        .create_export(
            &admin(),
            ExportRequest {
                report_kind: ReportKind::UsageSummary,
                format: None,
                filters: bad,
            },
        )
        .await;
    assert!(matches!(refused, Err(EngineError::InvalidQuery { .. })));
    let (second, outcome) = e.produce_export().await.unwrap().unwrap();
    assert_eq!(second.id, again.id);
    e.finish_export(&second.id, Err("disk full".into()))
        .await
        .unwrap();
    assert!(matches!(
        e.export_file(again.id.as_str()).await,
        Err(EngineError::Conflict(_))
    ));
    assert_eq!(
        e.get_export(again.id.as_str())
            .await
            .unwrap()
            .error
            .as_deref(),
        Some("disk full")
    );
    drop(outcome);
    assert!(
        e.produce_export().await.unwrap().is_none(),
        "nothing pending"
    );

    clock.advance(EXPORT_RETENTION + Duration::seconds(1));
    assert!(matches!(
        e.get_export(export.id.as_str()).await,
        Err(EngineError::NotFound { .. })
    ));
    assert_eq!(e.purge_reports().await.unwrap(), 2, "both exports purged");
}

#[tokio::test]
async fn device_heartbeats_keep_seats_and_silent_devices_are_released() {
    let (e, clock) = engine().await;
    let e = e.with_touch_interval(Duration::seconds(60));
    let margin = e.heartbeat_margin();
    assert_eq!(margin, Duration::minutes(2), "touch interval + one minute");
    let draft = PolicyDraft {
        max_activations: Some(3),
        device_heartbeat_minutes: Some(10),
        device_heartbeat_grace_minutes: Some(5),
        ..Default::default()
    };
    let f = fixture(&e, draft).await;
    assert_eq!(f.policy.device_heartbeat_minutes, Some(10));
    for fp in ["beats", "validates", "silent"] {
        e.activate(call(&f.key, None), &hw(fp)).await.unwrap();
    }

    // A heartbeat is signed and says when the next is due and when the seat would go.
    clock.advance(Duration::minutes(9));
    let body = e
        .device_heartbeat(call(&f.key, None), &hw("beats"))
        .await
        .unwrap();
    let beat: DeviceHeartbeatData = verify(&e, &body.body);
    let now = Clock::now(&*clock);
    assert_eq!(
        beat.next_heartbeat_at,
        Some(Timestamp::new(now + Duration::minutes(10)))
    );
    assert_eq!(
        beat.release_at,
        Some(Timestamp::new(now + Duration::minutes(15)))
    );
    // A validation counts too, once its touch is written.
    e.validate(call(&f.key, None), &hw("validates"))
        .await
        .unwrap();
    e.flush_touches().await.unwrap();
    // An unknown device is refused as by validate.
    assert_eq!(
        denied(e.device_heartbeat(call(&f.key, None), &hw("never")).await),
        vec![DenialCode::DeviceNotActivated]
    );

    // "silent" was last heard at t0: released at t0 + 15 min, swept only past the margin.
    clock.set(t0() + Duration::minutes(17));
    assert_eq!(
        e.release_silent_devices().await.unwrap(),
        0,
        "within the margin"
    );
    clock.set(t0() + Duration::minutes(17) + Duration::seconds(1));
    assert_eq!(e.release_silent_devices().await.unwrap(), 1);
    assert_eq!(
        e.release_silent_devices().await.unwrap(),
        0,
        "a second sweep is a no-op"
    );

    let id = f.license.id.as_str();
    let devices = e.list_devices(id, Limit::new(None)).await.unwrap();
    let status = |fp: &str| {
        devices
            .iter()
            .find(|d| d.fingerprint.as_deref() == Some(fp))
            .map(|d| d.status)
    };
    assert_eq!(status("silent"), Some(DeviceStatus::Expired));
    assert_eq!(status("beats"), Some(DeviceStatus::Active));
    assert_eq!(status("validates"), Some(DeviceStatus::Active));
    let released = licentia_core::store::AccessStore::list_events(
        e.store(),
        &EventQuery {
            event_type: Some("device.released".into()),
            ..EventQuery::default()
        },
    )
    .await
    .unwrap()
    .events;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].metadata["reason"], "heartbeat_missed");
    assert_eq!(released[0].actor_type, AuditActorType::System);

    // The released device comes back: it activates into the freed seat.
    let back = e.activate(call(&f.key, None), &hw("silent")).await.unwrap();
    let back: RuntimeEntitlementData = verify(&e, &back.body);
    assert!(
        devices.iter().any(|d| d.id == back.device_id),
        "its old device id"
    );
    // The others released only once their own silence runs out.
    clock.set(t0() + Duration::minutes(9 + 17) + Duration::seconds(1));
    assert_eq!(e.release_silent_devices().await.unwrap(), 2);
}

#[tokio::test]
async fn telemetry_is_flagged_and_kept_for_its_retention() {
    let (e, clock) = engine().await;
    let e = e.with_telemetry_retention(Duration::days(7));
    let f = fixture(&e, PolicyDraft::default()).await;
    let object = |v: serde_json::Value| v.as_object().unwrap().clone();
    let kept = e
        .record_telemetry(
            call(&f.key, None),
            object(serde_json::json!({"event": "a.b"})),
        )
        .await
        .unwrap();
    assert!(kept.well_formed && kept.problems.is_empty());
    assert!(matches!(
        e.record_telemetry(call("lsk_nope", None), object(serde_json::json!({})))
            .await,
        Err(EngineError::InvalidCredentials)
    ));
    let huge = object(serde_json::json!({"event": "x", "properties": {"b": "y".repeat(20_000)}}));
    assert_eq!(
        denied(e.record_telemetry(call(&f.key, None), huge).await),
        vec![DenialCode::InvalidField],
        "over the size limit, also for hosts other than the server"
    );

    clock.advance(Duration::days(6));
    let later = e
        .record_telemetry(call(&f.key, None), object(serde_json::json!({"n": 1})))
        .await
        .unwrap();
    assert!(!later.well_formed);
    assert_eq!(
        e.purge_telemetry().await.unwrap(),
        0,
        "within the retention"
    );
    clock.advance(Duration::days(2));
    assert_eq!(
        e.purge_telemetry().await.unwrap(),
        1,
        "only the one older than 7 days"
    );
    let page = e
        .list_telemetry(f.license.id.as_str(), None, Limit::new(None))
        .await
        .unwrap();
    assert_eq!(page.records, vec![later]);
}

/// A device session with a manual clock: it ends a TTL after activation unless used, a call
/// with less than half of it left extends it to a full TTL from then, and an ended or expired
/// session is refused as bad credentials. Concurrent activations of one serial bind it once.
mod device_sessions {
    use super::*;
    use licentia_core::engine::RegistrationCreated;

    fn session(token: &str) -> RuntimeCall<'_> {
        RuntimeCall {
            credential: Credential::Session(token),
            idempotency_key: None,
            request_id: "req_s",
            ip_address: None,
        }
    }

    async fn register(e: &TestEngine, license: &LicenseId, serial: &str) -> RegistrationCreated {
        e.register_device(
            &admin(),
            license.as_str(),
            DeviceRegistrationRequest {
                serial: serial.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }

    fn activation(serial: &str, secret: &str, fp: &str) -> DeviceActivateRequest {
        DeviceActivateRequest {
            serial: serial.into(),
            device_secret: SecretString::new(secret),
            fingerprint: Some(fp.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn sessions_expire_unless_used_and_are_extended_when_half_gone() {
        let (e, clock) = engine().await;
        let e = e.with_session_ttl(Duration::hours(1));
        let f = fixture(&e, PolicyDraft::default()).await;
        let reg = register(&e, &f.license.id, "SN-1").await;
        let body = e
            .device_activate("req", None, &activation("SN-1", &reg.device_secret, "fp-1"))
            .await
            .unwrap();
        let data: DeviceActivationData = verify(&e, &body.body);
        let token = data.session.token;
        assert_eq!(data.session.expires_at, t0() + Duration::hours(1));
        // Used with more than half left: not extended.
        clock.advance(Duration::minutes(20));
        e.validate(session(&token), &hw("fp-1")).await.unwrap();
        let r = e
            .get_device_registration(f.license.id.as_str(), reg.registration.id.as_str())
            .await
            .unwrap();
        assert_eq!(r.session.unwrap().expires_at, t0() + Duration::hours(1));
        // With less than half left: extended to a full TTL from now.
        clock.advance(Duration::minutes(20));
        e.check(session(&token), &hw("fp-1")).await.unwrap();
        let r = e
            .get_device_registration(f.license.id.as_str(), reg.registration.id.as_str())
            .await
            .unwrap();
        assert_eq!(r.session.unwrap().expires_at, t0() + Duration::minutes(100));
        // Past the original end, alive; past the extended one, refused.
        clock.advance(Duration::minutes(50));
        e.validate(session(&token), &hw("fp-1")).await.unwrap();
        clock.advance(Duration::minutes(60));
        assert!(matches!(
            e.validate(session(&token), &hw("fp-1")).await,
            Err(EngineError::InvalidCredentials)
        ));
        // Activating again gives a fresh session on the same seat.
        let again = e
            .device_activate("req", None, &activation("SN-1", &reg.device_secret, "fp-1"))
            .await
            .unwrap();
        let again: DeviceActivationData = verify(&e, &again.body);
        assert_eq!(again.activation.device_id, data.activation.device_id);
        e.validate(session(&again.session.token), &hw("fp-1"))
            .await
            .unwrap();
        // Ended by management: refused at once.
        e.end_device_session(
            &admin(),
            f.license.id.as_str(),
            reg.registration.id.as_str(),
        )
        .await
        .unwrap();
        assert!(matches!(
            e.validate(session(&again.session.token), &hw("fp-1")).await,
            Err(EngineError::InvalidCredentials)
        ));
        // A malformed secret or token is refused the same way, never a panic.
        assert!(matches!(
            e.device_activate("req", None, &activation("SN-1", "not-a-secret", "fp-1"))
                .await,
            Err(EngineError::InvalidCredentials)
        ));
        assert!(matches!(
            e.validate(session("dst_short"), &hw("fp-1")).await,
            Err(EngineError::InvalidCredentials)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_activations_of_one_serial_bind_it_once() {
        let (e, _clock) = engine().await;
        let e = Arc::new(e);
        let f = fixture(
            &e,
            PolicyDraft {
                max_activations: Some(20),
                ..Default::default()
            },
        )
        .await;
        let reg = register(&e, &f.license.id, "SN-1").await;
        let secret = Arc::new(reg.device_secret);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (e, secret) = (e.clone(), secret.clone());
                tokio::spawn(async move {
                    e.device_activate("req", None, &activation("SN-1", &secret, &format!("m-{i}")))
                        .await
                })
            })
            .collect();
        let mut bound = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => bound += 1,
                Err(EngineError::Denied(d)) => {
                    assert_eq!(d.primary().code, DenialCode::RegistrationBound)
                }
                Err(other) => panic!("each activation binds or is REGISTRATION_BOUND: {other:?}"),
            }
        }
        assert_eq!(bound, 1);
        let license = e.get_license(f.license.id.as_str()).await.unwrap();
        assert_eq!(license.active_device_count, 1);
    }
}
