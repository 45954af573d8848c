//! Signing keys live in the database: a restarted instance signs with the same keys, sealed
//! seeds never sit in the clear, and a sealed key set does not open without its master key.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use licentia_core::crypto::MasterKey;
use licentia_core::engine::{Actor, Engine, EngineError, ManualClock};
use licentia_storage_postgres::PostgresStore;
use licentia_storage_postgres::testing::{fresh_database, store_on};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sqlx::postgres::PgConnectOptions;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    ))
}

async fn start(
    store: PostgresStore,
    seed: u8,
) -> Result<Engine<PostgresStore, Arc<ManualClock>, ChaCha20Rng>, EngineError> {
    Engine::start(store, clock(), ChaCha20Rng::from_seed([seed; 32])).await
}

fn master(byte: u8) -> MasterKey {
    MasterKey::from_bytes([byte; 32])
}

/// A store on `options` under master key 7 that has sealed what was in the clear, with what it
/// sealed: (signing seeds, webhook secrets, TOTP secrets).
async fn sealing_store(options: &PgConnectOptions) -> (PostgresStore, (u64, u64, u64)) {
    let sealing = store_on(options.clone()).await.with_master_key(master(7));
    let s = sealing.seal_clear_secrets().await.unwrap();
    (
        sealing,
        (s.signing_seeds, s.webhook_secrets, s.totp_secrets),
    )
}

async fn sealed_flags(options: &PgConnectOptions) -> Vec<(bool, usize)> {
    let store = store_on(options.clone()).await;
    sqlx::query_as::<_, (bool, i32)>(
        "SELECT sealed, length(seed) FROM signing_keys ORDER BY position",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(sealed, len)| (sealed, len as usize))
    .collect()
}

#[tokio::test]
async fn a_restart_signs_with_the_same_keys() {
    let options = fresh_database().await;
    let first = start(store_on(options.clone()).await, 1).await.unwrap();
    let rotated = first.rotate_keys(&Actor::system()).await.unwrap();
    let keys = first.public_keys();
    drop(first);

    let restarted = start(store_on(options.clone()).await, 2).await.unwrap();
    assert_eq!(restarted.public_keys(), keys);
    assert!(
        restarted
            .public_keys()
            .iter()
            .any(|k| k.kid == rotated.kid && licentia_core::engine::is_active(k))
    );
    assert_eq!(sealed_flags(&options).await, vec![(false, 32), (false, 32)]);
}

#[tokio::test]
async fn sealed_keys_open_only_with_their_master_key() {
    let options = fresh_database().await;
    let first = start(
        store_on(options.clone()).await.with_master_key(master(7)),
        1,
    )
    .await
    .unwrap();
    let keys = first.public_keys();
    drop(first);
    assert_eq!(
        sealed_flags(&options).await,
        vec![(true, licentia_core::crypto::master::SEALED_SEED_LEN)]
    );

    let same = start(
        store_on(options.clone()).await.with_master_key(master(7)),
        2,
    )
    .await
    .unwrap();
    assert_eq!(same.public_keys(), keys);

    let without = start(store_on(options.clone()).await, 3).await;
    assert!(
        matches!(without, Err(EngineError::Internal(_))),
        "{without:?}"
    );
    let wrong = start(
        store_on(options.clone()).await.with_master_key(master(8)),
        4,
    )
    .await;
    assert!(matches!(wrong, Err(EngineError::Internal(_))), "{wrong:?}");
}

#[tokio::test]
async fn clear_seeds_are_sealed_at_the_next_rotation() {
    let options = fresh_database().await;
    let first = start(store_on(options.clone()).await, 1).await.unwrap();
    drop(first);
    let sealing = start(
        store_on(options.clone()).await.with_master_key(master(7)),
        2,
    )
    .await
    .unwrap();
    sealing.rotate_keys(&Actor::system()).await.unwrap();
    let len = licentia_core::crypto::master::SEALED_SEED_LEN;
    assert_eq!(sealed_flags(&options).await, vec![(true, len), (true, len)]);
}

/// Webhook secrets are sealed under the master key (the endpoint id as associated data), open
/// only with it, and what was written in the clear is sealed by `seal_clear_secrets`.
#[tokio::test]
async fn webhook_secrets_are_sealed_and_clear_ones_sealed_at_start() {
    use licentia_core::engine::requests::WebhookFields;
    let options = fresh_database().await;
    // Written without a master key: seed and secret in the clear.
    let clear = start(store_on(options.clone()).await, 1).await.unwrap();
    let hook = |n: &str| WebhookFields {
        name: Some(n.into()),
        url: Some("https://hooks.example.com/x".into()),
        secret: Some(format!("{n}-secret-0123456789")),
        ..Default::default()
    };
    let old = clear
        .create_webhook(&Actor::system(), hook("old"))
        .await
        .unwrap();
    drop(clear);
    let plain = store_on(options.clone()).await;
    assert!(plain.has_clear_secrets().await.unwrap());

    let (sealing, sealed) = sealing_store(&options).await;
    assert_eq!(
        sealed,
        (1, 1, 0),
        "(seeds, webhook secrets, TOTP secrets) sealed"
    );
    assert_eq!(
        sealing.seal_clear_secrets().await.unwrap().total(),
        0,
        "nothing left to seal"
    );
    assert!(!sealing.has_clear_secrets().await.unwrap());
    let engine = start(sealing, 2).await.unwrap();
    let new = engine
        .create_webhook(&Actor::system(), hook("new"))
        .await
        .unwrap();
    let stored: Vec<(Option<String>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT secret, secret_sealed FROM webhooks")
            .fetch_all(plain.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 2);
    for (clear, sealed) in &stored {
        assert!(clear.is_none(), "no secret is left in the clear");
        let sealed = sealed.as_ref().unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }
    use licentia_core::store::AccessStore;
    let opened = engine.store().get_webhook(&old.webhook.id).await.unwrap().1;
    assert_eq!(
        opened, old.secret,
        "the sealed secret opens with its master key"
    );
    assert_eq!(
        engine.store().get_webhook(&new.webhook.id).await.unwrap().1,
        new.secret
    );
    // Another master key (or none) cannot open them.
    let wrong = store_on(options.clone()).await.with_master_key(master(8));
    assert!(wrong.get_webhook(&old.webhook.id).await.is_err());
    assert!(plain.get_webhook(&new.webhook.id).await.is_err());
}

#[tokio::test]
async fn bulk_answers_holding_license_keys_are_sealed() {
    use licentia_core::engine::ManagementCall;
    use licentia_core::engine::requests::{LicenseCreate, ProductCreate};
    use licentia_core::model::{LicenseType, PolicyDraft};

    let options = fresh_database().await;
    let e = start(
        store_on(options.clone()).await.with_master_key(master(7)),
        1,
    )
    .await
    .unwrap();
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
                name: Some("Pro".into()),
                code: Some("pro".into()),
                license_type: Some(LicenseType::Perpetual),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let call = ManagementCall {
        idempotency_key: Some("order-7"),
        request_id: "req",
    };
    let req = LicenseCreate {
        product_id: product.id.to_string(),
        policy_id: policy.id.to_string(),
        ..Default::default()
    };
    let first = e
        .create_license_once(&admin, call, req.clone())
        .await
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    let key = shown["data"]["license_key"].as_str().unwrap().to_owned();
    let (sealed, body): (bool, Vec<u8>) =
        sqlx::query_as("SELECT sealed, body FROM idempotency_records WHERE key = 'order-7'")
            .fetch_one(store_on(options.clone()).await.pool())
            .await
            .unwrap();
    assert!(sealed, "sealed under the master key");
    assert!(
        !String::from_utf8_lossy(&body).contains(&key),
        "the stored answer does not hold the key in the clear"
    );
    let again = e.create_license_once(&admin, call, req).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.body, first.body, "and opens for the replay");
}

/// Users' TOTP secrets are sealed under the master key (the user id as associated data), and
/// one written in the clear is sealed by `seal_clear_secrets`.
#[tokio::test]
async fn totp_secrets_written_in_the_clear_are_sealed_at_start() {
    use licentia_core::conformance::users::user;
    use licentia_core::crypto::TotpSecret;
    use licentia_core::store::UserStore;
    let options = fresh_database().await;
    let plain = store_on(options.clone()).await;
    let mut u = user(1);
    u.totp_secret = TotpSecret::from_bytes(&[7; 20]);
    plain.insert_user(&u, vec![]).await.unwrap();
    assert!(plain.has_clear_secrets().await.unwrap());

    let (sealing, sealed) = sealing_store(&options).await;
    assert_eq!(
        sealed,
        (0, 0, 1),
        "(seeds, webhook secrets, TOTP secrets) sealed"
    );
    assert!(!sealing.has_clear_secrets().await.unwrap());
    let (clear, sealed): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT totp_secret, totp_secret_sealed FROM users WHERE id = $1")
            .bind(u.id.as_str())
            .fetch_one(plain.pool())
            .await
            .unwrap();
    assert!(clear.is_none(), "no TOTP secret is left in the clear");
    assert!(!sealed.unwrap().windows(20).any(|w| w == [7; 20]));
    assert_eq!(
        sealing.get_user(&u.id).await.unwrap().totp_secret,
        u.totp_secret,
        "the sealed secret opens with its master key"
    );
    let wrong = store_on(options).await.with_master_key(master(8));
    assert!(
        wrong.get_user(&u.id).await.is_err(),
        "another key cannot open it"
    );
}
