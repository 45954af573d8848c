//! Deterministic records and runtime operations for the checks.
//!
//! Every id is derived from a number (`prod_0001`, `lic_0007`, …) and every instant from
//! [`t0`] (2026-11-22T10:00:00Z), in whole seconds so every backend stores them exactly. A
//! record numbered `n` is created at `t0 + n seconds`, so higher numbers are newer.
//!
//! The runtime operations ([`activate`], [`checkout`], [`consume`], …) run a rule inside
//! [`transact_license`](crate::store::LicenseStore::transact_license) exactly as the engine
//! does, with the query the rule needs (binding key, consumption `event_id`).

use std::fmt::Debug;
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::crypto::{SecretHash, SecretSeed, StoredKey};
use crate::model::{
    ApiKey, AuditActorType, ConsumeRequest, CustomFieldDefinition, CustomFieldResourceType,
    CustomFieldValue, CustomFieldValueType, CustomValue, Customer, DeactivationData, DeviceId,
    Feature, FeatureAssignRequest, FloatingCheckoutData, FloatingLeaseData, KeyStatus, License,
    LicenseFeature, LicenseId, LicenseStatus, LicenseType, ManagementScope, Metadata, Order,
    OrderStatus, Policy, PolicyDraft, Product, ProductVersion, RuntimeBindingRequest,
    RuntimeEntitlementData, Subscription, SubscriptionStatus, Timestamp, WebhookEndpoint,
};
use crate::rules::floating::NewLease;
use crate::rules::{
    Denial, LicenseAggregate, Plan, activation, floating, lifecycle, metering,
    policy as policy_rules,
};
use crate::store::{AggregateQuery, LicenseSelector, NewEvent, Store, TouchRecord};

use super::{decision, ok};

/// 2026-11-22T10:00:00Z, the suite's epoch.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
        .single()
        .expect("a valid instant")
}

/// `t0` plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// Parses a fixture id or code; panics on a malformed one (a bug in the suite).
#[track_caller]
pub fn parse<T>(s: &str) -> T
where
    T: FromStr,
    T::Err: Debug,
{
    match s.parse() {
        Ok(v) => v,
        Err(e) => panic!("fixture value {s:?} does not parse: {e:?}"),
    }
}

/// Metadata with a nested value, so round trips cover more than an empty object.
pub fn metadata(n: u32) -> Metadata {
    let mut m = Metadata::new();
    m.insert("n".into(), json!(n));
    m.insert(
        "nested".into(),
        json!({"list": [1, "two", null, true], "big": 9_007_199_254_740_991_i64}),
    );
    m
}

/// Product `n`: `prod_{n:04}`, code `product-{n}`, created at `t0 + n s`.
pub fn product(n: u32) -> Product {
    Product {
        id: parse(&format!("prod_{n:04}")),
        name: format!("Product {n}"),
        code: parse(&format!("product-{n}")),
        metadata: metadata(n),
        signing: Default::default(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// Version `n` of `product`.
pub fn version(
    product: &Product,
    n: u32,
    version: &str,
    released_at: DateTime<Utc>,
) -> ProductVersion {
    ProductVersion {
        id: parse(&format!("ver_{n:04}")),
        product_id: product.id.clone(),
        version: version.to_owned(),
        released_at,
        metadata: metadata(n),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// Policy `n` of `product` with the documented defaults, code `policy-{n}`.
pub fn policy(product: &Product, n: u32, license_type: LicenseType) -> Policy {
    let draft = PolicyDraft {
        name: Some(format!("Policy {n}")),
        code: Some(format!("policy-{n}")),
        license_type: Some(license_type),
        ..PolicyDraft::default()
    };
    let mut p = policy_rules::build(
        parse(&format!("pol_{n:04}")),
        product.id.clone(),
        None,
        &draft,
        at(n.into()),
    )
    .expect("the fixture draft is valid");
    p.metadata = metadata(n);
    p
}

/// The secret key of license `n` (only its hash is stored).
pub fn license_key(n: u32) -> String {
    format!("lsk_CONFORMANCE{n:04}ABCDEFGHIJKLMNOPQRS")
}

/// License `n` under `policy`: active, created at `t0 + n s`, expiring 30 days after `t0`
/// where its type requires an expiry.
pub fn license(policy: &Policy, n: u32) -> License {
    let key = license_key(n);
    License {
        id: parse(&format!("lic_{n:04}")),
        product_id: policy.product_id.clone(),
        policy_id: policy.id.clone(),
        customer_id: None,
        order_id: None,
        subscription_id: None,
        pool: None,
        contract_id: None,
        users: Vec::new(),
        status: LicenseStatus::Active,
        license_key_prefix: key[..8].to_owned(),
        license_key_last4: key[key.len() - 4..].to_owned(),
        customer_email: Some(format!("owner{n}@example.com")),
        customer_name: None,
        active_device_count: 0,
        times_activated: 0,
        times_transferred: 0,
        total_consumptions: 0,
        entitlement_version: 1,
        starts_at: None,
        expires_at: policy
            .license_type
            .requires_expiry()
            .then(|| t0() + Duration::days(30)),
        maintenance_expires_at: None,
        metadata: metadata(n),
        created_at: at(n.into()),
        updated_at: at(n.into()),
        key_hash: SecretHash::of(&key),
        last_validated_at: None,
    }
}

/// Feature `n` of `product` with `code`.
pub fn feature(product: &Product, n: u32, code: &str) -> Feature {
    Feature {
        id: parse(&format!("feat_{n:04}")),
        product_id: product.id.clone(),
        code: parse(code),
        name: format!("Feature {code}"),
        metadata: metadata(n),
        created_at: at(n.into()),
    }
}

/// Customer `n`, code `customer-{n}`.
pub fn customer(n: u32) -> Customer {
    Customer {
        id: parse(&format!("cus_{n:04}")),
        name: format!("Customer {n}"),
        code: parse(&format!("customer-{n}")),
        email: Some(format!("customer{n}@example.com")),
        metadata: metadata(n),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// Order `n` of `product`, external id `order-{n}` in system `shop`.
pub fn order(product: &Product, n: u32) -> Order {
    Order {
        id: parse(&format!("ord_{n:04}")),
        product_id: product.id.clone(),
        customer_id: None,
        subscription_id: None,
        external_system: "shop".into(),
        external_id: format!("order-{n}"),
        status: OrderStatus::Paid,
        period_start: Some(t0()),
        period_end: Some(t0() + Duration::days(365)),
        metadata: metadata(n),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// Subscription `n` of `product`, external id `sub-{n}` in system `billing`.
pub fn subscription(product: &Product, n: u32) -> Subscription {
    Subscription {
        id: parse(&format!("sub_{n:04}")),
        product_id: product.id.clone(),
        customer_id: None,
        external_system: "billing".into(),
        external_id: format!("sub-{n}"),
        status: SubscriptionStatus::Active,
        current_period_start: t0(),
        current_period_end: t0() + Duration::days(30),
        cancel_at_period_end: false,
        canceled_at: None,
        metadata: metadata(n),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// Custom field definition `n` of `product`.
pub fn custom_field(
    product: &Product,
    n: u32,
    code: &str,
    resource_type: CustomFieldResourceType,
    value_type: CustomFieldValueType,
) -> CustomFieldDefinition {
    CustomFieldDefinition {
        id: parse(&format!("cf_{n:04}")),
        product_id: product.id.clone(),
        resource_type,
        code: parse(code),
        name: format!("Field {code}"),
        value_type,
        is_required: false,
        enum_options: if value_type == CustomFieldValueType::Enum {
            vec!["gold".into(), "silver".into()]
        } else {
            vec![]
        },
        metadata: metadata(n),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// The value `value` of `definition` on `resource_id`, as the store returns it.
pub fn custom_value(
    definition: &CustomFieldDefinition,
    resource_id: &str,
    value: CustomValue,
    updated_at: DateTime<Utc>,
) -> CustomFieldValue {
    let mut v = CustomFieldValue {
        definition_id: definition.id.clone(),
        product_id: definition.product_id.clone(),
        resource_type: definition.resource_type,
        resource_id: resource_id.to_owned(),
        code: definition.code.clone(),
        name: definition.name.clone(),
        value_type: definition.value_type,
        is_required: definition.is_required,
        enum_options: definition.enum_options.clone(),
        metadata: definition.metadata.clone(),
        string_value: None,
        integer_value: None,
        boolean_value: None,
        datetime_value: None,
        enum_value: None,
        updated_at,
    };
    match value {
        CustomValue::String(s) => v.string_value = Some(s),
        CustomValue::Integer(i) => v.integer_value = Some(i),
        CustomValue::Boolean(b) => v.boolean_value = Some(b),
        CustomValue::Datetime(d) => v.datetime_value = Some(d),
        CustomValue::Enum(e) => v.enum_value = Some(e),
    }
    v
}

/// The management token of API key `n` (only its hash is stored).
pub fn api_token(n: u32) -> String {
    format!("lkm_conformance_token_{n:04}")
}

/// API key `n`.
pub fn api_key(n: u32) -> ApiKey {
    let token = api_token(n);
    ApiKey {
        id: parse(&format!("key_{n:04}")),
        name: format!("Key {n}"),
        key_prefix: token[..8].to_owned(),
        scopes: vec![ManagementScope::LicenseRead, ManagementScope::EventRead],
        allowed_cidrs: vec!["10.0.0.0/8".into()],
        is_active: true,
        expires_at: Some(t0() + Duration::days(90)),
        last_used_at: None,
        user_id: None,
        created_at: at(n.into()),
        token_hash: SecretHash::of(&token),
    }
}

/// Webhook endpoint `n`.
pub fn webhook(n: u32) -> WebhookEndpoint {
    WebhookEndpoint {
        id: parse(&format!("whk_{n:04}")),
        name: format!("Hook {n}"),
        url: format!("https://hooks.example.com/{n}"),
        secret_prefix: "whsec_ab".into(),
        event_types: vec!["license.created".into(), "device.activated".into()],
        is_active: true,
        last_delivery_at: None,
        last_delivery_status: None,
        last_status_code: None,
        failing_since: None,
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

/// A signing key with a seed derived from `n`.
pub fn signing_key(kid: &str, n: u8, status: KeyStatus) -> StoredKey {
    StoredKey {
        product_id: None,
        kid: kid.to_owned(),
        status,
        created_at: Timestamp::new(at(n.into())),
        activates_at: None,
        seed: SecretSeed::from_bytes([n; 32]),
    }
}

/// An event the system caused, about `resource_type`/`resource_id`, at `created_at`.
pub fn system_event(
    event_type: &str,
    resource_type: &str,
    resource_id: &str,
    created_at: DateTime<Utc>,
) -> NewEvent {
    NewEvent {
        event_type: event_type.to_owned(),
        actor_type: AuditActorType::System,
        actor_id: "system".into(),
        resource_type: resource_type.to_owned(),
        resource_id: Some(resource_id.to_owned()),
        metadata: metadata(7),
        ip_address: None,
        created_at,
    }
}

/// A hardware binding with `fingerprint`.
pub fn binding(fingerprint: &str) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fingerprint.to_owned()),
        hostname: Some(format!("host-{fingerprint}")),
        os: Some("linux".into()),
        ..RuntimeBindingRequest::default()
    }
}

/// A feature assignment request with `quota` and nothing else set.
pub fn assign_request(feature: &Feature, quota: Option<i64>) -> FeatureAssignRequest {
    FeatureAssignRequest {
        feature_id: feature.id.clone(),
        enabled: None,
        max_consumptions: quota,
        expires_at: None,
        metadata: None,
        allow_overages: None,
        max_overages: None,
        reset_period: None,
        allow_negative: None,
        floating_seats: None,
        floating_timeout_minutes: None,
    }
}

/// A product with one policy and one license, all inserted.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The product.
    pub product: Product,
    /// Its policy.
    pub policy: Policy,
    /// A license under the policy.
    pub license: License,
}

/// Inserts product `n`, policy `n` of type `license_type` (after `tweak`), and license `n`.
pub async fn seed<S: Store>(
    store: &S,
    n: u32,
    license_type: LicenseType,
    tweak: impl FnOnce(&mut Policy),
) -> Seeded {
    let product = product(n);
    ok(
        store.insert_product(&product, vec![]).await,
        "insert_product",
    );
    let mut policy = policy(&product, n, license_type);
    tweak(&mut policy);
    ok(store.insert_policy(&policy, vec![]).await, "insert_policy");
    let license = license(&policy, n);
    ok(
        store.insert_license(&license, vec![]).await,
        "insert_license",
    );
    Seeded {
        product,
        policy,
        license,
    }
}

/// A query for `license` by id with no extras.
pub fn by_id(license: &LicenseId) -> AggregateQuery {
    AggregateQuery::new(LicenseSelector::Id(license.clone()))
}

/// Runs `rule` on the license's aggregate inside `transact_license` and applies its plan.
/// Panics when the store fails; a denial is returned.
pub async fn run<S, T>(
    store: &S,
    query: AggregateQuery,
    now: DateTime<Utc>,
    rule: impl FnOnce(&LicenseAggregate) -> Result<Plan<T>, Denial> + Send,
) -> Result<T, Denial>
where
    S: Store,
    T: Send,
{
    ok(
        store
            .transact_license(query, move |l| {
                decision(l.aggregate, now, rule(l.aggregate))
            })
            .await,
        "transact_license",
    )
}

/// The aggregate `transact_license` loads for `query` (a read-only transaction).
pub async fn load<S: Store>(store: &S, query: AggregateQuery) -> LicenseAggregate {
    ok(
        store
            .transact_license(query, |l| {
                crate::store::Decision::nothing(l.aggregate.clone())
            })
            .await,
        "transact_license (read-only)",
    )
}

/// Activates `fingerprint` on `license`; `device` is the id for a binding never seen.
pub async fn activate<S: Store>(
    store: &S,
    license: &LicenseId,
    fingerprint: &str,
    device: DeviceId,
    now: DateTime<Utc>,
) -> Result<RuntimeEntitlementData, Denial> {
    let req = binding(fingerprint);
    let query = AggregateQuery {
        binding_key: Some(fingerprint.to_owned()),
        ..by_id(license)
    };
    run(store, query, now, move |agg| {
        activation::activate(agg, &req, device, now)
    })
    .await
}

/// Validates `fingerprint` on `license` as the engine does: decided on a
/// [`read_license`](crate::store::LicenseStore::read_license) snapshot, its touch written at
/// once with [`record_touches`](crate::store::LicenseStore::record_touches).
pub async fn validate<S: Store>(
    store: &S,
    license: &LicenseId,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<RuntimeEntitlementData, Denial> {
    let req = binding(fingerprint);
    let query = AggregateQuery {
        binding_key: Some(fingerprint.to_owned()),
        ..by_id(license)
    };
    let agg = ok(store.read_license(&query).await, "read_license");
    let read = activation::validate(&agg, &req, now)?;
    if let Some(touch) = read.touch {
        let record = TouchRecord::new(touch, &super::license_actor(&agg));
        ok(store.record_touches(vec![record]).await, "record_touches");
    }
    Ok(read.outcome)
}

/// Deactivates `fingerprint` on `license`.
pub async fn deactivate<S: Store>(
    store: &S,
    license: &LicenseId,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<DeactivationData, Denial> {
    let req = binding(fingerprint);
    let query = AggregateQuery {
        binding_key: Some(fingerprint.to_owned()),
        ..by_id(license)
    };
    run(store, query, now, move |agg| {
        activation::deactivate(agg, &req, now)
    })
    .await
}

/// The lease token of checkout `n`.
pub fn lease_token(n: u32) -> String {
    format!("lease_token_{n:04}")
}

/// Checks out a floating lease for `fingerprint` on `license`; `n` numbers the lease, its
/// token and the device id for a binding never seen.
pub async fn checkout<S: Store>(
    store: &S,
    license: &LicenseId,
    fingerprint: &str,
    n: u32,
    now: DateTime<Utc>,
) -> Result<FloatingCheckoutData, Denial> {
    checkout_in(store, license, fingerprint, n, None, now).await
}

/// [`checkout`] of `feature`'s own pool (the license's when `None`).
pub async fn checkout_in<S: Store>(
    store: &S,
    license: &LicenseId,
    fingerprint: &str,
    n: u32,
    feature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<FloatingCheckoutData, Denial> {
    let req = binding(fingerprint);
    let feature = feature.map(str::to_owned);
    let token = lease_token(n);
    let new = NewLease {
        lease_id: parse(&format!("lease_{n:04}")),
        device_id: parse(&format!("dev_f{n:04}")),
        token_hash: SecretHash::of(&token),
        token,
    };
    let query = AggregateQuery {
        binding_key: Some(fingerprint.to_owned()),
        ..by_id(license)
    };
    run(store, query, now, move |agg| {
        floating::checkout(agg, &req, feature.as_deref(), new, now)
    })
    .await
}

/// Heartbeats the lease of checkout `n`.
pub async fn heartbeat<S: Store>(
    store: &S,
    license: &LicenseId,
    n: u32,
    now: DateTime<Utc>,
) -> Result<FloatingLeaseData, Denial> {
    let hash = SecretHash::of(&lease_token(n));
    run(store, by_id(license), now, move |agg| {
        floating::heartbeat(agg, &hash, None, now)
    })
    .await
}

/// Checks in the lease of checkout `n`.
pub async fn checkin<S: Store>(
    store: &S,
    license: &LicenseId,
    n: u32,
    now: DateTime<Utc>,
) -> Result<FloatingLeaseData, Denial> {
    let hash = SecretHash::of(&lease_token(n));
    run(store, by_id(license), now, move |agg| {
        floating::checkin(agg, &hash, None, now)
    })
    .await
}

/// Consumes `amount` of `feature_code` from `fingerprint`'s device with `event_id`.
pub async fn consume<S: Store>(
    store: &S,
    license: &LicenseId,
    fingerprint: &str,
    feature_code: &str,
    amount: i64,
    event_id: &str,
    now: DateTime<Utc>,
) -> Result<RuntimeEntitlementData, Denial> {
    let req = ConsumeRequest {
        fingerprint: Some(fingerprint.to_owned()),
        feature_code: feature_code.to_owned(),
        amount: Some(amount),
        event_id: event_id.to_owned(),
        ..ConsumeRequest::default()
    };
    let query = AggregateQuery {
        binding_key: Some(fingerprint.to_owned()),
        consumption_event_id: Some(event_id.to_owned()),
        ..by_id(license)
    };
    run(store, query, now, move |agg| {
        metering::consume(agg, &req, now)
    })
    .await
}

/// Assigns `feature` to `license` with `req`.
pub async fn assign<S: Store>(
    store: &S,
    license: &LicenseId,
    feature: &Feature,
    req: &FeatureAssignRequest,
    now: DateTime<Utc>,
) -> Result<LicenseFeature, Denial> {
    run(store, by_id(license), now, move |agg| {
        lifecycle::assign_feature(agg, feature, req, now)
    })
    .await
}

/// Inserts feature `n` with `code` on the seeded product and assigns it to the seeded license
/// with `quota`, after `tweak` adjusts the request.
pub async fn metered_feature<S: Store>(
    store: &S,
    seeded: &Seeded,
    n: u32,
    code: &str,
    quota: Option<i64>,
    tweak: impl FnOnce(&mut FeatureAssignRequest),
) -> Feature {
    let f = feature(&seeded.product, n, code);
    ok(store.insert_feature(&f, vec![]).await, "insert_feature");
    let mut req = assign_request(&f, quota);
    tweak(&mut req);
    assign(store, &seeded.license.id, &f, &req, t0())
        .await
        .expect("assigning a product feature is allowed");
    f
}

/// Every event (up to 200) with `resource_id`, oldest first.
pub async fn events_of<S: Store>(store: &S, resource_id: &str) -> Vec<crate::model::Event> {
    let page = ok(
        store
            .list_events(&crate::store::EventQuery {
                resource_id: Some(resource_id.to_owned()),
                limit: crate::store::Limit::new(Some(200)),
                ..Default::default()
            })
            .await,
        "list_events",
    );
    let mut events = page.events;
    events.reverse();
    events
}

/// Every event type (up to 200) with `resource_id`, oldest first.
pub async fn event_types_of<S: Store>(store: &S, resource_id: &str) -> Vec<String> {
    events_of(store, resource_id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// Every event (up to 200) of `event_type`, oldest first.
pub async fn events_of_type<S: Store>(store: &S, event_type: &str) -> Vec<crate::model::Event> {
    let page = ok(
        store
            .list_events(&crate::store::EventQuery {
                event_type: Some(event_type.to_owned()),
                limit: crate::store::Limit::new(Some(200)),
                ..Default::default()
            })
            .await,
        "list_events",
    );
    let mut events = page.events;
    events.reverse();
    events
}

/// Every event (up to 200), oldest first.
pub async fn all_events<S: Store>(store: &S) -> Vec<crate::model::Event> {
    let page = ok(
        store
            .list_events(&crate::store::EventQuery {
                limit: crate::store::Limit::new(Some(200)),
                ..Default::default()
            })
            .await,
        "list_events",
    );
    let mut events = page.events;
    events.reverse();
    events
}

/// Device `n` of `license` with binding `fingerprint` and `status`, created at `created_at`.
pub fn device(
    license: &License,
    n: u32,
    fingerprint: &str,
    status: crate::model::DeviceStatus,
    created_at: DateTime<Utc>,
) -> crate::model::Device {
    crate::model::Device {
        id: parse(&format!("dev_{n:04}")),
        license_id: license.id.clone(),
        binding_kind: crate::model::DeviceBindingKind::Hardware,
        binding_key: fingerprint.to_owned(),
        fingerprint: Some(fingerprint.to_owned()),
        hostname: Some(format!("host-{n}")),
        os: None,
        ip_address: Some("198.51.100.4".into()),
        is_vm: n.is_multiple_of(2),
        is_container: false,
        container_id: None,
        cluster_id: None,
        namespace: None,
        pod_name: None,
        status,
        first_seen_at: created_at,
        last_seen_at: created_at,
        last_validated_at: None,
        offline_until: None,
        // Every third device is a license user's (user-based licenses), so it round-trips.
        user_id: n.is_multiple_of(3).then(|| parse(&format!("usr_{n:04}"))),
        release_key: None,
        metadata: metadata(n),
        created_at,
        updated_at: created_at,
    }
}

/// Lease `n` of `license` for `fingerprint`, checked out at `at`, living `minutes`.
pub fn lease(
    license: &License,
    n: u32,
    fingerprint: &str,
    at: DateTime<Utc>,
    minutes: i64,
) -> crate::model::Lease {
    crate::model::Lease {
        id: parse(&format!("lease_{n:04}")),
        license_id: license.id.clone(),
        device_id: parse(&format!("dev_f{n:04}")),
        binding_key: fingerprint.to_owned(),
        token_hash: SecretHash::of(&lease_token(n)),
        app_version: Some("1.2.3".into()),
        feature_code: None,
        borrowed_until: None,
        checked_out_at: at,
        last_heartbeat_at: at,
        expires_at: at + Duration::minutes(minutes),
        checked_in_at: None,
    }
}

/// An assignment of `feature` to `license` with `quota`.
pub fn license_feature(license: &License, feature: &Feature, quota: Option<i64>) -> LicenseFeature {
    LicenseFeature {
        license_id: license.id.clone(),
        feature_id: feature.id.clone(),
        feature_code: feature.code.clone(),
        feature_name: feature.name.clone(),
        enabled: true,
        max_consumptions: quota,
        total_consumptions: 0,
        remaining: quota,
        expires_at: None,
        metadata: metadata(1),
        allow_overages: false,
        max_overages: None,
        reset_period: crate::model::ResetPeriod::Never,
        period_started_at: None,
        allow_negative: false,
        floating_seats: None,
        floating_timeout_minutes: None,
    }
}
