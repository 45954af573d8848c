//! The black-box contract scenarios (`tests/scenarios/contract_scenarios.py`, written from the
//! v1 contract and DESIGN.md alone) run against an in-process server on the memory backend.
//!
//! `scripts/python-env` makes the virtualenv (PyNaCl for Ed25519, `cryptography` for the offline
//! envelope). Without Python the test fails with a message saying so: it never passes silently.

use std::path::PathBuf;
use std::process::Command;

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
        "scripts/python-env failed (the contract scenarios need python3 with venv and pip):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "scripts/python-env printed no python path"
    );
    PathBuf::from(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_scenarios_memory_backend() {
    // The scenarios receive a webhook on 127.0.0.1 and probe wrong credentials on purpose,
    // more often than the failed-authentication limit allows one address.
    let config = Config {
        webhook_allow_private: true,
        rate_limits: None,
        ..Config::default()
    };
    let app = App::start(MemoryStore::new(), config)
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

    let python = python();
    let script = repo_root().join("server-example/tests/scenarios/contract_scenarios.py");
    let base_url = format!("http://{addr}");
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
    let _ = stop.send(());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the contract scenarios failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("scenarios: OK"),
        "unexpected output:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
