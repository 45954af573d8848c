//! [`AccessStore`](crate::store::AccessStore) apart from events: API keys (found by token
//! hash, touched, counted, listed, unique by hash), webhook endpoints with their secret, and
//! the signing key set replaced with compare-and-swap.

use crate::crypto::{SecretHash, StoredKey};
use crate::model::{KeyStatus, ProductId};
use crate::store::{Limit, Store};

use super::fixtures::{
    api_key, api_token, at, event_types_of, parse, product, signing_key, system_event, webhook,
};
use super::{
    Spawner, expect_already_exists, expect_conflict, expect_not_found, ok, run_concurrently,
};

/// Insert, find by hash, touch, count and list API keys.
pub async fn api_keys_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    assert_eq!(
        ok(store.count_api_keys().await, "count_api_keys"),
        0,
        "a fresh store has no API keys"
    );
    let k1 = api_key(1);
    let mut k2 = api_key(2);
    k2.expires_at = None;
    k2.allowed_cidrs.clear();
    k2.is_active = false;
    let k3 = api_key(3);
    for k in [&k1, &k2, &k3] {
        let ev = system_event("api_key.created", "api_key", k.id.as_str(), k.created_at);
        ok(store.insert_api_key(k, vec![ev]).await, "insert_api_key");
    }
    assert_eq!(ok(store.count_api_keys().await, "count_api_keys"), 3);
    assert_eq!(
        ok(
            store.find_api_key(&SecretHash::of(&api_token(2))).await,
            "find_api_key"
        ),
        k2,
        "find_api_key finds the key by the SHA-256 of its token"
    );
    expect_not_found(
        store.find_api_key(&SecretHash::of("lkm_not_a_token")).await,
        "find_api_key of an unknown hash",
    );
    ok(store.touch_api_key(&k1.id, at(500)).await, "touch_api_key");
    let mut touched = k1.clone();
    touched.last_used_at = Some(at(500));
    assert_eq!(
        ok(
            store.find_api_key(&SecretHash::of(&api_token(1))).await,
            "find_api_key"
        ),
        touched,
        "touch_api_key records last_used_at and changes nothing else"
    );
    ok(store.touch_api_key(&k1.id, at(600)).await, "touch_api_key");
    touched.last_used_at = Some(at(600));
    assert_eq!(
        ok(store.list_api_keys(Limit::default()).await, "list_api_keys"),
        vec![k3, k2, touched],
        "API keys are listed newest first"
    );
    assert_eq!(
        event_types_of(&store, k1.id.as_str()).await,
        ["api_key.created"],
        "insert appends its event once; touch appends none"
    );
}

/// Expired sign-in sessions are purged in batches; machine tokens and live sessions stay.
pub async fn expired_sessions_are_purged<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let session = |n: u32, expires: i64| {
        let mut k = api_key(n);
        k.user_id = Some(parse("usr_0001"));
        k.expires_at = Some(at(expires));
        k
    };
    let mut expired_token = api_key(1);
    expired_token.expires_at = Some(at(10));
    let keys = [
        expired_token,
        session(2, 10),
        session(3, 20),
        session(4, 30),
        session(5, 1000),
    ];
    for k in &keys {
        ok(store.insert_api_key(k, vec![]).await, "insert_api_key");
    }
    assert_eq!(
        ok(store.purge_sessions(at(30), 1).await, "purge_sessions"),
        1,
        "at most `limit` go"
    );
    assert_eq!(
        ok(store.purge_sessions(at(30), 10).await, "purge_sessions"),
        1,
        "the next call takes the rest that expired before the cutoff"
    );
    assert_eq!(
        ok(store.purge_sessions(at(30), 10).await, "purge_sessions"),
        0,
        "nothing is deleted twice"
    );
    let mut left: Vec<String> = ok(store.list_api_keys(Limit::default()).await, "list_api_keys")
        .into_iter()
        .map(|k| k.id.to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["key_0001", "key_0004", "key_0005"],
        "the expired machine token, the session expiring at the cutoff and the live one stay"
    );
    for n in [2, 3] {
        expect_not_found(
            store.find_api_key(&SecretHash::of(&api_token(n))).await,
            "find_api_key of a purged session",
        );
    }
    assert_eq!(
        ok(
            store.find_api_key(&SecretHash::of(&api_token(5))).await,
            "find_api_key"
        ),
        keys[4],
        "a live session is found by its token"
    );
}

/// An API key's token hash is unique.
pub async fn api_key_token_hash_is_unique<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let k1 = api_key(1);
    ok(store.insert_api_key(&k1, vec![]).await, "insert_api_key");
    let mut dup = api_key(2);
    dup.token_hash = k1.token_hash;
    expect_already_exists(
        store.insert_api_key(&dup, vec![]).await,
        "insert_api_key with a taken token hash",
    );
    assert_eq!(
        ok(store.count_api_keys().await, "count_api_keys"),
        1,
        "a refused key is not stored"
    );
    assert_eq!(
        ok(store.find_api_key(&k1.token_hash).await, "find_api_key"),
        k1,
        "the hash still finds the first key"
    );
}

/// Insert, get (with secret), update (keeping or replacing the secret), list and delete
/// webhook endpoints.
pub async fn webhooks_round_trip_with_their_secret<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let w1 = webhook(1);
    let mut w2 = webhook(2);
    w2.event_types.clear();
    for (w, secret) in [(&w1, "whsec_one"), (&w2, "whsec_two")] {
        let ev = system_event("webhook.created", "webhook", w.id.as_str(), w.created_at);
        ok(
            store.insert_webhook(w, secret, vec![ev]).await,
            "insert_webhook",
        );
    }
    assert_eq!(
        ok(store.get_webhook(&w1.id).await, "get_webhook"),
        (w1.clone(), "whsec_one".to_owned()),
        "get_webhook returns the endpoint and its secret"
    );
    assert_eq!(
        ok(store.list_webhooks(Limit::default()).await, "list_webhooks"),
        vec![w2.clone(), w1.clone()],
        "endpoints are listed newest first"
    );

    let mut changed = w1.clone();
    changed.url = "https://hooks.example.com/changed".into();
    changed.is_active = false;
    changed.last_delivery_at = Some(at(70));
    changed.updated_at = at(70);
    let ev = system_event("webhook.updated", "webhook", w1.id.as_str(), at(70));
    ok(
        store.update_webhook(&changed, None, vec![ev]).await,
        "update_webhook without a secret",
    );
    assert_eq!(
        ok(store.get_webhook(&w1.id).await, "get_webhook"),
        (changed.clone(), "whsec_one".to_owned()),
        "update_webhook(secret: None) keeps the secret"
    );
    changed.secret_prefix = "whsec_ro".into();
    changed.updated_at = at(71);
    let ev = system_event("webhook.secret_rotated", "webhook", w1.id.as_str(), at(71));
    ok(
        store
            .update_webhook(&changed, Some("whsec_rotated"), vec![ev])
            .await,
        "update_webhook with a secret",
    );
    assert_eq!(
        ok(store.get_webhook(&w1.id).await, "get_webhook"),
        (changed.clone(), "whsec_rotated".to_owned()),
        "update_webhook(secret: Some) replaces the secret"
    );

    let ev = system_event("webhook.deleted", "webhook", w2.id.as_str(), at(72));
    ok(
        store.delete_webhook(&w2.id, vec![ev]).await,
        "delete_webhook",
    );
    expect_not_found(store.get_webhook(&w2.id).await, "get_webhook after delete");
    assert_eq!(
        ok(store.list_webhooks(Limit::default()).await, "list_webhooks"),
        vec![changed]
    );
    assert_eq!(
        event_types_of(&store, w1.id.as_str()).await,
        [
            "webhook.created",
            "webhook.updated",
            "webhook.secret_rotated"
        ]
    );
    assert_eq!(
        event_types_of(&store, w2.id.as_str()).await,
        ["webhook.created", "webhook.deleted"]
    );
}

type KeyView = (
    String,
    KeyStatus,
    String,
    Option<String>,
    Option<String>,
    [u8; 32],
);

fn key_view(keys: &[StoredKey]) -> Vec<KeyView> {
    let mut v: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                k.kid.clone(),
                k.status,
                k.created_at.to_string(),
                k.activates_at.map(|t| t.to_string()),
                k.product_id.as_ref().map(ToString::to_string),
                *k.seed.expose_secret(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The signing key set is replaced only when its active kid is still the one the caller saw;
/// otherwise `Conflict` and nothing changes.
pub async fn signing_keys_replace_with_compare_and_swap<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    assert!(
        ok(store.load_signing_keys().await, "load_signing_keys").is_empty(),
        "a fresh store has no signing keys"
    );
    let first = [signing_key("kid_1", 1, KeyStatus::Active)];
    let ev = system_event("signing_key.created", "signing_key", "kid_1", at(1));
    ok(
        store
            .replace_signing_keys(None, None, &first, vec![ev])
            .await,
        "replace_signing_keys(None) on an empty set",
    );
    assert_eq!(
        key_view(&ok(store.load_signing_keys().await, "load_signing_keys")),
        key_view(&first),
        "load_signing_keys returns the stored set with its seeds"
    );

    // A second instance that also saw the empty set loses.
    let rival = [signing_key("kid_rival", 9, KeyStatus::Active)];
    let marker = system_event(
        "conformance.must_not_appear",
        "signing_key",
        "kid_rival",
        at(2),
    );
    expect_conflict(
        store
            .replace_signing_keys(None, None, &rival, vec![marker])
            .await,
        "replace_signing_keys(None) when a key exists",
    );

    // A key published ahead of use keeps its activation time.
    let mut ahead = signing_key("kid_2", 2, KeyStatus::Retired);
    ahead.activates_at = Some(crate::model::Timestamp::new(at(60)));
    let scheduled = [signing_key("kid_1", 1, KeyStatus::Active), ahead];
    ok(
        store
            .replace_signing_keys(None, Some("kid_1"), &scheduled, vec![])
            .await,
        "replace_signing_keys with a key published ahead",
    );
    assert_eq!(
        key_view(&ok(store.load_signing_keys().await, "load_signing_keys")),
        key_view(&scheduled),
        "activates_at is stored with its key"
    );

    let rotated = [
        signing_key("kid_1", 1, KeyStatus::Retired),
        signing_key("kid_2", 2, KeyStatus::Active),
    ];
    let ev = system_event("signing_key.rotated", "signing_key", "kid_2", at(3));
    ok(
        store
            .replace_signing_keys(None, Some("kid_1"), &rotated, vec![ev])
            .await,
        "replace_signing_keys with the current active kid",
    );
    assert_eq!(
        key_view(&ok(store.load_signing_keys().await, "load_signing_keys")),
        key_view(&rotated),
        "rotation retires the old key and adds the new one in one step"
    );

    // A stale rotation (it saw kid_1 active) loses.
    let stale = [
        signing_key("kid_1", 1, KeyStatus::Retired),
        signing_key("kid_3", 3, KeyStatus::Active),
    ];
    let marker = system_event("conformance.must_not_appear", "signing_key", "kid_3", at(4));
    expect_conflict(
        store
            .replace_signing_keys(None, Some("kid_1"), &stale, vec![marker])
            .await,
        "replace_signing_keys with a stale active kid",
    );
    let marker = system_event("conformance.must_not_appear", "signing_key", "kid_3", at(4));
    expect_conflict(
        store
            .replace_signing_keys(None, Some("kid_unknown"), &stale, vec![marker])
            .await,
        "replace_signing_keys with an unknown active kid",
    );
    assert_eq!(
        key_view(&ok(store.load_signing_keys().await, "load_signing_keys")),
        key_view(&rotated),
        "a refused replacement changes nothing"
    );
    let leaked = super::fixtures::events_of_type(&store, "conformance.must_not_appear").await;
    assert!(
        leaked.is_empty(),
        "a refused replacement appends none of its events: {leaked:?}"
    );
    assert_eq!(
        event_types_of(&store, "kid_2").await,
        ["signing_key.rotated"]
    );
}

/// Keys of `ring` (`None`: the global one).
fn ring_keys(keys: &[StoredKey], ring: Option<&ProductId>) -> Vec<KeyView> {
    let of: Vec<StoredKey> = keys
        .iter()
        .filter(|k| k.product_id.as_ref() == ring)
        .cloned()
        .collect();
    key_view(&of)
}

/// `keys` as stored under `ring`.
fn under(ring: &ProductId, keys: &[StoredKey]) -> Vec<StoredKey> {
    keys.iter()
        .map(|k| StoredKey {
            product_id: Some(ring.clone()),
            ..k.clone()
        })
        .collect()
}

/// Each key ring (the global one, every product's own) is replaced alone, with its own
/// compare-and-swap: a product's rotation touches no other ring, a ring kept with no active
/// key is replaced by expecting none, a kid is unique across rings, and racing creations of
/// one product's ring leave exactly one.
pub async fn signing_key_rings_are_replaced_alone<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    let (a, b) = (product(1).id, product(2).id);
    let global = [signing_key("kid_g1", 1, KeyStatus::Active)];
    ok(
        store
            .replace_signing_keys(None, None, &global, vec![])
            .await,
        "replace_signing_keys of the global ring",
    );
    // A product's ring is made by expecting no active key in it, whatever the global has.
    let a1 = under(&a, &[signing_key("kid_a1", 2, KeyStatus::Active)]);
    let ev = system_event("signing_key.created", "signing_key", "kid_a1", at(1));
    ok(
        store
            .replace_signing_keys(Some(&a), None, &a1, vec![ev])
            .await,
        "replace_signing_keys(Some(product), None) makes the product's ring",
    );
    // Keys are stored under the ring named, whatever their own product_id says.
    let b1 = [signing_key("kid_b1", 3, KeyStatus::Active)];
    ok(
        store
            .replace_signing_keys(Some(&b), None, &b1, vec![])
            .await,
        "replace_signing_keys of a second product's ring",
    );
    let loaded = ok(store.load_signing_keys().await, "load_signing_keys");
    assert_eq!(loaded.len(), 3, "every ring's keys are loaded: {loaded:?}");
    assert_eq!(ring_keys(&loaded, None), key_view(&global));
    assert_eq!(ring_keys(&loaded, Some(&a)), key_view(&a1));
    assert_eq!(
        ring_keys(&loaded, Some(&b)),
        key_view(&under(&b, &b1)),
        "keys are stored under the ring named"
    );

    // Product a rotates alone; its compare-and-swap looks at its own ring only.
    let a2 = under(
        &a,
        &[
            signing_key("kid_a1", 2, KeyStatus::Retired),
            signing_key("kid_a2", 4, KeyStatus::Active),
        ],
    );
    expect_conflict(
        store
            .replace_signing_keys(Some(&a), Some("kid_g1"), &a2, vec![])
            .await,
        "replace_signing_keys of a product's ring expecting the global active kid",
    );
    ok(
        store
            .replace_signing_keys(Some(&a), Some("kid_a1"), &a2, vec![])
            .await,
        "replace_signing_keys of a product's ring with its active kid",
    );
    // Back on the global ring: every key retired and kept; made again by expecting none.
    let kept = under(
        &a,
        &[
            signing_key("kid_a1", 2, KeyStatus::Retired),
            signing_key("kid_a2", 4, KeyStatus::Retired),
        ],
    );
    ok(
        store
            .replace_signing_keys(Some(&a), Some("kid_a2"), &kept, vec![])
            .await,
        "replace_signing_keys retiring a product's ring",
    );
    let loaded = ok(store.load_signing_keys().await, "load_signing_keys");
    assert_eq!(ring_keys(&loaded, Some(&a)), key_view(&kept));
    assert_eq!(
        ring_keys(&loaded, None),
        key_view(&global),
        "a product's rings leave the global ring alone"
    );
    assert_eq!(ring_keys(&loaded, Some(&b)), key_view(&under(&b, &b1)));

    // A kid already in another ring is refused, and nothing changes.
    let taken = under(&a, &[signing_key("kid_b1", 5, KeyStatus::Active)]);
    expect_already_exists(
        store
            .replace_signing_keys(Some(&a), None, &taken, vec![])
            .await,
        "replace_signing_keys with a kid of another ring",
    );
    let after = ok(store.load_signing_keys().await, "load_signing_keys");
    assert_eq!(
        key_view(&after),
        key_view(&loaded),
        "a refused replacement changes nothing"
    );

    // Sixteen instances making product c's first ring at once: exactly one wins.
    let c = product(3).id;
    type Boxed<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;
    let tasks: Vec<Boxed<crate::store::StoreResult<()>>> = (0..16u8)
        .map(|i| {
            let (store, c) = (store.clone(), c.clone());
            Box::pin(async move {
                let keys = under(
                    &c,
                    &[signing_key(&format!("kid_c{i}"), 10 + i, KeyStatus::Active)],
                );
                store
                    .replace_signing_keys(Some(&c), None, &keys, vec![])
                    .await
            }) as Boxed<_>
        })
        .collect();
    let mut won = 0;
    for r in run_concurrently(&spawner, tasks).await {
        match r {
            Ok(()) => won += 1,
            Err(crate::store::StoreError::Conflict { .. }) => {}
            Err(e) => panic!("racing ring creations: Conflict or success, got {e:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one of the racing creations wins");
    let loaded = ok(store.load_signing_keys().await, "load_signing_keys");
    assert_eq!(ring_keys(&loaded, Some(&c)).len(), 1);
}

/// Touch, update, get and delete of missing access records are `NotFound`.
pub async fn missing_access_records_are_not_found<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let k = api_key(1);
    expect_not_found(store.touch_api_key(&k.id, at(1)).await, "touch_api_key");
    expect_not_found(store.find_api_key(&k.token_hash).await, "find_api_key");
    let w = webhook(1);
    expect_not_found(store.get_webhook(&w.id).await, "get_webhook");
    expect_not_found(
        store.update_webhook(&w, Some("whsec_x"), vec![]).await,
        "update_webhook",
    );
    expect_not_found(store.delete_webhook(&w.id, vec![]).await, "delete_webhook");
    assert!(
        ok(store.list_webhooks(Limit::default()).await, "list_webhooks").is_empty(),
        "an update of a missing endpoint creates nothing"
    );
    assert_eq!(ok(store.count_api_keys().await, "count_api_keys"), 0);
}

/// Revoking keys: get by id, revoke (idempotent), and the last usable admin key is kept, also
/// when its two last holders are revoked at once.
pub async fn api_keys_revoke_but_keep_the_last_admin<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    use crate::model::ManagementScope;
    let now = at(1000);
    let reader = api_key(1);
    let mut admin_a = api_key(2);
    admin_a.scopes = vec![ManagementScope::Admin];
    let mut admin_b = api_key(3);
    admin_b.scopes = vec![ManagementScope::Admin];
    let mut expired_admin = api_key(4);
    expired_admin.scopes = vec![ManagementScope::Admin];
    expired_admin.expires_at = Some(at(10));
    for k in [&reader, &admin_a, &admin_b, &expired_admin] {
        ok(store.insert_api_key(k, vec![]).await, "insert_api_key");
    }
    assert_eq!(
        ok(store.get_api_key(&reader.id).await, "get_api_key"),
        reader
    );
    expect_not_found(
        store.get_api_key(&"key_9999".parse().unwrap()).await,
        "get_api_key of an unknown id",
    );
    expect_not_found(
        store
            .revoke_api_key(&"key_9999".parse().unwrap(), now, vec![])
            .await,
        "revoke_api_key of an unknown id",
    );
    let ev = || vec![system_event("api_key.revoked", "api_key", "key", now)];
    let revoked = ok(
        store.revoke_api_key(&reader.id, now, ev()).await,
        "revoke_api_key",
    );
    assert!(!revoked.is_active, "a revoked key is inactive");
    assert!(
        !ok(
            store.find_api_key(&SecretHash::of(&api_token(1))).await,
            "find_api_key"
        )
        .is_active,
        "the revocation is what authentication reads"
    );
    assert_eq!(
        ok(
            store.revoke_api_key(&reader.id, now, ev()).await,
            "revoke_api_key again"
        ),
        revoked,
        "revoking twice returns the record"
    );
    // Two usable admins revoked at once: exactly one goes.
    let (a, b) = (store.clone(), store.clone());
    let (ida, idb) = (admin_a.id.clone(), admin_b.id.clone());
    let (ra, rb) = futures_join(
        async move { a.revoke_api_key(&ida, now, vec![]).await },
        async move { b.revoke_api_key(&idb, now, vec![]).await },
    )
    .await;
    let conflicts = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(crate::store::StoreError::Conflict { .. })))
        .count();
    assert_eq!(
        conflicts, 1,
        "one of the last two admin keys stays: {ra:?} {rb:?}"
    );
    assert!(ra.is_ok() || rb.is_ok());
    let left = if ra.is_ok() { &admin_b } else { &admin_a };
    expect_conflict(
        store.revoke_api_key(&left.id, now, ev()).await,
        "revoke_api_key of the last usable admin key",
    );
    assert!(ok(store.get_api_key(&left.id).await, "get_api_key").is_active);
    // An expired admin key does not count as a way back in, and may itself be revoked.
    ok(
        store.revoke_api_key(&expired_admin.id, now, vec![]).await,
        "revoke an expired admin key",
    );
}

/// Runs two futures to completion concurrently (the suite is runtime-agnostic).
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let std::task::Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.expect("ready"), rb.expect("ready"))
}
