//! [`CatalogStore`]: products, versions, policies, features and custom field definitions.

use licentia_core::model::{
    CustomFieldDefinition, CustomFieldId, Feature, FeatureCode, FeatureId, LicenseTemplate, Policy,
    PolicyId, Product, ProductId, ProductVersion, TemplateId,
};
use licentia_core::rules::version::{precedence_key, release_order};
use licentia_core::store::{CatalogStore, Limit, NewEvent, StoreError, StoreResult};
use sqlx::types::Json;

use crate::PostgresStore;
use crate::error::{map, map_delete};
use crate::rows::{PRODUCT_EXISTS, one, page, require, touched};

/// The precedence column of a version string (the string itself when it is not semver, so
/// it matches nothing a client can ask for).
fn precedence(version: &str) -> String {
    semver::Version::parse(version)
        .map_or_else(|_| version.to_owned(), |v| precedence_key(&v).to_string())
}

impl CatalogStore for PostgresStore {
    async fn insert_product(&self, p: &Product, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO products (id, code, created_at, body) VALUES ($1, $2, $3, $4)")
            .bind(p.id.as_str())
            .bind(p.code.as_str())
            .bind(p.created_at)
            .bind(Json(p))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_product(&self, id: &ProductId) -> StoreResult<Product> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM products WHERE id = $1",
            id.as_str(),
            "product",
        )
        .await
    }

    async fn update_product(&self, p: &Product, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE products SET code = $2, body = $3 WHERE id = $1")
            .bind(p.id.as_str())
            .bind(p.code.as_str())
            .bind(Json(p))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        touched(done.rows_affected(), "product")?;
        self.commit(tx, events).await
    }

    async fn delete_product(&self, id: &ProductId, events: Vec<NewEvent>) -> StoreResult<()> {
        // Versions and custom field definitions (with their values) cascade; policies,
        // features, licenses, orders and subscriptions refuse the delete.
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM products WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_delete)?;
        touched(done.rows_affected(), "product")?;
        self.commit(tx, events).await
    }

    async fn list_products(&self, limit: Limit) -> StoreResult<Vec<Product>> {
        let mut conn = self.conn().await?;
        page(
            &mut conn,
            "SELECT body FROM products WHERE $1::text IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            None,
            limit,
        )
        .await
    }

    async fn insert_version(&self, v: &ProductVersion, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO product_versions (id, product_id, version, precedence, released_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(v.id.as_str())
        .bind(v.product_id.as_str())
        .bind(&v.version)
        .bind(precedence(&v.version))
        .bind(v.released_at)
        .bind(Json(v))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_version(
        &self,
        id: &licentia_core::model::ProductVersionId,
    ) -> StoreResult<ProductVersion> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM product_versions WHERE id = $1",
            id.as_str(),
            "product_version",
        )
        .await
    }

    async fn list_versions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<ProductVersion>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        // Release order breaks ties by semver precedence, which SQL cannot sort by: sort the
        // product's catalog here (management reads only; the hot path looks versions up by
        // index).
        let rows: Vec<Json<ProductVersion>> =
            sqlx::query_scalar("SELECT body FROM product_versions WHERE product_id = $1")
                .bind(product.as_str())
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
        let mut versions: Vec<ProductVersion> = rows.into_iter().map(|j| j.0).collect();
        versions.sort_unstable_by(release_order);
        versions.truncate(limit.as_usize());
        Ok(versions)
    }

    async fn insert_policy(&self, p: &Policy, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO policies (id, product_id, code, created_at, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id.as_str())
        .bind(p.product_id.as_str())
        .bind(p.code.as_str())
        .bind(p.created_at)
        .bind(Json(p))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_policy(&self, id: &PolicyId) -> StoreResult<Policy> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM policies WHERE id = $1",
            id.as_str(),
            "policy",
        )
        .await
    }

    async fn update_policy(&self, p: &Policy, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE policies SET product_id = $2, code = $3, body = $4 WHERE id = $1")
                .bind(p.id.as_str())
                .bind(p.product_id.as_str())
                .bind(p.code.as_str())
                .bind(Json(p))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        touched(done.rows_affected(), "policy")?;
        self.commit(tx, events).await
    }

    async fn delete_policy(&self, id: &PolicyId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM policies WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_delete)?;
        touched(done.rows_affected(), "policy")?;
        self.commit(tx, events).await
    }

    async fn list_policies(&self, product: &ProductId, limit: Limit) -> StoreResult<Vec<Policy>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        page(
            &mut conn,
            "SELECT body FROM policies WHERE product_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(product.as_str()),
            limit,
        )
        .await
    }

    async fn insert_template(&self, t: &LicenseTemplate, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO license_templates (id, product_id, policy_id, created_at, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.id.as_str())
        .bind(t.product_id.as_str())
        .bind(t.policy_id.as_str())
        .bind(t.created_at)
        .bind(Json(t))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_template(&self, id: &TemplateId) -> StoreResult<LicenseTemplate> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM license_templates WHERE id = $1",
            id.as_str(),
            "license_template",
        )
        .await
    }

    async fn update_template(&self, t: &LicenseTemplate, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE license_templates SET product_id = $2, policy_id = $3, body = $4 WHERE id = $1",
        )
        .bind(t.id.as_str())
        .bind(t.product_id.as_str())
        .bind(t.policy_id.as_str())
        .bind(Json(t))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        touched(done.rows_affected(), "license_template")?;
        self.commit(tx, events).await
    }

    async fn delete_template(&self, id: &TemplateId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM license_templates WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_delete)?;
        touched(done.rows_affected(), "license_template")?;
        self.commit(tx, events).await
    }

    async fn list_templates(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<LicenseTemplate>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        page(
            &mut conn,
            "SELECT body FROM license_templates WHERE product_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(product.as_str()),
            limit,
        )
        .await
    }

    async fn insert_feature(&self, f: &Feature, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO features (id, product_id, code, created_at, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(f.id.as_str())
        .bind(f.product_id.as_str())
        .bind(f.code.as_str())
        .bind(f.created_at)
        .bind(Json(f))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_feature(&self, id: &FeatureId) -> StoreResult<Feature> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM features WHERE id = $1",
            id.as_str(),
            "feature",
        )
        .await
    }

    async fn find_feature(&self, product: &ProductId, code: &FeatureCode) -> StoreResult<Feature> {
        let mut conn = self.conn().await?;
        sqlx::query_scalar::<_, Json<Feature>>(
            "SELECT body FROM features WHERE product_id = $1 AND code = $2",
        )
        .bind(product.as_str())
        .bind(code.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?
        .map(|j| j.0)
        .ok_or(licentia_core::store::StoreError::not_found("feature"))
    }

    async fn list_features(&self, product: &ProductId, limit: Limit) -> StoreResult<Vec<Feature>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        page(
            &mut conn,
            "SELECT body FROM features WHERE product_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(product.as_str()),
            limit,
        )
        .await
    }

    async fn insert_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO custom_fields (id, product_id, resource_type, code, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(d.id.as_str())
        .bind(d.product_id.as_str())
        .bind(d.resource_type.as_str())
        .bind(d.code.as_str())
        .bind(d.created_at)
        .bind(Json(d))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_custom_field(&self, id: &CustomFieldId) -> StoreResult<CustomFieldDefinition> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM custom_fields WHERE id = $1",
            id.as_str(),
            "custom_field",
        )
        .await
    }

    async fn update_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE custom_fields SET product_id = $2, resource_type = $3, code = $4, body = $5 \
             WHERE id = $1",
        )
        .bind(d.id.as_str())
        .bind(d.product_id.as_str())
        .bind(d.resource_type.as_str())
        .bind(d.code.as_str())
        .bind(Json(d))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        touched(done.rows_affected(), "custom_field")?;
        self.commit(tx, events).await
    }

    async fn delete_custom_field(
        &self,
        id: &CustomFieldId,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        // A definition with values is in use. Lock the definition row first (a value write
        // holds it FOR SHARE), then look for values in a new statement, whose snapshot sees
        // every value committed before the lock was granted.
        let mut tx = self.begin().await?;
        let locked: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM custom_fields WHERE id = $1 FOR UPDATE")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        if locked.is_none() {
            return Err(StoreError::not_found("custom_field"));
        }
        let in_use: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM custom_values WHERE definition_id = $1)",
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if in_use {
            return Err(StoreError::Conflict {
                reason: "custom field values still use the definition",
            });
        }
        let done = sqlx::query("DELETE FROM custom_fields WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_delete)?;
        touched(done.rows_affected(), "custom_field")?;
        self.commit(tx, events).await
    }

    async fn list_custom_fields(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<CustomFieldDefinition>> {
        let mut conn = self.conn().await?;
        require(&mut conn, PRODUCT_EXISTS, product.as_str(), "product").await?;
        page(
            &mut conn,
            "SELECT body FROM custom_fields WHERE product_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            Some(product.as_str()),
            limit,
        )
        .await
    }
}
