//! [`CatalogStore`](crate::store::CatalogStore): products, versions, policies, features and
//! custom field definitions round-trip; codes are unique where the contract says; deletes of
//! records in use conflict; missing records are `NotFound`.

use chrono::Duration;

use crate::model::{CustomFieldResourceType, CustomFieldValueType, LicenseType};
use crate::store::{Limit, Store};

use super::fixtures::{
    at, custom_field, event_types_of, feature, license, parse, policy, product, system_event, t0,
    version,
};
use super::{expect_already_exists, expect_conflict, expect_not_found, ok};

/// Insert, get, update, list and delete products, each with its event.
pub async fn products_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let p1 = product(1);
    let p2 = product(2);
    for p in [&p1, &p2] {
        let ev = system_event("product.created", "product", p.id.as_str(), p.created_at);
        ok(store.insert_product(p, vec![ev]).await, "insert_product");
    }
    assert_eq!(
        ok(store.get_product(&p1.id).await, "get_product"),
        p1,
        "get_product returns the inserted product unchanged"
    );
    assert_eq!(
        ok(store.list_products(Limit::default()).await, "list_products"),
        vec![p2.clone(), p1.clone()],
        "list_products is newest first"
    );

    let mut changed = p1.clone();
    changed.name = "Renamed".into();
    changed.code = parse("product-renamed");
    changed.metadata.insert("tier".into(), "gold".into());
    changed.updated_at = at(100);
    let ev = system_event("product.updated", "product", p1.id.as_str(), at(100));
    ok(
        store.update_product(&changed, vec![ev]).await,
        "update_product",
    );
    assert_eq!(
        ok(store.get_product(&p1.id).await, "get_product"),
        changed,
        "update_product replaces the whole record"
    );

    let ev = system_event("product.deleted", "product", p2.id.as_str(), at(101));
    ok(
        store.delete_product(&p2.id, vec![ev]).await,
        "delete_product",
    );
    expect_not_found(store.get_product(&p2.id).await, "get_product after delete");
    assert_eq!(
        ok(store.list_products(Limit::default()).await, "list_products"),
        vec![changed],
        "a deleted product is no longer listed"
    );
    // The old code is free again after a rename.
    let mut reuse = product(3);
    reuse.code = p1.code.clone();
    ok(
        store.insert_product(&reuse, vec![]).await,
        "insert_product with a code freed by a rename",
    );

    assert_eq!(
        event_types_of(&store, p1.id.as_str()).await,
        ["product.created", "product.updated"],
        "each write appends its events exactly once"
    );
    assert_eq!(
        event_types_of(&store, p2.id.as_str()).await,
        ["product.created", "product.deleted"]
    );
}

/// A product code is unique across products, on insert and on update.
pub async fn product_code_is_unique<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let p1 = product(1);
    ok(store.insert_product(&p1, vec![]).await, "insert_product");
    let mut dup = product(2);
    dup.code = p1.code.clone();
    expect_already_exists(
        store.insert_product(&dup, vec![]).await,
        "insert_product with a taken code",
    );
    expect_not_found(
        store.get_product(&dup.id).await,
        "get_product of a refused insert",
    );

    let p3 = product(3);
    ok(store.insert_product(&p3, vec![]).await, "insert_product");
    let mut clash = p3.clone();
    clash.code = p1.code.clone();
    clash.name = "Clash".into();
    expect_already_exists(
        store.update_product(&clash, vec![]).await,
        "update_product to a taken code",
    );
    assert_eq!(
        ok(store.get_product(&p3.id).await, "get_product"),
        p3,
        "a refused update changes nothing"
    );
    assert_eq!(
        ok(store.get_product(&p1.id).await, "get_product"),
        p1,
        "the code's owner is untouched"
    );
}

/// Versions round-trip, list newest release first per product, and are unique per product.
pub async fn product_versions_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let v100 = version(&a, 1, "1.0.0", t0());
    let v110 = version(&a, 2, "1.1.0", t0() + Duration::days(10));
    let v200 = version(&a, 3, "2.0.0-rc.1", t0() + Duration::days(5));
    let other = version(&b, 4, "1.0.0", t0() + Duration::days(20));
    for v in [&v100, &v110, &v200, &other] {
        let ev = system_event("version.created", "product_version", v.id.as_str(), at(5));
        ok(store.insert_version(v, vec![ev]).await, "insert_version");
    }
    assert_eq!(
        ok(
            store.list_versions(&a.id, Limit::default()).await,
            "list_versions"
        ),
        vec![v110.clone(), v200.clone(), v100.clone()],
        "versions of a product are listed newest release first, other products' excluded"
    );
    assert_eq!(
        ok(
            store.list_versions(&a.id, Limit::new(Some(1))).await,
            "list_versions"
        ),
        vec![v110]
    );
    assert_eq!(
        ok(
            store.list_versions(&b.id, Limit::default()).await,
            "list_versions"
        ),
        vec![other.clone()],
        "the same version string on another product is its own record"
    );
    let mut dup = version(&a, 5, "1.0.0", t0() + Duration::days(30));
    dup.metadata.clear();
    expect_already_exists(
        store.insert_version(&dup, vec![]).await,
        "insert_version with a version string the product already has",
    );
    assert_eq!(
        ok(
            store.list_versions(&a.id, Limit::default()).await,
            "list_versions"
        )
        .len(),
        3,
        "a refused version is not stored"
    );
    assert_eq!(
        event_types_of(&store, other.id.as_str()).await,
        ["version.created"]
    );
}

/// Insert, get, update, list and delete policies.
pub async fn policies_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let p = product(1);
    let other = product(2);
    ok(store.insert_product(&p, vec![]).await, "insert_product");
    ok(store.insert_product(&other, vec![]).await, "insert_product");
    let mut floating = policy(&p, 1, LicenseType::Subscription);
    floating.max_floating_users = Some(5);
    floating.max_container_instances = Some(2);
    floating.require_heartbeat = false;
    let trial = policy(&p, 2, LicenseType::Trial);
    let elsewhere = policy(&other, 3, LicenseType::Perpetual);
    for pol in [&floating, &trial, &elsewhere] {
        let ev = system_event("policy.created", "policy", pol.id.as_str(), pol.created_at);
        ok(store.insert_policy(pol, vec![ev]).await, "insert_policy");
    }
    assert_eq!(
        ok(store.get_policy(&floating.id).await, "get_policy"),
        floating,
        "get_policy returns every field as inserted"
    );
    assert_eq!(
        ok(
            store.list_policies(&p.id, Limit::default()).await,
            "list_policies"
        ),
        vec![trial.clone(), floating.clone()],
        "policies of a product, newest first, other products' excluded"
    );

    let mut changed = floating.clone();
    changed.max_activations = 7;
    changed.max_floating_users = None;
    changed.grace_period_days = 14;
    changed.code = parse("policy-renamed");
    changed.updated_at = at(50);
    let ev = system_event("policy.updated", "policy", floating.id.as_str(), at(50));
    ok(
        store.update_policy(&changed, vec![ev]).await,
        "update_policy",
    );
    assert_eq!(
        ok(store.get_policy(&floating.id).await, "get_policy"),
        changed,
        "update_policy replaces the whole record, clearing optional fields"
    );

    let ev = system_event("policy.deleted", "policy", trial.id.as_str(), at(51));
    ok(
        store.delete_policy(&trial.id, vec![ev]).await,
        "delete_policy",
    );
    expect_not_found(store.get_policy(&trial.id).await, "get_policy after delete");
    assert_eq!(
        ok(
            store.list_policies(&p.id, Limit::default()).await,
            "list_policies"
        ),
        vec![changed]
    );
    assert_eq!(
        event_types_of(&store, floating.id.as_str()).await,
        ["policy.created", "policy.updated"]
    );
    assert_eq!(
        event_types_of(&store, trial.id.as_str()).await,
        ["policy.created", "policy.deleted"]
    );
}

/// A policy code is unique within its product; another product may reuse it.
pub async fn policy_code_is_unique_per_product<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let first = policy(&a, 1, LicenseType::Perpetual);
    ok(store.insert_policy(&first, vec![]).await, "insert_policy");

    let mut dup = policy(&a, 2, LicenseType::Trial);
    dup.code = first.code.clone();
    expect_already_exists(
        store.insert_policy(&dup, vec![]).await,
        "insert_policy with a code taken in the same product",
    );
    expect_not_found(
        store.get_policy(&dup.id).await,
        "get_policy of a refused insert",
    );

    let mut same_code_elsewhere = policy(&b, 3, LicenseType::Perpetual);
    same_code_elsewhere.code = first.code.clone();
    ok(
        store.insert_policy(&same_code_elsewhere, vec![]).await,
        "insert_policy with the same code on another product",
    );

    let second = policy(&a, 4, LicenseType::Perpetual);
    ok(store.insert_policy(&second, vec![]).await, "insert_policy");
    let mut clash = second.clone();
    clash.code = first.code.clone();
    expect_already_exists(
        store.update_policy(&clash, vec![]).await,
        "update_policy to a code taken in the same product",
    );
    assert_eq!(
        ok(store.get_policy(&second.id).await, "get_policy"),
        second,
        "a refused update changes nothing"
    );
}

/// Insert, get, find by code and list features.
pub async fn features_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let sso = feature(&a, 1, "sso");
    let api = feature(&a, 2, "api.calls");
    let other = feature(&b, 3, "export");
    for f in [&sso, &api, &other] {
        let ev = system_event("feature.created", "feature", f.id.as_str(), f.created_at);
        ok(store.insert_feature(f, vec![ev]).await, "insert_feature");
    }
    assert_eq!(ok(store.get_feature(&api.id).await, "get_feature"), api);
    assert_eq!(
        ok(
            store.find_feature(&a.id, &parse("sso")).await,
            "find_feature"
        ),
        sso,
        "find_feature looks a feature up by product and code"
    );
    expect_not_found(
        store.find_feature(&b.id, &parse("sso")).await,
        "find_feature of a code another product has",
    );
    expect_not_found(
        store.find_feature(&a.id, &parse("nope")).await,
        "find_feature of an unknown code",
    );
    assert_eq!(
        ok(
            store.list_features(&a.id, Limit::default()).await,
            "list_features"
        ),
        vec![api, sso.clone()],
        "features of a product, newest first, other products' excluded"
    );
    assert_eq!(
        event_types_of(&store, sso.id.as_str()).await,
        ["feature.created"]
    );
}

/// A feature code is unique within its product; another product may reuse it.
pub async fn feature_code_is_unique_per_product<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    ok(
        store.insert_feature(&feature(&a, 1, "sso"), vec![]).await,
        "insert_feature",
    );
    let dup = feature(&a, 2, "sso");
    expect_already_exists(
        store.insert_feature(&dup, vec![]).await,
        "insert_feature with a code taken in the same product",
    );
    expect_not_found(
        store.get_feature(&dup.id).await,
        "get_feature of a refused insert",
    );
    ok(
        store.insert_feature(&feature(&b, 3, "sso"), vec![]).await,
        "insert_feature with the same code on another product",
    );
}

/// Insert, get, update, list and delete custom field definitions.
pub async fn custom_fields_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let tier = custom_field(
        &a,
        1,
        "tier",
        CustomFieldResourceType::License,
        CustomFieldValueType::Enum,
    );
    let seats = custom_field(
        &a,
        2,
        "seats",
        CustomFieldResourceType::Customer,
        CustomFieldValueType::Integer,
    );
    let other = custom_field(
        &b,
        3,
        "tier",
        CustomFieldResourceType::License,
        CustomFieldValueType::String,
    );
    for d in [&tier, &seats, &other] {
        let ev = system_event("custom_field.created", "custom_field", d.id.as_str(), at(9));
        ok(
            store.insert_custom_field(d, vec![ev]).await,
            "insert_custom_field",
        );
    }
    assert_eq!(
        ok(store.get_custom_field(&tier.id).await, "get_custom_field"),
        tier
    );
    assert_eq!(
        ok(
            store.list_custom_fields(&a.id, Limit::default()).await,
            "list_custom_fields"
        ),
        vec![seats.clone(), tier.clone()],
        "definitions of a product, newest first, other products' excluded"
    );
    let mut changed = tier.clone();
    changed.name = "Support tier".into();
    changed.is_required = true;
    changed.enum_options = vec!["gold".into(), "silver".into(), "bronze".into()];
    changed.updated_at = at(60);
    let ev = system_event(
        "custom_field.updated",
        "custom_field",
        tier.id.as_str(),
        at(60),
    );
    ok(
        store.update_custom_field(&changed, vec![ev]).await,
        "update_custom_field",
    );
    assert_eq!(
        ok(store.get_custom_field(&tier.id).await, "get_custom_field"),
        changed
    );
    let ev = system_event(
        "custom_field.deleted",
        "custom_field",
        seats.id.as_str(),
        at(61),
    );
    ok(
        store.delete_custom_field(&seats.id, vec![ev]).await,
        "delete_custom_field",
    );
    expect_not_found(
        store.get_custom_field(&seats.id).await,
        "get_custom_field after delete",
    );
    assert_eq!(
        ok(
            store.list_custom_fields(&a.id, Limit::default()).await,
            "list_custom_fields"
        ),
        vec![changed]
    );
    assert_eq!(
        event_types_of(&store, tier.id.as_str()).await,
        ["custom_field.created", "custom_field.updated"]
    );
    assert_eq!(
        event_types_of(&store, seats.id.as_str()).await,
        ["custom_field.created", "custom_field.deleted"]
    );
}

/// A custom field code is unique per product and resource type.
pub async fn custom_field_code_is_unique_per_product_and_resource_type<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let lic = CustomFieldResourceType::License;
    let cus = CustomFieldResourceType::Customer;
    let s = CustomFieldValueType::String;
    ok(
        store
            .insert_custom_field(&custom_field(&a, 1, "region", lic, s), vec![])
            .await,
        "insert_custom_field",
    );
    let dup = custom_field(&a, 2, "region", lic, CustomFieldValueType::Integer);
    expect_already_exists(
        store.insert_custom_field(&dup, vec![]).await,
        "insert_custom_field with a code taken for the same product and resource type",
    );
    expect_not_found(
        store.get_custom_field(&dup.id).await,
        "get_custom_field of a refused insert",
    );
    ok(
        store
            .insert_custom_field(&custom_field(&a, 3, "region", cus, s), vec![])
            .await,
        "insert_custom_field with the same code for another resource type",
    );
    ok(
        store
            .insert_custom_field(&custom_field(&b, 4, "region", lic, s), vec![])
            .await,
        "insert_custom_field with the same code on another product",
    );
    let other = custom_field(&a, 5, "country", lic, s);
    ok(
        store.insert_custom_field(&other, vec![]).await,
        "insert_custom_field",
    );
    let mut clash = other.clone();
    clash.code = parse("region");
    expect_already_exists(
        store.update_custom_field(&clash, vec![]).await,
        "update_custom_field to a taken code",
    );
    assert_eq!(
        ok(store.get_custom_field(&other.id).await, "get_custom_field"),
        other
    );
}

/// Deleting a product with policies, features or licenses, or a policy licenses use, is
/// `Conflict` and deletes nothing; unused records delete fine.
pub async fn deleting_catalog_records_in_use_conflicts<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let with_policy = product(1);
    let with_feature = product(2);
    let with_license = product(3);
    let unused = product(4);
    for p in [&with_policy, &with_feature, &with_license, &unused] {
        ok(store.insert_product(p, vec![]).await, "insert_product");
    }
    let pol1 = policy(&with_policy, 1, LicenseType::Perpetual);
    ok(store.insert_policy(&pol1, vec![]).await, "insert_policy");
    ok(
        store
            .insert_feature(&feature(&with_feature, 2, "sso"), vec![])
            .await,
        "insert_feature",
    );
    let pol3 = policy(&with_license, 3, LicenseType::Perpetual);
    ok(store.insert_policy(&pol3, vec![]).await, "insert_policy");
    let lic = license(&pol3, 3);
    ok(store.insert_license(&lic, vec![]).await, "insert_license");

    let marker = |id: &str| system_event("conformance.must_not_appear", "product", id, at(99));
    for (p, what) in [
        (&with_policy, "a product with a policy"),
        (&with_feature, "a product with a feature"),
        (&with_license, "a product with a license"),
    ] {
        expect_conflict(
            store
                .delete_product(&p.id, vec![marker(p.id.as_str())])
                .await,
            &format!("delete_product of {what}"),
        );
        assert_eq!(
            ok(store.get_product(&p.id).await, "get_product"),
            *p,
            "a refused delete leaves the product"
        );
    }
    expect_conflict(
        store
            .delete_policy(&pol3.id, vec![marker(pol3.id.as_str())])
            .await,
        "delete_policy of a policy a license uses",
    );
    assert_eq!(ok(store.get_policy(&pol3.id).await, "get_policy"), pol3);
    assert_eq!(ok(store.get_license(&lic.id).await, "get_license"), lic);

    // Unused: the policy first, then its product, then an empty product.
    ok(store.delete_policy(&pol1.id, vec![]).await, "delete_policy");
    ok(
        store.delete_product(&with_policy.id, vec![]).await,
        "delete_product once its policy is gone",
    );
    ok(
        store.delete_product(&unused.id, vec![]).await,
        "delete_product of an unused product",
    );
    let leaked = ok(
        store
            .list_events(&crate::store::EventQuery {
                event_type: Some("conformance.must_not_appear".into()),
                ..Default::default()
            })
            .await,
        "list_events",
    );
    assert!(
        leaked.events.is_empty(),
        "a refused delete appends none of its events: {:?}",
        leaked.events
    );
}

/// Get, update and delete of missing catalog records are `NotFound`.
pub async fn missing_catalog_records_are_not_found<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let p = product(1);
    let pol = policy(&p, 1, LicenseType::Perpetual);
    let f = feature(&p, 1, "sso");
    let d = custom_field(
        &p,
        1,
        "tier",
        CustomFieldResourceType::License,
        CustomFieldValueType::String,
    );
    expect_not_found(store.get_product(&p.id).await, "get_product");
    expect_not_found(store.update_product(&p, vec![]).await, "update_product");
    expect_not_found(store.delete_product(&p.id, vec![]).await, "delete_product");
    expect_not_found(store.get_policy(&pol.id).await, "get_policy");
    expect_not_found(store.update_policy(&pol, vec![]).await, "update_policy");
    expect_not_found(store.delete_policy(&pol.id, vec![]).await, "delete_policy");
    expect_not_found(store.get_feature(&f.id).await, "get_feature");
    expect_not_found(
        store.find_feature(&p.id, &f.code).await,
        "find_feature on a missing product",
    );
    expect_not_found(store.get_custom_field(&d.id).await, "get_custom_field");
    expect_not_found(
        store.update_custom_field(&d, vec![]).await,
        "update_custom_field",
    );
    expect_not_found(
        store.delete_custom_field(&d.id, vec![]).await,
        "delete_custom_field",
    );
    assert!(
        ok(store.list_products(Limit::default()).await, "list_products").is_empty(),
        "an update of a missing record creates nothing"
    );
}

/// Inserting a record whose id exists is `AlreadyExists`, never an overwrite.
pub async fn duplicate_ids_already_exist<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let p = product(1);
    ok(store.insert_product(&p, vec![]).await, "insert_product");
    let mut same_id = product(2);
    same_id.id = p.id.clone();
    expect_already_exists(
        store.insert_product(&same_id, vec![]).await,
        "insert_product with a taken id",
    );
    assert_eq!(ok(store.get_product(&p.id).await, "get_product"), p);

    let pol = policy(&p, 1, LicenseType::Perpetual);
    ok(store.insert_policy(&pol, vec![]).await, "insert_policy");
    let mut same_id = policy(&p, 2, LicenseType::Trial);
    same_id.id = pol.id.clone();
    expect_already_exists(
        store.insert_policy(&same_id, vec![]).await,
        "insert_policy with a taken id",
    );
    assert_eq!(ok(store.get_policy(&pol.id).await, "get_policy"), pol);

    let lic = license(&pol, 1);
    ok(store.insert_license(&lic, vec![]).await, "insert_license");
    let mut same_id = license(&pol, 2);
    same_id.id = lic.id.clone();
    expect_already_exists(
        store.insert_license(&same_id, vec![]).await,
        "insert_license with a taken id",
    );
    assert_eq!(ok(store.get_license(&lic.id).await, "get_license"), lic);
}
