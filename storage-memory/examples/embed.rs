//! Embedding licentia in a Rust service without any server: the engine over the in-memory
//! store creates a product, a policy and a license, activates a device, and the signed
//! response is verified with the public key set exactly as a client would.
//!
//! Run: `cargo run -p licentia-storage-memory --example embed`

use getrandom::SysRng;
use licentia_core::crypto::Unverified;
use licentia_core::engine::requests::{LicenseCreate, ProductCreate};
use licentia_core::engine::{Actor, Credential, Engine, RuntimeCall, SystemClock};
use licentia_core::model::{
    LicenseType, PolicyDraft, RuntimeBindingRequest, RuntimeEntitlementData,
};
use licentia_storage_memory::MemoryStore;
use rand_core::UnwrapErr;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::start(MemoryStore::new(), SystemClock, UnwrapErr(SysRng)).await?;
    let admin = Actor::system();

    let product = engine
        .create_product(
            &admin,
            ProductCreate {
                name: "Editor".into(),
                code: "editor".into(),
                metadata: None,
                signing: None,
            },
        )
        .await?;
    let policy = engine
        .create_policy(
            &admin,
            product.id.as_str(),
            PolicyDraft {
                name: Some("Pro".into()),
                code: Some("pro".into()),
                license_type: Some(LicenseType::Perpetual),
                max_activations: Some(3),
                ..Default::default()
            },
        )
        .await?;
    let created = engine
        .create_license(
            &admin,
            LicenseCreate {
                product_id: product.id.to_string(),
                policy_id: policy.id.to_string(),
                ..Default::default()
            },
        )
        .await?;
    println!(
        "license {} key (shown once): {}",
        created.license.id, created.license_key
    );

    let call = RuntimeCall {
        credential: Credential::LicenseKey(&created.license_key),
        idempotency_key: Some("first-activation"),
        request_id: "req_embed_1",
        ip_address: None,
    };
    let device = RuntimeBindingRequest {
        fingerprint: Some("workstation-42".into()),
        ..Default::default()
    };
    let response = engine.activate(call, &device).await?;
    println!(
        "signed response: {}",
        String::from_utf8_lossy(&response.body)
    );

    // What a client does with the bytes it received and the published keys.
    let keys = licentia_core::crypto::key_set(engine.public_keys())?;
    let verified =
        Unverified::<RuntimeEntitlementData>::from_envelope_json(&response.body)?.verify(&keys)?;
    println!(
        "verified by {}: device {} is {}, next check at {}",
        verified.kid(),
        verified.data().device_id,
        verified.data().status,
        verified.data().next_check_at
    );
    Ok(())
}
