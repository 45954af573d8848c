//! Deterministic records for the backend's own tests. Record `n` is created at `t0 + n s`.
#![allow(dead_code)]

use std::fmt::Debug;
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use licentia_core::model::{
    AuditActorType, ConsumptionRecord, CustomFieldDefinition, CustomFieldResourceType,
    CustomFieldValue, CustomFieldValueType, Customer, Device, DeviceBindingKind, DeviceStatus,
    Feature, Lease, License, LicenseFeature, LicenseStatus, LicenseType, Metadata, Policy,
    PolicyDraft, Product, ProductVersion, ResetPeriod, SecretHash,
};
use licentia_core::rules::policy as policy_rules;
use licentia_core::store::{
    AggregateQuery, CatalogStore, Decision, IdempotencyKey, IdempotencyRecord, LicenseSelector,
    LicenseStore, NewEvent, StoreResult,
};
use licentia_storage_memory::MemoryStore;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

#[track_caller]
pub(crate) fn parse<T: FromStr<Err: Debug>>(s: &str) -> T {
    s.parse().unwrap()
}

pub(crate) fn product(n: u32) -> Product {
    Product {
        id: parse(&format!("prod_{n:04}")),
        name: format!("Product {n}"),
        code: parse(&format!("product-{n}")),
        metadata: Metadata::new(),
        signing: Default::default(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

pub(crate) fn policy(product: &Product, n: u32, max_activations: u32) -> Policy {
    let draft = PolicyDraft {
        name: Some(format!("Policy {n}")),
        code: Some(format!("policy-{n}")),
        license_type: Some(LicenseType::Perpetual),
        max_activations: Some(max_activations.into()),
        ..Default::default()
    };
    policy_rules::build(
        parse(&format!("pol_{n:04}")),
        product.id.clone(),
        None,
        &draft,
        at(n.into()),
    )
    .unwrap()
}

pub(crate) fn key_hash(n: u32) -> SecretHash {
    SecretHash::of(&format!("license-key-{n}"))
}

pub(crate) fn license(policy: &Policy, n: u32) -> License {
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
        license_key_prefix: "lsk_ABCD".into(),
        license_key_last4: format!("{n:04}"),
        customer_email: None,
        customer_name: None,
        active_device_count: 0,
        times_activated: 0,
        times_transferred: 0,
        total_consumptions: 0,
        entitlement_version: 1,
        starts_at: None,
        expires_at: None,
        maintenance_expires_at: None,
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
        key_hash: key_hash(n),
        last_validated_at: None,
    }
}

pub(crate) fn feature(product: &Product, n: u32) -> Feature {
    Feature {
        id: parse(&format!("feat_{n:04}")),
        product_id: product.id.clone(),
        code: parse(&format!("feature-{n}")),
        name: format!("Feature {n}"),
        metadata: Metadata::new(),
        created_at: at(n.into()),
    }
}

pub(crate) fn license_feature(license: &License, feature: &Feature) -> LicenseFeature {
    LicenseFeature {
        license_id: license.id.clone(),
        feature_id: feature.id.clone(),
        feature_code: feature.code.clone(),
        feature_name: feature.name.clone(),
        enabled: true,
        max_consumptions: Some(100),
        total_consumptions: 0,
        remaining: Some(100),
        expires_at: None,
        metadata: Metadata::new(),
        allow_overages: false,
        max_overages: None,
        reset_period: ResetPeriod::Never,
        period_started_at: None,
        allow_negative: false,
        floating_seats: None,
        floating_timeout_minutes: None,
    }
}

pub(crate) fn device(license: &License, n: u32, status: DeviceStatus, binding: &str) -> Device {
    Device {
        id: parse(&format!("dev_{n:04}")),
        license_id: license.id.clone(),
        binding_kind: DeviceBindingKind::Hardware,
        binding_key: binding.into(),
        fingerprint: Some(binding.into()),
        hostname: None,
        os: None,
        ip_address: None,
        is_vm: false,
        is_container: false,
        container_id: None,
        cluster_id: None,
        namespace: None,
        pod_name: None,
        status,
        first_seen_at: at(n.into()),
        last_seen_at: at(n.into()),
        last_validated_at: None,
        offline_until: None,
        user_id: None,
        release_key: None,
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

pub(crate) fn lease(license: &License, n: u32) -> Lease {
    Lease {
        id: parse(&format!("lease_{n:04}")),
        license_id: license.id.clone(),
        device_id: parse(&format!("dev_{n:04}")),
        binding_key: format!("lease-binding-{n}"),
        token_hash: SecretHash::of(&format!("lease-token-{n}")),
        app_version: None,
        feature_code: None,
        borrowed_until: None,
        checked_out_at: at(n.into()),
        last_heartbeat_at: at(n.into()),
        expires_at: at(i64::from(n) + 600),
        checked_in_at: None,
    }
}

pub(crate) fn consumption(
    license: &License,
    feature: &Feature,
    event_id: &str,
) -> ConsumptionRecord {
    ConsumptionRecord::new(
        license,
        feature.id.clone(),
        feature.code.clone(),
        event_id.into(),
        1,
        t0(),
    )
}

pub(crate) fn version(
    product: &Product,
    n: u32,
    v: &str,
    released_at: DateTime<Utc>,
) -> ProductVersion {
    ProductVersion {
        id: parse(&format!("ver_{n:04}")),
        product_id: product.id.clone(),
        version: v.into(),
        released_at,
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

pub(crate) fn customer(n: u32) -> Customer {
    Customer {
        id: parse(&format!("cus_{n:04}")),
        name: format!("Customer {n}"),
        code: parse(&format!("customer-{n}")),
        email: None,
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

pub(crate) fn custom_field(
    product: &Product,
    n: u32,
    resource_type: CustomFieldResourceType,
    code: &str,
) -> CustomFieldDefinition {
    CustomFieldDefinition {
        id: parse(&format!("cf_{n:04}")),
        product_id: product.id.clone(),
        resource_type,
        code: parse(code),
        name: format!("Field {n}"),
        value_type: CustomFieldValueType::String,
        is_required: false,
        enum_options: vec![],
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

pub(crate) fn string_value(
    def: &CustomFieldDefinition,
    resource_id: &str,
    s: &str,
) -> CustomFieldValue {
    CustomFieldValue {
        definition_id: def.id.clone(),
        product_id: def.product_id.clone(),
        resource_type: def.resource_type,
        resource_id: resource_id.into(),
        code: def.code.clone(),
        name: def.name.clone(),
        value_type: def.value_type,
        is_required: def.is_required,
        enum_options: def.enum_options.clone(),
        metadata: def.metadata.clone(),
        string_value: Some(s.into()),
        integer_value: None,
        boolean_value: None,
        datetime_value: None,
        enum_value: None,
        updated_at: t0(),
    }
}

/// An event about `resource_id`, caused by the system at `t0`.
pub(crate) fn event(event_type: &str, resource_id: &str) -> NewEvent {
    NewEvent {
        event_type: event_type.into(),
        actor_type: AuditActorType::System,
        actor_id: "system".into(),
        resource_type: "test".into(),
        resource_id: Some(resource_id.into()),
        metadata: Metadata::new(),
        ip_address: None,
        created_at: t0(),
    }
}

pub(crate) fn idempotency(scope: &str, key: &str, body: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey {
            scope: scope.into(),
            key: key.into(),
        },
        request_hash: [7; 32],
        status: 200,
        body: body.as_bytes().to_vec(),
        created_at: t0(),
    }
}

/// A product with a policy of `max_activations` seats.
pub(crate) async fn catalog(store: &MemoryStore, max_activations: u32) -> (Product, Policy) {
    let p = product(1);
    let pol = policy(&p, 1, max_activations);
    store.insert_product(&p, vec![]).await.unwrap();
    store.insert_policy(&pol, vec![]).await.unwrap();
    (p, pol)
}

/// `count` licenses (numbered from 1) on one product and a policy of `max_activations`.
pub(crate) async fn licenses(
    store: &MemoryStore,
    count: u32,
    max_activations: u32,
) -> Vec<License> {
    let (_, pol) = catalog(store, max_activations).await;
    let mut out = Vec::new();
    for n in 1..=count {
        let l = license(&pol, n);
        store.insert_license(&l, vec![]).await.unwrap();
        out.push(l);
    }
    out
}

/// Applies `decision`'s writes to `license` without looking at the aggregate.
pub(crate) async fn write(
    store: &MemoryStore,
    license: &License,
    decision: Decision<()>,
) -> StoreResult<()> {
    store
        .transact_license(
            AggregateQuery::new(LicenseSelector::Id(license.id.clone())),
            move |_| decision,
        )
        .await
}

/// A decision that only mutates.
pub(crate) fn mutate(mutations: Vec<licentia_core::rules::Mutation>) -> Decision<()> {
    Decision {
        mutations,
        ..Decision::nothing(())
    }
}
