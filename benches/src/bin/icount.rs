//! Runs one benchmarked operation `N` times after its setup, for instruction counting under
//! `valgrind --tool=callgrind` (`benches/icount` runs it with two values of `N` and takes the
//! difference, so setup cancels out). Wall-clock figures on a shared 2-core VM move with the
//! neighbours' load; instruction counts do not.
//!
//! Usage: `icount <case> <iterations>`; `icount list` prints the cases.

use std::hint::black_box;

use ed25519_dalek::Signer;
use licentia_benches::{
    block_on, consume_request, dalek_key, engine_fixture, entitlement_data, key_ring, now,
    offline_binding_key, offline_envelope_json, offline_license_key, public_keys, rule_fixture,
};
use licentia_core::crypto::{
    DEFAULT_SKEW_TOLERANCE, OfflineEnvelope, Unverified, canonical_json, open,
};
use licentia_core::model::RuntimeEntitlementData;
use licentia_core::rules::{activation, metering};

const CASES: &[&str] = &[
    "rules_validate",
    "rules_check",
    "rules_activate",
    "rules_consume",
    "clone_aggregate",
    "sign",
    "raw_sign",
    "verify",
    "raw_verify",
    "offline_open",
    "raw_verify_offline",
    "engine_validate_1",
    "engine_validate_100000",
    "engine_check_1",
    "engine_check_100000",
    "engine_check_versions_10",
    "engine_check_versions_10000",
    "engine_consume_prior_0",
    "engine_consume_prior_10000",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_default();
    if case == "list" {
        CASES.iter().for_each(|c| println!("{c}"));
        return;
    }
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: icount <case> <iterations>");
    let now = now();
    match case.as_str() {
        "rules_validate" | "rules_check" | "rules_activate" | "rules_consume"
        | "clone_aggregate" => {
            let f = rule_fixture();
            measure(n, |_| match case.as_str() {
                "rules_validate" => {
                    let _ = black_box(activation::validate(&f.aggregate, &f.validate, now));
                }
                "rules_check" => {
                    let _ = black_box(activation::check(&f.aggregate, &f.validate, None, now));
                }
                "rules_activate" => {
                    let _ = black_box(activation::activate(
                        &f.aggregate,
                        &f.activate,
                        f.new_device.clone(),
                        now,
                    ));
                }
                "rules_consume" => {
                    let _ = black_box(metering::consume(&f.aggregate, &f.consume, now));
                }
                _ => {
                    black_box(black_box(&f.aggregate).clone());
                }
            });
        }
        "sign" | "raw_sign" => {
            let ring = key_ring();
            let dalek = dalek_key();
            let data = entitlement_data();
            let bytes = canonical_json(&data).expect("canonical");
            measure(n, |_| {
                if case == "sign" {
                    black_box(ring.sign(black_box(&data)).expect("signs"));
                } else {
                    black_box(dalek.sign(black_box(&bytes)));
                }
            });
        }
        "verify" | "raw_verify" => {
            let keys = public_keys();
            let signed = key_ring().sign(&entitlement_data()).expect("signs");
            let wire = signed.to_envelope_json();
            let bytes = signed.data_bytes().to_vec();
            let sig = dalek_key().sign(&bytes);
            let vk = dalek_key().verifying_key();
            measure(n, |_| {
                if case == "verify" {
                    black_box(
                        Unverified::<RuntimeEntitlementData>::from_envelope_json(black_box(&wire))
                            .expect("parses")
                            .verify(&keys)
                            .expect("verifies"),
                    );
                } else {
                    vk.verify_strict(black_box(&bytes), &sig).expect("verifies");
                }
            });
        }
        "offline_open" | "raw_verify_offline" => {
            let keys = public_keys();
            let json = offline_envelope_json();
            let key = offline_license_key();
            let binding = offline_binding_key();
            let env = OfflineEnvelope::from_json(&json).expect("parses");
            let opened = open(
                &env,
                key.expose_secret(),
                &keys,
                &binding,
                now,
                DEFAULT_SKEW_TOLERANCE,
                None,
            )
            .expect("opens");
            let inner = opened.signed_bytes().to_vec();
            let sig = dalek_key().sign(&inner);
            let vk = dalek_key().verifying_key();
            measure(n, |_| {
                if case == "offline_open" {
                    let env = OfflineEnvelope::from_json(black_box(&json)).expect("parses");
                    black_box(
                        open(
                            &env,
                            key.expose_secret(),
                            &keys,
                            &binding,
                            now,
                            DEFAULT_SKEW_TOLERANCE,
                            None,
                        )
                        .expect("opens"),
                    );
                } else {
                    vk.verify_strict(black_box(&inner), &sig).expect("verifies");
                }
            });
        }
        engine => {
            let (licenses, versions, prior) = match engine {
                "engine_validate_1" | "engine_check_1" | "engine_consume_prior_0" => (1, 0, 0),
                "engine_validate_100000" | "engine_check_100000" => (100_000, 0, 0),
                "engine_check_versions_10" => (1, 10, 0),
                "engine_check_versions_10000" => (1, 10_000, 0),
                "engine_consume_prior_10000" => (1, 0, 10_000),
                other => panic!("unknown case {other:?}; `icount list` prints the cases"),
            };
            let f = engine_fixture(licenses, versions, prior);
            measure(n, |i| {
                let r = if engine.starts_with("engine_validate") {
                    block_on(f.engine.validate(f.call(), black_box(&f.binding)))
                } else if engine.starts_with("engine_check") {
                    block_on(f.engine.check(f.call(), black_box(&f.binding)))
                } else {
                    let req = consume_request(&format!("evt-icount-{i:012}"));
                    block_on(f.engine.consume(f.call(), black_box(&req)))
                };
                black_box(r.expect("a signed response"));
            });
        }
    }
}

/// The measured loop. `benches/icount` counts instructions only inside this function
/// (`--toggle-collect`), so setup is never counted.
#[inline(never)]
fn measure(n: u64, mut op: impl FnMut(u64)) {
    for i in 0..n {
        op(i);
    }
}
