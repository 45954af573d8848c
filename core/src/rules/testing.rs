//! Fixtures for rule tests.

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{
    License, LicenseStatus, LicenseType, Metadata, Policy, ProductVersion, RuntimeBindingRequest,
    SecretHash,
};

use super::{LicenseAggregate, VersionCatalogView};

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

pub(crate) fn policy(license_type: LicenseType) -> Policy {
    let draft = crate::model::PolicyDraft {
        name: Some("Standard".into()),
        code: Some("std".into()),
        license_type: Some(license_type),
        ..Default::default()
    };
    super::policy::build(
        "pol_1".parse().unwrap(),
        "prod_1".parse().unwrap(),
        None,
        &draft,
        t0(),
    )
    .unwrap()
}

pub(crate) fn license(policy: &Policy) -> License {
    License {
        id: "lic_1".parse().unwrap(),
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
        license_key_last4: "WXYZ".into(),
        customer_email: None,
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
            .then(|| t0() + chrono::Duration::days(30)),
        maintenance_expires_at: None,
        metadata: Metadata::new(),
        created_at: t0(),
        updated_at: t0(),
        key_hash: SecretHash::default(),
        last_validated_at: None,
    }
}

pub(crate) fn aggregate(policy: Policy) -> LicenseAggregate {
    LicenseAggregate {
        license: license(&policy),
        policy,
        devices: vec![],
        features: vec![],
        leases: vec![],
        versions: VersionCatalogView::default(),
        consumption: None,
    }
}

pub(crate) fn product_version(v: &str, released_at: DateTime<Utc>) -> ProductVersion {
    ProductVersion {
        id: "ver_1".parse().unwrap(),
        product_id: "prod_1".parse().unwrap(),
        version: v.into(),
        released_at,
        metadata: Metadata::new(),
        created_at: released_at,
        updated_at: released_at,
    }
}

pub(crate) fn hw(fingerprint: &str) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fingerprint.into()),
        ..Default::default()
    }
}
