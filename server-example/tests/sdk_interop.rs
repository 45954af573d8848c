//! The published Python SDK (`licensekit-sdk`, unmodified) drives a real server.
//!
//! `scripts/python-env` makes the virtualenv (idempotent); `tests/sdk/interop.py` runs the
//! management and runtime flow and verifies every signed response. Without Python the test
//! fails with a message saying so: it never passes silently.

mod common;

use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_interop_memory_backend() {
    let app = App::start(MemoryStore::new(), Config::default())
        .await
        .unwrap();
    let (base_url, token, _stop) = common::serve(app).await;
    common::run_python("sdk/interop.py", &base_url, &token, "interop: OK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_interop_postgres_backend() {
    let store = licentia_storage_postgres::testing::fresh_store().await;
    let app = App::start(store, Config::default()).await.unwrap();
    let (base_url, token, _stop) = common::serve(app).await;
    common::run_python("sdk/interop.py", &base_url, &token, "interop: OK").await;
}
