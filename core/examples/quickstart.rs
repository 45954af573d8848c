//! The core on its own: define a policy, issue a license, activate a device, sign the decision
//! and verify it the way a client does. No server and no storage: the host owns the clock and
//! the randomness and hands them in.
//!
//! Run: `cargo run -p licentia-core --example quickstart`

use chrono::{DateTime, Utc};
use getrandom::SysRng;
use licentia_core::crypto::{KeyRing, LicenseKey, Unverified};
use licentia_core::model::{
    License, LicenseId, LicenseStatus, LicenseType, Metadata, PolicyDraft, RuntimeBindingRequest,
    RuntimeEntitlementData,
};
use licentia_core::rules::{LicenseAggregate, VersionCatalogView, activation, policy};
use rand_core::UnwrapErr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = UnwrapErr(SysRng);
    // The host reads the clock; the core never does.
    let now: DateTime<Utc> = std::time::SystemTime::now().into();

    let keys = KeyRing::generate(&mut rng, now);
    let draft = PolicyDraft {
        name: Some("Pro, two seats".into()),
        code: Some("pro".into()),
        license_type: Some(LicenseType::Perpetual),
        max_activations: Some(2),
        ..Default::default()
    };
    let policy = policy::build("pol_demo".parse()?, "prod_demo".parse()?, None, &draft, now)?;

    let key = LicenseKey::generate(&mut rng);
    let license = License {
        id: LicenseId::generate(&mut rng),
        product_id: policy.product_id.clone(),
        policy_id: policy.id.clone(),
        customer_id: None,
        order_id: None,
        subscription_id: None,
        pool: None,
        contract_id: None,
        users: Vec::new(),
        status: LicenseStatus::Active,
        license_key_prefix: key.prefix().to_owned(),
        license_key_last4: key.last4().to_owned(),
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
        created_at: now,
        updated_at: now,
        key_hash: key.hash(),
        last_validated_at: None,
    };
    let mut aggregate = LicenseAggregate {
        license,
        policy,
        devices: vec![],
        features: vec![],
        leases: vec![],
        versions: VersionCatalogView::default(),
        consumption: None,
    };
    println!("license key (shown once): {}", key.expose_secret());

    let request = RuntimeBindingRequest {
        fingerprint: Some("laptop-7f3a".into()),
        hostname: Some("dev-laptop".into()),
        ..Default::default()
    };
    let plan = activation::activate(&aggregate, &request, "dev_laptop".parse()?, now)?;
    aggregate.apply(&plan.mutations); // a store does this atomically
    let signed = keys.sign(&plan.outcome)?;
    let envelope = signed.to_envelope_json();
    println!("signed activation: {}", String::from_utf8_lossy(&envelope));

    // The client side: untrusted bytes in, verified data out.
    let verified = Unverified::<RuntimeEntitlementData>::from_envelope_json(&envelope)?
        .verify(&keys.public_key_set())?;
    println!(
        "verified with key {}: device {} is {} ({} of {} seats used)",
        verified.kid(),
        verified.data().device_id,
        verified.data().status,
        aggregate.license.active_device_count,
        aggregate.policy.max_activations
    );
    Ok(())
}
