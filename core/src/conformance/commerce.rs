//! [`CommerceStore`](crate::store::CommerceStore): orders and subscriptions round-trip, list
//! per product newest first, and keep (external_system, external_id) unique per product and
//! kind.

use crate::model::{OrderStatus, SubscriptionStatus};
use crate::store::{Limit, Store};

use super::fixtures::{at, customer, event_types_of, order, product, subscription, system_event};
use super::{expect_already_exists, expect_not_found, ok};

/// Insert, get, update and list orders.
pub async fn orders_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let c = customer(1);
    ok(store.insert_customer(&c, vec![]).await, "insert_customer");
    let mut o1 = order(&a, 1);
    o1.customer_id = Some(c.id.clone());
    let mut o2 = order(&a, 2);
    o2.period_start = None;
    o2.period_end = None;
    let o3 = order(&b, 3);
    for o in [&o1, &o2, &o3] {
        let ev = system_event("order.created", "order", o.id.as_str(), o.created_at);
        ok(store.insert_order(o, vec![ev]).await, "insert_order");
    }
    assert_eq!(ok(store.get_order(&o1.id).await, "get_order"), o1);
    assert_eq!(ok(store.get_order(&o2.id).await, "get_order"), o2);
    assert_eq!(
        ok(
            store.list_orders(&a.id, Limit::default()).await,
            "list_orders"
        ),
        vec![o2.clone(), o1.clone()],
        "orders of a product, newest first, other products' excluded"
    );
    let mut changed = o1.clone();
    changed.status = OrderStatus::Refunded;
    changed.customer_id = None;
    changed.updated_at = at(30);
    let ev = system_event("order.updated", "order", o1.id.as_str(), at(30));
    ok(store.update_order(&changed, vec![ev]).await, "update_order");
    assert_eq!(ok(store.get_order(&o1.id).await, "get_order"), changed);
    assert_eq!(
        event_types_of(&store, o1.id.as_str()).await,
        ["order.created", "order.updated"]
    );
}

/// Insert, get, update and list subscriptions.
pub async fn subscriptions_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");
    let s1 = subscription(&a, 1);
    let s2 = subscription(&a, 2);
    let s3 = subscription(&b, 3);
    for s in [&s1, &s2, &s3] {
        let ev = system_event(
            "subscription.created",
            "subscription",
            s.id.as_str(),
            s.created_at,
        );
        ok(
            store.insert_subscription(s, vec![ev]).await,
            "insert_subscription",
        );
    }
    assert_eq!(
        ok(store.get_subscription(&s1.id).await, "get_subscription"),
        s1
    );
    assert_eq!(
        ok(
            store.list_subscriptions(&a.id, Limit::default()).await,
            "list_subscriptions"
        ),
        vec![s2.clone(), s1.clone()],
        "subscriptions of a product, newest first, other products' excluded"
    );
    let mut changed = s1.clone();
    changed.status = SubscriptionStatus::Canceled;
    changed.cancel_at_period_end = true;
    changed.canceled_at = Some(at(31));
    changed.updated_at = at(31);
    let ev = system_event(
        "subscription.updated",
        "subscription",
        s1.id.as_str(),
        at(31),
    );
    ok(
        store.update_subscription(&changed, vec![ev]).await,
        "update_subscription",
    );
    assert_eq!(
        ok(store.get_subscription(&s1.id).await, "get_subscription"),
        changed
    );
    assert_eq!(
        event_types_of(&store, s1.id.as_str()).await,
        ["subscription.created", "subscription.updated"]
    );
}

/// (external_system, external_id) is unique per product for orders and for subscriptions.
pub async fn external_ids_are_unique_per_product_and_kind<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let a = product(1);
    let b = product(2);
    ok(store.insert_product(&a, vec![]).await, "insert_product");
    ok(store.insert_product(&b, vec![]).await, "insert_product");

    let o1 = order(&a, 1);
    ok(store.insert_order(&o1, vec![]).await, "insert_order");
    let mut dup = order(&a, 2);
    dup.external_id = o1.external_id.clone();
    expect_already_exists(
        store.insert_order(&dup, vec![]).await,
        "insert_order with an external id the product already has",
    );
    expect_not_found(
        store.get_order(&dup.id).await,
        "get_order of a refused insert",
    );
    let mut other_system = order(&a, 3);
    other_system.external_id = o1.external_id.clone();
    other_system.external_system = "another-shop".into();
    ok(
        store.insert_order(&other_system, vec![]).await,
        "insert_order with the same external id in another system",
    );
    let mut elsewhere = order(&b, 4);
    elsewhere.external_id = o1.external_id.clone();
    ok(
        store.insert_order(&elsewhere, vec![]).await,
        "insert_order with the same external id on another product",
    );

    let s1 = subscription(&a, 1);
    ok(
        store.insert_subscription(&s1, vec![]).await,
        "insert_subscription",
    );
    let mut dup = subscription(&a, 2);
    dup.external_id = s1.external_id.clone();
    expect_already_exists(
        store.insert_subscription(&dup, vec![]).await,
        "insert_subscription with an external id the product already has",
    );
    let mut elsewhere = subscription(&b, 3);
    elsewhere.external_id = s1.external_id.clone();
    ok(
        store.insert_subscription(&elsewhere, vec![]).await,
        "insert_subscription with the same external id on another product",
    );
    // The kinds are separate: a subscription may share an order's external reference.
    let mut same_as_order = subscription(&a, 4);
    same_as_order.external_system = o1.external_system.clone();
    same_as_order.external_id = o1.external_id.clone();
    ok(
        store.insert_subscription(&same_as_order, vec![]).await,
        "insert_subscription with an order's external reference",
    );
}

/// Get and update of missing orders and subscriptions are `NotFound`.
pub async fn missing_orders_and_subscriptions_are_not_found<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let p = product(1);
    ok(store.insert_product(&p, vec![]).await, "insert_product");
    let o = order(&p, 1);
    let s = subscription(&p, 1);
    expect_not_found(store.get_order(&o.id).await, "get_order");
    expect_not_found(store.update_order(&o, vec![]).await, "update_order");
    expect_not_found(store.get_subscription(&s.id).await, "get_subscription");
    expect_not_found(
        store.update_subscription(&s, vec![]).await,
        "update_subscription",
    );
    assert!(
        ok(
            store.list_orders(&p.id, Limit::default()).await,
            "list_orders"
        )
        .is_empty(),
        "an update of a missing order creates nothing"
    );
    assert!(
        ok(
            store.list_subscriptions(&p.id, Limit::default()).await,
            "list_subscriptions"
        )
        .is_empty(),
        "an update of a missing subscription creates nothing"
    );
}
