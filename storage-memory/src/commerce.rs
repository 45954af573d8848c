//! [`CommerceStore`]: orders and subscriptions.

use licentia_core::model::{Order, OrderId, ProductId, Subscription, SubscriptionId};
use licentia_core::store::{CommerceStore, Limit, NewEvent, StoreError, StoreResult};

use crate::MemoryStore;
use crate::state::{Catalog, ExternalRef, newest_first, page};

fn order_ref(o: &Order) -> ExternalRef {
    (
        o.product_id.clone(),
        o.external_system.clone(),
        o.external_id.clone(),
    )
}

fn subscription_ref(s: &Subscription) -> ExternalRef {
    (
        s.product_id.clone(),
        s.external_system.clone(),
        s.external_id.clone(),
    )
}

impl Catalog {
    fn check_order_refs(&self, o: &Order) -> StoreResult<()> {
        self.require_product(&o.product_id)?;
        if let Some(c) = &o.customer_id {
            self.require_customer(c)?;
        }
        if let Some(s) = &o.subscription_id {
            self.require_subscription(s)?;
        }
        Ok(())
    }

    fn check_subscription_refs(&self, s: &Subscription) -> StoreResult<()> {
        self.require_product(&s.product_id)?;
        if let Some(c) = &s.customer_id {
            self.require_customer(c)?;
        }
        Ok(())
    }
}

impl CommerceStore for MemoryStore {
    async fn insert_order(&self, o: &Order, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.check_order_refs(o)?;
        if cat.orders.contains_key(&o.id) {
            return Err(StoreError::already_exists("order", "id"));
        }
        let key = order_ref(o);
        if cat.order_refs.contains_key(&key) {
            return Err(StoreError::already_exists("order", "external_id"));
        }
        cat.order_refs.insert(key, o.id.clone());
        cat.orders.insert(o.id.clone(), o.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_order(&self, id: &OrderId) -> StoreResult<Order> {
        self.inner.catalog.read().require_order(id).cloned()
    }

    async fn update_order(&self, o: &Order, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let old_key = order_ref(cat.require_order(&o.id)?);
        cat.check_order_refs(o)?;
        let key = order_ref(o);
        if key != old_key {
            if cat.order_refs.contains_key(&key) {
                return Err(StoreError::already_exists("order", "external_id"));
            }
            cat.order_refs.remove(&old_key);
            cat.order_refs.insert(key, o.id.clone());
        }
        cat.orders.insert(o.id.clone(), o.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_orders(&self, product: &ProductId, limit: Limit) -> StoreResult<Vec<Order>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(page(
            cat.orders.values().filter(|o| &o.product_id == product),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn insert_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.check_subscription_refs(s)?;
        if cat.subscriptions.contains_key(&s.id) {
            return Err(StoreError::already_exists("subscription", "id"));
        }
        let key = subscription_ref(s);
        if cat.subscription_refs.contains_key(&key) {
            return Err(StoreError::already_exists("subscription", "external_id"));
        }
        cat.subscription_refs.insert(key, s.id.clone());
        cat.subscriptions.insert(s.id.clone(), s.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> StoreResult<Subscription> {
        self.inner.catalog.read().require_subscription(id).cloned()
    }

    async fn update_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let old_key = subscription_ref(cat.require_subscription(&s.id)?);
        cat.check_subscription_refs(s)?;
        let key = subscription_ref(s);
        if key != old_key {
            if cat.subscription_refs.contains_key(&key) {
                return Err(StoreError::already_exists("subscription", "external_id"));
            }
            cat.subscription_refs.remove(&old_key);
            cat.subscription_refs.insert(key, s.id.clone());
        }
        cat.subscriptions.insert(s.id.clone(), s.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_subscriptions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<Subscription>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(page(
            cat.subscriptions
                .values()
                .filter(|s| &s.product_id == product),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }
}
