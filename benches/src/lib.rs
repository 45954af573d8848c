//! Fixtures for licentia's benchmarks: fixed keys, seeded randomness and ready-made
//! aggregates, envelopes and engines, so every bench measures the same inputs on every run.
//!
//! Nothing here re-implements licentia: records come from the conformance fixtures
//! ([`licentia_core::conformance::fixtures`]), decisions from [`licentia_core::rules`], and the
//! engine is the real [`Engine`] over the real [`MemoryStore`]. The benches themselves live in
//! `benches/benches/` and are described in `benches/README.md`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Duration, Utc};
use licentia_core::conformance::fixtures;
use licentia_core::crypto::{
    KeyRing, LicenseKey, OfflineEnvelope, PublicKeySet, SecretSeed, StoredKey, binding_sha256, seal,
};
use licentia_core::engine::{Credential, Engine, ManualClock, RuntimeCall};
use licentia_core::model::{
    ConsumeRequest, DeviceId, Feature, KeyStatus, License, LicenseFeature, LicenseType, Metadata,
    OfflineEntitlementData, Policy, Product, RuntimeBindingRequest, RuntimeEntitlementData,
    Timestamp,
};
use licentia_core::rules::{LicenseAggregate, VersionCatalogView, activation};
use licentia_core::store::{AccessStore, CatalogStore, LicenseStore};
use licentia_storage_memory::MemoryStore;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The seed of every random choice the benches make (key ids, device ids, salts, nonces).
pub const RNG_SEED: [u8; 32] = *b"licentia benches seeded rng v1\0\0";

/// The Ed25519 seed of the one signing key every bench uses.
pub const SIGNING_SEED: [u8; 32] = *b"licentia benches signing key v1\0";

/// The signing key's id.
pub const KID: &str = "key_bench0000000000000000000001";

/// The fingerprint of the device the benches validate.
pub const FINGERPRINT: &str = "bench-workstation-0001";

/// The metered feature the consume benches draw from.
pub const METERED: &str = "api-calls";

/// A fresh RNG seeded with [`RNG_SEED`].
pub fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed(RNG_SEED)
}

/// The benches' instant: one hour after the conformance epoch (2026-11-22T11:00:00Z).
pub fn now() -> DateTime<Utc> {
    fixtures::t0() + Duration::hours(1)
}

/// The fixed signing key in its storable form (active).
pub fn stored_key() -> StoredKey {
    StoredKey {
        product_id: None,
        kid: KID.to_owned(),
        status: KeyStatus::Active,
        created_at: Timestamp::new(fixtures::t0()),
        activates_at: None,
        seed: SecretSeed::from_bytes(SIGNING_SEED),
    }
}

/// A key ring holding only the fixed key.
pub fn key_ring() -> KeyRing {
    KeyRing::from_stored([stored_key()]).expect("the fixed key is valid")
}

/// The published key set for [`key_ring`].
pub fn public_keys() -> PublicKeySet {
    key_ring().public_key_set()
}

/// The same key as a bare `ed25519-dalek` key: the baselines sign and verify with it.
pub fn dalek_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&SIGNING_SEED)
}

/// Runs a future that never waits on anything external to completion (the memory store's
/// futures are ready on first poll), without a runtime's overhead in the measurement.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::hint::spin_loop();
    }
}

/// A binding request for `fingerprint`, optionally with an `app_version`.
pub fn binding(fingerprint: &str, app_version: Option<&str>) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fingerprint.to_owned()),
        hostname: Some("build-host".into()),
        os: Some("linux".into()),
        app_version: app_version.map(str::to_owned),
        ..RuntimeBindingRequest::default()
    }
}

/// A consume request of one unit of [`METERED`] with `event_id`.
pub fn consume_request(event_id: &str) -> ConsumeRequest {
    ConsumeRequest {
        fingerprint: Some(FINGERPRINT.to_owned()),
        feature_code: METERED.to_owned(),
        amount: Some(1),
        event_id: event_id.to_owned(),
        ..ConsumeRequest::default()
    }
}

/// The catalog records every fixture builds on: a product with a subscription policy of
/// five seats, three features (one metered) and `versions` catalog entries.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The product.
    pub product: Product,
    /// Its policy (5 activations, subscription).
    pub policy: Policy,
    /// `export`, [`METERED`] (quota 1 000 000) and `beta.sync` (disabled).
    pub features: Vec<Feature>,
}

/// The shared catalog.
pub fn catalog() -> Catalog {
    let product = fixtures::product(1);
    let mut policy = fixtures::policy(&product, 1, LicenseType::Subscription);
    policy.max_activations = 5;
    let features = vec![
        fixtures::feature(&product, 1, "export"),
        fixtures::feature(&product, 2, METERED),
        fixtures::feature(&product, 3, "beta.sync"),
    ];
    Catalog {
        product,
        policy,
        features,
    }
}

/// License `n` under the catalog's policy, with its key. Its metadata is emptied so that
/// 100 000 of them stay small.
pub fn license(catalog: &Catalog, n: u32, rng: &mut ChaCha20Rng) -> (License, LicenseKey) {
    let key = LicenseKey::generate(rng);
    let mut license = fixtures::license(&catalog.policy, n);
    license.key_hash = key.hash();
    license.license_key_prefix = key.prefix().to_owned();
    license.license_key_last4 = key.last4().to_owned();
    license.metadata = Metadata::new();
    (license, key)
}

/// The feature assignments of `license`: `export`, [`METERED`] with a large quota, and a
/// disabled `beta.sync`.
pub fn assignments(catalog: &Catalog, license: &License) -> Vec<LicenseFeature> {
    let mut out: Vec<LicenseFeature> = catalog
        .features
        .iter()
        .map(|f| {
            let quota = (f.code.as_str() == METERED).then_some(1_000_000);
            fixtures::license_feature(license, f, quota)
        })
        .collect();
    out[2].enabled = false;
    out
}

/// What the pure-rule benches decide on: a license with one active device (the one that
/// validates), two others, its feature assignments and a catalog entry for `2.4.1`.
#[derive(Debug, Clone)]
pub struct RuleFixture {
    /// The aggregate as a store would load it.
    pub aggregate: LicenseAggregate,
    /// Validates the active device.
    pub validate: RuntimeBindingRequest,
    /// Activates a binding never seen (a seat is free).
    pub activate: RuntimeBindingRequest,
    /// The id a new device gets.
    pub new_device: DeviceId,
    /// Consumes one unit with a new `event_id`.
    pub consume: ConsumeRequest,
}

/// The rule fixture.
pub fn rule_fixture() -> RuleFixture {
    let cat = catalog();
    let (mut license, _) = license(&cat, 1, &mut rng());
    license.active_device_count = 3;
    let status = licentia_core::model::DeviceStatus::Active;
    let devices = vec![
        fixtures::device(&license, 1, FINGERPRINT, status, fixtures::t0()),
        fixtures::device(&license, 2, "bench-laptop-0002", status, fixtures::t0()),
        fixtures::device(&license, 3, "bench-server-0003", status, fixtures::t0()),
    ];
    let entry = fixtures::version(&cat.product, 1, "2.4.1", fixtures::t0());
    let aggregate = LicenseAggregate {
        features: assignments(&cat, &license),
        license,
        policy: cat.policy,
        devices,
        leases: vec![],
        versions: VersionCatalogView {
            has_catalog: true,
            entry: Some(entry),
        },
        consumption: None,
    };
    RuleFixture {
        aggregate,
        validate: binding(FINGERPRINT, Some("2.4.1")),
        activate: binding("bench-new-machine-0004", Some("2.4.1")),
        new_device: fixtures::parse("dev_bench0000000000000000000004"),
        consume: consume_request("evt-bench-new"),
    }
}

/// A realistic runtime response: what validate returns for the rule fixture.
pub fn entitlement_data() -> RuntimeEntitlementData {
    let f = rule_fixture();
    activation::validate(&f.aggregate, &f.validate, now())
        .expect("the fixture validates")
        .outcome
}

/// The offline payload of [`entitlement_data`] for [`FINGERPRINT`], valid for 14 days.
pub fn offline_data() -> OfflineEntitlementData {
    OfflineEntitlementData {
        entitlement: entitlement_data(),
        offline_expires_at: Timestamp::new(now() + Duration::days(14)),
        binding_sha256: binding_sha256(&format!("fingerprint:{FINGERPRINT}")),
    }
}

/// The binding key offline envelopes are locked to.
pub fn offline_binding_key() -> String {
    format!("fingerprint:{FINGERPRINT}")
}

/// The license key offline envelopes are encrypted to.
pub fn offline_license_key() -> LicenseKey {
    LicenseKey::generate(&mut rng())
}

/// [`offline_data`] sealed with the fixed key to [`offline_license_key`], as JSON bytes.
pub fn offline_envelope_json() -> Vec<u8> {
    let mut rng = rng();
    let key = offline_license_key();
    let envelope: OfflineEnvelope =
        seal(&key_ring(), key.expose_secret(), &offline_data(), &mut rng)
            .expect("the fixture seals");
    serde_json::to_vec(&envelope).expect("an envelope serializes")
}

/// The engine the benches drive: the memory store, a clock stopped at [`now`], seeded RNG.
pub type BenchEngine = Engine<MemoryStore, ManualClock, ChaCha20Rng>;

/// An engine over a store with `licenses` licenses, `versions` catalog versions and
/// `prior_consumptions` recorded consumptions on the measured license.
#[derive(Debug)]
pub struct EngineFixture {
    /// The engine.
    pub engine: BenchEngine,
    /// The key of the measured license (the last one inserted).
    pub license_key: LicenseKey,
    /// Its active device's binding, asking for `app_version` 2.4.1 when there is a catalog.
    pub binding: RuntimeBindingRequest,
}

impl EngineFixture {
    /// The runtime call for the measured license.
    pub fn call(&self) -> RuntimeCall<'_> {
        RuntimeCall {
            credential: Credential::LicenseKey(self.license_key.expose_secret()),
            idempotency_key: None,
            request_id: "req_bench",
            ip_address: None,
        }
    }
}

/// The app version requested when a catalog exists; it is the catalog's oldest entry, so a
/// linear scan in release order would visit every other version first.
pub const APP_VERSION: &str = "1.0.0";

/// Builds an [`EngineFixture`]. Records are inserted through the store (no signing), then
/// the measured device is activated through the engine.
pub fn engine_fixture(licenses: u32, versions: u32, prior_consumptions: u32) -> EngineFixture {
    assert!(licenses >= 1, "at least the measured license");
    block_on(async {
        let cat = catalog();
        let store = MemoryStore::new();
        store
            .replace_signing_keys(None, None, &[stored_key()], vec![])
            .await
            .expect("keys");
        store
            .insert_product(&cat.product, vec![])
            .await
            .expect("product");
        store
            .insert_policy(&cat.policy, vec![])
            .await
            .expect("policy");
        for f in &cat.features {
            store.insert_feature(f, vec![]).await.expect("feature");
        }
        for i in 0..versions {
            // Released one day apart, oldest first: `1.0.0` is the oldest.
            let v = fixtures::version(
                &cat.product,
                i + 1,
                &format!("1.{}.{}", i / 100, i % 100),
                fixtures::t0() - Duration::days(i64::from(versions - i)),
            );
            store.insert_version(&v, vec![]).await.expect("version");
        }
        let mut rng = rng();
        let mut measured = None;
        for n in 1..=licenses {
            let (license, key) = license(&cat, n, &mut rng);
            store
                .insert_license(&license, vec![])
                .await
                .expect("license");
            if n == licenses {
                measured = Some((license, key));
            }
        }
        let (license, license_key) = measured.expect("at least one license");
        for a in assignments(&cat, &license) {
            let feature = cat
                .features
                .iter()
                .find(|f| f.id == a.feature_id)
                .expect("a catalog feature");
            let req = licentia_core::model::FeatureAssignRequest {
                enabled: Some(a.enabled),
                ..fixtures::assign_request(feature, a.max_consumptions)
            };
            fixtures::assign(&store, &license.id, feature, &req, fixtures::t0())
                .await
                .expect("assignable");
        }
        let engine = Engine::start(store, ManualClock::new(now()), rng)
            .await
            .expect("engine starts");
        let app_version = (versions > 0).then_some(APP_VERSION);
        let fixture = EngineFixture {
            engine,
            license_key,
            binding: binding(FINGERPRINT, app_version),
        };
        fixture
            .engine
            .activate(fixture.call(), &fixture.binding)
            .await
            .expect("the measured device activates");
        for i in 0..prior_consumptions {
            fixtures::consume(
                fixture.engine.store(),
                &license.id,
                FINGERPRINT,
                METERED,
                1,
                &format!("evt-prior-{i:06}"),
                now(),
            )
            .await
            .expect("quota left");
        }
        fixture
    })
}
