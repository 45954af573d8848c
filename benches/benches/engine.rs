//! The engine's runtime path on the memory store: key lookup, per-license transaction, rule,
//! signing and the response body. Validate and check must cost the same with 1, 1 000 and
//! 100 000 licenses in the store; the baseline is signing the same response alone.
//! Also: check with an `app_version` against catalogs of 10 and 10 000 versions, and consume
//! with 10 000 earlier consumption events on the license.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use licentia_benches::{block_on, consume_request, engine_fixture, entitlement_data, key_ring};

fn flat(c: &mut Criterion) {
    let ring = key_ring();
    let data = entitlement_data();
    let mut g = c.benchmark_group("engine_by_store_size");
    g.bench_function("baseline_sign_only", |b| {
        b.iter(|| ring.sign(black_box(&data)).expect("signs"))
    });
    for n in [1_u32, 1_000, 100_000] {
        let f = engine_fixture(n, 0, 0);
        g.bench_with_input(BenchmarkId::new("validate", n), &f, |b, f| {
            b.iter(|| block_on(f.engine.validate(f.call(), black_box(&f.binding))).expect("valid"))
        });
        g.bench_with_input(BenchmarkId::new("check", n), &f, |b, f| {
            b.iter(|| block_on(f.engine.check(f.call(), black_box(&f.binding))).expect("valid"))
        });
    }
    g.finish();
}

fn versions(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_check_by_catalog_size");
    for n in [10_u32, 10_000] {
        let f = engine_fixture(1, n, 0);
        g.bench_with_input(BenchmarkId::new("check_app_version", n), &f, |b, f| {
            b.iter(|| block_on(f.engine.check(f.call(), black_box(&f.binding))).expect("valid"))
        });
    }
    g.finish();
}

fn consume(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_consume_by_prior_events");
    for prior in [0_u32, 10_000] {
        let f = engine_fixture(1, 0, prior);
        let mut i = 0_u64;
        g.bench_with_input(BenchmarkId::new("consume", prior), &f, |b, f| {
            b.iter(|| {
                i += 1;
                let req = consume_request(&format!("evt-bench-{i:012}"));
                block_on(f.engine.consume(f.call(), black_box(&req))).expect("consumed")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, flat, versions, consume);
criterion_main!(benches);
