//! Webhook delivery end to end: a local receiver over http and https (a test CA), on both
//! backends in process, and on PostgreSQL with two server processes killed with SIGKILL and
//! restarted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{TestApp, send};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use licentia_core::crypto::{DEFAULT_WEBHOOK_TOLERANCE, WebhookSecret, verify_webhook};
use licentia_core::model::AuditActorType;
use licentia_core::store::{NewEvent, Store};
use licentia_server::webhooks::WebhookConfig;
use licentia_server::{App, Config, router};
use licentia_storage_memory::MemoryStore;
use licentia_storage_postgres::testing::{fresh_database, store_on};
use parking_lot::Mutex;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The receiver

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    event_id: String,
    delivery: String,
    attempt: u32,
    user_agent: String,
    signature: String,
    body: Vec<u8>,
}

/// What the receiver answers: the status for the `n`-th request (from 1) on `path`.
type Answer = Arc<dyn Fn(&str, usize) -> u16 + Send + Sync>;

/// A local webhook receiver on 127.0.0.1, plain or TLS.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    async fn start(tls: Option<tokio_rustls::TlsAcceptor>, answer: Answer) -> Self {
        Self::start_slow(tls, answer, Duration::ZERO).await
    }

    /// A receiver that takes `delay` to answer each request.
    async fn start_slow(
        tls: Option<tokio_rustls::TlsAcceptor>,
        answer: Answer,
        delay: Duration,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (tls, answer, log) = (tls.clone(), Arc::clone(&answer), Arc::clone(&log));
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let (answer, log) = (Arc::clone(&answer), Arc::clone(&log));
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let path = req.uri().path().to_owned();
                            let (delivery, attempt) = (
                                header("licentia-delivery-id"),
                                header("licentia-delivery-attempt").parse().unwrap_or(0),
                            );
                            let (user_agent, signature) =
                                (header("user-agent"), header("licentia-signature"));
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            let event_id = serde_json::from_slice::<Value>(&body)
                                .ok()
                                .and_then(|v| v["id"].as_str().map(str::to_owned))
                                .unwrap_or_default();
                            let n = {
                                let mut log = log.lock();
                                log.push(Seen {
                                    path: path.clone(),
                                    event_id,
                                    delivery,
                                    attempt,
                                    user_agent,
                                    signature,
                                    body,
                                });
                                log.iter().filter(|s| s.path == path).count()
                            };
                            tokio::time::sleep(delay).await;
                            let status = answer(&path, n);
                            Ok::<_, hyper::Error>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .unwrap(),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        Self { port, seen }
    }

    async fn ok() -> Self {
        Self::start(None, Arc::new(|_, _| 200)).await
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        let host = if scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{scheme}://{host}:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    fn on(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Waits (up to a minute: a deadline against hanging, not a timing claim) until `done`.
    async fn wait(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let started = Instant::now();
        while !done(&self.seen()) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: the receiver saw {} requests",
                self.seen().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A test CA, a `localhost` certificate it signed, and the CA's PEM in a file.
fn test_tls() -> (tokio_rustls::TlsAcceptor, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let dir = std::env::temp_dir().join(format!("licentia-webhook-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("ca-{}.pem", rand_suffix()));
    std::fs::write(&path, ca.pem()).unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), path)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

// ---------------------------------------------------------------------------------------
// In process, on both backends

fn config(tweak: impl FnOnce(&mut WebhookConfig)) -> Config {
    let mut webhooks = WebhookConfig {
        first_retry: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(3),
        poll: Duration::from_millis(50),
        ..WebhookConfig::default()
    };
    tweak(&mut webhooks);
    Config {
        rate_limits: None,
        webhook_allow_private: true,
        webhooks,
        ..Config::default()
    }
}

/// An app with its sender running; abort the handle to stop it.
async fn started<S: Store + 'static>(
    store: S,
    config: Config,
) -> (App<S>, TestApp, licentia_server::webhooks::Sender) {
    let app = App::start(store, config).await.unwrap();
    let t = TestApp::of(&app).await;
    let sender = licentia_server::webhooks::spawn(app.clone()).unwrap();
    (app, t, sender)
}

/// Creates an endpoint; returns (id, secret).
async fn endpoint(t: &TestApp, url: &str, event_types: &[&str]) -> (String, String) {
    let r = t
        .admin(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "hook", "url": url, "event_types": event_types})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let d = r.json()["data"].clone();
    (
        d["webhook"]["id"].as_str().unwrap().to_owned(),
        d["secret"].as_str().unwrap().to_owned(),
    )
}

/// `n` events of type `test.ping`, appended through the store (as any write would).
async fn events<S: Store>(app: &App<S>, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let batch = chunk
            .iter()
            .map(|i| NewEvent {
                event_type: "test.ping".into(),
                actor_type: AuditActorType::System,
                actor_id: "system".into(),
                resource_type: "test".into(),
                resource_id: Some(format!("ping_{i}")),
                metadata: Default::default(),
                ip_address: None,
                created_at: app.engine().now(),
            })
            .collect();
        app.engine().store().append_events(batch).await.unwrap();
    }
}

async fn get(t: &TestApp, uri: &str) -> common::Reply {
    t.admin(Method::GET, uri, None).await
}

async fn signed_over_http_and_https<S: Store + 'static>(store: S) {
    let (tls, ca) = test_tls();
    let plain = Receiver::ok().await;
    let secure = Receiver::start(Some(tls), Arc::new(|_, _| 204)).await;
    let (app, t, sender) = started(store, config(|w| w.ca_file = Some(ca.clone()))).await;
    let (h1, s1) = endpoint(&t, &plain.url("http", "/plain"), &["product.created"]).await;
    let (h2, s2) = endpoint(&t, &secure.url("https", "/secure"), &[]).await;
    let p = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name": "Editor", "code": "editor"})),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED);
    plain.wait("http delivery", |s| !s.is_empty()).await;
    secure
        .wait("https delivery", |s| {
            s.iter()
                .any(|s| s.body.windows(15).any(|w| w == b"product.created"))
        })
        .await;
    for (seen, secret) in [
        (&plain.on("/plain")[0], &s1),
        (&secure.on("/secure").last().unwrap().clone(), &s2),
    ] {
        assert!(
            seen.user_agent.starts_with("licentia/"),
            "{}",
            seen.user_agent
        );
        assert!(
            seen.delivery.starts_with("dlv_") && seen.attempt == 1,
            "{seen:?}"
        );
        let secret = WebhookSecret::parse(secret).unwrap();
        verify_webhook(
            &secret,
            &seen.signature,
            &seen.body,
            app.engine().now(),
            DEFAULT_WEBHOOK_TOLERANCE,
        )
        .expect("the signature verifies with the endpoint's secret");
        let body: Value = serde_json::from_slice(&seen.body).unwrap();
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(body["data"]["event_type"], body["type"]);
    }
    assert_eq!(
        plain
            .seen()
            .iter()
            .map(|s| s.body.clone())
            .map(|b| serde_json::from_slice::<Value>(&b).unwrap()["type"].clone())
            .collect::<Vec<_>>(),
        [json!("product.created")],
        "an endpoint receives only the types it names"
    );
    // The endpoint and the deliveries list show what happened.
    let started = Instant::now();
    loop {
        let w = get(&t, &format!("/api/v1/webhooks/{h1}")).await.json()["data"].clone();
        if w["last_delivery_status"] == "delivered" {
            assert_eq!(w["last_status_code"], 200);
            assert!(w["last_delivery_at"].is_string());
            assert!(w.get("failing_since").is_none());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = get(&t, &format!("/api/v1/webhooks/{h2}/deliveries")).await;
    assert_eq!(list.status, StatusCode::OK);
    let deliveries = list.json()["data"].as_array().unwrap().clone();
    assert!(
        deliveries
            .iter()
            .any(|d| d["event_type"] == "product.created")
    );
    sender.abort();
    let _ = std::fs::remove_file(ca);
}

async fn retries_listed_and_retried_on_request<S: Store + 'static>(store: S) {
    // The first request fails, later ones succeed.
    let rx = Receiver::start(None, Arc::new(|_, n| if n == 1 { 500 } else { 200 })).await;
    let (app, t, sender) = started(store, config(|_| {})).await;
    let (h, _) = endpoint(&t, &rx.url("http", "/flaky"), &["test.ping"]).await;
    events(&app, 1).await;
    rx.wait("a retry after the 500", |s| s.len() >= 2).await;
    let seen = rx.seen();
    assert_eq!(seen[0].delivery, seen[1].delivery, "the same delivery");
    assert_eq!((seen[0].attempt, seen[1].attempt), (1, 2));
    assert_eq!(seen[0].event_id, seen[1].event_id);
    let delivery = seen[0].delivery.clone();
    let started = Instant::now();
    let d = loop {
        let page = get(&t, &format!("/api/v1/webhooks/{h}/deliveries?limit=10"))
            .await
            .json();
        let d = page["data"][0].clone();
        if d["status"] == "delivered" {
            assert_eq!(page["page_info"]["next_cursor"], Value::Null);
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d["id"], json!(delivery));
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["error"], "answered 500");
    assert_eq!(attempts[1]["status_code"], 200);
    assert!(attempts[1]["duration_ms"].is_u64());

    let r = t
        .admin(
            Method::POST,
            &format!("/api/v1/webhooks/{h}/deliveries/{delivery}/retry"),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(r.json()["data"]["status"], "pending");
    rx.wait("the requested retry", |s| s.len() >= 3).await;
    assert_eq!(
        (rx.seen()[2].delivery.clone(), rx.seen()[2].attempt),
        (delivery.clone(), 3)
    );
    let events = get(&t, "/api/v1/events?event_type=webhook.delivery_retried")
        .await
        .json();
    assert_eq!(events["data"].as_array().unwrap().len(), 1);

    for (uri, status) in [
        (
            format!("/api/v1/webhooks/{h}/deliveries/dlv_999999/retry"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/webhooks/{h}/deliveries/nope/retry"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/webhooks/whk_nope/deliveries/dlv_1/retry".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(
            t.admin(Method::POST, &uri, None).await.status,
            status,
            "{uri}"
        );
    }
    assert_eq!(
        get(&t, "/api/v1/webhooks/whk_nope/deliveries").await.status,
        StatusCode::NOT_FOUND
    );
    let bad = get(&t, &format!("/api/v1/webhooks/{h}/deliveries?cursor=7")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "a cursor is dlv_<n>");
    let no_auth = send(
        &t.router,
        Method::GET,
        &format!("/api/v1/webhooks/{h}/deliveries"),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(no_auth.status, StatusCode::UNAUTHORIZED);
    sender.abort();
}

async fn more_than_200_endpoints<S: Store + 'static>(store: S) {
    let rx = Receiver::ok().await;
    let (app, t, sender) = started(store, config(|_| {})).await;
    for n in 0..210 {
        endpoint(&t, &rx.url("http", &format!("/hook/{n}")), &["test.ping"]).await;
    }
    events(&app, 1).await;
    rx.wait("a delivery to every endpoint", |s| s.len() >= 210)
        .await;
    let paths: BTreeSet<String> = rx.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths.len(),
        210,
        "every endpoint, however many, got the event once"
    );
    sender.abort();
}

async fn dead_endpoints_do_not_delay_a_live_one<S: Store + 'static>(store: S) {
    // A black hole accepts connections and never answers; a closed port refuses them.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((s, _)) = hole.accept().await {
            keep.lock().push(s);
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let live = Receiver::ok().await;
    // Attempts to the black hole last two minutes and it may hold half the sender's slots
    // (4 of 8): were the live endpoint queued behind it, it would get nothing before they
    // time out.
    let (app, t, sender) = started(
        store,
        config(|w| {
            w.attempt_timeout = Duration::from_secs(120);
            w.concurrency = 8;
            w.per_endpoint = 4;
        }),
    )
    .await;
    endpoint(
        &t,
        &format!("http://127.0.0.1:{hole_port}/hole"),
        &["test.ping"],
    )
    .await;
    for n in 0..15 {
        endpoint(
            &t,
            &format!("http://127.0.0.1:{closed_port}/closed/{n}"),
            &["test.ping"],
        )
        .await;
    }
    endpoint(&t, &live.url("http", "/live"), &["test.ping"]).await;
    events(&app, 20).await;
    let started = Instant::now();
    live.wait("every event at the live endpoint", |s| s.len() >= 20)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the live endpoint was served while the black hole still held its attempts"
    );
    assert!(!held.lock().is_empty(), "the black hole was tried");
    let ids: BTreeSet<String> = live.seen().into_iter().map(|s| s.event_id).collect();
    assert_eq!(ids.len(), 20);
    sender.abort();
}

async fn a_failing_endpoint_is_disabled<S: Store + 'static>(store: S) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (app, t, sender) = started(store, config(|w| w.disable_after = Duration::ZERO)).await;
    let (h, _) = endpoint(&t, &format!("http://127.0.0.1:{port}/gone"), &[]).await;
    events(&app, 1).await;
    let started = Instant::now();
    loop {
        let w = get(&t, &format!("/api/v1/webhooks/{h}")).await.json()["data"].clone();
        if w["is_active"] == false {
            assert_eq!(w["last_delivery_status"], "failed");
            assert!(w["failing_since"].is_string());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let disabled = get(
        &t,
        &format!("/api/v1/events?event_type=webhook.disabled&resource_id={h}"),
    )
    .await
    .json();
    assert_eq!(disabled["data"].as_array().unwrap().len(), 1, "{disabled}");
    assert_eq!(disabled["data"][0]["actor_type"], "system");
    // Enabling it again is a fresh start.
    let r = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhooks/{h}"),
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["data"].get("failing_since").is_none());
    sender.abort();
}

async fn shutdown_waits_for_attempts_in_flight<S: Store + 'static>(store: S) {
    let rx = Receiver::start_slow(None, Arc::new(|_, _| 200), Duration::from_millis(800)).await;
    let (app, t, sender) = started(store, config(|_| {})).await;
    let (h, _) = endpoint(&t, &rx.url("http", "/slow"), &["test.ping"]).await;
    events(&app, 1).await;
    rx.wait("the attempt reached the receiver", |s| !s.is_empty())
        .await;
    assert!(
        sender.shutdown(Duration::from_secs(30)).await,
        "the attempt in flight finished within the grace"
    );
    let d = get(&t, &format!("/api/v1/webhooks/{h}/deliveries"))
        .await
        .json();
    assert_eq!(d["data"][0]["status"], "delivered", "and was reported: {d}");
    assert_eq!(app.engine().pending_deliveries().await.unwrap(), 0);
}

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::MemoryStore::new()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::store_on(super::fresh_database().await).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    signed_over_http_and_https,
    retries_listed_and_retried_on_request,
    more_than_200_endpoints,
    dead_endpoints_do_not_delay_a_live_one,
    a_failing_endpoint_is_disabled,
    shutdown_waits_for_attempts_in_flight,
);

// ---------------------------------------------------------------------------------------
// Server processes on PostgreSQL

const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A `licentia-server serve` process.
struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(url: &str, token: &str, extra: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_licentia-server"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url)
            .env("LICENTIA_MASTER_KEY", MASTER)
            .env("LICENTIA_BOOTSTRAP_TOKEN", token)
            .env("LICENTIA_RATE_LIMIT", "off")
            .env("LICENTIA_WEBHOOK_ALLOW_PRIVATE", "1")
            .env("LICENTIA_WEBHOOK_FIRST_RETRY", "1")
            .env("LICENTIA_WEBHOOK_TIMEOUT", "2")
            .env("RUST_LOG", "warn")
            .env_remove("LICENTIA_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && !sent
                {
                    sent = true;
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server starts: {}", stderr.lock()));
        Self {
            child,
            addr,
            stderr,
        }
    }

    /// SIGKILL: no shutdown, no flush, leases left held.
    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the server has a delivery attempt in flight (killing it now leaves a claim
    /// held).
    fn busy(&self) -> bool {
        self.metric("licentia_webhook_deliveries_in_flight") >= 1.0
    }

    fn metric(&self, name: &str) -> f64 {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        use std::io::Write;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the metrics"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "lkm_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An in-process app on the same database, to create endpoints and events.
async fn control(
    options: sqlx::postgres::PgConnectOptions,
) -> (App<licentia_storage_postgres::PostgresStore>, TestApp) {
    let store = store_on(options)
        .await
        .with_master_key(licentia_core::crypto::MasterKey::from_base64(MASTER).unwrap());
    let app = App::start(store, config(|_| {})).await.unwrap();
    let t = TestApp {
        router: router(app.clone()),
        admin: TOKEN.to_owned(),
    };
    (app, t)
}

async fn pending(app: &App<licentia_storage_postgres::PostgresStore>) -> u64 {
    app.engine().pending_deliveries().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_everything_once_per_attempt_across_kill_9() {
    let options = fresh_database().await;
    let url = common::url_of(&options);
    // A slow receiver, so attempts are in flight when an instance is killed.
    let rx = Receiver::start_slow(None, Arc::new(|_, _| 200), Duration::from_millis(50)).await;
    let a = Server::start(&url, TOKEN, &[]);
    let b = Server::start(&url, TOKEN, &[]);
    let (app, t) = control(options).await;
    for n in 0..3 {
        endpoint(&t, &rx.url("http", &format!("/hook/{n}")), &["test.ping"]).await;
    }
    // Events arrive while both send; twice, an instance with an attempt in flight is killed
    // and another started. (Whichever is busy: with at most 4 attempts per endpoint across
    // instances, one instance may hold every slot for a while, and a killed one's slots stay
    // held until their leases run out.)
    let mut servers = vec![a, b];
    events(&app, 100).await;
    for _ in 0..2 {
        let started = Instant::now();
        let busy = loop {
            if let Some(i) = servers.iter().position(Server::busy) {
                break i;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "neither server sends anything"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        servers.remove(busy).kill_9();
        events(&app, 100).await;
        servers.push(Server::start(&url, TOKEN, &[]));
    }
    let (a, b) = (&servers[0], &servers[1]);
    let started = Instant::now();
    while pending(&app).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{} deliveries still pending; stderr a: {} b: {}",
            pending(&app).await,
            a.stderr.lock(),
            b.stderr.lock()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = rx.seen();
    let mut per_attempt: BTreeMap<(String, u32), usize> = BTreeMap::new();
    let mut per_endpoint: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &seen {
        *per_attempt
            .entry((s.delivery.clone(), s.attempt))
            .or_default() += 1;
        per_endpoint
            .entry(s.path.clone())
            .or_default()
            .insert(s.event_id.clone());
    }
    let twice: Vec<_> = per_attempt.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "an attempt was sent twice: {twice:?}");
    let mut hist: BTreeMap<u32, usize> = BTreeMap::new();
    for s in &seen {
        *hist.entry(s.attempt).or_default() += 1;
    }
    assert!(
        hist.keys().any(|a| *a >= 2),
        "a killed instance's claims were taken over after their lease: {hist:?}"
    );
    assert_eq!(per_endpoint.len(), 3);
    for (path, ids) in &per_endpoint {
        assert_eq!(ids.len(), 300, "{path} got every event at least once");
    }
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_with_30_dead_endpoints_and_5000_events() {
    let options = fresh_database().await;
    let url = common::url_of(&options);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let server = Server::start(&url, TOKEN, &[]);
    let (app, t) = control(options).await;
    for n in 0..30 {
        endpoint(&t, &format!("http://127.0.0.1:{port}/dead/{n}"), &[]).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.metric("process_resident_memory_bytes");
    events(&app, 5000).await;
    // Let the sender work through a few pauses of every endpoint.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = server.metric("process_resident_memory_bytes");
    let attempts = server.metric("licentia_webhook_deliveries_total{outcome=\"failed\"}");
    assert!(
        attempts >= 30.0,
        "every dead endpoint was tried: {attempts}"
    );
    assert!(
        pending(&app).await >= 150_000,
        "the backlog is in the database, not in the server"
    );
    let grown = (after - before) / (1024.0 * 1024.0);
    assert!(
        grown < 40.0,
        "resident memory grew {grown:.1} MiB (was 230 MB before the outbox)"
    );
    let warnings = server
        .stderr
        .lock()
        .lines()
        .filter(|l| l.contains("webhook endpoint failing"))
        .count();
    assert!(
        warnings <= 60,
        "failures are logged once per endpoint per minute, not per attempt: {warnings} lines"
    );
}
