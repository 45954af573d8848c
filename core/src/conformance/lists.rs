//! Page sizes and order of every list: [`Limit`] defaults to 50 and clamps to 200; lists are
//! newest first (`created_at` desc, id desc) unless the method says otherwise.

use chrono::Duration;

use crate::model::{CustomFieldResourceType, CustomFieldValueType, LicenseType, Product};
use crate::store::{LicenseQuery, Limit, Store};

use super::fixtures::{
    activate, api_key, at, custom_field, customer, license, metered_feature, order, parse, policy,
    product, seed, subscription, t0, version, webhook,
};
use super::ok;

/// 210 products and 210 licenses: the default page is 50, a request for 500 gets 200, the
/// newest first.
pub async fn lists_default_to_50_and_clamp_to_200<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    for n in 2..=210 {
        ok(
            store.insert_product(&product(n), vec![]).await,
            "insert_product",
        );
        ok(
            store.insert_license(&license(&s.policy, n), vec![]).await,
            "insert_license",
        );
    }
    let ids = |ps: &[Product]| ps.iter().map(|p| p.id.to_string()).collect::<Vec<_>>();
    let all = ok(
        store.list_products(Limit::new(Some(500))).await,
        "list_products",
    );
    assert_eq!(all.len(), 200, "a limit above 200 is clamped to 200");
    let expected: Vec<String> = (11..=210).rev().map(|n| format!("prod_{n:04}")).collect();
    assert_eq!(ids(&all), expected, "products are listed newest first");
    let default = ok(store.list_products(Limit::new(None)).await, "list_products");
    assert_eq!(default.len(), 50, "the default page size is 50");
    assert_eq!(ids(&default), expected[..50]);
    assert_eq!(
        ok(
            store.list_products(Limit::new(Some(7))).await,
            "list_products"
        )
        .len(),
        7
    );

    let licenses = ok(
        store
            .list_licenses(&LicenseQuery {
                limit: Limit::new(Some(1000)),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses",
    );
    assert_eq!(licenses.len(), 200, "list_licenses clamps to 200");
    assert_eq!(licenses[0].id.as_str(), "lic_0210");
    assert_eq!(licenses[199].id.as_str(), "lic_0011");
    assert_eq!(
        ok(
            store.list_licenses(&LicenseQuery::default()).await,
            "list_licenses"
        )
        .len(),
        50,
        "list_licenses defaults to 50"
    );
}

/// Every list method returns at most `limit` records, in its documented order.
pub async fn every_list_honours_its_limit_and_order<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let two = Limit::new(Some(2));
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 5).await;
    let p = &s.product;
    for n in 2..=3 {
        ok(
            store.insert_product(&product(n), vec![]).await,
            "insert_product",
        );
        ok(
            store
                .insert_policy(&policy(p, n, LicenseType::Trial), vec![])
                .await,
            "insert_policy",
        );
        ok(
            store.insert_license(&license(&s.policy, n), vec![]).await,
            "insert_license",
        );
    }
    assert_eq!(
        ok(store.list_products(two).await, "list_products")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["prod_0003", "prod_0002"]
    );
    assert_eq!(
        ok(store.list_policies(&p.id, two).await, "list_policies")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["pol_0003", "pol_0002"]
    );
    assert_eq!(
        ok(
            store
                .list_licenses(&LicenseQuery {
                    limit: two,
                    ..LicenseQuery::default()
                })
                .await,
            "list_licenses"
        )
        .into_iter()
        .map(|x| x.id.to_string())
        .collect::<Vec<_>>(),
        ["lic_0003", "lic_0002"]
    );

    for (n, v, days) in [(1, "1.0.0", 3), (2, "1.1.0", 1), (3, "0.9.0", 2)] {
        ok(
            store
                .insert_version(&version(p, n, v, t0() + Duration::days(days)), vec![])
                .await,
            "insert_version",
        );
    }
    assert_eq!(
        ok(store.list_versions(&p.id, two).await, "list_versions")
            .into_iter()
            .map(|x| x.version)
            .collect::<Vec<_>>(),
        ["1.0.0", "0.9.0"],
        "versions are listed newest release first"
    );

    for (n, code) in [(1, "c"), (2, "a"), (3, "b")] {
        metered_feature(&store, &s, n, code, None, |_| {}).await;
    }
    assert_eq!(
        ok(store.list_features(&p.id, two).await, "list_features")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["feat_0003", "feat_0002"]
    );
    assert_eq!(
        ok(
            store.list_license_features(&s.license.id, two).await,
            "list_license_features"
        )
        .into_iter()
        .map(|x| x.feature_code.to_string())
        .collect::<Vec<_>>(),
        ["a", "b"],
        "license features are ordered by feature code"
    );

    for n in 1..=3 {
        let d = custom_field(
            p,
            n,
            &format!("field-{n}"),
            CustomFieldResourceType::License,
            CustomFieldValueType::String,
        );
        ok(
            store.insert_custom_field(&d, vec![]).await,
            "insert_custom_field",
        );
        ok(
            store.insert_customer(&customer(n), vec![]).await,
            "insert_customer",
        );
        ok(
            store.insert_order(&order(p, n), vec![]).await,
            "insert_order",
        );
        ok(
            store.insert_subscription(&subscription(p, n), vec![]).await,
            "insert_subscription",
        );
        ok(
            store.insert_api_key(&api_key(n), vec![]).await,
            "insert_api_key",
        );
        ok(
            store.insert_webhook(&webhook(n), "whsec_x", vec![]).await,
            "insert_webhook",
        );
    }
    assert_eq!(
        ok(
            store.list_custom_fields(&p.id, two).await,
            "list_custom_fields"
        )
        .into_iter()
        .map(|x| x.id.to_string())
        .collect::<Vec<_>>(),
        ["cf_0003", "cf_0002"]
    );
    assert_eq!(
        ok(store.list_customers(two).await, "list_customers")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["cus_0003", "cus_0002"]
    );
    assert_eq!(
        ok(store.list_orders(&p.id, two).await, "list_orders")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["ord_0003", "ord_0002"]
    );
    assert_eq!(
        ok(
            store.list_subscriptions(&p.id, two).await,
            "list_subscriptions"
        )
        .into_iter()
        .map(|x| x.id.to_string())
        .collect::<Vec<_>>(),
        ["sub_0003", "sub_0002"]
    );
    assert_eq!(
        ok(store.list_api_keys(two).await, "list_api_keys")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["key_0003", "key_0002"]
    );
    assert_eq!(
        ok(store.list_webhooks(two).await, "list_webhooks")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["whk_0003", "whk_0002"]
    );

    for n in 1..=3u32 {
        activate(
            &store,
            &s.license.id,
            &format!("fp-{n}"),
            parse(&format!("dev_{n:04}")),
            at(n.into()),
        )
        .await
        .expect("a free seat");
    }
    assert_eq!(
        ok(store.list_devices(&s.license.id, two).await, "list_devices")
            .into_iter()
            .map(|x| x.id.to_string())
            .collect::<Vec<_>>(),
        ["dev_0003", "dev_0002"],
        "devices are listed newest first"
    );
}

/// Records created at the same instant list by id, descending.
pub async fn equal_timestamps_list_by_id_descending<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    for (n, suffix) in [(2, "b"), (3, "c"), (4, "a")] {
        let mut p = product(n);
        p.id = parse(&format!("prod_same_{suffix}"));
        p.created_at = at(100);
        ok(store.insert_product(&p, vec![]).await, "insert_product");
        let mut c = customer(n);
        c.id = parse(&format!("cus_same_{suffix}"));
        c.created_at = at(100);
        ok(store.insert_customer(&c, vec![]).await, "insert_customer");
        let mut l = license(&s.policy, n);
        l.id = parse(&format!("lic_same_{suffix}"));
        l.created_at = at(100);
        ok(store.insert_license(&l, vec![]).await, "insert_license");
    }
    assert_eq!(
        ok(
            store.list_products(Limit::new(Some(3))).await,
            "list_products"
        )
        .into_iter()
        .map(|x| x.id.to_string())
        .collect::<Vec<_>>(),
        ["prod_same_c", "prod_same_b", "prod_same_a"],
        "equal created_at orders by id descending"
    );
    assert_eq!(
        ok(
            store.list_customers(Limit::new(Some(3))).await,
            "list_customers"
        )
        .into_iter()
        .map(|x| x.id.to_string())
        .collect::<Vec<_>>(),
        ["cus_same_c", "cus_same_b", "cus_same_a"]
    );
    let page = ok(
        store
            .list_licenses(&LicenseQuery {
                limit: Limit::new(Some(2)),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses",
    );
    assert_eq!(
        page.iter().map(|x| x.id.to_string()).collect::<Vec<_>>(),
        ["lic_same_c", "lic_same_b"]
    );
    let last = page.last().expect("two licenses");
    let rest = ok(
        store
            .list_licenses(&LicenseQuery {
                after: Some((last.created_at, last.id.clone())),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses after a cursor",
    );
    assert_eq!(
        rest.iter().map(|x| x.id.to_string()).collect::<Vec<_>>(),
        ["lic_same_a", "lic_0001"],
        "the `after` cursor continues in (created_at desc, id desc) order across equal timestamps"
    );
}
