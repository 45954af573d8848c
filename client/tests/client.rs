//! The client against a real `licentia-server` (memory backend) on loopback, and against a
//! fake that forges, strips and throttles.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use licentia_client::{Cache, Client, Entitlement, Error, Retry, open_offline};
use licentia_core::crypto::VerifyError;
use licentia_core::engine::Actor;
use licentia_core::engine::requests::ProductUpdate;
use licentia_core::model::{KeyStatus, LicenseStatus, RuntimeBindingRequest, Signing};
use licentia_core::store::{LicenseStore, Limit};
use licentia_server::{App, Config, serve_app};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

struct Server {
    url: String,
    app: App<MemoryStore>,
    key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Shuts the server down; it refuses connections afterwards.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.served).await;
    }
}

/// A server with a license of a policy allowing two activations and offline use.
async fn server() -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let app = App::start(MemoryStore::new(), config).await.unwrap();
    let admin = app
        .engine()
        .bootstrap_admin(None)
        .await
        .unwrap()
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn({
        let app = app.clone();
        async move {
            let _ = serve_app(app, listener, async move {
                let _ = stopped.await;
            })
            .await;
        }
    });
    let http = reqwest::Client::new();
    let post = async |path: &str, body: Value| -> Value {
        let r = http
            .post(format!("{url}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json::<Value>().await.unwrap()["data"].clone()
    };
    let product = post(
        "/api/v1/products",
        json!({"name": "Editor", "code": "editor"}),
    )
    .await;
    let pid = product["id"].as_str().unwrap().to_owned();
    let policy = post(
        &format!("/api/v1/products/{pid}/policies"),
        json!({"name": "Pro", "code": "pro", "license_type": "perpetual", "max_activations": 2,
               "max_floating_users": 1, "allow_offline_activation": true, "offline_grace_days": 7,
               "max_borrow_hours": 24}),
    )
    .await;
    let license = post(
        "/api/v1/licenses",
        json!({"product_id": pid, "policy_id": policy["id"]}),
    )
    .await;
    // A feature with its own floating pool of one seat.
    let render = post(
        &format!("/api/v1/products/{pid}/features"),
        json!({"name": "Render", "code": "render"}),
    )
    .await;
    let lid = license["license"]["id"].as_str().unwrap();
    post(
        &format!("/api/v1/licenses/{lid}/features"),
        json!({"feature_id": render["id"], "floating_seats": 1}),
    )
    .await;
    Server {
        url,
        app,
        key: license["license_key"].as_str().unwrap().to_owned(),
        stop: Some(stop),
        served,
    }
}

fn device(fp: &str) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(fp.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_operations_verify_and_refusals_are_typed() {
    let s = server().await;
    let client = Client::new(&s.url, &s.key).unwrap();
    let one = device("fp-1");
    let activated = client.activate(&one).await.unwrap();
    assert_eq!(activated.data().status, LicenseStatus::Active);
    assert!(!activated.signed_bytes().is_empty());
    client.validate(&one).await.unwrap();
    client.check(&one).await.unwrap();
    assert_eq!(
        client
            .check_feature(&one, "not-on-this-license")
            .await
            .unwrap_err()
            .refusal_code(),
        Some("FEATURE_NOT_ASSIGNED"),
        "a verified refusal for a feature the license does not have"
    );
    let beat = client.device_heartbeat(&one).await.unwrap();
    assert_eq!(beat.data().device_id, activated.data().device_id);
    assert_eq!(
        beat.data().next_heartbeat_at,
        None,
        "the policy requires none"
    );
    assert_eq!(
        client
            .device_heartbeat(&device("fp-never-activated"))
            .await
            .unwrap_err()
            .refusal_code(),
        Some("DEVICE_NOT_ACTIVATED"),
        "a verified refusal"
    );
    let reported = client
        .telemetry(&serde_json::json!({"event": "app.started", "fingerprint": "fp-1"}))
        .await
        .unwrap();
    assert!(reported.well_formed, "{:?}", reported.problems);
    let flagged = client
        .telemetry(&serde_json::json!({"cpu": 93}))
        .await
        .unwrap();
    assert!(!flagged.well_formed && flagged.id > reported.id);
    assert!(matches!(
        client.telemetry(&serde_json::json!([1])).await,
        Err(licentia_client::Error::Invalid(_))
    ));
    let envelope = client.offline(&one).await.unwrap();
    let keys = client.keys().await.unwrap();
    let opened = open_offline(&envelope, &s.key, &keys, &one, chrono::Utc::now(), None).unwrap();
    assert_eq!(
        opened.data().entitlement.device_id,
        activated.data().device_id
    );
    assert!(
        open_offline(
            &envelope,
            &s.key,
            &keys,
            &device("fp-other"),
            chrono::Utc::now(),
            None
        )
        .is_err(),
        "an envelope opens for its device only"
    );
    let rolled_back = open_offline(
        &envelope,
        &s.key,
        &keys,
        &one,
        chrono::Utc::now(),
        Some(chrono::Utc::now() + chrono::TimeDelta::hours(1)),
    );
    assert!(
        rolled_back.is_err(),
        "a clock behind the watermark is refused"
    );

    client.activate(&device("fp-2")).await.unwrap();
    let refused = client.activate(&device("fp-3")).await.unwrap_err();
    assert_eq!(
        refused.refusal_code(),
        Some("ACTIVATION_LIMIT_REACHED"),
        "{refused}"
    );
    client.deactivate(&device("fp-2")).await.unwrap();
    client.activate(&device("fp-3")).await.unwrap();

    let lease = client.checkout(&one).await.unwrap();
    let token = lease.data().lease_token.clone();
    client.heartbeat(&token).await.unwrap();
    client.checkin(&token).await.unwrap();
    let gone = client.heartbeat(&token).await.unwrap_err();
    assert!(matches!(gone, Error::Refused(_)), "{gone}");

    let stranger = Client::new(&s.url, "lsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    match stranger.validate(&one).await.unwrap_err() {
        Error::Status { status: 401, .. } => {}
        other => panic!("an unknown key is 401, not a decision: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refreshes_the_key_set_unless_pinned() {
    let s = server().await;
    let client = Client::new(&s.url, &s.key).unwrap();
    let one = device("fp-1");
    client.activate(&one).await.unwrap();
    let old_keys = client.keys().await.unwrap();
    let pinned = Client::new(&s.url, &s.key)
        .unwrap()
        .with_pinned_keys(old_keys.clone());
    let rotated = s.app.engine().rotate_keys(&Actor::system()).await.unwrap();
    let v = client.validate(&one).await.unwrap();
    assert_eq!(v.kid(), rotated.kid, "verified after fetching the new key");
    match pinned.validate(&one).await.unwrap_err() {
        Error::Unverified(VerifyError::UnknownKey) => {}
        other => panic!("pinned keys are never refreshed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_with_keys_of_its_own_verifies_by_kid() {
    let s = server().await;
    let client = Client::new(&s.url, &s.key).unwrap();
    let one = device("fp-1");
    client.activate(&one).await.unwrap();
    let global = client.validate(&one).await.unwrap().kid().to_owned();
    let engine = s.app.engine();
    let product = engine.list_products(Limit::MAX).await.unwrap().remove(0);
    let switch = ProductUpdate {
        signing: Some(Signing::Product),
        ..ProductUpdate::default()
    };
    engine
        .update_product(&Actor::system(), product.id.as_str(), switch)
        .await
        .unwrap();
    let own = engine
        .public_keys()
        .into_iter()
        .find(|k| k.product_id.as_ref() == Some(&product.id) && k.status == KeyStatus::Active)
        .expect("the product's key is published");
    assert_ne!(own.kid, global);
    // The client's cached key set lacks the product's key: it refreshes on the unknown kid.
    let v = client.validate(&one).await.unwrap();
    assert_eq!(
        v.kid(),
        own.kid,
        "the answer is the product key's, verified"
    );
    let envelope = client.offline(&one).await.unwrap();
    assert_eq!(envelope.kid, own.kid);
    let keys = client.keys().await.unwrap();
    open_offline(&envelope, &s.key, &keys, &one, chrono::Utc::now(), None)
        .expect("the product's offline envelope opens");
}

/// One canned answer: status, headers, body.
type Canned = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// What the fake answers each `POST`, in order; it records the `Idempotency-Key`s it saw.
struct Fake {
    url: String,
    keys_seen: Arc<Mutex<Vec<String>>>,
}

async fn fake(public_keys: Vec<u8>, answers: Vec<Canned>) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys_seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&keys_seen);
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let public_keys = Bytes::from(public_keys);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen, answers, public_keys) =
                (Arc::clone(&seen), Arc::clone(&answers), public_keys.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let (seen, answers, public_keys) =
                        (Arc::clone(&seen), Arc::clone(&answers), public_keys.clone());
                    async move {
                        let mut res = hyper::Response::builder();
                        if req.uri().path() == "/api/v1/system/public-keys" {
                            return Ok::<_, hyper::Error>(
                                res.body(Full::new(public_keys)).unwrap(),
                            );
                        }
                        if let Some(k) = req.headers().get("idempotency-key") {
                            seen.lock().unwrap().push(k.to_str().unwrap().to_owned());
                        }
                        let _ = req.into_body().collect().await?;
                        let (status, headers, body) = answers
                            .lock()
                            .unwrap()
                            .next()
                            .expect("an answer for each request");
                        for (name, value) in headers {
                            res = res.header(name, value);
                        }
                        Ok(res
                            .status(status)
                            .body(Full::new(Bytes::from(body)))
                            .unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Fake { url, keys_seen }
}

/// The real server's public keys, a real signed answer and a real signed refusal.
async fn recorded(s: &Server) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let http = reqwest::Client::new();
    let keys = http
        .get(format!("{}/api/v1/system/public-keys", s.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let call = async |fp: &str| {
        http.post(format!("{}/api/v1/license/validate", s.url))
            .header("Authorization", format!("License {}", s.key))
            .json(&json!({"fingerprint": fp}))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    };
    Client::new(&s.url, &s.key)
        .unwrap()
        .activate(&device("fp-1"))
        .await
        .unwrap();
    (keys, call("fp-1").await, call("fp-never").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_stripped_refusals_are_not_refusals() {
    let s = server().await;
    let (keys, _, refusal) = recorded(&s).await;
    let text = String::from_utf8(refusal.clone()).unwrap();
    assert!(text.contains("DEVICE_NOT_ACTIVATED"), "{text}");
    let forged = text
        .replace("DEVICE_NOT_ACTIVATED", "LICENSE_REVOKED")
        .into_bytes();
    let mut stripped: Value = serde_json::from_slice(&refusal).unwrap();
    stripped.as_object_mut().unwrap().remove("signature");
    let f = fake(
        keys,
        vec![
            (404, vec![], refusal),
            (403, vec![], forged),
            (403, vec![], stripped.to_string().into_bytes()),
        ],
    )
    .await;
    let client = Client::new(&f.url, &s.key).unwrap();
    let one = device("fp-never");
    assert_eq!(
        client.validate(&one).await.unwrap_err().refusal_code(),
        Some("DEVICE_NOT_ACTIVATED"),
        "a genuine refusal is one"
    );
    match client.validate(&one).await.unwrap_err() {
        Error::Unverified(VerifyError::BadSignature) => {}
        other => panic!("a forged refusal: {other}"),
    }
    match client.validate(&one).await.unwrap_err() {
        Error::Unverified(VerifyError::Malformed) => {}
        other => panic!("a stripped refusal: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_reuse_the_idempotency_key_and_honour_retry_after() {
    let s = server().await;
    let (keys, answer, _) = recorded(&s).await;
    let f = fake(
        keys,
        vec![
            (503, vec![], b"{}".to_vec()),
            (429, vec![("retry-after", "1".to_owned())], b"{}".to_vec()),
            (200, vec![], answer.clone()),
            (200, vec![], answer),
        ],
    )
    .await;
    let client = Client::new(&f.url, &s.key).unwrap().with_retry(Retry {
        first_delay: std::time::Duration::from_millis(10),
        ..Retry::default()
    });
    let one = device("fp-1");
    let v = client.activate(&one).await.unwrap();
    assert_eq!(
        v.data().status,
        LicenseStatus::Active,
        "verified after two retries"
    );
    client.activate(&one).await.unwrap();
    let seen = f.keys_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen[0] == seen[1] && seen[1] == seen[2],
        "one key for one logical call: {seen:?}"
    );
    assert_ne!(seen[2], seen[3], "a new call, a new key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activate_example_runs_against_the_server() {
    let s = server().await;
    // `cargo test` builds the examples beside the test binaries.
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("activate"))
        .unwrap();
    let out = tokio::process::Command::new(&example)
        .args([&s.url, &s.key, "fp-example"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "activated: device dev_",
        "validated: entitlement version",
        "offline: valid until",
    ] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_guard_heartbeats_and_checks_in_when_dropped() {
    let s = server().await;
    let client = Client::new(&s.url, &s.key).unwrap();
    let (one, two) = (device("fp-1"), device("fp-2"));
    let guard = client
        .lease(&one, std::time::Duration::from_millis(50))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while guard.heartbeats() < 2 {
        assert!(std::time::Instant::now() < deadline, "the guard heartbeats");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The policy has one floating seat: taken while the guard lives.
    assert_eq!(
        client.checkout(&two).await.unwrap_err().refusal_code(),
        Some("FLOATING_POOL_EXHAUSTED")
    );
    drop(guard);
    loop {
        match client.checkout(&two).await {
            Ok(_) => break,
            Err(e) => assert_eq!(e.refusal_code(), Some("FLOATING_POOL_EXHAUSTED"), "{e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dropping the guard checks the seat in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // release() checks in and waits for the answer.
    let s2 = server().await;
    let c2 = Client::new(&s2.url, &s2.key).unwrap();
    let g = c2
        .lease(&one, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    g.release().await.unwrap();
    c2.checkout(&two).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_falls_back_offline_and_refuses_a_clock_set_back() {
    let s = server().await;
    let path = std::env::temp_dir().join(format!(
        "licentia-client-cache-{}-{}.json",
        std::process::id(),
        s.key.len() + s.url.len()
    ));
    let _ = std::fs::remove_file(&path);
    let no_retries = Retry {
        attempts: 1,
        ..Retry::default()
    };
    let client = Client::new(&s.url, &s.key)
        .unwrap()
        .with_cache(Cache::new(&path))
        .with_retry(no_retries);
    let one = device("fp-1");
    let activated = client.activate(&one).await.unwrap();
    client.offline(&one).await.unwrap();
    match client
        .validate_or_offline(&one, chrono::Utc::now())
        .await
        .unwrap()
    {
        Entitlement::Online(v) => assert_eq!(v.data().device_id, activated.data().device_id),
        other => panic!("online while the server is up: {other:?}"),
    }
    let key = s.key.clone();
    let url = s.url.clone();
    s.stop().await;

    let now = chrono::Utc::now();
    match client.validate_or_offline(&one, now).await.unwrap() {
        Entitlement::Offline(o) => {
            assert_eq!(o.data().entitlement.device_id, activated.data().device_id)
        }
        other => panic!("offline once the server is gone: {other:?}"),
    }
    // A new process (no keys in memory) reads the keys and the watermark from the file.
    let later = Client::new(&url, &key)
        .unwrap()
        .with_cache(Cache::new(&path))
        .with_retry(no_retries);
    assert!(matches!(
        later.validate_or_offline(&one, now).await.unwrap(),
        Entitlement::Offline(_)
    ));
    match later
        .validate_or_offline(&one, now - chrono::TimeDelta::hours(2))
        .await
        .unwrap_err()
    {
        Error::Offline(licentia_core::crypto::OfflineError::ClockMovedBackwards) => {}
        other => panic!("a clock set back is refused: {other}"),
    }
    match later
        .validate_or_offline(&device("fp-other"), now)
        .await
        .unwrap_err()
    {
        Error::Offline(licentia_core::crypto::OfflineError::BindingMismatch) => {}
        other => panic!("another device: {other}"),
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_lease_guard_holds_the_features_own_seat() {
    let s = server().await;
    let client = Client::new(&s.url, &s.key).unwrap();
    let (one, two) = (device("fp-1"), device("fp-2"));
    let guard = client
        .lease_feature(&one, "render", std::time::Duration::from_millis(50))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while guard.heartbeats() < 1 {
        assert!(std::time::Instant::now() < deadline, "the guard heartbeats");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        client
            .checkout_feature(&two, "render")
            .await
            .unwrap_err()
            .refusal_code(),
        Some("FLOATING_POOL_EXHAUSTED"),
        "the feature's one seat is taken"
    );
    let own = client.checkout(&two).await.unwrap();
    let render = own
        .data()
        .features
        .iter()
        .find(|f| f.code.as_str() == "render")
        .and_then(|f| f.floating)
        .unwrap();
    assert_eq!(
        (render.seats, render.in_use),
        (1, 1),
        "the license's own pool is apart"
    );
    guard.release().await.unwrap();
    client.checkout_feature(&two, "render").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrowed_seat_opens_offline_and_returns_early() {
    let s = server().await;
    let client = Client::new(&s.url, &s.key).unwrap();
    let (one, two) = (device("fp-1"), device("fp-2"));
    let borrowed = client.borrow(&one, 8, None).await.unwrap();
    let keys = client.keys().await.unwrap();
    let now = chrono::Utc::now();
    let opened = open_offline(&borrowed.data().offline, &s.key, &keys, &one, now, None).unwrap();
    assert_eq!(
        opened.data().offline_expires_at,
        borrowed.data().lease.lease_expires_at,
        "valid offline until the borrow ends"
    );
    assert_eq!(
        client.checkout(&two).await.unwrap_err().refusal_code(),
        Some("FLOATING_POOL_EXHAUSTED"),
        "the borrowed seat is taken"
    );
    client
        .return_borrowed(&borrowed.data().lease.lease_token)
        .await
        .unwrap();
    client.checkout(&two).await.unwrap();
    assert_eq!(
        client
            .borrow(&one, 25, None)
            .await
            .unwrap_err()
            .refusal_code(),
        Some("INVALID_FIELD"),
        "longer than the policy allows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_device_activates_and_works_with_its_session_alone() {
    let s = server().await;
    let license = only_license(&s).await;
    let reg = s
        .app
        .engine()
        .register_device(
            &Actor::system(),
            license.id.as_str(),
            licentia_core::model::DeviceRegistrationRequest {
                serial: "SN-7".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let fresh = Client::registered_device(&s.url).unwrap();
    let wrong = fresh
        .device_activate(
            "SN-7",
            "dsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &device("fp-r"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, Error::Status { status: 401, .. }),
        "{wrong:?}"
    );
    let (client, activated) = fresh
        .device_activate("SN-7", &reg.device_secret, &device("fp-r"))
        .await
        .unwrap();
    assert_eq!(activated.data().activation.license_id, license.id);
    // The session alone: the license key is never sent.
    let v = client.validate(&device("fp-r")).await.unwrap();
    assert_eq!(v.data().device_id, activated.data().activation.device_id);
    let envelope = client.offline(&device("fp-r")).await.unwrap();
    let keys = client.keys().await.unwrap();
    let token = &activated.data().session.token;
    open_offline(
        &envelope,
        token,
        &keys,
        &device("fp-r"),
        chrono::Utc::now(),
        None,
    )
    .expect("sealed to the session token");
    assert_eq!(
        client
            .validate(&device("fp-other"))
            .await
            .unwrap_err()
            .refusal_code(),
        Some("SESSION_DEVICE_MISMATCH")
    );
    // A device that kept its token starts from it.
    let again = Client::with_session(&s.url, token).unwrap();
    again.check(&device("fp-r")).await.unwrap();
    assert!(
        !format!("{again:?}").contains(token.as_str()),
        "no secret in Debug"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_air_gapped_device_activates_opens_and_releases_by_files() {
    use licentia_client::air_gap;
    let s = server().await;
    let license = only_license(&s).await;
    let now = chrono::Utc::now();
    let request = air_gap::activation_request(&s.key, &device("plant-9"), now).unwrap();
    assert!(air_gap::activation_request("not-a-key", &device("plant-9"), now).is_err());
    // What management does with the file (the server's engine, as its route would).
    let call = licentia_core::engine::ManagementCall {
        idempotency_key: None,
        request_id: "req",
    };
    let answered = s
        .app
        .engine()
        .offline_activate(&Actor::system(), call, license.id.as_str(), &request.file)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&answered.body).unwrap();
    let file: licentia_core::crypto::air_gap::OfflineActivationFile =
        serde_json::from_value(body["data"].clone()).unwrap();
    let client = Client::new(&s.url, &s.key).unwrap();
    let keys = client.keys().await.unwrap();
    let opened =
        air_gap::open_activation(&file, &s.key, &keys, &device("plant-9"), now, None).unwrap();
    assert_eq!(opened.data().entitlement.device_id, file.device_id);
    // The release key survives a restart through its seed.
    let kept = licentia_core::crypto::air_gap::ReleaseKey::from_seed_base64(
        &request.release_key.seed_base64(),
    )
    .unwrap();
    let release = air_gap::release_file(&kept, &file, now).unwrap();
    let device = s
        .app
        .engine()
        .offline_release(&Actor::system(), license.id.as_str(), &release)
        .await
        .unwrap();
    assert_eq!(
        device.status,
        licentia_core::model::DeviceStatus::Deactivated
    );
}

/// The one license the test server has.
async fn only_license(s: &Server) -> licentia_core::model::License {
    s.app
        .engine()
        .store()
        .list_licenses(&Default::default())
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_listed_and_downloaded_with_its_checksum_checked() {
    use licentia_core::engine::requests::{ApiKeyCreate, VersionCreate};
    let s = server().await;
    let engine = s.app.engine();
    let license = only_license(&s).await;
    let product = license.product_id.as_str().to_owned();
    let admin = engine
        .create_api_key(
            &Actor::system(),
            ApiKeyCreate {
                name: "release".into(),
                scopes: None,
                allowed_cidrs: None,
                expires_at: None,
            },
        )
        .await
        .unwrap()
        .token;
    let version = engine
        .create_version(
            &Actor::system(),
            &product,
            VersionCreate {
                version: "3.1.0".into(),
                released_at: None,
                metadata: None,
            },
        )
        .await
        .unwrap();
    let bytes: Vec<u8> = (0..2048u32).map(|i| (i % 199) as u8).collect();
    let uploaded: Value = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/products/{product}/versions/{}/artifacts?name=app&filename=app.bin",
            s.url, version.id
        ))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let artifact = uploaded["data"]["id"].as_str().unwrap().to_owned();

    let client = Client::new(&s.url, &s.key).unwrap();
    client.activate(&device("release-1")).await.unwrap();
    let manifest = client
        .manifest("3.1.0", &device("release-1"))
        .await
        .unwrap();
    assert_eq!(manifest.data().artifacts.len(), 1);
    assert_eq!(manifest.data().artifacts[0].id.as_str(), artifact);
    let got = client
        .download(&artifact, &device("release-1"))
        .await
        .unwrap();
    assert_eq!(got, bytes);
    // Refusals are typed: an unreleased version, a device not activated.
    let err = client
        .manifest("9.0.0", &device("release-1"))
        .await
        .unwrap_err();
    assert_eq!(err.refusal_code(), Some("VERSION_UNKNOWN"));
    let err = client
        .download(&artifact, &device("elsewhere"))
        .await
        .unwrap_err();
    assert_eq!(err.refusal_code(), Some("DEVICE_NOT_ACTIVATED"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_license_user_activates_with_its_password_or_its_session() {
    use licentia_core::engine::{LicenseUserAssign, UserInvite};
    use licentia_core::model::UserRole;
    let s = server().await;
    let engine = s.app.engine();
    let license = only_license(&s).await;
    let invited = engine
        .invite_user(
            &Actor::system(),
            UserInvite {
                email: "seat@example.com".into(),
                role: UserRole::Licensee,
            },
        )
        .await
        .unwrap();
    let password = "seat holder password";
    engine
        .redeem_user_token(&invited.token, password)
        .await
        .unwrap();
    let assign = LicenseUserAssign {
        email: Some("seat@example.com".into()),
        ..Default::default()
    };
    engine
        .assign_license_user(&Actor::system(), license.id.as_str(), &assign)
        .await
        .unwrap();

    let user = Client::license_user(&s.url, "seat@example.com", password).unwrap();
    user.activate(&device("fp-1")).await.unwrap();
    assert_eq!(
        user.activate(&device("fp-2"))
            .await
            .unwrap_err()
            .refusal_code(),
        Some("ACTIVATION_LIMIT_REACHED"),
        "one seat for this user"
    );
    assert_eq!(
        Client::new(&s.url, &s.key)
            .unwrap()
            .activate(&device("fp-3"))
            .await
            .unwrap_err()
            .refusal_code(),
        Some("USER_CREDENTIALS_REQUIRED"),
        "the key takes no seat on a user-based license"
    );
    let listed = user.licenses().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, license.id);

    let session = Client::sign_in_license_user(&s.url, "seat@example.com", password, None)
        .await
        .unwrap();
    session.validate(&device("fp-1")).await.unwrap();
    let envelope = session.offline(&device("fp-1")).await.unwrap();
    let keys = session.keys().await.unwrap();
    let now = chrono::Utc::now();
    // A session's envelope is sealed to its token, which only the client holds: the
    // password does not open it.
    assert!(open_offline(&envelope, password, &keys, &device("fp-1"), now, None).is_err());
    let mine = session
        .for_license("lic_00000000000000000000000000")
        .validate(&device("fp-1"))
        .await
        .unwrap_err();
    assert_eq!(mine.refusal_code(), Some("LICENSE_NOT_ASSIGNED"));
    assert!(matches!(
        Client::sign_in_license_user(&s.url, "seat@example.com", "wrong password", None)
            .await
            .unwrap_err(),
        Error::Status { status: 401, .. }
    ));
    let by_password = user.offline(&device("fp-1")).await.unwrap();
    open_offline(&by_password, password, &keys, &device("fp-1"), now, None)
        .expect("an envelope fetched with the password opens with it");
    s.stop().await;
}
