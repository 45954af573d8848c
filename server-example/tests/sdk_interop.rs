//! The published Python SDK (`licensekit-sdk`, unmodified) drives a real server.
//!
//! `scripts/python-env` makes the virtualenv (idempotent); `tests/sdk/interop.py` runs the
//! management and runtime flow and verifies every signed response. Without Python the test
//! fails with a message saying so: it never passes silently. A PostgreSQL variant is one more
//! `#[tokio::test]` that starts the server on that store and calls [`run_interop`].

use std::path::PathBuf;
use std::process::Command;

use licentia_core::store::Store;
use licentia_server::{App, Config, serve_app};
use licentia_storage_memory::MemoryStore;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

/// The venv's python, made by `scripts/python-env`.
fn python() -> PathBuf {
    let script = repo_root().join("scripts/python-env");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/python-env failed (the SDK interop test needs python3 with venv and pip, \
         and PyPI for licensekit-sdk==1.0.0):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "scripts/python-env printed no python path"
    );
    PathBuf::from(path)
}

/// Starts a server on `store` at `127.0.0.1:0`; returns its base URL, an admin token and a
/// handle that stops it when dropped.
async fn start<S: Store + 'static>(store: S) -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let app = App::start(store, Config::default())
        .await
        .expect("engine starts");
    let token = app
        .engine()
        .bootstrap_admin(None)
        .await
        .expect("bootstrap")
        .expect("a fresh store has no token")
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_app(app, listener, async move {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), token, stop)
}

/// Runs the SDK interop script against `base_url` with admin `token`; panics with its
/// output when it fails.
async fn run_interop(base_url: &str, token: &str) {
    let python = python();
    let script = repo_root().join("server-example/tests/sdk/interop.py");
    let (base_url, token) = (base_url.to_owned(), token.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
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
        "the SDK interop script failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("interop: OK"),
        "unexpected output:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_interop_memory_backend() {
    let (base_url, token, _stop) = start(MemoryStore::new()).await;
    run_interop(&base_url, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_interop_postgres_backend() {
    let store = licentia_storage_postgres::testing::fresh_store().await;
    let (base_url, token, _stop) = start(store).await;
    run_interop(&base_url, &token).await;
}
