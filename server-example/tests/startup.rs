//! What the binary says when it cannot start, and how it logs when it does: every startup or
//! configuration error names what to fix (issue 18), and the logs are plain on a pipe, JSON
//! on request, with an access log of their own.

mod common;

use common::url_of;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const MASTER_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const MASTER_B: &str = "HxwdHhscGRoXGBUWExQREg8QDQ4LDAkKBwgFBgMEAQI=";

fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_licentia-server"));
    for var in [
        "DATABASE_URL",
        "LICENTIA_MASTER_KEY",
        "LICENTIA_ALLOW_PLAINTEXT_KEYS",
        "LICENTIA_LOG_FORMAT",
        "LICENTIA_LISTEN",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a command that exits; (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("the server binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unreachable_postgres_names_host_port_database_and_role() {
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"));
    assert!(!ok);
    for part in [
        "127.0.0.1:1",
        "database nowhere",
        "role postgres",
        "is the server running",
    ] {
        assert!(err.contains(part), "missing `{part}` in: {err}");
    }
}

#[test]
fn a_url_that_is_not_postgres_says_so() {
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", "mysql://root@127.0.0.1:3306/db")
        .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"));
    assert!(!ok);
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
}

#[tokio::test]
async fn a_wrong_database_or_role_gives_the_drivers_reason() {
    let options = licentia_storage_postgres::testing::server_options();
    let base = format!(
        "postgres://{}@{}:{}",
        options.get_username(),
        options.get_host(),
        options.get_port()
    );
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", format!("{base}/licentia_no_such_database"))
        .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"));
    assert!(!ok);
    assert!(
        err.contains("database licentia_no_such_database") && err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("the database must exist"), "{err}");
    let role_url = format!(
        "postgres://licentia_no_such_role@{}:{}/postgres",
        options.get_host(),
        options.get_port()
    );
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", role_url)
        .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"));
    assert!(!ok);
    assert!(
        err.contains("role licentia_no_such_role")
            && err.contains("licentia_no_such_role\" does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn sealed_keys_need_the_master_key_that_sealed_them() {
    let url = url_of(&licentia_storage_postgres::testing::fresh_database().await);
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", &url)
        .env("LICENTIA_MASTER_KEY", MASTER_A));
    assert!(ok, "{err}");
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", &url)
        .env("LICENTIA_MASTER_KEY", MASTER_B));
    assert!(!ok);
    assert!(
        err.contains("sealed under another master key")
            && err.contains("LICENTIA_MASTER_KEY must be the key that sealed them"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", &url)
        .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"));
    assert!(!ok);
    assert!(
        err.contains("set LICENTIA_MASTER_KEY to the master key that sealed them"),
        "{err}"
    );
    // Migrations on every later start are quiet: no notice that the table exists.
    let (ok, _, err) = run(server()
        .args(["tokens", "list"])
        .env("DATABASE_URL", &url)
        .env("LICENTIA_MASTER_KEY", MASTER_A));
    assert!(ok, "{err}");
    assert!(!err.contains("already exists"), "{err}");
}

/// A served process: its address, and its stderr once it is stopped.
struct Running {
    child: std::process::Child,
    addr: String,
    stdout: String,
}

fn start(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send((addr, seen.clone()));
            }
        }
    });
    let (addr, stdout) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server starts");
    Running {
        child,
        addr,
        stdout,
    }
}

impl Running {
    fn get(&self, path: &str, auth: Option<&str>) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let _ = self.child.wait();
        err
    }
}

#[test]
fn a_port_in_use_names_the_address_and_prints_no_token() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, out, err) = run(server().args(["serve", "--listen", &addr]));
    assert!(!ok);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(
        !out.contains("admin token"),
        "no token before the bind succeeds: {out}"
    );
}

#[test]
fn listen_takes_a_host_name() {
    let s = start(server().args(["serve", "--listen", "localhost:0"]));
    assert!(s.stdout.contains("admin token"), "{}", s.stdout);
    assert!(s.get("/healthz", None).starts_with("HTTP/1.1 200"));
    s.stop();
}

#[test]
fn json_logs_one_object_a_line_with_an_access_log() {
    let s = start(
        server()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("LICENTIA_LOG_FORMAT", "json"),
    );
    assert!(s.get("/healthz", None).starts_with("HTTP/1.1 200"));
    let secret = "lkm_SECRETSECRETSECRETSECRETSECRET";
    assert!(
        s.get("/api/v1/products", Some(&format!("Bearer {secret}")))
            .starts_with("HTTP/1.1 401")
    );
    std::thread::sleep(Duration::from_millis(200));
    let err = s.stop();
    assert!(!err.contains(secret), "a credential was logged: {err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "licentia::access")
        .collect();
    assert_eq!(access.len(), 2, "{err}");
    let a = access[1];
    assert_eq!(a["method"], "GET");
    assert_eq!(a["route"], "/api/v1/products");
    assert_eq!(a["status"], 401);
    assert!(a["duration_us"].is_u64(), "integer microseconds: {a}");
    assert!(
        a["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_")),
        "{a}"
    );
}

#[test]
fn plain_logs_have_no_colour_on_a_pipe() {
    let s = start(
        server()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info"),
    );
    assert!(s.get("/healthz", None).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(200));
    let err = s.stop();
    assert!(err.contains("licentia::access"), "{err}");
    assert!(!err.contains('\u{1b}'), "ANSI escapes on a pipe: {err:?}");
}

#[test]
fn an_unknown_log_format_is_refused() {
    let (ok, _, err) = run(server().args(["serve"]).env("LICENTIA_LOG_FORMAT", "xml"));
    assert!(!ok);
    assert!(
        err.contains("LICENTIA_LOG_FORMAT must be `text` or `json`"),
        "{err}"
    );
}

#[tokio::test]
async fn metrics_describe_every_family_and_show_the_database_pools() {
    let url = url_of(&licentia_storage_postgres::testing::fresh_database().await);
    let s = start(
        server()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &url)
            .env("LICENTIA_MASTER_KEY", MASTER_A),
    );
    assert!(s.get("/healthz", None).starts_with("HTTP/1.1 200"));
    let text = s.get("/metrics", None);
    s.stop();
    for family in [
        "licentia_http_requests_total",
        "licentia_http_request_duration_seconds",
        "licentia_build_info",
        "licentia_webhook_deliveries_in_flight",
        "licentia_webhook_queue_depth",
        "licentia_db_pool_connections",
        "licentia_db_snapshot_statements_total",
        "licentia_db_snapshots_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family}: {text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}: {text}"
        );
    }
    assert!(
        text.contains("licentia_db_pool_connections{pool=\"reads\",state=\"open\"}"),
        "{text}"
    );
    assert!(
        text.contains("licentia_db_snapshot_statements_total "),
        "the read path's counters are shown from the start: {text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

#[test]
fn keys_rotate_without_a_database_refuses() {
    let (ok, out, err) = run(server().args(["keys", "rotate"]));
    assert!(!ok, "{out}");
    assert!(err.contains("keys rotate needs DATABASE_URL"), "{err}");
}

#[tokio::test]
async fn keys_rotate_product_rotates_that_products_ring_alone() {
    use licentia_core::engine::Actor;
    use licentia_core::engine::requests::ProductCreate;
    use licentia_core::model::Signing;
    let options = licentia_storage_postgres::testing::fresh_database().await;
    let url = url_of(&options);
    let store = licentia_storage_postgres::testing::store_on(options).await;
    let app = licentia_server::App::start(store.clone(), Default::default())
        .await
        .unwrap();
    for (code, signing) in [("editor", Signing::Product), ("viewer", Signing::Global)] {
        let req = ProductCreate {
            name: code.into(),
            code: code.into(),
            metadata: None,
            signing: Some(signing),
        };
        app.engine()
            .create_product(&Actor::system(), req)
            .await
            .unwrap();
    }
    let before = app.engine().public_keys();
    let cli = |product: &str| {
        run(server()
            .args(["keys", "rotate", "--activate-in", "0", "--product", product])
            .env("DATABASE_URL", &url)
            .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"))
    };
    let (ok, out, err) = cli("editor");
    assert!(ok, "{err}");
    assert!(out.contains("new active product prod_"), "{out}");
    app.engine().reload_keys().await.unwrap();
    let after = app.engine().public_keys();
    assert_eq!(after.len(), before.len() + 1, "one new key: {after:?}");
    let global = |keys: &[licentia_core::crypto::PublicKeyInfo]| {
        keys.iter()
            .filter(|k| k.product_id.is_none())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        global(&after),
        global(&before),
        "the global ring is untouched"
    );
    let (ok, _, err) = cli("viewer");
    assert!(!ok);
    assert!(
        err.contains("no product signing with its own keys has the code or id viewer"),
        "{err}"
    );
}

#[tokio::test]
async fn users_invite_and_reset_password_print_one_time_tokens() {
    let (ok, _, err) = run(server().args([
        "users",
        "invite",
        "--email",
        "a@example.com",
        "--role",
        "admin",
    ]));
    assert!(!ok);
    assert!(err.contains("users needs DATABASE_URL"), "{err}");
    let options = licentia_storage_postgres::testing::fresh_database().await;
    let url = url_of(&options);
    let cli = |args: &[&str]| {
        run(server()
            .args(args)
            .env("DATABASE_URL", &url)
            .env("LICENTIA_ALLOW_PLAINTEXT_KEYS", "1"))
    };
    let token_of = |out: &str| {
        out.split_whitespace()
            .find(|w| w.starts_with("ust_"))
            .unwrap_or_else(|| panic!("no token in {out}"))
            .to_owned()
    };
    let (ok, out, err) = cli(&[
        "users",
        "invite",
        "--email",
        "Ops@Example.com",
        "--role",
        "owner",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("ops@example.com"), "{out}");
    let invitation = token_of(&out);
    let (ok, _, err) = cli(&[
        "users",
        "invite",
        "--email",
        "x@example.com",
        "--role",
        "emperor",
    ]);
    assert!(!ok);
    assert!(err.contains("is not a role"), "{err}");

    let store = licentia_storage_postgres::testing::store_on(options).await;
    let app = licentia_server::App::start(store, Default::default())
        .await
        .unwrap();
    app.engine()
        .redeem_user_token(&invitation, "owner password 1")
        .await
        .unwrap();
    app.engine()
        .sign_in("ops@example.com", "owner password 1", None, None)
        .await
        .unwrap();
    let (ok, out, err) = cli(&["users", "reset-password", "--email", "ops@example.com"]);
    assert!(ok, "{err}");
    app.engine()
        .redeem_user_token(&token_of(&out), "owner password 2")
        .await
        .unwrap();
    app.engine()
        .sign_in("ops@example.com", "owner password 2", None, None)
        .await
        .unwrap();
    let (ok, _, err) = cli(&["users", "reset-password", "--email", "nobody@example.com"]);
    assert!(!ok);
    assert!(err.contains("no user has that e-mail"), "{err}");
}

#[test]
fn metrics_listen_serves_metrics_elsewhere() {
    let mut child = server()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (mut api, mut metrics) = (None, None);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            api = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.split("metrics on http://").nth(1) {
            metrics = rest.strip_suffix("/metrics").map(str::to_owned);
        }
        if api.is_some() && metrics.is_some() {
            break;
        }
    }
    let get = |addr: &str, path: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let (api, metrics) = (api.expect("api address"), metrics.expect("metrics address"));
    let on_metrics = get(&metrics, "/metrics");
    let on_api = get(&api, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        on_metrics.starts_with("HTTP/1.1 200") && on_metrics.contains("licentia_build_info"),
        "{on_metrics}"
    );
    assert!(
        on_api.starts_with("HTTP/1.1 404"),
        "not on the API's address: {on_api}"
    );
}
