//! Hardening for the open internet (issue 12), over real sockets, on both backends: timeouts,
//! body limits, the connection cap, a bounded shutdown, rate limits, U+0000, bounded metrics,
//! webhook targets and trusted proxies.

mod common;

use common::url_of;
use std::net::SocketAddr;
use std::time::Duration;

use licentia_core::store::Store;
use licentia_server::ratelimit::RateLimits;
use licentia_server::transport::Limits;
use licentia_server::{App, Config, serve_app};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// A server on a real port.
struct Server {
    addr: SocketAddr,
    admin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start<S: Store + 'static>(store: S, config: Config) -> Self {
        let app = App::start(store, config).await.expect("engine starts");
        let admin = common::bootstrap(&app).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            serve_app(app, listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            admin,
            stop: Some(stop),
            done,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// One request on a new connection; the whole answer.
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut s = self.connect().await;
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("Content-Type: application/json\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        read_answer(&mut s).await.expect("an answer")
    }

    async fn admin_call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {}", self.admin);
        self.call(method, path, Some(&auth), body.as_ref()).await
    }

    /// A product, a policy and a license: its key.
    async fn license(&self) -> String {
        let p = self
            .admin_call(
                "POST",
                "/api/v1/products",
                Some(json!({"name":"P","code":"p"})),
            )
            .await;
        assert_eq!(p.status, 201, "{}", p.text());
        let pid = p.json()["data"]["id"].as_str().unwrap().to_owned();
        let pol = self
            .admin_call("POST", &format!("/api/v1/products/{pid}/policies"),
                Some(json!({"name":"Pro","code":"pro","license_type":"perpetual","max_activations":5})))
            .await;
        assert_eq!(pol.status, 201, "{}", pol.text());
        let polid = pol.json()["data"]["id"].as_str().unwrap().to_owned();
        let l = self
            .admin_call(
                "POST",
                "/api/v1/licenses",
                Some(json!({"product_id": pid, "policy_id": polid})),
            )
            .await;
        assert_eq!(l.status, 201, "{}", l.text());
        l.json()["data"]["license_key"].as_str().unwrap().to_owned()
    }

    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        timeout(Duration::from_secs(30), &mut self.done)
            .await
            .expect("the server stops")
            .unwrap();
        started.elapsed()
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        format!("{}\n{}", self.head, String::from_utf8_lossy(&self.body))
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads one HTTP/1.1 answer (head, then `Content-Length` bytes); `None` when the server
/// closed the connection first.
async fn read_answer(s: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = timeout(Duration::from_secs(20), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = buf[head_end + 4..].to_vec();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while body.len() < len {
        let n = timeout(Duration::from_secs(20), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Answer { status, head, body })
}

/// Whether the server closes `s` within `within` (reads return 0 or fail).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            s.read(&mut chunk),
        )
        .await
        {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

fn short_limits() -> Limits {
    Limits {
        head_timeout: Duration::from_millis(600),
        body_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(900),
        max_connections: 64,
        shutdown_grace: Duration::from_millis(700),
    }
}

fn config() -> Config {
    Config {
        limits: short_limits(),
        body_limit: 1024,
        ..Config::default()
    }
}

async fn slow_head_is_closed_while_others_are_served<S: Store + 'static>(store: S) {
    let server = Server::start(store, config()).await;
    let mut slow = server.connect().await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A fresh request is served while the slow head hangs.
    let fresh = server.call("GET", "/healthz", None, None).await;
    assert_eq!(fresh.status, 200);
    let started = Instant::now();
    for _ in 0..3 {
        // One header byte at a time keeps the socket busy but the head never ends.
        let _ = slow.write_all(b"X").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "the slow head is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

async fn idle_keep_alive_is_closed<S: Store + 'static>(store: S) {
    let server = Server::start(store, config()).await;
    let mut s = server.connect().await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let a = read_answer(&mut s).await.expect("first answer");
    assert_eq!(a.status, 200);
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "idle connection closed"
    );
    server.stop().await;
}

async fn oversized_bodies_are_refused_unread<S: Store + 'static>(store: S) {
    let server = Server::start(store, config()).await;
    let auth = format!("Bearer {}", server.admin);
    // A 60 MiB body is declared and only a few bytes are sent: 413 comes at once.
    let mut s = server.connect().await;
    let head = format!(
        "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"na",
        60 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let a = timeout(Duration::from_secs(5), read_answer(&mut s))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(a.code(), "PAYLOAD_TOO_LARGE");
    assert_eq!(a.header("connection").as_deref(), Some("close"));
    // Chunked: cut as soon as it crosses the limit (1 KiB here), the rest never sent.
    let mut s = server.connect().await;
    let head = format!(
        "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        s.write_all(format!("200\r\n{}\r\n", "x".repeat(0x200)).as_bytes())
            .await
            .unwrap();
    }
    let a = timeout(Duration::from_secs(5), read_answer(&mut s))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(a.header("connection").as_deref(), Some("close"));
    // A body that trickles is 408 after the body timeout.
    let mut s = server.connect().await;
    let head = format!(
        "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 100\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let a = timeout(Duration::from_secs(5), read_answer(&mut s))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(a.status, 408, "{}", a.text());
    assert_eq!(a.code(), "REQUEST_TIMEOUT");
    assert_eq!(a.header("connection").as_deref(), Some("close"));
    server.stop().await;
}

async fn connections_are_capped<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            limits: Limits {
                max_connections: 2,
                ..short_limits()
            },
            ..config()
        },
    )
    .await;
    let mut held = vec![server.connect().await, server.connect().await];
    for s in &mut held {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(s).await.unwrap().status, 200);
    }
    // A third connection waits in the backlog: no answer while the two are open...
    let mut third = server.connect().await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        timeout(Duration::from_millis(300), third.read(&mut byte))
            .await
            .is_err(),
        "the third connection is not served while the cap is reached"
    );
    // ...and is served once one of them closes.
    drop(held.pop());
    let a = timeout(Duration::from_secs(5), read_answer(&mut third))
        .await
        .unwrap();
    assert_eq!(a.expect("served").status, 200);
    server.stop().await;
}

async fn shutdown_is_bounded<S: Store + 'static>(store: S) {
    // The body timeout is long: only the shutdown grace period (0.7 s) can end this request.
    let limits = Limits {
        body_timeout: Duration::from_secs(60),
        ..short_limits()
    };
    let server = Server::start(store, Config { limits, ..config() }).await;
    let mut half = server.connect().await;
    // A request whose body never arrives.
    half.write_all(b"POST /api/v1/products HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

async fn rate_limits_answer_429<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            rate_limits: Some(RateLimits {
                per_credential_per_second: 1,
                per_credential_burst: 5,
                failed_auth_burst: 3,
                failed_auth_period: Duration::from_secs(60),
            }),
            ..config()
        },
    )
    .await;
    // Guessing license keys from one address: 401 until the allowance is spent, then 429.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let auth = format!("License lsk_WRONGWRONGWRONGWRONGWRONGWRONG{i:02}");
        let a = server
            .call(
                "POST",
                "/api/v1/license/validate",
                Some(&auth),
                Some(&json!({"fingerprint":"f"})),
            )
            .await;
        statuses.push(a.status);
        if a.status == 429 {
            assert_eq!(a.code(), "RATE_LIMITED");
            let secs: u64 = a
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!((1..=60).contains(&secs), "{secs}");
        }
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429],
        "guesses after the allowance are 429"
    );
    // Wrong tokens count against the same address.
    let a = server
        .call("GET", "/api/v1/products", Some("Bearer lkm_WRONG"), None)
        .await;
    assert_eq!(a.status, 429);
    server.stop().await;

    // One credential over its budget: 429 for it, others unaffected.
    let server = Server::start(
        MemoryStore::new(),
        Config {
            rate_limits: Some(RateLimits {
                per_credential_per_second: 1,
                per_credential_burst: 8,
                ..RateLimits::default()
            }),
            ..config()
        },
    )
    .await;
    let key = server.license().await; // three management calls
    let auth = format!("License {key}");
    let mut limited = None;
    for _ in 0..10 {
        let a = server
            .call(
                "POST",
                "/api/v1/license/check",
                Some(&auth),
                Some(&json!({"fingerprint":"f"})),
            )
            .await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
        assert_ne!(a.status, 500, "{}", a.text());
    }
    let limited = limited.expect("the key runs out of its allowance");
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert!(limited.header("retry-after").is_some());
    // The bearer token has its own allowance left.
    let a = server.admin_call("GET", "/api/v1/products", None).await;
    assert_eq!(a.status, 200, "{}", a.text());
    server.stop().await;
}

async fn nul_is_refused_everywhere<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            rate_limits: None,
            ..config()
        },
    )
    .await;
    let key = server.license().await;
    let auth = format!("License {key}");
    let refused = |a: &Answer| {
        assert_eq!(a.status, 400, "{}", a.text());
        assert_eq!(a.code(), "INVALID_STRING");
    };
    refused(
        &server
            .admin_call(
                "POST",
                "/api/v1/products",
                Some(json!({"name":"a\u{0}b","code":"z"})),
            )
            .await,
    );
    refused(
        &server
            .admin_call(
                "POST",
                "/api/v1/customers",
                Some(json!({"name":"n","email":"a@b.c","metadata":{"k":"\u{0}"}})),
            )
            .await,
    );
    refused(&server.call("POST", "/api/v1/license/consume", Some(&auth),
        Some(&json!({"fingerprint":"f","feature_code":"units","amount":1,"event_id":"e\u{0}"}))).await);
    refused(
        &server
            .call(
                "POST",
                "/api/v1/license/activate",
                Some(&auth),
                Some(&json!({"fingerprint":"\u{0}"})),
            )
            .await,
    );
    refused(
        &server
            .admin_call("GET", "/api/v1/events?event_type=a%00b", None)
            .await,
    );
    refused(
        &server
            .admin_call("GET", "/api/v1/products/prod_%00", None)
            .await,
    );
    // An escaped backslash followed by the text u0000 is an ordinary string.
    let a = server
        .admin_call(
            "POST",
            "/api/v1/products",
            Some(json!({"name":"a\\u0000b","code":"y"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    server.stop().await;
}

async fn metrics_stay_bounded<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            rate_limits: None,
            ..config()
        },
    )
    .await;
    // The series that garbage could add: other methods and unmatched paths. (The recorder is
    // shared by the tests of this binary, so only these lines are counted.)
    let garbage_series = async || {
        let text =
            String::from_utf8(server.call("GET", "/metrics", None, None).await.body).unwrap();
        let n = text
            .lines()
            .filter(|l| {
                l.starts_with("licentia_http_requests_total")
                    && (l.contains("OTHER") || l.contains("unmatched"))
            })
            .count();
        (n, text)
    };
    for i in 0..5 {
        server
            .call(&format!("M{i}X"), "/api/v1/products", None, None)
            .await;
        server
            .call(&format!("Q{i}"), &format!("/nope/{i}"), None, None)
            .await;
    }
    let (before, _) = garbage_series().await;
    for i in 5..300 {
        server
            .call(&format!("M{i}X"), "/api/v1/products", None, None)
            .await;
        server
            .call(&format!("Q{i}"), &format!("/random/{i}"), None, None)
            .await;
    }
    let (after, text) = garbage_series().await;
    assert_eq!(before, after, "garbage methods and paths add no series");
    assert!(
        text.contains("method=\"OTHER\",route=\"/api/v1/products\""),
        "{text}"
    );
    assert!(
        !text.contains("M25X") && !text.contains("/random/"),
        "raw methods and paths are not labels"
    );
    server.stop().await;
}

async fn webhook_targets_are_checked<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            rate_limits: None,
            ..config()
        },
    )
    .await;
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/",
        "http://0x7f000001/",
        "http://127.0.0.1:5432/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
    ] {
        let a = server
            .admin_call(
                "POST",
                "/api/v1/webhooks",
                Some(json!({"name":"w","url":url})),
            )
            .await;
        assert_eq!(a.status, 422, "{url}: {}", a.text());
        assert_eq!(a.code(), "WEBHOOK_URL_NOT_ALLOWED", "{url}");
    }
    let a = server
        .admin_call(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"name":"w","url":"http:///nohost"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert_eq!(a.code(), "INVALID_FIELD");
    let ok = server
        .admin_call(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"name":"w","url":"https://hooks.example.com/x"})),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    let id = ok.json()["data"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = server
        .admin_call(
            "PATCH",
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"url":"http://192.168.0.10/"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert_eq!(a.code(), "WEBHOOK_URL_NOT_ALLOWED");
    server.stop().await;
    // With private targets allowed (local testing), loopback is accepted.
    let server = Server::start(
        MemoryStore::new(),
        Config {
            webhook_allow_private: true,
            rate_limits: None,
            ..config()
        },
    )
    .await;
    let a = server
        .admin_call(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"name":"w","url":"http://127.0.0.1:9/x"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    server.stop().await;
}

async fn trusted_proxies_give_the_client_address<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            rate_limits: None,
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            ..config()
        },
    )
    .await;
    // A token allowed only from 203.0.113.0/24.
    let t = server
        .admin_call(
            "POST",
            "/api/v1/api-keys",
            Some(json!({"name":"ci","scopes":["product:read"],"allowed_cidrs":["203.0.113.0/24"]})),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text());
    let token = t.json()["data"]["token"].as_str().unwrap().to_owned();
    let call = async |xff: &str| {
        let mut s = server.connect().await;
        let req = format!(
            "GET /api/v1/products HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nX-Forwarded-For: {xff}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        read_answer(&mut s).await.unwrap().status
    };
    assert_eq!(
        call("203.0.113.5").await,
        200,
        "the address the proxy reports"
    );
    assert_eq!(
        call("203.0.113.5, 198.51.100.1").await,
        401,
        "the rightmost untrusted hop counts"
    );
    server.stop().await;
}

async fn revoked_tokens_are_refused<S: Store + 'static>(store: S) {
    let server = Server::start(
        store,
        Config {
            rate_limits: None,
            ..config()
        },
    )
    .await;
    let t = server
        .admin_call(
            "POST",
            "/api/v1/api-keys",
            Some(json!({"name":"second","scopes":["admin"]})),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text());
    let second = t.json()["data"]["token"].as_str().unwrap().to_owned();
    let id = t.json()["data"]["api_key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {second}");
    assert_eq!(
        server
            .call("GET", "/api/v1/products", Some(&bearer), None)
            .await
            .status,
        200
    );
    let got = server
        .admin_call("GET", &format!("/api/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["data"]["is_active"], json!(true));
    assert!(
        !got.text().contains(&second),
        "the token itself is never shown again"
    );
    let del = server
        .admin_call("DELETE", &format!("/api/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(del.status, 204, "{}", del.text());
    let a = server
        .call("GET", "/api/v1/products", Some(&bearer), None)
        .await;
    assert_eq!(
        a.status, 401,
        "a revoked token is refused on its next request"
    );
    assert_eq!(
        server
            .admin_call("GET", &format!("/api/v1/api-keys/{id}"), None)
            .await
            .json()["data"]["is_active"],
        json!(false)
    );
    assert_eq!(
        server
            .admin_call("DELETE", &format!("/api/v1/api-keys/{id}"), None)
            .await
            .status,
        204,
        "revoking twice is fine"
    );
    // The first admin token is now the last one: it stays.
    let list = server
        .admin_call("GET", "/api/v1/api-keys", None)
        .await
        .json();
    let first = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] != json!(id))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let last = server
        .admin_call("DELETE", &format!("/api/v1/api-keys/{first}"), None)
        .await;
    assert_eq!(last.status, 409, "{}", last.text());
    assert_eq!(last.code(), "LAST_ADMIN_TOKEN");
    assert_eq!(
        server
            .admin_call("GET", "/api/v1/api-keys/key_nope", None)
            .await
            .status,
        404
    );
    server.stop().await;
}

macro_rules! both_backends {
    ($($check:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(licentia_storage_memory::MemoryStore::new()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(licentia_storage_postgres::testing::fresh_store().await).await;
                }
            )+
        }
    };
}

both_backends!(
    slow_head_is_closed_while_others_are_served,
    idle_keep_alive_is_closed,
    oversized_bodies_are_refused_unread,
    connections_are_capped,
    shutdown_is_bounded,
    rate_limits_answer_429,
    nul_is_refused_everywhere,
    metrics_stay_bounded,
    webhook_targets_are_checked,
    trusted_proxies_give_the_client_address,
    revoked_tokens_are_refused,
);

/// `licentia-server tokens create|list|revoke` on the configured PostgreSQL store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_cli_on_postgres() {
    let options = licentia_storage_postgres::testing::fresh_database().await;
    let url = url_of(&options);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_licentia-server"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("LICENTIA_MASTER_KEY", MASTER_KEY)
            .env_remove("LICENTIA_ALLOW_PLAINTEXT_KEYS")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = cli(&["tokens", "create", "--scope", "admin", "--name", "rescue"]);
    assert!(ok, "{out}");
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token (shown once, keep it): "))
        .unwrap()
        .to_owned();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();
    let (ok, out) = cli(&["tokens", "create", "--scope", "license:read"]);
    assert!(ok, "{out}");
    let (ok, list) = cli(&["tokens", "list"]);
    assert!(
        ok && list.contains(&id) && list.contains("rescue"),
        "{list}"
    );
    assert!(!list.contains(&token), "tokens are never listed");
    let store = licentia_storage_postgres::testing::store_on(options.clone())
        .await
        .with_master_key(licentia_core::crypto::MasterKey::from_base64(MASTER_KEY).unwrap());
    let app = App::start(store, Config::default()).await.unwrap();
    assert!(
        app.engine().authenticate(&token).await.is_ok(),
        "the CLI's token works"
    );
    let (ok, out) = cli(&["tokens", "revoke", &id]);
    assert!(
        !ok && out.contains("last active admin token"),
        "the only admin token stays: {out}"
    );
    let (ok, out) = cli(&["tokens", "create", "--scope", "admin"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["tokens", "revoke", &id]);
    assert!(ok, "{out}");
    assert!(
        app.engine().authenticate(&token).await.is_err(),
        "revoked on every instance"
    );
    let (ok, out) = cli(&["tokens", "create", "--scope", "nonsense"]);
    assert!(!ok && out.contains("not a scope"), "{out}");
    // Without DATABASE_URL there is no store to change.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licentia-server"))
        .args(["tokens", "list"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs DATABASE_URL"));
}

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The PostgreSQL URL of a fresh test database.
async fn fresh_url() -> String {
    url_of(&licentia_storage_postgres::testing::fresh_database().await)
}

/// On PostgreSQL the server refuses to start without a master key unless plaintext keys are
/// allowed; a malformed key is refused on every backend; with a key, what is in the clear is
/// sealed at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refused_without_a_master_key() {
    let url = fresh_url().await;
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_licentia-server"));
        cmd.args(["tokens", "list"])
            .env_remove("LICENTIA_MASTER_KEY")
            .env_remove("LICENTIA_ALLOW_PLAINTEXT_KEYS")
            .env_remove("DATABASE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&[("DATABASE_URL", &url)]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("LICENTIA_MASTER_KEY is not set")
            && out.contains("LICENTIA_ALLOW_PLAINTEXT_KEYS=1"),
        "{out}"
    );
    // Allowed in the clear: it runs, says so, and writes a clear seed (the first signing key).
    let (ok, out) = run(&[
        ("DATABASE_URL", &url),
        ("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("stored in the clear"), "{out}");
    // Given a key later, the clear seed is sealed at start.
    let (ok, out) = run(&[("DATABASE_URL", &url), ("LICENTIA_MASTER_KEY", MASTER_KEY)]);
    assert!(ok, "{out}");
    assert!(out.contains("sealed 1 signing seed(s)"), "{out}");
    // A malformed key is refused, on PostgreSQL and on memory.
    let (ok, out) = run(&[("DATABASE_URL", &url), ("LICENTIA_MASTER_KEY", "not-a-key")]);
    assert!(!ok && out.contains("base64 of 32 random bytes"), "{out}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licentia-server"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("LICENTIA_MASTER_KEY", "c2hvcnQ=")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("base64 of 32 random bytes"));
}

/// A response body still being sent is a request in flight: a download slower than the idle
/// timeout (two chunks 1.2 s apart, the idle timeout 0.9 s) is not cut.
#[cfg(feature = "test-routes")]
#[tokio::test]
async fn a_slow_response_body_outlives_the_idle_timeout() {
    let server = Server::start(licentia_storage_memory::MemoryStore::new(), config()).await;
    let mut s = server.connect().await;
    s.write_all(b"GET /__test/slow-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the body ends")
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // The head names `x-request-id`: count in the body only.
    let body = &text[text.find("\r\n\r\n").map_or(0, |at| at + 4)..];
    assert_eq!(
        body.matches(&"x".repeat(1024)).count(),
        2,
        "both chunks arrive: {text}"
    );
    assert!(body.ends_with("0\r\n\r\n"), "and the body's end: {text}");
    server.stop().await;
}
