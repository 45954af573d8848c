//! Management records: uniqueness, references, deletes, lists.

mod common;

use common::*;
use licentia_core::crypto::{SecretSeed, StoredKey};
use licentia_core::model::{ApiKey, ManagementScope, SecretHash};
use licentia_core::model::{
    CustomFieldResourceType, KeyStatus, License, Metadata, Order, OrderStatus, Subscription,
    SubscriptionStatus, Timestamp, WebhookEndpoint,
};
use licentia_core::store::{
    AccessStore, CatalogStore, CommerceStore, CustomerStore, EventQuery, LicenseQuery,
    LicenseStore, Limit, StoreError, StoreResult,
};
use licentia_storage_memory::MemoryStore;

#[track_caller]
fn assert_exists<T: std::fmt::Debug>(r: StoreResult<T>, entity: &str, constraint: &str) {
    match r {
        Err(StoreError::AlreadyExists {
            entity: e,
            constraint: c,
        }) if e == entity && c == constraint => {}
        other => panic!("expected AlreadyExists({entity}, {constraint}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: StoreResult<T>, entity: &str) {
    match r {
        Err(StoreError::NotFound { entity: e }) if e == entity => {}
        other => panic!("expected NotFound({entity}), got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: StoreResult<T>) {
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
}

async fn event_count(store: &MemoryStore) -> usize {
    let q = EventQuery {
        limit: Limit::new(Some(200)),
        ..EventQuery::default()
    };
    store.list_events(&q).await.unwrap().events.len()
}

fn order(p: &licentia_core::model::Product, n: u32, external_id: &str) -> Order {
    Order {
        id: parse(&format!("ord_{n:04}")),
        product_id: p.id.clone(),
        customer_id: None,
        subscription_id: None,
        external_system: "shop".into(),
        external_id: external_id.into(),
        status: OrderStatus::Paid,
        period_start: None,
        period_end: None,
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

fn subscription(p: &licentia_core::model::Product, n: u32, external_id: &str) -> Subscription {
    Subscription {
        id: parse(&format!("sub_{n:04}")),
        product_id: p.id.clone(),
        customer_id: None,
        external_system: "billing".into(),
        external_id: external_id.into(),
        status: SubscriptionStatus::Active,
        current_period_start: t0(),
        current_period_end: at(86_400),
        cancel_at_period_end: false,
        canceled_at: None,
        metadata: Metadata::new(),
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

fn api_key(n: u32) -> ApiKey {
    ApiKey {
        id: parse(&format!("key_{n:04}")),
        name: format!("Key {n}"),
        key_prefix: "lkm_ABCD".into(),
        scopes: vec![ManagementScope::Admin],
        allowed_cidrs: vec![],
        is_active: true,
        expires_at: None,
        last_used_at: None,
        user_id: None,
        created_at: at(n.into()),
        token_hash: SecretHash::of(&format!("token-{n}")),
    }
}

fn webhook(n: u32) -> WebhookEndpoint {
    WebhookEndpoint {
        id: parse(&format!("whk_{n:04}")),
        name: format!("Hook {n}"),
        url: "https://example.invalid/hook".into(),
        secret_prefix: "whs_ABCD".into(),
        event_types: vec![],
        is_active: true,
        last_delivery_at: None,
        last_delivery_status: None,
        last_status_code: None,
        failing_since: None,
        created_at: at(n.into()),
        updated_at: at(n.into()),
    }
}

fn signing_key(kid: &str, status: KeyStatus) -> StoredKey {
    StoredKey {
        product_id: None,
        kid: kid.into(),
        status,
        created_at: Timestamp::new(t0()),
        activates_at: None,
        seed: SecretSeed::from_bytes([9; 32]),
    }
}

#[tokio::test]
async fn codes_are_unique_in_their_scope_on_insert_and_update() {
    let store = MemoryStore::new();
    let (a, pol) = catalog(&store, 1).await;
    let b = product(2);
    store.insert_product(&b, vec![]).await.unwrap();

    // Products.
    let mut dup = product(3);
    dup.code = a.code.clone();
    assert_exists(store.insert_product(&dup, vec![]).await, "product", "code");
    assert_exists(store.insert_product(&a, vec![]).await, "product", "id");
    let mut clash = b.clone();
    clash.code = a.code.clone();
    assert_exists(
        store.update_product(&clash, vec![]).await,
        "product",
        "code",
    );
    assert_eq!(store.get_product(&b.id).await.unwrap(), b);

    // Policies: per product.
    let mut same_code = policy(&a, 2, 1);
    same_code.code = pol.code.clone();
    assert_exists(
        store.insert_policy(&same_code, vec![]).await,
        "policy",
        "code",
    );
    let mut on_b = policy(&b, 3, 1);
    on_b.code = pol.code.clone();
    store.insert_policy(&on_b, vec![]).await.unwrap();
    let other = policy(&a, 4, 1);
    store.insert_policy(&other, vec![]).await.unwrap();
    let mut renamed = other.clone();
    renamed.code = pol.code.clone();
    assert_exists(
        store.update_policy(&renamed, vec![]).await,
        "policy",
        "code",
    );

    // Features: per product.
    let f = feature(&a, 1);
    store.insert_feature(&f, vec![]).await.unwrap();
    let mut f_dup = feature(&a, 2);
    f_dup.code = f.code.clone();
    assert_exists(
        store.insert_feature(&f_dup, vec![]).await,
        "feature",
        "code",
    );
    let mut f_b = feature(&b, 3);
    f_b.code = f.code.clone();
    store.insert_feature(&f_b, vec![]).await.unwrap();
    assert_eq!(store.find_feature(&b.id, &f.code).await.unwrap(), f_b);
    assert_eq!(store.find_feature(&a.id, &f.code).await.unwrap(), f);
    assert_not_found(store.find_feature(&a.id, &parse("nope")).await, "feature");

    // Custom fields: per product and resource type.
    let lic_field = custom_field(&a, 1, CustomFieldResourceType::License, "seat");
    store.insert_custom_field(&lic_field, vec![]).await.unwrap();
    let dup_field = custom_field(&a, 2, CustomFieldResourceType::License, "seat");
    assert_exists(
        store.insert_custom_field(&dup_field, vec![]).await,
        "custom_field",
        "code",
    );
    let cus_field = custom_field(&a, 3, CustomFieldResourceType::Customer, "seat");
    store.insert_custom_field(&cus_field, vec![]).await.unwrap();
    let mut moved = cus_field.clone();
    moved.resource_type = CustomFieldResourceType::License;
    assert_exists(
        store.update_custom_field(&moved, vec![]).await,
        "custom_field",
        "code",
    );

    // Customers.
    let c = customer(1);
    store.insert_customer(&c, vec![]).await.unwrap();
    let mut c_dup = customer(2);
    c_dup.code = c.code.clone();
    assert_exists(
        store.insert_customer(&c_dup, vec![]).await,
        "customer",
        "code",
    );
    let c2 = customer(3);
    store.insert_customer(&c2, vec![]).await.unwrap();
    let mut c2_clash = c2.clone();
    c2_clash.code = c.code.clone();
    assert_exists(
        store.update_customer(&c2_clash, vec![]).await,
        "customer",
        "code",
    );
    // A rename frees the old code.
    let mut c_renamed = c.clone();
    c_renamed.code = parse("customer-renamed");
    store.update_customer(&c_renamed, vec![]).await.unwrap();
    store.insert_customer(&c_dup, vec![]).await.unwrap();

    // Versions: per product, by version string.
    store
        .insert_version(&version(&a, 1, "1.0.0", t0()), vec![])
        .await
        .unwrap();
    assert_exists(
        store
            .insert_version(&version(&a, 2, "1.0.0", at(5)), vec![])
            .await,
        "product_version",
        "version",
    );
    store
        .insert_version(&version(&b, 3, "1.0.0", t0()), vec![])
        .await
        .unwrap();

    // License key hashes.
    let l1 = license(&pol, 1);
    store.insert_license(&l1, vec![]).await.unwrap();
    let mut l2 = license(&pol, 2);
    l2.key_hash = l1.key_hash;
    assert_exists(
        store.insert_license(&l2, vec![]).await,
        "license",
        "key_hash",
    );
    assert_exists(store.insert_license(&l1, vec![]).await, "license", "id");

    // None of the refused writes left an event; each was given none anyway, so check that
    // refused writes with events append nothing.
    let before = event_count(&store).await;
    assert_exists(
        store
            .insert_product(&dup, vec![event("product.created", "x")])
            .await,
        "product",
        "code",
    );
    assert_eq!(event_count(&store).await, before);
}

#[tokio::test]
async fn orders_and_subscriptions_are_unique_per_product_by_external_id() {
    let store = MemoryStore::new();
    let (a, _) = catalog(&store, 1).await;
    let b = product(2);
    store.insert_product(&b, vec![]).await.unwrap();

    let o1 = order(&a, 1, "ext-1");
    store.insert_order(&o1, vec![]).await.unwrap();
    assert_exists(
        store.insert_order(&order(&a, 2, "ext-1"), vec![]).await,
        "order",
        "external_id",
    );
    store
        .insert_order(&order(&b, 3, "ext-1"), vec![])
        .await
        .unwrap();
    let o4 = order(&a, 4, "ext-4");
    store.insert_order(&o4, vec![]).await.unwrap();
    let mut clash = o4.clone();
    clash.external_id = "ext-1".into();
    assert_exists(
        store.update_order(&clash, vec![]).await,
        "order",
        "external_id",
    );
    let mut moved = o4.clone();
    moved.external_id = "ext-5".into();
    store.update_order(&moved, vec![]).await.unwrap();
    store
        .insert_order(&order(&a, 5, "ext-4"), vec![])
        .await
        .unwrap();
    assert_eq!(
        store
            .list_orders(&a.id, Limit::default())
            .await
            .unwrap()
            .iter()
            .map(|o| o.id.to_string())
            .collect::<Vec<_>>(),
        ["ord_0005", "ord_0004", "ord_0001"]
    );

    let s1 = subscription(&a, 1, "sub-1");
    store.insert_subscription(&s1, vec![]).await.unwrap();
    assert_exists(
        store
            .insert_subscription(&subscription(&a, 2, "sub-1"), vec![])
            .await,
        "subscription",
        "external_id",
    );
    store
        .insert_subscription(&subscription(&b, 3, "sub-1"), vec![])
        .await
        .unwrap();

    // References must exist.
    let mut dangling = order(&a, 9, "ext-9");
    dangling.customer_id = Some(parse("cus_9999"));
    assert_not_found(store.insert_order(&dangling, vec![]).await, "customer");
    assert_not_found(
        store
            .insert_order(&order(&product(9), 10, "ext-10"), vec![])
            .await,
        "product",
    );
    assert_not_found(store.get_order(&dangling.id).await, "order");
    assert_not_found(store.update_order(&dangling, vec![]).await, "order");
}

#[tokio::test]
async fn deletes_of_records_in_use_conflict() {
    let store = MemoryStore::new();
    let (a, pol) = catalog(&store, 1).await;
    let c = customer(1);
    store.insert_customer(&c, vec![]).await.unwrap();
    let mut l = license(&pol, 1);
    l.customer_id = Some(c.id.clone());
    store.insert_license(&l, vec![]).await.unwrap();

    let before = event_count(&store).await;
    assert_conflict(store.delete_product(&a.id, vec![event("x", "a")]).await);
    assert_conflict(store.delete_policy(&pol.id, vec![event("x", "pol")]).await);
    assert_conflict(store.delete_customer(&c.id, vec![event("x", "c")]).await);
    assert_eq!(
        event_count(&store).await,
        before,
        "refused deletes append nothing"
    );
    assert_eq!(store.get_policy(&pol.id).await.unwrap(), pol);

    // A product with only a feature, or only an order, is in use too.
    let b = product(2);
    store.insert_product(&b, vec![]).await.unwrap();
    let f = feature(&b, 1);
    store.insert_feature(&f, vec![]).await.unwrap();
    assert_conflict(store.delete_product(&b.id, vec![]).await);
    let d = product(3);
    store.insert_product(&d, vec![]).await.unwrap();
    store
        .insert_order(&order(&d, 1, "e"), vec![])
        .await
        .unwrap();
    assert_conflict(store.delete_product(&d.id, vec![]).await);

    // An unused policy and customer delete; so does a product with only versions and
    // custom fields, which go with it.
    let spare = policy(&a, 2, 1);
    store.insert_policy(&spare, vec![]).await.unwrap();
    store.delete_policy(&spare.id, vec![]).await.unwrap();
    assert_not_found(store.get_policy(&spare.id).await, "policy");
    let c2 = customer(2);
    store.insert_customer(&c2, vec![]).await.unwrap();
    store.delete_customer(&c2.id, vec![]).await.unwrap();
    assert_not_found(store.delete_customer(&c2.id, vec![]).await, "customer");

    let e = product(4);
    store.insert_product(&e, vec![]).await.unwrap();
    store
        .insert_version(&version(&e, 1, "1.0.0", t0()), vec![])
        .await
        .unwrap();
    let field = custom_field(&e, 1, CustomFieldResourceType::License, "seat");
    store.insert_custom_field(&field, vec![]).await.unwrap();
    store
        .put_custom_value(
            &field.id,
            "lic_0001",
            Some(&string_value(&field, "lic_0001", "v")),
            vec![],
        )
        .await
        .unwrap();
    store
        .delete_product(&e.id, vec![event("product.deleted", "e")])
        .await
        .unwrap();
    assert_not_found(store.get_custom_field(&field.id).await, "custom_field");
    assert!(
        store
            .list_custom_values(
                CustomFieldResourceType::License,
                "lic_0001",
                Limit::default()
            )
            .await
            .unwrap()
            .is_empty()
    );
    // The same version id and code may be used again.
    store.insert_product(&e, vec![]).await.unwrap();
    store
        .insert_version(&version(&e, 1, "1.0.0", t0()), vec![])
        .await
        .unwrap();
    assert_eq!(event_count(&store).await, before + 1);
}

#[tokio::test]
async fn missing_records_are_not_found_by_name() {
    let store = MemoryStore::new();
    let p = product(1);
    assert_not_found(store.get_product(&p.id).await, "product");
    assert_not_found(store.update_product(&p, vec![]).await, "product");
    assert_not_found(store.delete_product(&p.id, vec![]).await, "product");
    assert_not_found(
        store.insert_policy(&policy(&p, 1, 1), vec![]).await,
        "product",
    );
    assert_not_found(
        store.insert_feature(&feature(&p, 1), vec![]).await,
        "product",
    );
    assert_not_found(
        store
            .insert_version(&version(&p, 1, "1.0.0", t0()), vec![])
            .await,
        "product",
    );
    assert_not_found(
        store.list_policies(&p.id, Limit::default()).await,
        "product",
    );
    store.insert_product(&p, vec![]).await.unwrap();
    let pol = policy(&p, 1, 1);
    assert_not_found(store.get_policy(&pol.id).await, "policy");
    assert_not_found(store.update_policy(&pol, vec![]).await, "policy");
    assert_not_found(store.delete_policy(&pol.id, vec![]).await, "policy");
    assert_not_found(
        store.insert_license(&license(&pol, 1), vec![]).await,
        "policy",
    );
    assert_not_found(store.get_license(&parse("lic_0001")).await, "license");
    assert_not_found(store.get_feature(&parse("feat_0001")).await, "feature");
    let field = custom_field(&p, 1, CustomFieldResourceType::License, "seat");
    assert_not_found(store.get_custom_field(&field.id).await, "custom_field");
    assert_not_found(
        store.update_custom_field(&field, vec![]).await,
        "custom_field",
    );
    assert_not_found(
        store.delete_custom_field(&field.id, vec![]).await,
        "custom_field",
    );
    assert_not_found(
        store
            .put_custom_value(&field.id, "lic_1", None, vec![])
            .await,
        "custom_field",
    );
    assert_not_found(store.get_customer(&parse("cus_0001")).await, "customer");
    assert_not_found(
        store.get_subscription(&parse("sub_0001")).await,
        "subscription",
    );
    assert_not_found(store.find_api_key(&SecretHash::of("nope")).await, "api_key");
    assert_not_found(
        store.touch_api_key(&parse("key_0001"), t0()).await,
        "api_key",
    );
    assert_not_found(store.get_webhook(&parse("whk_0001")).await, "webhook");
    assert_not_found(
        store.delete_webhook(&parse("whk_0001"), vec![]).await,
        "webhook",
    );
    assert_not_found(
        store.update_webhook(&webhook(1), None, vec![]).await,
        "webhook",
    );
}

#[tokio::test]
async fn custom_values_are_keyed_by_definition_and_resource_and_cleared_by_none() {
    let store = MemoryStore::new();
    let (p, _) = catalog(&store, 1).await;
    let zeta = custom_field(&p, 1, CustomFieldResourceType::License, "zeta");
    let alpha = custom_field(&p, 2, CustomFieldResourceType::License, "alpha");
    let on_customer = custom_field(&p, 3, CustomFieldResourceType::Customer, "tier");
    for d in [&zeta, &alpha, &on_customer] {
        store.insert_custom_field(d, vec![]).await.unwrap();
    }
    let r = "lic_0001";
    for (d, v) in [(&zeta, "z"), (&alpha, "a"), (&on_customer, "c")] {
        store
            .put_custom_value(&d.id, r, Some(&string_value(d, r, v)), vec![])
            .await
            .unwrap();
    }
    // Setting again replaces.
    store
        .put_custom_value(&zeta.id, r, Some(&string_value(&zeta, r, "z2")), vec![])
        .await
        .unwrap();
    let list = |t| {
        let store = store.clone();
        async move {
            store
                .list_custom_values(t, r, Limit::default())
                .await
                .unwrap()
                .into_iter()
                .map(|v| (v.code.to_string(), v.string_value.unwrap()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(CustomFieldResourceType::License).await,
        [
            ("alpha".into(), "a".into()),
            ("zeta".to_owned(), "z2".to_owned())
        ]
    );
    assert_eq!(
        list(CustomFieldResourceType::Customer).await,
        [("tier".to_owned(), "c".to_owned())]
    );

    // Values show their definition as it is now.
    let mut renamed = alpha.clone();
    renamed.name = "Alpha, renamed".into();
    store.update_custom_field(&renamed, vec![]).await.unwrap();
    let values = store
        .list_custom_values(CustomFieldResourceType::License, r, Limit::new(Some(1)))
        .await
        .unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].name, "Alpha, renamed");

    // Clearing removes values; a definition with a value is in use until it is cleared.
    store
        .put_custom_value(&zeta.id, r, None, vec![])
        .await
        .unwrap();
    store
        .put_custom_value(&zeta.id, r, None, vec![])
        .await
        .unwrap();
    assert!(matches!(
        store.delete_custom_field(&alpha.id, vec![]).await,
        Err(licentia_core::store::StoreError::Conflict { .. })
    ));
    store
        .put_custom_value(&alpha.id, r, None, vec![])
        .await
        .unwrap();
    store.delete_custom_field(&alpha.id, vec![]).await.unwrap();
    assert!(list(CustomFieldResourceType::License).await.is_empty());
    assert_eq!(list(CustomFieldResourceType::Customer).await.len(), 1);
}

#[tokio::test]
async fn lists_are_newest_first_and_honor_filters_and_cursors() {
    let store = MemoryStore::new();
    let (p, pol) = catalog(&store, 1).await;
    let c = customer(1);
    store.insert_customer(&c, vec![]).await.unwrap();
    // Licenses 1..=5; 4 and 5 created at the same instant (the id breaks the tie).
    let mut all: Vec<License> = Vec::new();
    for n in 1..=5 {
        let mut l = license(&pol, n);
        if n == 5 {
            l.created_at = at(4);
        }
        if n % 2 == 0 {
            l.customer_id = Some(c.id.clone());
        }
        store.insert_license(&l, vec![]).await.unwrap();
        all.push(l);
    }
    let ids = |ls: Vec<License>| ls.into_iter().map(|l| l.id.to_string()).collect::<Vec<_>>();
    let q = LicenseQuery {
        limit: Limit::new(Some(2)),
        ..LicenseQuery::default()
    };
    let first = store.list_licenses(&q).await.unwrap();
    assert_eq!(ids(first.clone()), ["lic_0005", "lic_0004"]);
    let last = first.last().unwrap();
    let q2 = LicenseQuery {
        after: Some((last.created_at, last.id.clone())),
        ..q.clone()
    };
    assert_eq!(
        ids(store.list_licenses(&q2).await.unwrap()),
        ["lic_0003", "lic_0002"]
    );
    let by_customer = LicenseQuery {
        customer_id: Some(c.id.clone()),
        ..LicenseQuery::default()
    };
    assert_eq!(
        ids(store.list_licenses(&by_customer).await.unwrap()),
        ["lic_0004", "lic_0002"]
    );
    let by_product = LicenseQuery {
        product_id: Some(p.id.clone()),
        limit: Limit::new(Some(500)),
        ..LicenseQuery::default()
    };
    assert_eq!(store.list_licenses(&by_product).await.unwrap().len(), 5);

    // Versions: newest release first, whatever the insert order.
    store
        .insert_version(&version(&p, 1, "1.0.0", at(10)), vec![])
        .await
        .unwrap();
    store
        .insert_version(&version(&p, 2, "2.0.0", at(30)), vec![])
        .await
        .unwrap();
    store
        .insert_version(&version(&p, 3, "1.5.0", at(20)), vec![])
        .await
        .unwrap();
    let versions: Vec<_> = store
        .list_versions(&p.id, Limit::default())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["2.0.0", "1.5.0", "1.0.0"]);

    // Products and customers.
    store.insert_product(&product(2), vec![]).await.unwrap();
    let products: Vec<_> = store
        .list_products(Limit::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(products, ["prod_0002", "prod_0001"]);
}

#[tokio::test]
async fn api_keys_webhooks_and_signing_keys() {
    let store = MemoryStore::new();
    let k1 = api_key(1);
    store.insert_api_key(&k1, vec![]).await.unwrap();
    let mut dup = api_key(2);
    dup.token_hash = k1.token_hash;
    assert_exists(
        store.insert_api_key(&dup, vec![]).await,
        "api_key",
        "token_hash",
    );
    store.insert_api_key(&api_key(3), vec![]).await.unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 2);
    assert_eq!(store.find_api_key(&k1.token_hash).await.unwrap(), k1);
    store.touch_api_key(&k1.id, at(50)).await.unwrap();
    store.touch_api_key(&k1.id, at(40)).await.unwrap();
    assert_eq!(
        store
            .find_api_key(&k1.token_hash)
            .await
            .unwrap()
            .last_used_at,
        Some(at(50)),
        "the latest use is kept"
    );
    let listed: Vec<_> = store
        .list_api_keys(Limit::default())
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id.to_string())
        .collect();
    assert_eq!(listed, ["key_0003", "key_0001"]);

    let w = webhook(1);
    store
        .insert_webhook(&w, "whs_secret-1", vec![])
        .await
        .unwrap();
    assert_exists(
        store.insert_webhook(&w, "other", vec![]).await,
        "webhook",
        "id",
    );
    assert_eq!(
        store.get_webhook(&w.id).await.unwrap(),
        (w.clone(), "whs_secret-1".to_owned())
    );
    let mut renamed = w.clone();
    renamed.name = "Renamed".into();
    store.update_webhook(&renamed, None, vec![]).await.unwrap();
    assert_eq!(store.get_webhook(&w.id).await.unwrap().1, "whs_secret-1");
    store
        .update_webhook(&renamed, Some("whs_secret-2"), vec![])
        .await
        .unwrap();
    assert_eq!(
        store.get_webhook(&w.id).await.unwrap(),
        (renamed.clone(), "whs_secret-2".to_owned())
    );
    assert_eq!(
        store.list_webhooks(Limit::default()).await.unwrap(),
        [renamed]
    );
    store.delete_webhook(&w.id, vec![]).await.unwrap();
    assert!(
        store
            .list_webhooks(Limit::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Signing keys: compare-and-swap on the active kid.
    assert!(store.load_signing_keys().await.unwrap().is_empty());
    let first = [signing_key("k1", KeyStatus::Active)];
    assert_conflict(
        store
            .replace_signing_keys(None, Some("k0"), &first, vec![event("x", "k")])
            .await,
    );
    store
        .replace_signing_keys(None, None, &first, vec![event("keys.rotated", "k1")])
        .await
        .unwrap();
    let rotated = [
        signing_key("k1", KeyStatus::Retired),
        signing_key("k2", KeyStatus::Active),
    ];
    assert_conflict(
        store
            .replace_signing_keys(None, None, &rotated, vec![])
            .await,
    );
    store
        .replace_signing_keys(None, Some("k1"), &rotated, vec![])
        .await
        .unwrap();
    assert_conflict(
        store
            .replace_signing_keys(None, Some("k1"), &rotated, vec![])
            .await,
    );
    let kids: Vec<_> = store
        .load_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.status))
        .collect();
    assert_eq!(
        kids,
        [
            ("k1".to_owned(), KeyStatus::Retired),
            ("k2".to_owned(), KeyStatus::Active)
        ]
    );
    assert_eq!(event_count(&store).await, 1);

    // Debug output shows no secret.
    let debug = format!("{store:?}");
    assert!(!debug.contains("whs_secret"), "{debug}");
}
