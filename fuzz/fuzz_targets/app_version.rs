//! `app_version` strings: parsing, the precedence key stores index catalogs by, and the
//! eligibility rule. A version that parses round-trips through its display form; the index
//! key answers as the catalog scan does.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::Duration;
use libfuzzer_sys::fuzz_target;
use licentia_core::conformance::fixtures;
use licentia_core::model::{LicenseType, ProductVersion};
use licentia_core::rules::VersionCatalogView;
use licentia_core::rules::version::{
    eligibility, find_in_catalog, parse_app_version, precedence_key,
};

/// A small catalog in release order (newest first), builds included.
fn catalog() -> &'static (
    Vec<ProductVersion>,
    HashMap<semver::Version, ProductVersion>,
) {
    static CATALOG: OnceLock<(
        Vec<ProductVersion>,
        HashMap<semver::Version, ProductVersion>,
    )> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let p = fixtures::product(1);
        let list: Vec<ProductVersion> = [
            "3.0.0-rc.1",
            "2.4.1+mac",
            "2.4.1+linux",
            "2.4.1",
            "2.0.0",
            "1.0.0-alpha.1",
            "1.0.0",
        ]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let n = u32::try_from(i).unwrap();
            fixtures::version(&p, n + 1, v, fixtures::t0() - Duration::days(i64::from(n)))
        })
        .collect();
        let mut index = HashMap::new();
        for v in &list {
            let key = precedence_key(&semver::Version::parse(&v.version).unwrap());
            index.entry(key).or_insert_with(|| v.clone());
        }
        (list, index)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(v) = parse_app_version(s) else {
        return;
    };
    assert_eq!(parse_app_version(&v.to_string()).expect("round trip"), v);
    let key = precedence_key(&v);
    assert!(key.build.is_empty());
    assert!(key.cmp_precedence(&v).is_eq());
    let (list, index) = catalog();
    let scanned = find_in_catalog(list, &v);
    assert_eq!(scanned, index.get(&key), "index and scan disagree on {s:?}");

    let product = fixtures::product(1);
    let policy = fixtures::policy(&product, 1, LicenseType::Perpetual);
    let license = fixtures::license(&policy, 1);
    let view = VersionCatalogView {
        has_catalog: true,
        entry: scanned.cloned(),
    };
    let (data, refusal) = eligibility(&license, LicenseType::Perpetual, &view, &v);
    assert_eq!(data.is_entitled, refusal.is_none());
    assert_eq!(data.app_version, v.to_string());
});
