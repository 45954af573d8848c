//! The published SDK's twelve reporting and ops operations on both backends:
//! `tests/sdk/reports.py` seeds activity through the SDK and checks every number the reports
//! give against what it did (sums, groups, ledger rows, refusal counts, exports in JSON, CSV
//! and PDF, scopes).

mod common;

use licentia_server::{App, Config};
use licentia_storage_memory::MemoryStore;

/// Refusals are provoked on purpose; rate limits would count them too.
fn config() -> Config {
    Config {
        rate_limits: None,
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reports_memory_backend() {
    let app = App::start(MemoryStore::new(), config()).await.unwrap();
    let (base_url, token, _stop) = common::serve(app).await;
    common::run_python("sdk/reports.py", &base_url, &token, "reports: OK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reports_postgres_backend() {
    let store = licentia_storage_postgres::testing::fresh_store().await;
    let app = App::start(store, config()).await.unwrap();
    let (base_url, token, _stop) = common::serve(app).await;
    common::run_python("sdk/reports.py", &base_url, &token, "reports: OK").await;
}
