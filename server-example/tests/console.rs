//! The admin console in a real browser, on both backends: `tests/console/browser.mjs` drives
//! Debian's Chromium (installed by `scripts/console-env`, with playwright-core from the npm
//! lockfile) through `/console` of a served app. Screenshots of every page at desktop and
//! phone width are written to `target/console-screenshots/<backend>/` (not committed).

mod common;

use std::path::PathBuf;
use std::process::Command;

use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;

/// The browser's requests would otherwise count against the per-credential limits.
fn config() -> Config {
    Config {
        rate_limits: None,
        ..Config::default()
    }
}

/// Chromium's path, from `scripts/console-env` (which installs what is missing). Panics
/// saying what failed: the browser tests never pass silently.
fn chromium() -> PathBuf {
    static CHROMIUM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHROMIUM
        .get_or_init(|| {
            let script = common::repo_root().join("scripts/console-env");
            let out = Command::new("bash")
                .arg(&script)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "scripts/console-env failed (the console tests need Debian's chromium package, \
                 Node.js and the npm registry for playwright-core):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

async fn drive(base_url: &str, token: &str, backend: &str) {
    let chromium = chromium();
    let root = common::repo_root();
    let script = root.join("server-example/tests/console/browser.mjs");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let shots = target.join("console-screenshots").join(backend);
    let (base_url, token) = (base_url.to_owned(), token.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&base_url)
            .arg(&token)
            .arg(&shots)
            .arg(&chromium)
            .output()
            .unwrap_or_else(|e| panic!("cannot run node (Node.js is needed): {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("console: OK"),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser_memory_backend() {
    let app = App::start(MemoryStore::new(), config()).await.unwrap();
    let (base_url, token, _stop) = common::serve(app).await;
    drive(&base_url, &token, "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser_postgres_backend() {
    let store = licentia_storage_postgres::testing::fresh_store().await;
    let app = App::start(store, config()).await.unwrap();
    let (base_url, token, _stop) = common::serve(app).await;
    drive(&base_url, &token, "postgres").await;
}
