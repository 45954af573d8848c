//! Key rotation that every running instance follows (PostgreSQL): two servers on one
//! database; a rotation made on one is listed by the other within 5 s, before it signs
//! anything, and no answer from either is ever signed by a key the other does not publish.

mod common;

use std::time::{Duration, Instant};

use axum::http::Method;
use common::{TestApp, send};
use licentia_core::engine::Actor;
use licentia_server::keys::spawn_key_reload;
use licentia_server::{App, Config, router};
use licentia_storage_postgres::testing::{fresh_database, store_on};
use serde_json::{Value, json};

fn config() -> Config {
    Config {
        rate_limits: None,
        ..Config::default()
    }
}

fn published(app: &App<licentia_storage_postgres::PostgresStore>, kid: &str) -> bool {
    app.engine().public_keys().iter().any(|k| k.kid == kid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_every_instance_before_it_signs() {
    let options = fresh_database().await;
    let a = App::start(store_on(options.clone()).await, config())
        .await
        .unwrap();
    let b = App::start(store_on(options.clone()).await, config())
        .await
        .unwrap();
    let follow = [spawn_key_reload(a.clone()), spawn_key_reload(b.clone())];
    let ta = TestApp::of(&a).await;
    let tb = TestApp {
        router: router(b.clone()),
        admin: ta.admin.clone(),
    };
    let (_, key) = ta.license().await;
    let activated = ta
        .runtime("activate", &key, Some("a1"), &json!({"fingerprint": "fp"}))
        .await;
    assert!(
        activated.status.is_success(),
        "{}",
        String::from_utf8_lossy(&activated.bytes)
    );
    let kid_of = async |t: &TestApp| {
        let r = send(
            &t.router,
            Method::POST,
            "/api/v1/license/validate",
            Some(&format!("License {key}")),
            &[],
            Some(serde_json::to_vec(&json!({"fingerprint": "fp"})).unwrap()),
        )
        .await;
        assert!(
            r.status.is_success(),
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
        let v: Value = r.json();
        v["signature"]["kid"].as_str().unwrap().to_owned()
    };
    let old = kid_of(&tb).await;

    let new = a
        .engine()
        .rotate_keys_in(&Actor::system(), chrono::Duration::seconds(3))
        .await
        .unwrap();
    let rotated = Instant::now();
    while !published(&b, &new.kid) {
        assert!(
            rotated.elapsed() < Duration::from_secs(5),
            "the other instance lists the new key within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Across the switch, every answer of either instance is signed by a key both publish.
    let mut seen = std::collections::BTreeSet::new();
    while rotated.elapsed() < Duration::from_millis(4500) {
        for t in [&ta, &tb] {
            let kid = kid_of(t).await;
            assert!(
                published(&a, &kid) && published(&b, &kid),
                "{kid} is published by both instances"
            );
            seen.insert(kid);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.contains(&old) || rotated.elapsed() > Duration::from_secs(3));
    assert_eq!(
        kid_of(&ta).await,
        new.kid,
        "after its time the new key signs on the instance that rotated"
    );
    assert_eq!(kid_of(&tb).await, new.kid, "and on the other");
    // An immediate rotation (another instance, `keys rotate --activate-in 0`) reaches `a` too.
    let third = b.engine().rotate_keys(&Actor::system()).await.unwrap();
    let started = Instant::now();
    while !published(&a, &third.kid) {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for f in follow {
        f.abort();
    }
}
