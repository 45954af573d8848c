//! [`CustomerStore`]: customers and custom field values.

use licentia_core::model::{
    CustomFieldDefinition, CustomFieldId, CustomFieldResourceType, CustomFieldValue, Customer,
    CustomerId,
};
use licentia_core::store::{CustomerStore, Limit, NewEvent, StoreResult};
use sqlx::types::Json;

use crate::PostgresStore;
use crate::error::{map, map_delete};
use crate::rows::{one, page, touched};

impl CustomerStore for PostgresStore {
    async fn insert_customer(&self, c: &Customer, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO customers (id, code, created_at, body) VALUES ($1, $2, $3, $4)")
            .bind(c.id.as_str())
            .bind(c.code.as_str())
            .bind(c.created_at)
            .bind(Json(c))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_customer(&self, id: &CustomerId) -> StoreResult<Customer> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM customers WHERE id = $1",
            id.as_str(),
            "customer",
        )
        .await
    }

    async fn update_customer(&self, c: &Customer, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE customers SET code = $2, body = $3 WHERE id = $1")
            .bind(c.id.as_str())
            .bind(c.code.as_str())
            .bind(Json(c))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        touched(done.rows_affected(), "customer")?;
        self.commit(tx, events).await
    }

    async fn delete_customer(&self, id: &CustomerId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Licenses, orders and subscriptions that name the customer refuse the delete.
        let done = sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_delete)?;
        touched(done.rows_affected(), "customer")?;
        // Its custom field values go with it.
        sqlx::query(
            "DELETE FROM custom_values v USING custom_fields d \
             WHERE v.definition_id = d.id AND v.resource_id = $1 AND d.resource_type = $2",
        )
        .bind(id.as_str())
        .bind(CustomFieldResourceType::Customer.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn list_customers(&self, limit: Limit) -> StoreResult<Vec<Customer>> {
        let mut conn = self.conn().await?;
        page(
            &mut conn,
            "SELECT body FROM customers WHERE $1::text IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            None,
            limit,
        )
        .await
    }

    async fn put_custom_value(
        &self,
        definition: &CustomFieldId,
        resource_id: &str,
        value: Option<&CustomFieldValue>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Lock the definition so a concurrent delete cannot leave a value behind it.
        let def: CustomFieldDefinition = one(
            &mut tx,
            "SELECT body FROM custom_fields WHERE id = $1 FOR SHARE",
            definition.as_str(),
            "custom_field",
        )
        .await?;
        match value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO custom_values (definition_id, resource_id, body) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (resource_id, definition_id) DO UPDATE SET body = EXCLUDED.body",
                )
                .bind(definition.as_str())
                .bind(resource_id)
                .bind(Json(v.joined_with(&def, resource_id)))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM custom_values WHERE definition_id = $1 AND resource_id = $2",
                )
                .bind(definition.as_str())
                .bind(resource_id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
        }
        self.commit(tx, events).await
    }

    async fn list_custom_values(
        &self,
        resource_type: CustomFieldResourceType,
        resource_id: &str,
        limit: Limit,
    ) -> StoreResult<Vec<CustomFieldValue>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(Json<CustomFieldValue>, Json<CustomFieldDefinition>)> = sqlx::query_as(
            "SELECT v.body, d.body FROM custom_values v \
             JOIN custom_fields d ON d.id = v.definition_id \
             WHERE v.resource_id = $1 AND d.resource_type = $2 \
             ORDER BY d.code, d.id LIMIT $3",
        )
        .bind(resource_id)
        .bind(resource_type.as_str())
        .bind(i64::from(limit.get()))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        Ok(rows
            .into_iter()
            .map(|(v, d)| v.0.joined_with(&d.0, resource_id))
            .collect())
    }
}
