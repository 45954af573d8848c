//! The black-box contract scenarios (`tests/scenarios/contract_scenarios.py`, written from the
//! v1 contract and DESIGN.md alone) run against an in-process server on the memory backend.
//!
//! `scripts/python-env` makes the virtualenv (PyNaCl for Ed25519, `cryptography` for the offline
//! envelope). Without Python the test fails with a message saying so: it never passes silently.

mod common;

use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;

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
    let (base_url, token, _stop) = common::serve(app).await;
    common::run_python(
        "scenarios/contract_scenarios.py",
        &base_url,
        &token,
        "scenarios: OK",
    )
    .await;
}
