//! Per-product signing keys over HTTP (an extension): a product with `signing: product` has
//! its own key ring, which signs its runtime answers, the refusals about its licenses and its
//! offline envelopes, and nothing of any other product; each ring rotates alone; keys are
//! listed with their `product_id` and survive a restart. On both backends, and with two
//! instances on one PostgreSQL database.

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use common::{Reply, TestApp, assert_error};
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, PublicKeySet, Refusal, Unverified, open,
};
use licentia_core::engine::{Actor, EngineError};
use licentia_core::store::Store;
use licentia_server::{App, router};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

/// The listed public keys.
async fn listed(t: &TestApp) -> Vec<Value> {
    let r = t
        .admin(Method::GET, "/api/v1/system/public-keys", None)
        .await;
    Reply::ok(&r)["data"].as_array().unwrap().clone()
}

async fn key_set(t: &TestApp) -> PublicKeySet {
    let keys = Value::Array(listed(t).await);
    PublicKeySet::from_json(keys.to_string().as_bytes()).unwrap()
}

/// The kid of the active key of `product`'s ring (`None`: the global ring).
async fn active_kid(t: &TestApp, product: Option<&str>) -> String {
    let keys = listed(t).await;
    let mine: Vec<&Value> = keys
        .iter()
        .filter(|k| k["product_id"].as_str() == product && k["status"] == "active")
        .collect();
    assert_eq!(mine.len(), 1, "one active key in the ring: {keys:?}");
    mine[0]["kid"].as_str().unwrap().to_owned()
}

/// A product (with `signing` when given), a policy allowing offline use, and a license
/// activated on `fp`: (product id, license key).
async fn licensed(t: &TestApp, code: &str, signing: Option<&str>) -> (String, String) {
    let mut body = json!({"name": code, "code": code});
    if let Some(s) = signing {
        body["signing"] = json!(s);
    }
    let p = t.admin(Method::POST, "/api/v1/products", Some(body)).await;
    assert_eq!(p.status, StatusCode::CREATED);
    let p = p.json()["data"].clone();
    assert_eq!(p["signing"], signing.unwrap_or("global"));
    let pid = p["id"].as_str().unwrap().to_owned();
    let pol = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{pid}/policies"),
            Some(
                json!({"name": "Pro", "code": "pro", "license_type": "perpetual",
                        "max_activations": 2, "allow_offline_activation": true}),
            ),
        )
        .await;
    let polid = Reply::ok(&pol)["data"]["id"].as_str().unwrap().to_owned();
    let l = t
        .admin(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"product_id": pid, "policy_id": polid})),
        )
        .await;
    let key = Reply::ok(&l)["data"]["license_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = t
        .runtime("activate", &key, Some("a"), &json!({"fingerprint": "fp"}))
        .await;
    Reply::ok(&a);
    (pid, key)
}

/// A validate's answer, verified against the listed keys: its kid.
async fn validated_kid(t: &TestApp, key: &str) -> String {
    let r = t
        .runtime("validate", key, None, &json!({"fingerprint": "fp"}))
        .await;
    Reply::ok(&r);
    let verified = Unverified::<Value>::from_envelope_json(&r.bytes)
        .unwrap()
        .verify(&key_set(t).await)
        .expect("the answer verifies against the listed keys");
    verified.kid().to_owned()
}

async fn product_keys<S: Store + Clone + 'static>(store: S) {
    let app = App::start(store.clone(), common::unlimited())
        .await
        .unwrap();
    let t = TestApp::of(&app).await;
    let (own, own_key) = licensed(&t, "editor", Some("product")).await;
    let (shared, shared_key) = licensed(&t, "viewer", None).await;

    // The product's key is listed with its product; the global ring's without one.
    let keys = listed(&t).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.get("product_id").is_none()));
    let own_kid = active_kid(&t, Some(&own)).await;
    let global_kid = active_kid(&t, None).await;
    assert_ne!(own_kid, global_kid);

    // Answers: the product's own key for its license, the global key for the other.
    assert_eq!(validated_kid(&t, &own_key).await, own_kid);
    assert_eq!(validated_kid(&t, &shared_key).await, global_kid);
    let activated = t
        .runtime(
            "activate",
            &own_key,
            Some("a"),
            &json!({"fingerprint": "fp"}),
        )
        .await;
    assert_eq!(Reply::ok(&activated)["signature"]["kid"], own_kid.as_str());

    // A refusal about the product's license is signed by its key too.
    let refused = t
        .runtime("validate", &own_key, None, &json!({"fingerprint": "other"}))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let refusal = Unverified::<Refusal>::from_refusal_json(&refused.bytes)
        .unwrap()
        .verify(&key_set(&t).await)
        .unwrap();
    assert_eq!(refusal.kid(), own_kid);
    assert_eq!(refusal.data().code, "DEVICE_NOT_ACTIVATED");
    // The offline envelope is sealed and signed by the product's key.
    let off = t
        .runtime("offline", &own_key, None, &json!({"fingerprint": "fp"}))
        .await;
    let envelope: OfflineEnvelope =
        serde_json::from_value(Reply::ok(&off)["data"].clone()).unwrap();
    assert_eq!(envelope.kid, own_kid);
    let issued: DateTime<Utc> = off.json()["meta"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let keys = key_set(&t).await;
    open(
        &envelope,
        &own_key,
        &keys,
        "fp",
        issued,
        DEFAULT_SKEW_TOLERANCE,
        None,
    )
    .expect("the envelope opens with the listed keys");

    // The product's ring rotates alone (by code, as `keys rotate --product editor` does).
    let before = validated_body(&t, &own_key).await;
    let rotated = app
        .engine()
        .rotate_product_keys_in(&Actor::system(), "editor", chrono::Duration::zero())
        .await
        .unwrap();
    assert_eq!(
        rotated.product_id.as_ref().map(|p| p.as_str()),
        Some(own.as_str())
    );
    assert_eq!(active_kid(&t, Some(&own)).await, rotated.kid);
    assert_eq!(
        active_kid(&t, None).await,
        global_kid,
        "the global ring is untouched"
    );
    assert_eq!(validated_kid(&t, &own_key).await, rotated.kid);
    assert_eq!(validated_kid(&t, &shared_key).await, global_kid);
    // What the retired key signed still verifies.
    Unverified::<Value>::from_envelope_json(&before)
        .unwrap()
        .verify(&key_set(&t).await)
        .expect("an answer by the retired product key still verifies");
    // The global ring rotates without touching the product's.
    let global = app.engine().rotate_keys(&Actor::system()).await.unwrap();
    assert_eq!(validated_kid(&t, &shared_key).await, global.kid);
    assert_eq!(validated_kid(&t, &own_key).await, rotated.kid);
    // A product on the global ring has no ring to rotate: by id a conflict; a code names only
    // products with keys of their own, so by code it is not found, like an unknown one.
    let rotate = async |name: &str| {
        app.engine()
            .rotate_product_keys_in(&Actor::system(), name, chrono::Duration::zero())
            .await
    };
    let on_global = rotate(&shared).await;
    assert!(
        matches!(on_global, Err(EngineError::Conflict(_))),
        "{on_global:?}"
    );
    for name in ["viewer", "nothing", "prod_aaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let unknown = rotate(name).await;
        assert!(
            matches!(unknown, Err(EngineError::NotFound { .. })),
            "{name}: {unknown:?}"
        );
    }

    // Back on the global ring: its answers are the global key's; its keys stay, retired.
    let back = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/products/{own}"),
            Some(json!({"signing": "global"})),
        )
        .await;
    assert_eq!(Reply::ok(&back)["data"]["signing"], "global");
    assert_eq!(validated_kid(&t, &own_key).await, global.kid);
    let kept: Vec<Value> = listed(&t)
        .await
        .into_iter()
        .filter(|k| k["product_id"] == own.as_str())
        .collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|k| k["status"] == "retired"));
    // And its own ring again: a fresh key beside the kept ones.
    let again = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/products/{own}"),
            Some(json!({"signing": "product"})),
        )
        .await;
    assert_eq!(Reply::ok(&again)["data"]["signing"], "product");
    let fresh = active_kid(&t, Some(&own)).await;
    assert!(fresh != own_kid && fresh != rotated.kid);
    assert_eq!(validated_kid(&t, &own_key).await, fresh);
    let read = t
        .admin(Method::GET, &format!("/api/v1/products/{own}"), None)
        .await;
    assert_eq!(Reply::ok(&read)["data"]["signing"], "product");
    let shared_read = t
        .admin(Method::GET, &format!("/api/v1/products/{shared}"), None)
        .await;
    assert_eq!(Reply::ok(&shared_read)["data"]["signing"], "global");

    // A bad value is a 422, not a 500.
    let bad = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/products/{own}"),
            Some(json!({"signing": "mine"})),
        )
        .await;
    assert!(bad.status.is_client_error(), "{:?}", bad.status);

    // A product signing with its own keys is not deleted until it is back on the global ring.
    let lone = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name": "Lone", "code": "lone", "signing": "product"})),
        )
        .await;
    let lone = Reply::ok(&lone)["data"]["id"].as_str().unwrap().to_owned();
    let refused = t
        .admin(Method::DELETE, &format!("/api/v1/products/{lone}"), None)
        .await;
    assert_error(&refused, StatusCode::CONFLICT, "CONFLICT");
    Reply::ok(
        &t.admin(
            Method::PATCH,
            &format!("/api/v1/products/{lone}"),
            Some(json!({"signing": "global"})),
        )
        .await,
    );
    let deleted = t
        .admin(Method::DELETE, &format!("/api/v1/products/{lone}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // Every ring survives a restart as it was.
    let listed_before = listed(&t).await;
    let restarted = App::start(store, common::unlimited()).await.unwrap();
    let t2 = TestApp {
        router: router(restarted.clone()),
        admin: t.admin.clone(),
    };
    assert_eq!(listed(&t2).await, listed_before);
    assert_eq!(validated_kid(&t2, &own_key).await, fresh);
    assert_eq!(validated_kid(&t2, &shared_key).await, global.kid);
}

async fn validated_body(t: &TestApp, key: &str) -> Vec<u8> {
    let r = t
        .runtime("validate", key, None, &json!({"fingerprint": "fp"}))
        .await;
    Reply::ok(&r);
    r.bytes.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_keys_memory_backend() {
    product_keys(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_keys_postgres_backend() {
    product_keys(licentia_storage_postgres::testing::fresh_store().await).await;
}

/// Two instances on one database: a product switched to its own ring on one is followed by
/// the other within 5 s (it lists the key, then signs the product's answers with it), and a
/// rotation of the product's ring reaches it without touching the global ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_follow_a_products_ring() {
    use licentia_server::keys::spawn_key_reload;
    use licentia_storage_postgres::testing::{fresh_database, store_on};
    let options = fresh_database().await;
    let a = App::start(store_on(options.clone()).await, common::unlimited())
        .await
        .unwrap();
    let b = App::start(store_on(options).await, common::unlimited())
        .await
        .unwrap();
    let follow = [spawn_key_reload(a.clone()), spawn_key_reload(b.clone())];
    let ta = TestApp::of(&a).await;
    let tb = TestApp {
        router: router(b.clone()),
        admin: ta.admin.clone(),
    };
    let (own, own_key) = licensed(&ta, "editor", None).await;
    let global_kid = active_kid(&ta, None).await;
    assert_eq!(validated_kid(&tb, &own_key).await, global_kid);

    let switched = ta
        .admin(
            Method::PATCH,
            &format!("/api/v1/products/{own}"),
            Some(json!({"signing": "product"})),
        )
        .await;
    assert_eq!(Reply::ok(&switched)["data"]["signing"], "product");
    let own_kid = active_kid(&ta, Some(&own)).await;
    let started = Instant::now();
    while validated_kid(&tb, &own_key).await != own_kid {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other instance signs with the product's key within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read = tb
        .admin(Method::GET, &format!("/api/v1/products/{own}"), None)
        .await;
    assert_eq!(Reply::ok(&read)["data"]["signing"], "product");

    let rotated = b
        .engine()
        .rotate_product_keys_in(&Actor::system(), &own, chrono::Duration::zero())
        .await
        .unwrap();
    let started = Instant::now();
    while validated_kid(&ta, &own_key).await != rotated.kid {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active_kid(&ta, None).await, global_kid);
    assert_eq!(active_kid(&tb, None).await, global_kid);
    for f in follow {
        f.abort();
    }
}
