//! Orders and subscriptions: records from a commerce or billing system that licenses link to.

use rand_core::CryptoRng;
use serde_json::json;

use super::catalog::parse_id;
use super::requests::{OrderFields, SubscriptionFields};
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{
    CustomerId, Order, OrderId, ProductId, Subscription, SubscriptionId, SubscriptionStatus,
};
use crate::rules::{DenialCode, DomainEvent};
use crate::store::{Limit, Store};

/// Longest `external_system` / `external_id`, in characters.
const MAX_EXTERNAL_LEN: usize = 200;

fn external(field: &'static str, v: Option<&str>) -> Result<String, EngineError> {
    match v.map(str::trim) {
        Some(s)
            if !s.is_empty()
                && s.chars().count() <= MAX_EXTERNAL_LEN
                && !s.chars().any(char::is_control) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(EngineError::invalid(
            field,
            format!("{field} must be 1 to {MAX_EXTERNAL_LEN} characters"),
        )),
    }
}

fn cross(field: &'static str) -> EngineError {
    EngineError::denied(
        DenialCode::CrossProductLink,
        Some(field),
        "it belongs to another product",
    )
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// A customer link from a request: `None` leaves it, `Some("")` clears it.
    async fn customer_link(
        &self,
        raw: Option<&str>,
    ) -> Result<Option<Option<CustomerId>>, EngineError> {
        match raw {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(id) => Ok(Some(Some(
                self.store
                    .get_customer(&parse_id(id, "customer")?)
                    .await?
                    .id,
            ))),
        }
    }

    /// A subscription link that must belong to `product`.
    async fn subscription_link(
        &self,
        product: &ProductId,
        raw: Option<&str>,
    ) -> Result<Option<Option<SubscriptionId>>, EngineError> {
        match raw {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(id) => {
                let s = self
                    .store
                    .get_subscription(&parse_id(id, "subscription")?)
                    .await?;
                if &s.product_id != product {
                    return Err(cross("subscription_id"));
                }
                Ok(Some(Some(s.id)))
            }
        }
    }

    /// Records an order of a product.
    ///
    /// # Errors
    ///
    /// `NotFound` product, customer or subscription; a subscription of another product;
    /// `period_start` without `period_end` (or after it); `AlreadyExists` external id.
    pub async fn create_order(
        &self,
        actor: &Actor,
        product: &str,
        req: OrderFields,
    ) -> Result<Order, EngineError> {
        let product = self.get_product(product).await?;
        let now = self.now();
        let status = req
            .status
            .ok_or_else(|| EngineError::invalid("status", "status is required"))?;
        check_period(req.period_start, req.period_end)?;
        let o = Order {
            id: self.with_rng(|r| OrderId::generate(r)),
            customer_id: self
                .customer_link(req.customer_id.as_deref())
                .await?
                .flatten(),
            subscription_id: self
                .subscription_link(&product.id, req.subscription_id.as_deref())
                .await?
                .flatten(),
            product_id: product.id,
            external_system: external("external_system", req.external_system.as_deref())?,
            external_id: external("external_id", req.external_id.as_deref())?,
            status,
            period_start: req.period_start,
            period_end: req.period_end,
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "order.created",
            "order",
            o.id.as_str(),
            [("status", json!(o.status))],
        );
        self.store
            .insert_order(&o, vec![actor.event(e, now)])
            .await?;
        Ok(o)
    }

    /// The order with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_order(&self, id: &str) -> Result<Order, EngineError> {
        Ok(self.store.get_order(&parse_id(id, "order")?).await?)
    }

    /// A product's orders.
    ///
    /// # Errors
    ///
    /// `NotFound` product, storage failures.
    pub async fn list_orders(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<Order>, EngineError> {
        let product = self.get_product(product).await?;
        Ok(self.store.list_orders(&product.id, limit).await?)
    }

    /// Updates an order; empty `customer_id` / `subscription_id` clear the links.
    ///
    /// # Errors
    ///
    /// As [`Self::create_order`].
    pub async fn update_order(
        &self,
        actor: &Actor,
        id: &str,
        req: OrderFields,
    ) -> Result<Order, EngineError> {
        let mut o = self.get_order(id).await?;
        let now = self.now();
        if let Some(c) = self.customer_link(req.customer_id.as_deref()).await? {
            o.customer_id = c;
        }
        if let Some(s) = self
            .subscription_link(&o.product_id, req.subscription_id.as_deref())
            .await?
        {
            o.subscription_id = s;
        }
        if req.external_system.is_some() {
            o.external_system = external("external_system", req.external_system.as_deref())?;
        }
        if req.external_id.is_some() {
            o.external_id = external("external_id", req.external_id.as_deref())?;
        }
        if let Some(s) = req.status {
            o.status = s;
        }
        if req.period_start.is_some() || req.period_end.is_some() {
            let (start, end) = (
                req.period_start.or(o.period_start),
                req.period_end.or(o.period_end),
            );
            check_period(start, end)?;
            (o.period_start, o.period_end) = (start, end);
        }
        if let Some(m) = req.metadata {
            o.metadata = m;
        }
        o.updated_at = now;
        let e = DomainEvent::new(
            "order.updated",
            "order",
            o.id.as_str(),
            [("status", json!(o.status))],
        );
        self.store
            .update_order(&o, vec![actor.event(e, now)])
            .await?;
        Ok(o)
    }

    /// Records a subscription of a product.
    ///
    /// # Errors
    ///
    /// `NotFound` product or customer; missing fields; a period that ends before it starts;
    /// `canceled_at` on a subscription that is not canceled; `AlreadyExists` external id.
    pub async fn create_subscription(
        &self,
        actor: &Actor,
        product: &str,
        req: SubscriptionFields,
    ) -> Result<Subscription, EngineError> {
        let product = self.get_product(product).await?;
        let now = self.now();
        let status = req
            .status
            .ok_or_else(|| EngineError::invalid("status", "status is required"))?;
        let start = req.current_period_start.ok_or_else(|| {
            EngineError::invalid("current_period_start", "current_period_start is required")
        })?;
        let end = req.current_period_end.ok_or_else(|| {
            EngineError::invalid("current_period_end", "current_period_end is required")
        })?;
        check_period(Some(start), Some(end))?;
        check_canceled(status, req.canceled_at)?;
        let s = Subscription {
            id: self.with_rng(|r| SubscriptionId::generate(r)),
            customer_id: self
                .customer_link(req.customer_id.as_deref())
                .await?
                .flatten(),
            product_id: product.id,
            external_system: external("external_system", req.external_system.as_deref())?,
            external_id: external("external_id", req.external_id.as_deref())?,
            status,
            current_period_start: start,
            current_period_end: end,
            cancel_at_period_end: req.cancel_at_period_end.unwrap_or(false),
            canceled_at: req.canceled_at,
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "subscription.created",
            "subscription",
            s.id.as_str(),
            [("status", json!(s.status))],
        );
        self.store
            .insert_subscription(&s, vec![actor.event(e, now)])
            .await?;
        Ok(s)
    }

    /// The subscription with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_subscription(&self, id: &str) -> Result<Subscription, EngineError> {
        Ok(self
            .store
            .get_subscription(&parse_id(id, "subscription")?)
            .await?)
    }

    /// A product's subscriptions.
    ///
    /// # Errors
    ///
    /// `NotFound` product, storage failures.
    pub async fn list_subscriptions(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<Subscription>, EngineError> {
        let product = self.get_product(product).await?;
        Ok(self.store.list_subscriptions(&product.id, limit).await?)
    }

    /// Updates a subscription; an empty `customer_id` clears the link.
    ///
    /// # Errors
    ///
    /// As [`Self::create_subscription`].
    pub async fn update_subscription(
        &self,
        actor: &Actor,
        id: &str,
        req: SubscriptionFields,
    ) -> Result<Subscription, EngineError> {
        let mut s = self.get_subscription(id).await?;
        let now = self.now();
        if let Some(c) = self.customer_link(req.customer_id.as_deref()).await? {
            s.customer_id = c;
        }
        if req.external_system.is_some() {
            s.external_system = external("external_system", req.external_system.as_deref())?;
        }
        if req.external_id.is_some() {
            s.external_id = external("external_id", req.external_id.as_deref())?;
        }
        if let Some(st) = req.status {
            s.status = st;
        }
        s.current_period_start = req.current_period_start.unwrap_or(s.current_period_start);
        s.current_period_end = req.current_period_end.unwrap_or(s.current_period_end);
        check_period(Some(s.current_period_start), Some(s.current_period_end))?;
        if let Some(c) = req.cancel_at_period_end {
            s.cancel_at_period_end = c;
        }
        if req.canceled_at.is_some() {
            s.canceled_at = req.canceled_at;
        }
        if s.status != SubscriptionStatus::Canceled && req.status.is_some() {
            // Leaving the canceled state drops the cancellation stamp.
            s.canceled_at = None;
        }
        check_canceled(s.status, s.canceled_at)?;
        if let Some(m) = req.metadata {
            s.metadata = m;
        }
        s.updated_at = now;
        let e = DomainEvent::new(
            "subscription.updated",
            "subscription",
            s.id.as_str(),
            [("status", json!(s.status))],
        );
        self.store
            .update_subscription(&s, vec![actor.event(e, now)])
            .await?;
        Ok(s)
    }
}

fn check_period(
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), EngineError> {
    match (start, end) {
        (None, None) => Ok(()),
        (Some(s), Some(e)) if s < e => Ok(()),
        (Some(_), Some(_)) => Err(EngineError::invalid(
            "period_end",
            "the period must end after it starts",
        )),
        _ => Err(EngineError::invalid(
            "period_start",
            "period start and end go together",
        )),
    }
}

fn check_canceled(
    status: SubscriptionStatus,
    canceled_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), EngineError> {
    if canceled_at.is_some() && status != SubscriptionStatus::Canceled {
        return Err(EngineError::invalid(
            "canceled_at",
            "canceled_at is allowed only when status is canceled",
        ));
    }
    Ok(())
}
