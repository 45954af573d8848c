//! Prints the figures of the last `cargo bench -p licentia-benches` run as the Markdown
//! tables of `benches/README.md`: each figure beside its baseline, ratio first.
//!
//! Run: `cargo run -p licentia-benches --bin report` (reads `$CARGO_TARGET_DIR/criterion`,
//! else `target/criterion`; or pass the criterion directory as the only argument).

use std::path::{Path, PathBuf};

/// (what, figure, baseline): criterion ids `group/function[/parameter]`.
const PAIRS: &[(&str, &str, &str)] = &[
    (
        "rule: validate (no I/O, no signing)",
        "rules/validate",
        "rules/baseline_clone_aggregate",
    ),
    (
        "rule: check",
        "rules/check",
        "rules/baseline_clone_aggregate",
    ),
    (
        "rule: activate (new device)",
        "rules/activate",
        "rules/baseline_clone_aggregate",
    ),
    (
        "rule: consume",
        "rules/consume",
        "rules/baseline_clone_aggregate",
    ),
    (
        "canonical bytes + Ed25519 sign of a runtime response",
        "sign/licentia_canonical_and_sign",
        "sign/baseline_raw_ed25519_sign",
    ),
    (
        "parse + verify a signed envelope",
        "verify_envelope/licentia_parse_and_verify",
        "verify_envelope/baseline_raw_verify_strict",
    ),
    (
        "parse + open an offline envelope (HKDF, AES-GCM, parse, verify, checks)",
        "offline_open/licentia_parse_and_open",
        "offline_open/baseline_raw_verify_strict",
    ),
    (
        "EdDSA JWT decode (jsonwebtoken), same data and key",
        "offline_open/alt_jwt_eddsa_decode",
        "offline_open/baseline_raw_verify_strict",
    ),
    (
        "PASETO v4.public verify + parse (pasetors), same data and key",
        "offline_open/alt_paseto_v4_public_verify",
        "offline_open/baseline_raw_verify_strict",
    ),
    (
        "engine validate, 1 license in the store",
        "engine_by_store_size/validate/1",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "engine validate, 1 000 licenses",
        "engine_by_store_size/validate/1000",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "engine validate, 100 000 licenses",
        "engine_by_store_size/validate/100000",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "engine check, 1 license",
        "engine_by_store_size/check/1",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "engine check, 1 000 licenses",
        "engine_by_store_size/check/1000",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "engine check, 100 000 licenses",
        "engine_by_store_size/check/100000",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "engine check with app_version, catalog of 10 000 vs 10 versions",
        "engine_check_by_catalog_size/check_app_version/10000",
        "engine_check_by_catalog_size/check_app_version/10",
    ),
    (
        "engine consume, 10 000 prior events vs none",
        "engine_consume_by_prior_events/consume/10000",
        "engine_consume_by_prior_events/consume/0",
    ),
    (
        "engine consume, 10 000 prior events, vs sign-only",
        "engine_consume_by_prior_events/consume/10000",
        "engine_by_store_size/baseline_sign_only",
    ),
    (
        "scan + decide, 10 000 vs 10 versions (`find_in_catalog`, not used by the memory store)",
        "version_eligibility/find_then_decide/10000",
        "version_eligibility/find_then_decide/10",
    ),
];

/// The median of a criterion benchmark, in nanoseconds.
fn mean_ns(dir: &Path, id: &str) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target"));
            target.join("criterion")
        });
    println!("| what | ratio | figure | baseline | baseline is |");
    println!("|---|---:|---:|---:|---|");
    let mut missing = 0;
    for (what, figure, baseline) in PAIRS {
        match (mean_ns(&dir, figure), mean_ns(&dir, baseline)) {
            (Some(f), Some(b)) => println!(
                "| {what} | {:.2}× | {} | {} | `{baseline}` |",
                f / b,
                human(f),
                human(b)
            ),
            _ => {
                missing += 1;
                println!("| {what} | – | – | – | `{baseline}` (not measured) |");
            }
        }
    }
    if missing > 0 {
        eprintln!(
            "{missing} figure(s) missing under {}: run `cargo bench -p licentia-benches` first",
            dir.display()
        );
    }
}
