//! Shared helpers of the HTTP tests: an app over the memory store with a known admin token,
//! requests sent with `tower::ServiceExt::oneshot`, and a server on a real port.

#![allow(dead_code, unreachable_pub)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use licentia_server::{App, Config, router};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A test server: the router and an admin token.
pub struct TestApp {
    pub router: Router,
    pub admin: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// The JSON body, after asserting a 2xx status (the body is shown when not).
    pub fn ok(&self) -> Value {
        assert!(
            self.status.is_success(),
            "{:?} {}",
            self.status,
            String::from_utf8_lossy(&self.bytes)
        );
        self.json()
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {}", String::from_utf8_lossy(&self.bytes)))
            .to_owned()
    }

    pub fn request_id(&self) -> &str {
        self.headers
            .get("x-request-id")
            .expect("every response carries x-request-id")
            .to_str()
            .unwrap()
    }
}

/// The default configuration without rate limits (tests send many requests from one
/// address and credential).
pub fn unlimited() -> Config {
    Config {
        rate_limits: None,
        ..Config::default()
    }
}

pub async fn app_with(config: Config) -> TestApp {
    let app = App::start(MemoryStore::new(), config).await.unwrap();
    TestApp::of(&app).await
}

/// The first admin token of `app`'s fresh store.
pub async fn bootstrap<S: licentia_core::store::Store + 'static>(app: &App<S>) -> String {
    app.engine()
        .bootstrap_admin(None)
        .await
        .unwrap()
        .expect("a fresh store has no token")
        .token
}

pub async fn app() -> TestApp {
    app_with(Config::default()).await
}

/// One request: `auth` is the whole Authorization value; a `body` is sent as JSON.
pub async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let has_ct = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    let body = match body {
        Some(b) => {
            if !has_ct {
                req = req.header("content-type", "application/json");
            }
            Body::from(b)
        }
        None => Body::empty(),
    };
    let res = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        bytes,
    }
}

impl TestApp {
    /// `app`'s router with the first admin token of its fresh store.
    pub async fn of<S: licentia_core::store::Store + 'static>(app: &App<S>) -> Self {
        Self {
            router: router(app.clone()),
            admin: bootstrap(app).await,
        }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.admin)
    }

    /// A management call with the admin token.
    pub async fn admin(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let auth = self.bearer();
        send(
            &self.router,
            method,
            uri,
            Some(&auth),
            &[],
            body.map(|b| serde_json::to_vec(&b).unwrap()),
        )
        .await
    }

    /// The listed public keys (`/api/v1/system/public-keys`), as a key set.
    pub async fn key_set(&self) -> licentia_core::crypto::PublicKeySet {
        let keys = self
            .admin(Method::GET, "/api/v1/system/public-keys", None)
            .await
            .ok();
        licentia_core::crypto::PublicKeySet::from_json(keys["data"].to_string().as_bytes()).unwrap()
    }

    /// A POST of `body` with no credential (sign-in, setting a password).
    pub async fn public(&self, uri: &str, body: Value) -> Reply {
        send(
            &self.router,
            Method::POST,
            uri,
            None,
            &[],
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    /// A runtime call with `key` and an optional Idempotency-Key.
    pub async fn runtime(&self, op: &str, key: &str, idem: Option<&str>, body: &Value) -> Reply {
        let auth = format!("License {key}");
        let headers: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
        send(
            &self.router,
            Method::POST,
            &format!("/api/v1/license/{op}"),
            Some(&auth),
            &headers,
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }

    /// A product, a policy (floating-capable, 2 seats) and a license: (license id, key).
    pub async fn license(&self) -> (String, String) {
        let p = self
            .admin(
                Method::POST,
                "/api/v1/products",
                Some(json!({"name": "Editor", "code": "editor"})),
            )
            .await;
        assert_eq!(
            p.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&p.bytes)
        );
        let pid = p.json()["data"]["id"].as_str().unwrap().to_owned();
        let pol = self
            .admin(
                Method::POST,
                &format!("/api/v1/products/{pid}/policies"),
                Some(
                    json!({"name": "Pro", "code": "pro", "license_type": "perpetual",
                            "max_activations": 2, "max_floating_users": 2}),
                ),
            )
            .await;
        assert_eq!(pol.status, StatusCode::CREATED);
        let polid = pol.json()["data"]["id"].as_str().unwrap().to_owned();
        let l = self
            .admin(
                Method::POST,
                "/api/v1/licenses",
                Some(json!({"product_id": pid, "policy_id": polid})),
            )
            .await;
        assert_eq!(l.status, StatusCode::CREATED);
        let d = &l.json()["data"];
        (
            d["license"]["id"].as_str().unwrap().to_owned(),
            d["license_key"].as_str().unwrap().to_owned(),
        )
    }
}

/// Asserts the error envelope shape: code, message, meta.request_id equal to the header.
pub fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(
        r.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/json",
        "error bodies are JSON"
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], json!(code), "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    assert_eq!(
        v["meta"]["request_id"].as_str(),
        Some(r.request_id()),
        "{v}"
    );
    assert!(v["meta"]["timestamp"].is_string(), "{v}");
}

/// The `postgres://` URL of the database `options` name (for tests that run the binary).
pub fn url_of(options: &sqlx::postgres::PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

/// The workspace root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

/// The venv's python, made by `scripts/python-env` (the published SDK, PyNaCl and
/// `cryptography`). Without Python it panics saying so: the tests never pass silently.
pub fn python() -> std::path::PathBuf {
    // Once per test binary: tests running at once would otherwise build one venv together.
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(make_python).clone()
}

fn make_python() -> std::path::PathBuf {
    let script = repo_root().join("scripts/python-env");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/python-env failed (the Python tests need python3 with venv and pip, and PyPI \
         for licensekit-sdk==1.0.0):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "scripts/python-env printed no python path"
    );
    std::path::PathBuf::from(path)
}

/// Serves `app` at `127.0.0.1:0` with everything `serve_app` runs (flushers, webhook
/// sender, export producer); returns its base URL, an admin token and a handle that stops it
/// when dropped.
pub async fn serve<S: licentia_core::store::Store + 'static>(
    app: App<S>,
) -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let token = bootstrap(&app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(licentia_server::serve_app(app, listener, async move {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), token, stop)
}

/// Runs `tests/<script>` with the venv's python against `base_url` and `token`; panics with
/// its output unless it exits 0 and prints `ok_marker`.
pub async fn run_python(script: &str, base_url: &str, token: &str, ok_marker: &str) {
    let python = python();
    let script = repo_root().join("server-example/tests").join(script);
    let (base_url, token) = (base_url.to_owned(), token.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(&base_url)
            .arg(&token)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(ok_marker),
        "unexpected output:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
