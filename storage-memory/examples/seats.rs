//! A product, a two-seat policy and a license in a `MemoryStore`, then three devices
//! activating at once through `transact_license`: two get a seat, the third is refused, and
//! the event log shows what happened.
//!
//! Run: `cargo run -p licentia-storage-memory --example seats`

use chrono::{TimeZone, Utc};
use licentia_core::model::{
    AuditActorType, License, LicenseStatus, LicenseType, Metadata, PolicyDraft, Product,
    RuntimeBindingRequest, SecretHash,
};
use licentia_core::rules::{Binding, activation, policy};
use licentia_core::store::{
    AccessStore, AggregateQuery, CatalogStore, Decision, EventQuery, LicenseSelector, LicenseStore,
    Limit, NewEvent,
};
use licentia_storage_memory::MemoryStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    // The host owns the clock; this example uses a fixed instant.
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();

    let product = Product {
        id: "prod_editor".parse()?,
        name: "Editor".into(),
        code: "editor".parse()?,
        metadata: Metadata::new(),
        signing: Default::default(),
        created_at: now,
        updated_at: now,
    };
    store.insert_product(&product, vec![]).await?;
    let draft = PolicyDraft {
        name: Some("Two seats".into()),
        code: Some("two-seats".into()),
        license_type: Some(LicenseType::Perpetual),
        max_activations: Some(2),
        ..Default::default()
    };
    let pro = policy::build("pol_two".parse()?, product.id.clone(), None, &draft, now)?;
    store.insert_policy(&pro, vec![]).await?;

    // Only the key's hash is stored; a client presents the key and the host hashes it.
    let key = "lsk_EXAMPLEEXAMPLEEXAMPLEEXAMPLE2345";
    let license = License {
        id: "lic_demo".parse()?,
        product_id: product.id.clone(),
        policy_id: pro.id.clone(),
        customer_id: None,
        order_id: None,
        subscription_id: None,
        pool: None,
        contract_id: None,
        users: Vec::new(),
        status: LicenseStatus::Active,
        license_key_prefix: key[..8].into(),
        license_key_last4: key[key.len() - 4..].into(),
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
        key_hash: SecretHash::of(key),
        last_validated_at: None,
    };
    store.insert_license(&license, vec![]).await?;

    // Three machines activate concurrently; the per-license lock serializes them.
    let mut tasks = Vec::new();
    for (i, machine) in ["laptop", "desktop", "build-server"]
        .into_iter()
        .enumerate()
    {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let req = RuntimeBindingRequest {
                fingerprint: Some(format!("{machine}-fingerprint")),
                hostname: Some(machine.into()),
                ..Default::default()
            };
            let binding = Binding::from_request(&req).map_err(|_| "bad binding")?;
            let query = AggregateQuery {
                binding_key: Some(binding.key().to_owned()),
                ..AggregateQuery::new(LicenseSelector::KeyHash(SecretHash::of(key)))
            };
            let device_id = format!("dev_{i}").parse().map_err(|_| "bad id")?;
            let outcome = store
                .transact_license(query, move |loaded| {
                    let agg = loaded.aggregate;
                    match activation::activate(agg, &req, device_id, now) {
                        Ok(plan) => Decision {
                            mutations: plan.mutations,
                            events: plan
                                .events
                                .into_iter()
                                .map(|e| NewEvent {
                                    event_type: e.event_type.into(),
                                    actor_type: AuditActorType::License,
                                    actor_id: agg.license.id.to_string(),
                                    resource_type: e.resource_type.into(),
                                    resource_id: Some(e.resource_id),
                                    metadata: e.metadata,
                                    ip_address: None,
                                    created_at: now,
                                })
                                .collect(),
                            idempotency: None,
                            outcome: Ok(plan.outcome.device_id),
                        },
                        Err(denial) => Decision::nothing(Err(denial)),
                    }
                })
                .await
                .map_err(|_| "store error")?;
            Ok::<_, &'static str>((machine, outcome))
        }));
    }
    for task in tasks {
        match task.await?? {
            (machine, Ok(device)) => println!("{machine}: activated as {device}"),
            (machine, Err(denial)) => {
                let codes: Vec<_> = denial.reasons().iter().map(|r| r.code.as_str()).collect();
                println!("{machine}: refused {codes:?}");
            }
        }
    }

    let row = store.get_license(&license.id).await?;
    println!(
        "seats used: {} of {}",
        row.active_device_count, pro.max_activations
    );
    let page = store.list_events(&EventQuery::default()).await?;
    for e in page.events {
        println!(
            "event #{}: {} {:?}",
            e.sequence, e.event_type, e.resource_id
        );
    }
    let devices = store.list_devices(&license.id, Limit::default()).await?;
    assert_eq!(devices.len(), 2);
    Ok(())
}
