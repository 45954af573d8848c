//! [`CommerceStore`]: orders and subscriptions.

use licentia_core::model::{Order, OrderId, ProductId, Subscription, SubscriptionId};
use licentia_core::store::{CommerceStore, Limit, NewEvent, StoreResult};
use sqlx::types::Json;

use crate::PostgresStore;
use crate::error::map;
use crate::rows::{PRODUCT_EXISTS, one, page, require, touched};

impl CommerceStore for PostgresStore {
    async fn insert_order(&self, o: &Order, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO orders (id, product_id, customer_id, subscription_id, external_system, \
                                 external_id, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(o.id.as_str())
        .bind(o.product_id.as_str())
        .bind(o.customer_id.as_ref().map(|c| c.as_str()))
        .bind(o.subscription_id.as_ref().map(|s| s.as_str()))
        .bind(&o.external_system)
        .bind(&o.external_id)
        .bind(o.created_at)
        .bind(Json(o))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_order(&self, id: &OrderId) -> StoreResult<Order> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM orders WHERE id = $1",
            id.as_str(),
            "order",
        )
        .await
    }

    async fn update_order(&self, o: &Order, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE orders SET product_id = $2, customer_id = $3, subscription_id = $4, \
                               external_system = $5, external_id = $6, body = $7 \
             WHERE id = $1",
        )
        .bind(o.id.as_str())
        .bind(o.product_id.as_str())
        .bind(o.customer_id.as_ref().map(|c| c.as_str()))
        .bind(o.subscription_id.as_ref().map(|s| s.as_str()))
        .bind(&o.external_system)
        .bind(&o.external_id)
        .bind(Json(o))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        touched(done.rows_affected(), "order")?;
        self.commit(tx, events).await
    }

    async fn list_orders(&self, product: &ProductId, limit: Limit) -> StoreResult<Vec<Order>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        page(
            &mut conn,
            "SELECT body FROM orders WHERE product_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(product.as_str()),
            limit,
        )
        .await
    }

    async fn insert_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, product_id, customer_id, external_system, \
                                        external_id, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.id.as_str())
        .bind(s.product_id.as_str())
        .bind(s.customer_id.as_ref().map(|c| c.as_str()))
        .bind(&s.external_system)
        .bind(&s.external_id)
        .bind(s.created_at)
        .bind(Json(s))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> StoreResult<Subscription> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM subscriptions WHERE id = $1",
            id.as_str(),
            "subscription",
        )
        .await
    }

    async fn update_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE subscriptions SET product_id = $2, customer_id = $3, external_system = $4, \
                                      external_id = $5, body = $6 \
             WHERE id = $1",
        )
        .bind(s.id.as_str())
        .bind(s.product_id.as_str())
        .bind(s.customer_id.as_ref().map(|c| c.as_str()))
        .bind(&s.external_system)
        .bind(&s.external_id)
        .bind(Json(s))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        touched(done.rows_affected(), "subscription")?;
        self.commit(tx, events).await
    }

    async fn list_subscriptions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<Subscription>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        page(
            &mut conn,
            "SELECT body FROM subscriptions WHERE product_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(product.as_str()),
            limit,
        )
        .await
    }
}
