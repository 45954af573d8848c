//! [`ArtifactStore`].

use licentia_core::model::{Artifact, ArtifactId, ProductVersionId};
use licentia_core::store::{ArtifactStore, NewEvent, StoreResult};
use sqlx::types::Json;

use crate::PostgresStore;
use crate::error::map;
use crate::rows::one;

impl ArtifactStore for PostgresStore {
    async fn insert_artifact(&self, a: &Artifact, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // The version must be the product's: the insert selects it, or inserts nothing.
        let done = sqlx::query(
            "INSERT INTO artifacts (id, product_id, version_id, created_at, body) \
             SELECT $1, $2, v.id, $4, $5 FROM product_versions v \
             WHERE v.id = $3 AND v.product_id = $2",
        )
        .bind(a.id.as_str())
        .bind(a.product_id.as_str())
        .bind(a.version_id.as_str())
        .bind(a.created_at)
        .bind(Json(a))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(licentia_core::store::StoreError::not_found(
                "product_version",
            ));
        }
        self.commit(tx, events).await
    }

    async fn get_artifact(&self, id: &ArtifactId) -> StoreResult<Artifact> {
        let mut conn = self.conn().await?;
        one(
            &mut conn,
            "SELECT body FROM artifacts WHERE id = $1",
            id.as_str(),
            "artifact",
        )
        .await
    }

    async fn list_artifacts(&self, version: &ProductVersionId) -> StoreResult<Vec<Artifact>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(Json<Artifact>,)> = sqlx::query_as(
            "SELECT body FROM artifacts WHERE version_id = $1 \
             ORDER BY body->>'name' COLLATE \"C\", \
                      body->>'platform' COLLATE \"C\" NULLS FIRST, \
                      body->>'arch' COLLATE \"C\" NULLS FIRST, id COLLATE \"C\"",
        )
        .bind(version.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        Ok(rows.into_iter().map(|(a,)| a.0).collect())
    }
}
