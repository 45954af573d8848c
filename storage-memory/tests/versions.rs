//! The version lookup index answers exactly as a scan of the catalog in release order
//! (`rules::version::find_in_catalog`), including versions equal by precedence, versions
//! released at the same instant, and a product deleted and created again.

use chrono::Duration;
use licentia_core::conformance::fixtures::{self, by_id, load, seed, t0, version};
use licentia_core::model::{LicenseType, ProductVersion};
use licentia_core::rules::version::{find_in_catalog, parse_app_version};
use licentia_core::store::{CatalogStore, LicenseStore, Limit};
use licentia_storage_memory::MemoryStore;

#[tokio::test]
async fn lookup_matches_a_catalog_scan() {
    let store = MemoryStore::new();
    let seeded = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let p = &seeded.product;
    // (version, release offset in days): builds of one precedence released at different and
    // at equal times, pre-releases, and a higher version released earlier.
    let catalog = [
        ("1.0.0+linux", 3),
        ("1.0.0+mac", 5),
        ("1.0.0+win", 5),
        ("1.0.0", 1),
        ("1.1.0-beta.1", 4),
        ("1.1.0", 6),
        ("2.0.0", 2),
        ("2.0.0+meta", 2),
    ];
    for (n, (v, days)) in catalog.iter().enumerate() {
        let n = u32::try_from(n).unwrap() + 1;
        let entry: ProductVersion = version(p, n, v, t0() + Duration::days(*days));
        store.insert_version(&entry, vec![]).await.unwrap();
    }
    let listed = store
        .list_versions(&p.id, Limit::new(Some(100)))
        .await
        .unwrap();
    for asked in [
        "1.0.0",
        "1.0.0+other",
        "1.1.0-beta.1",
        "1.1.0",
        "1.1.0-beta.2",
        "2.0.0+x",
        "3.0.0",
    ] {
        let v = parse_app_version(asked).unwrap();
        let mut query = by_id(&seeded.license.id);
        query.app_version = Some(v.clone());
        let agg = load(&store, query).await;
        assert!(agg.versions.has_catalog);
        assert_eq!(
            agg.versions.entry.as_ref(),
            find_in_catalog(&listed, &v),
            "lookup of {asked}"
        );
    }
}

#[tokio::test]
async fn no_catalog_and_deleted_products_find_nothing() {
    let store = MemoryStore::new();
    let seeded = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let mut query = by_id(&seeded.license.id);
    query.app_version = Some(parse_app_version("1.0.0").unwrap());
    let agg = load(&store, query).await;
    assert!(!agg.versions.has_catalog);
    assert_eq!(agg.versions.entry, None);

    // A product deleted with its versions and created again starts with an empty index.
    let other = fixtures::product(2);
    store.insert_product(&other, vec![]).await.unwrap();
    store
        .insert_version(&version(&other, 9, "1.0.0", t0()), vec![])
        .await
        .unwrap();
    store.delete_product(&other.id, vec![]).await.unwrap();
    store.insert_product(&other, vec![]).await.unwrap();
    let fresh = store
        .list_versions(&other.id, Limit::new(Some(10)))
        .await
        .unwrap();
    assert!(fresh.is_empty());
    store
        .insert_version(&version(&other, 10, "1.0.0+b", t0()), vec![])
        .await
        .unwrap();
    let policy = fixtures::policy(&other, 2, LicenseType::Perpetual);
    store.insert_policy(&policy, vec![]).await.unwrap();
    let license = fixtures::license(&policy, 2);
    store.insert_license(&license, vec![]).await.unwrap();
    let mut query = by_id(&license.id);
    query.app_version = Some(parse_app_version("1.0.0").unwrap());
    let agg = load(&store, query).await;
    let entry = agg.versions.entry.expect("the new 1.0.0+b");
    assert_eq!(entry.version, "1.0.0+b");
    assert_eq!(entry.id.as_str(), "ver_0010");
}
