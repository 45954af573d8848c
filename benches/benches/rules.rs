//! Pure rule evaluation (no I/O, no signing): validate, activate and consume decided on a
//! loaded aggregate, and version eligibility against catalogs of 10 and 10 000 versions.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use licentia_benches::{now, rule_fixture};
use licentia_core::conformance::fixtures;
use licentia_core::model::ProductVersion;
use licentia_core::rules::{VersionCatalogView, activation, metering, version};

fn rules(c: &mut Criterion) {
    let f = rule_fixture();
    let now = now();
    let mut g = c.benchmark_group("rules");
    g.bench_function("validate", |b| {
        b.iter(|| activation::validate(black_box(&f.aggregate), black_box(&f.validate), now))
    });
    g.bench_function("check", |b| {
        b.iter(|| activation::check(black_box(&f.aggregate), black_box(&f.validate), None, now))
    });
    g.bench_function("activate", |b| {
        b.iter(|| {
            activation::activate(
                black_box(&f.aggregate),
                black_box(&f.activate),
                f.new_device.clone(),
                now,
            )
        })
    });
    g.bench_function("consume", |b| {
        b.iter(|| metering::consume(black_box(&f.aggregate), black_box(&f.consume), now))
    });
    // Baseline: copying the aggregate, the least a rule that returns owned records could do.
    g.bench_function("baseline_clone_aggregate", |b| {
        b.iter(|| black_box(&f.aggregate).clone())
    });
    g.finish();
}

/// A catalog of `n` versions in release order (newest first), as a store keeps it.
fn catalog(n: u32) -> Vec<ProductVersion> {
    let product = fixtures::product(1);
    (0..n)
        .rev()
        .map(|i| {
            fixtures::version(
                &product,
                i + 1,
                &format!("1.{}.{}", i / 100, i % 100),
                fixtures::t0() - chrono::Duration::days(i64::from(n - i)),
            )
        })
        .collect()
}

fn versions(c: &mut Criterion) {
    let f = rule_fixture();
    let wanted = version::parse_app_version("1.0.0").expect("valid");
    let mut g = c.benchmark_group("version_eligibility");
    for n in [10_u32, 10_000] {
        let cat = catalog(n);
        // The lookup a store holding the catalog in memory may use, then the rule.
        g.bench_with_input(BenchmarkId::new("find_then_decide", n), &cat, |b, cat| {
            b.iter(|| {
                let view = VersionCatalogView {
                    has_catalog: !cat.is_empty(),
                    entry: version::find_in_catalog(black_box(cat), &wanted).cloned(),
                };
                version::eligibility(
                    &f.aggregate.license,
                    f.aggregate.policy.license_type,
                    &view,
                    &wanted,
                )
            })
        });
    }
    // The rule alone, given the looked-up entry: independent of the catalog's size.
    let view = f.aggregate.versions.clone();
    let v241 = version::parse_app_version("2.4.1").expect("valid");
    g.bench_function("decide_only", |b| {
        b.iter(|| {
            version::eligibility(
                &f.aggregate.license,
                f.aggregate.policy.license_type,
                black_box(&view),
                &v241,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, rules, versions);
criterion_main!(benches);
