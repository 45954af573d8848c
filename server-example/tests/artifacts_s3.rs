//! The artifact store on an S3-compatible server (`LICENTIA_ARTIFACTS=s3://…`): a local
//! `moto` server (from `scripts/python-env`) stands in for S3; the server binary, configured
//! by the standard `AWS_*` variables, stores an upload there and serves it back whole and by
//! range through a download token.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const TOKEN: &str = "lkm_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BUCKET: &str = "licentia-artifacts-test";

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to a minute) for something to listen on `port`: the process is starting.
fn wait_for(port: u16, what: &str) {
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not start listening on {port}");
}

fn start_server(s3: &str) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_licentia-server"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("LICENTIA_ARTIFACTS", format!("s3://{BUCKET}/releases"))
        .env("AWS_ENDPOINT", s3)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("LICENTIA_BOOTSTRAP_TOKEN", TOKEN)
        .env("LICENTIA_RATE_LIMIT", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server binary runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
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
        .expect("the server starts with an S3 artifact store");
    (Killed(child), format!("http://{addr}"))
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    auth: &str,
    body: Option<Value>,
) -> Value {
    // Every call its own key (activate requires one; the others ignore it).
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut req = http
        .request(method, url)
        .header("authorization", auth)
        .header("idempotency-key", format!("s3-test-{n}"));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_live_in_an_s3_compatible_store() {
    let python = common::python();
    let port = free_port();
    let _moto = Killed(
        Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto runs from the project's venv"),
    );
    wait_for(port, "moto");
    let s3 = format!("http://127.0.0.1:{port}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let made = http.put(format!("{s3}/{BUCKET}")).send().await.unwrap();
    assert!(made.status().is_success(), "the bucket is created");

    let (_server, base) = start_server(&s3);
    let admin = format!("Bearer {TOKEN}");
    let post = reqwest::Method::POST;
    let product = call(
        &http,
        post.clone(),
        format!("{base}/api/v1/products"),
        &admin,
        Some(json!({"name": "Editor", "code": "editor"})),
    )
    .await;
    let product = product["id"].as_str().unwrap().to_owned();
    let policy = call(&http, post.clone(), format!("{base}/api/v1/products/{product}/policies"), &admin,
        Some(json!({"name": "Pro", "code": "pro", "license_type": "perpetual", "max_activations": 2}))).await;
    let version = call(
        &http,
        post.clone(),
        format!("{base}/api/v1/products/{product}/versions"),
        &admin,
        Some(json!({"version": "1.0.0"})),
    )
    .await;
    let version = version["id"].as_str().unwrap().to_owned();
    let license = call(
        &http,
        post.clone(),
        format!("{base}/api/v1/licenses"),
        &admin,
        Some(json!({"product_id": product, "policy_id": policy["id"]})),
    )
    .await;
    let key = format!("License {}", license["license_key"].as_str().unwrap());

    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    let res = http
        .post(format!(
            "{base}/api/v1/products/{product}/versions/{version}/artifacts?name=app&filename=app.bin"
        ))
        .header("authorization", &admin)
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let artifact: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "{artifact}");
    let stored_key = artifact["data"]["source"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // The object is in the bucket, under the configured prefix.
    let listing = http
        .get(format!("{s3}/{BUCKET}?list-type=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains(&format!("releases/{stored_key}")),
        "{listing}"
    );

    call(
        &http,
        post.clone(),
        format!("{base}/api/v1/license/activate"),
        &key,
        Some(json!({"fingerprint": "s3-dev"})),
    )
    .await;
    let grant = call(
        &http,
        post,
        format!("{base}/api/v1/license/downloads"),
        &key,
        Some(json!({"artifact_id": artifact["data"]["id"], "fingerprint": "s3-dev"})),
    )
    .await;
    let url = format!("{base}{}", grant["url"].as_str().unwrap());
    let whole = http.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), reqwest::StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap().to_vec(), bytes);
    let part = http
        .get(&url)
        .header("range", "bytes=4000-4099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), reqwest::StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[4000..4100]);
}
