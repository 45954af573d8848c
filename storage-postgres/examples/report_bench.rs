//! The reports' benchmark on PostgreSQL (issue 15's targets; run by hand, not in CI):
//! 1 000 000 consumptions across 10 000 licenses of 10 products over one year, then the
//! usage summary of one product over one month (grouped by feature) and a usage ledger page,
//! each timed as the median of repeated runs beside a baseline measured in the same run: a
//! plain `count(*)` over the same rows through the same index.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p licentia-storage-postgres --features testing --example report_bench
//! ```
//!
//! The data is written with one `INSERT … SELECT generate_series` (the store's own write path
//! takes a license transaction per consumption, which would make the setup the benchmark).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use licentia_core::conformance::fixtures;
use licentia_core::model::UsageDimension;
use licentia_core::model::{LicenseType, ProductId};
use licentia_core::store::{
    CatalogStore, LedgerQuery, LicenseStore, Limit, ReportStore, UsageFilter, UsageQuery,
};
use licentia_storage_postgres::testing;

const PRODUCTS: u32 = 10;
const LICENSES: u32 = 10_000;
const CONSUMPTIONS: i64 = 1_000_000;
const RUNS: usize = 21;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f().await);
        samples.push(start.elapsed());
    }
    median(samples)
}

#[tokio::main]
async fn main() {
    let store = testing::fresh_store().await;
    let pool = store.pool().clone();
    let setup = Instant::now();

    for p in 1..=PRODUCTS {
        let product = fixtures::product(p);
        store
            .insert_product(&product, vec![])
            .await
            .expect("product");
        let policy = fixtures::policy(&product, p, LicenseType::Perpetual);
        store.insert_policy(&policy, vec![]).await.expect("policy");
        for f in 0..3 {
            let n = p * 10 + f;
            let feature = fixtures::feature(&product, n, &format!("feature-{f}"));
            store
                .insert_feature(&feature, vec![])
                .await
                .expect("feature");
        }
        for l in 0..LICENSES / PRODUCTS {
            let n = 100 + (p - 1) * (LICENSES / PRODUCTS) + l;
            let license = fixtures::license(&policy, n);
            store
                .insert_license(&license, vec![])
                .await
                .expect("license");
        }
    }
    // Consumption i: license i mod 10 000, one of its product's three features, spread over
    // 2026 (one every ~31.5 s), amounts 1..=9.
    sqlx::query(
        "WITH l AS (SELECT id, product_id, row_number() OVER (ORDER BY id) - 1 AS n FROM licenses), \
              f AS (SELECT id, product_id, code, row_number() OVER (PARTITION BY product_id ORDER BY id) - 1 AS k FROM features), \
              s AS (SELECT g, g % $2 AS ln, (g / $2) % 3 AS fk, \
                           TIMESTAMPTZ '2026-01-01 00:00:00+00' + (g * (31536000.0 / $1)) * INTERVAL '1 second' AS at, \
                           1 + g % 9 AS amount \
                    FROM generate_series(0, $1 - 1) g) \
         INSERT INTO consumptions (license_id, event_id, feature_id, amount, recorded_at, body, \
                                   feature_code, product_id) \
         SELECT l.id, 'e' || s.g, f.id, s.amount, s.at, \
                jsonb_build_object('license_id', l.id, 'event_id', 'e' || s.g, 'feature_id', f.id, \
                                   'amount', s.amount, 'recorded_at', s.at, 'feature_code', f.code, \
                                   'product_id', l.product_id), \
                f.code, l.product_id \
         FROM s JOIN l ON l.n = s.ln JOIN f ON f.product_id = l.product_id AND f.k = s.fk",
    )
    .bind(CONSUMPTIONS)
    .bind(i64::from(LICENSES))
    .execute(&pool)
    .await
    .expect("consumptions");
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    println!(
        "setup: {PRODUCTS} products, {LICENSES} licenses, {CONSUMPTIONS} consumptions in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let product: ProductId = fixtures::product(3).id;
    let (from, to) = (
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap(),
    );
    let filter = UsageFilter {
        from: Some(from),
        to: Some(to),
        product_id: Some(product.clone()),
        ..UsageFilter::default()
    };
    let summary_query = UsageQuery {
        filter: filter.clone(),
        group_by: vec![UsageDimension::Feature],
        ..UsageQuery::default()
    };
    let summary = store.usage_summary(&summary_query).await.expect("summary");
    let summary_time = time(RUNS, || store.usage_summary(&summary_query)).await;
    let baseline_time = time(RUNS, || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM consumptions WHERE product_id = $1 AND recorded_at >= $2 AND recorded_at < $3",
        )
        .bind(product.as_str())
        .bind(from)
        .bind(to)
        .fetch_one(&pool)
    })
    .await;

    // The heavy case: the product's whole year (a tenth of the table).
    let year_query = UsageQuery {
        filter: UsageFilter {
            product_id: Some(product.clone()),
            ..UsageFilter::default()
        },
        group_by: vec![UsageDimension::Feature, UsageDimension::License],
        limit: Limit::new(Some(200)),
        ..UsageQuery::default()
    };
    let year = store.usage_summary(&year_query).await.expect("summary");
    let year_time = time(5, || store.usage_summary(&year_query)).await;

    let ledger_query = LedgerQuery {
        filter: UsageFilter {
            product_id: Some(product.clone()),
            ..UsageFilter::default()
        },
        before: None,
        limit: Limit::default(),
    };
    let first = store.usage_ledger(&ledger_query).await.expect("ledger");
    let deep = LedgerQuery {
        before: Some(CONSUMPTIONS / 2),
        ..ledger_query.clone()
    };
    let ledger_time = time(RUNS, || store.usage_ledger(&ledger_query)).await;
    let deep_time = time(RUNS, || store.usage_ledger(&deep)).await;

    println!(
        "usage summary, one product, one month ({} consumptions, {} groups): median {:.1} ms \
         (target 200 ms); baseline count(*) over the same rows {:.1} ms; ratio {:.2}x",
        summary.totals.events,
        summary.groups.len(),
        summary_time.as_secs_f64() * 1e3,
        baseline_time.as_secs_f64() * 1e3,
        summary_time.as_secs_f64() / baseline_time.as_secs_f64()
    );
    println!(
        "usage summary, one product, the whole year ({} consumptions, by feature and license): \
         median {:.1} ms",
        year.totals.events,
        year_time.as_secs_f64() * 1e3
    );
    println!(
        "usage ledger page of {} (newest): median {:.2} ms; a page from the middle: {:.2} ms \
         (target 20 ms)",
        first.rows.len(),
        ledger_time.as_secs_f64() * 1e3,
        deep_time.as_secs_f64() * 1e3
    );
}
