//! [`CustomerStore`](crate::store::CustomerStore): customers round-trip with unique codes;
//! deleting a referenced customer conflicts; custom field values are put, replaced, cleared,
//! listed by code and removed with their definition.

use crate::model::{CustomFieldResourceType, CustomFieldValueType, CustomValue, LicenseType};
use crate::store::{Limit, Store};

use super::fixtures::{
    at, custom_field, custom_value, customer, event_types_of, license, parse, policy, product,
    system_event, t0,
};
use super::{expect_already_exists, expect_conflict, expect_not_found, ok};

/// Insert, get, update, list and delete customers.
pub async fn customers_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let c1 = customer(1);
    let mut c2 = customer(2);
    c2.email = None;
    for c in [&c1, &c2] {
        let ev = system_event("customer.created", "customer", c.id.as_str(), c.created_at);
        ok(store.insert_customer(c, vec![ev]).await, "insert_customer");
    }
    assert_eq!(ok(store.get_customer(&c1.id).await, "get_customer"), c1);
    assert_eq!(
        ok(store.get_customer(&c2.id).await, "get_customer"),
        c2,
        "an absent email stays absent"
    );
    assert_eq!(
        ok(
            store.list_customers(Limit::default()).await,
            "list_customers"
        ),
        vec![c2.clone(), c1.clone()],
        "customers are listed newest first"
    );
    let mut changed = c1.clone();
    changed.name = "Renamed".into();
    changed.email = None;
    changed.code = parse("customer-renamed");
    changed.updated_at = at(40);
    let ev = system_event("customer.updated", "customer", c1.id.as_str(), at(40));
    ok(
        store.update_customer(&changed, vec![ev]).await,
        "update_customer",
    );
    assert_eq!(
        ok(store.get_customer(&c1.id).await, "get_customer"),
        changed
    );
    let ev = system_event("customer.deleted", "customer", c2.id.as_str(), at(41));
    ok(
        store.delete_customer(&c2.id, vec![ev]).await,
        "delete_customer",
    );
    expect_not_found(
        store.get_customer(&c2.id).await,
        "get_customer after delete",
    );
    assert_eq!(
        ok(
            store.list_customers(Limit::default()).await,
            "list_customers"
        ),
        vec![changed]
    );
    assert_eq!(
        event_types_of(&store, c1.id.as_str()).await,
        ["customer.created", "customer.updated"]
    );
    assert_eq!(
        event_types_of(&store, c2.id.as_str()).await,
        ["customer.created", "customer.deleted"]
    );
}

/// A customer code is unique, on insert and on update.
pub async fn customer_code_is_unique<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let c1 = customer(1);
    ok(store.insert_customer(&c1, vec![]).await, "insert_customer");
    let mut dup = customer(2);
    dup.code = c1.code.clone();
    expect_already_exists(
        store.insert_customer(&dup, vec![]).await,
        "insert_customer with a taken code",
    );
    expect_not_found(
        store.get_customer(&dup.id).await,
        "get_customer of a refused insert",
    );
    let c3 = customer(3);
    ok(store.insert_customer(&c3, vec![]).await, "insert_customer");
    let mut clash = c3.clone();
    clash.code = c1.code.clone();
    expect_already_exists(
        store.update_customer(&clash, vec![]).await,
        "update_customer to a taken code",
    );
    assert_eq!(ok(store.get_customer(&c3.id).await, "get_customer"), c3);
}

/// Deleting a customer a license references is `Conflict`; an unreferenced one deletes.
pub async fn deleting_a_customer_in_use_conflicts<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let p = product(1);
    ok(store.insert_product(&p, vec![]).await, "insert_product");
    let pol = policy(&p, 1, LicenseType::Perpetual);
    ok(store.insert_policy(&pol, vec![]).await, "insert_policy");
    let used = customer(1);
    let unused = customer(2);
    ok(
        store.insert_customer(&used, vec![]).await,
        "insert_customer",
    );
    ok(
        store.insert_customer(&unused, vec![]).await,
        "insert_customer",
    );
    let mut lic = license(&pol, 1);
    lic.customer_id = Some(used.id.clone());
    ok(store.insert_license(&lic, vec![]).await, "insert_license");
    let marker = system_event(
        "conformance.must_not_appear",
        "customer",
        used.id.as_str(),
        at(9),
    );
    expect_conflict(
        store.delete_customer(&used.id, vec![marker]).await,
        "delete_customer of a customer a license references",
    );
    assert_eq!(ok(store.get_customer(&used.id).await, "get_customer"), used);
    assert_eq!(
        event_types_of(&store, used.id.as_str()).await,
        Vec::<String>::new(),
        "a refused delete appends none of its events"
    );
    ok(
        store.delete_customer(&unused.id, vec![]).await,
        "delete_customer of an unreferenced customer",
    );
}

/// Values are put, replaced and cleared per (definition, resource) and listed by code.
pub async fn custom_values_put_clear_and_list<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let p = product(1);
    ok(store.insert_product(&p, vec![]).await, "insert_product");
    let lic = CustomFieldResourceType::License;
    let tier = custom_field(&p, 1, "tier", lic, CustomFieldValueType::Enum);
    let seats = custom_field(&p, 2, "seats", lic, CustomFieldValueType::Integer);
    let note = custom_field(&p, 3, "a.note", lic, CustomFieldValueType::String);
    let renewed = custom_field(&p, 4, "renewed", lic, CustomFieldValueType::Datetime);
    let vip = custom_field(
        &p,
        5,
        "vip",
        CustomFieldResourceType::Customer,
        CustomFieldValueType::Boolean,
    );
    for d in [&tier, &seats, &note, &renewed, &vip] {
        ok(
            store.insert_custom_field(d, vec![]).await,
            "insert_custom_field",
        );
    }
    let r = "lic_0042";
    let values = [
        custom_value(&tier, r, CustomValue::Enum("gold".into()), at(10)),
        custom_value(&seats, r, CustomValue::Integer(-5), at(11)),
        custom_value(&note, r, CustomValue::String("hello".into()), at(12)),
        custom_value(&renewed, r, CustomValue::Datetime(t0()), at(13)),
    ];
    for (d, v) in [&tier, &seats, &note, &renewed].into_iter().zip(&values) {
        let ev = system_event("custom_value.set", "license", r, v.updated_at);
        ok(
            store.put_custom_value(&d.id, r, Some(v), vec![ev]).await,
            "put_custom_value",
        );
    }
    let cus_value = custom_value(&vip, "cus_0001", CustomValue::Boolean(true), at(14));
    ok(
        store
            .put_custom_value(&vip.id, "cus_0001", Some(&cus_value), vec![])
            .await,
        "put_custom_value",
    );
    let other = custom_value(&seats, "lic_0043", CustomValue::Integer(9), at(15));
    ok(
        store
            .put_custom_value(&seats.id, "lic_0043", Some(&other), vec![])
            .await,
        "put_custom_value",
    );

    let listed = ok(
        store.list_custom_values(lic, r, Limit::default()).await,
        "list_custom_values",
    );
    assert_eq!(
        listed,
        vec![
            values[2].clone(),
            values[3].clone(),
            values[1].clone(),
            values[0].clone()
        ],
        "values of one resource, ordered by code (a.note, renewed, seats, tier), others excluded"
    );
    assert_eq!(
        ok(
            store
                .list_custom_values(
                    CustomFieldResourceType::Customer,
                    "cus_0001",
                    Limit::default()
                )
                .await,
            "list_custom_values"
        ),
        vec![cus_value]
    );
    assert_eq!(
        ok(
            store.list_custom_values(lic, r, Limit::new(Some(2))).await,
            "list_custom_values"
        ),
        vec![values[2].clone(), values[3].clone()],
        "list_custom_values honours its limit"
    );

    // Replace, then clear.
    let replaced = custom_value(&seats, r, CustomValue::Integer(25), at(20));
    ok(
        store
            .put_custom_value(&seats.id, r, Some(&replaced), vec![])
            .await,
        "put_custom_value replacing a value",
    );
    let ev = system_event("custom_value.cleared", "license", r, at(21));
    ok(
        store.put_custom_value(&tier.id, r, None, vec![ev]).await,
        "put_custom_value(None) clearing a value",
    );
    assert_eq!(
        ok(
            store.list_custom_values(lic, r, Limit::default()).await,
            "list_custom_values"
        ),
        vec![values[2].clone(), values[3].clone(), replaced],
        "a put replaces the value of (definition, resource); None clears it"
    );
    ok(
        store.put_custom_value(&tier.id, r, None, vec![]).await,
        "clearing a value that is not set",
    );
    expect_not_found(
        store
            .put_custom_value(&parse("cf_9999"), r, Some(&values[0]), vec![])
            .await,
        "put_custom_value of a missing definition",
    );
    assert_eq!(
        event_types_of(&store, r).await,
        [
            "custom_value.set",
            "custom_value.set",
            "custom_value.set",
            "custom_value.set",
            "custom_value.cleared"
        ]
    );
}

/// A definition with values set is in use: deleting it is `Conflict` (DESIGN 5: "delete while
/// in use"); once its values are cleared it deletes, and the other definitions' values stay.
pub async fn a_custom_field_with_values_is_in_use<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let p = product(1);
    ok(store.insert_product(&p, vec![]).await, "insert_product");
    let lic = CustomFieldResourceType::License;
    let tier = custom_field(&p, 1, "tier", lic, CustomFieldValueType::String);
    let seats = custom_field(&p, 2, "seats", lic, CustomFieldValueType::Integer);
    ok(
        store.insert_custom_field(&tier, vec![]).await,
        "insert_custom_field",
    );
    ok(
        store.insert_custom_field(&seats, vec![]).await,
        "insert_custom_field",
    );
    let r = "lic_0001";
    let t = custom_value(&tier, r, CustomValue::String("gold".into()), at(5));
    let s = custom_value(&seats, r, CustomValue::Integer(3), at(6));
    ok(
        store.put_custom_value(&tier.id, r, Some(&t), vec![]).await,
        "put_custom_value",
    );
    ok(
        store.put_custom_value(&seats.id, r, Some(&s), vec![]).await,
        "put_custom_value",
    );
    expect_conflict(
        store.delete_custom_field(&tier.id, vec![]).await,
        "delete_custom_field while a value is set",
    );
    ok(
        store.put_custom_value(&tier.id, r, None, vec![]).await,
        "put_custom_value(None)",
    );
    ok(
        store.delete_custom_field(&tier.id, vec![]).await,
        "delete_custom_field",
    );
    assert_eq!(
        ok(
            store.list_custom_values(lic, r, Limit::default()).await,
            "list_custom_values"
        ),
        vec![s],
        "delete_custom_field leaves other definitions' values"
    );
    // Recreating the code does not resurrect the old value.
    let again = custom_field(&p, 3, "tier", lic, CustomFieldValueType::String);
    ok(
        store.insert_custom_field(&again, vec![]).await,
        "insert_custom_field reusing a deleted code",
    );
    assert_eq!(
        ok(
            store.list_custom_values(lic, r, Limit::default()).await,
            "list_custom_values"
        )
        .len(),
        1
    );
}

/// Get, update and delete of a missing customer are `NotFound`.
pub async fn missing_customers_are_not_found<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let c = customer(1);
    expect_not_found(store.get_customer(&c.id).await, "get_customer");
    expect_not_found(store.update_customer(&c, vec![]).await, "update_customer");
    expect_not_found(
        store.delete_customer(&c.id, vec![]).await,
        "delete_customer",
    );
    assert!(
        ok(
            store.list_customers(Limit::default()).await,
            "list_customers"
        )
        .is_empty(),
        "an update of a missing customer creates nothing"
    );
}
