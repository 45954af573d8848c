//! [`ArtifactStore`]: artifacts kept with the catalog.

use licentia_core::model::{Artifact, ArtifactId, ProductVersionId};
use licentia_core::store::{ArtifactStore, NewEvent, StoreError, StoreResult};

use crate::MemoryStore;

impl ArtifactStore for MemoryStore {
    async fn insert_artifact(&self, a: &Artifact, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_product(&a.product_id)?;
        if cat.version_ids.get(&a.version_id) != Some(&a.product_id) {
            return Err(StoreError::not_found("product_version"));
        }
        if cat.artifacts.contains_key(&a.id) {
            return Err(StoreError::already_exists("artifact", "id"));
        }
        cat.artifacts.insert(a.id.clone(), a.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_artifact(&self, id: &ArtifactId) -> StoreResult<Artifact> {
        self.inner
            .catalog
            .read()
            .artifacts
            .get(id)
            .cloned()
            .ok_or(StoreError::not_found("artifact"))
    }

    async fn list_artifacts(&self, version: &ProductVersionId) -> StoreResult<Vec<Artifact>> {
        let cat = self.inner.catalog.read();
        let mut listed: Vec<Artifact> = cat
            .artifacts
            .values()
            .filter(|a| &a.version_id == version)
            .cloned()
            .collect();
        listed.sort_by(|a, b| {
            (&a.name, &a.platform, &a.arch, &a.id).cmp(&(&b.name, &b.platform, &b.arch, &b.id))
        });
        Ok(listed)
    }
}
