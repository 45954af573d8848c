//! [`CatalogStore`]: products, versions, policies, features and custom field definitions.

use std::collections::hash_map::Entry;

use licentia_core::model::{
    CustomFieldDefinition, CustomFieldId, Feature, FeatureCode, FeatureId, LicenseTemplate, Policy,
    PolicyId, Product, ProductId, ProductVersion, TemplateId,
};
use licentia_core::rules::version::{self, release_order};
use licentia_core::store::{CatalogStore, Limit, NewEvent, StoreError, StoreResult};

use crate::MemoryStore;
use crate::state::{Catalog, newest_first, page};

impl Catalog {
    fn policy_code_taken(&self, p: &Policy) -> bool {
        self.policies
            .values()
            .any(|x| x.id != p.id && x.product_id == p.product_id && x.code == p.code)
    }

    fn feature_code_taken(&self, f: &Feature) -> bool {
        self.features
            .values()
            .any(|x| x.id != f.id && x.product_id == f.product_id && x.code == f.code)
    }

    fn custom_field_code_taken(&self, d: &CustomFieldDefinition) -> bool {
        self.custom_fields.values().any(|x| {
            x.id != d.id
                && x.product_id == d.product_id
                && x.resource_type == d.resource_type
                && x.code == d.code
        })
    }

    fn remove_custom_field(&mut self, id: &CustomFieldId) {
        self.custom_fields.remove(id);
        self.custom_values.retain(|_, values| {
            values.remove(id);
            !values.is_empty()
        });
    }
}

impl CatalogStore for MemoryStore {
    async fn insert_product(&self, p: &Product, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        if cat.products.contains_key(&p.id) {
            return Err(StoreError::already_exists("product", "id"));
        }
        if cat.product_codes.contains_key(&p.code) {
            return Err(StoreError::already_exists("product", "code"));
        }
        cat.product_codes.insert(p.code.clone(), p.id.clone());
        cat.products.insert(p.id.clone(), p.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_product(&self, id: &ProductId) -> StoreResult<Product> {
        self.inner.catalog.read().require_product(id).cloned()
    }

    async fn update_product(&self, p: &Product, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let old_code = cat.require_product(&p.id)?.code.clone();
        if old_code != p.code {
            if cat.product_codes.contains_key(&p.code) {
                return Err(StoreError::already_exists("product", "code"));
            }
            cat.product_codes.remove(&old_code);
            cat.product_codes.insert(p.code.clone(), p.id.clone());
        }
        cat.products.insert(p.id.clone(), p.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn delete_product(&self, id: &ProductId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let code = cat.require_product(id)?.code.clone();
        if cat.policies.values().any(|p| &p.product_id == id) {
            return Err(StoreError::Conflict {
                reason: "the product still has policies",
            });
        }
        if cat.features.values().any(|f| &f.product_id == id) {
            return Err(StoreError::Conflict {
                reason: "the product still has features",
            });
        }
        if cat.templates.values().any(|t| &t.product_id == id) {
            return Err(StoreError::Conflict {
                reason: "the product still has license templates",
            });
        }
        if cat.artifacts.values().any(|a| &a.product_id == id) {
            return Err(StoreError::Conflict {
                reason: "artifacts still reference it",
            });
        }
        if cat.orders.values().any(|o| &o.product_id == id)
            || cat.subscriptions.values().any(|s| &s.product_id == id)
        {
            return Err(StoreError::Conflict {
                reason: "orders or subscriptions still reference the product",
            });
        }
        if self.inner.licenses.read().any(|l| &l.product_id == id) {
            return Err(StoreError::Conflict {
                reason: "the product still has licenses",
            });
        }
        // Versions and custom field definitions (with their values) go with the product.
        if let Some(versions) = cat.versions.remove(id) {
            for v in versions {
                cat.version_ids.remove(&v.id);
            }
        }
        cat.version_lookup.remove(id);
        let fields: Vec<CustomFieldId> = cat
            .custom_fields
            .values()
            .filter(|d| &d.product_id == id)
            .map(|d| d.id.clone())
            .collect();
        for f in &fields {
            cat.remove_custom_field(f);
        }
        cat.product_codes.remove(&code);
        cat.products.remove(id);
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_products(&self, limit: Limit) -> StoreResult<Vec<Product>> {
        let cat = self.inner.catalog.read();
        Ok(page(
            cat.products.values(),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn insert_version(&self, v: &ProductVersion, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_product(&v.product_id)?;
        if cat.version_ids.contains_key(&v.id) {
            return Err(StoreError::already_exists("product_version", "id"));
        }
        let versions = cat.versions.entry(v.product_id.clone()).or_default();
        if versions.iter().any(|x| x.version == v.version) {
            return Err(StoreError::already_exists("product_version", "version"));
        }
        let at = versions.partition_point(|x| release_order(x, v).is_lt());
        versions.insert(at, v.clone());
        cat.version_ids.insert(v.id.clone(), v.product_id.clone());
        // Versions that are not semver are never found by a lookup, as in the catalog scan.
        if let Ok(parsed) = semver::Version::parse(&v.version) {
            let lookup = cat.version_lookup.entry(v.product_id.clone()).or_default();
            match lookup.entry(version::precedence_key(&parsed)) {
                Entry::Vacant(e) => {
                    e.insert(v.clone());
                }
                Entry::Occupied(mut e) => {
                    if release_order(v, e.get()).is_lt() {
                        e.insert(v.clone());
                    }
                }
            }
        }
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_version(
        &self,
        id: &licentia_core::model::ProductVersionId,
    ) -> StoreResult<ProductVersion> {
        let cat = self.inner.catalog.read();
        cat.version_ids
            .get(id)
            .and_then(|product| cat.versions.get(product))
            .and_then(|vs| vs.iter().find(|v| &v.id == id))
            .cloned()
            .ok_or(StoreError::not_found("product_version"))
    }

    async fn list_versions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<ProductVersion>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(cat
            .versions
            .get(product)
            .map(|vs| vs.iter().take(limit.as_usize()).cloned().collect())
            .unwrap_or_default())
    }

    async fn insert_policy(&self, p: &Policy, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_product(&p.product_id)?;
        if cat.policies.contains_key(&p.id) {
            return Err(StoreError::already_exists("policy", "id"));
        }
        if cat.policy_code_taken(p) {
            return Err(StoreError::already_exists("policy", "code"));
        }
        cat.policies.insert(p.id.clone(), p.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_policy(&self, id: &PolicyId) -> StoreResult<Policy> {
        self.inner.catalog.read().require_policy(id).cloned()
    }

    async fn update_policy(&self, p: &Policy, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let old = cat.require_policy(&p.id)?;
        if old.product_id != p.product_id {
            cat.require_product(&p.product_id)?;
        }
        if cat.policy_code_taken(p) {
            return Err(StoreError::already_exists("policy", "code"));
        }
        cat.policies.insert(p.id.clone(), p.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn delete_policy(&self, id: &PolicyId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_policy(id)?;
        if self.inner.licenses.read().any(|l| &l.policy_id == id) {
            return Err(StoreError::Conflict {
                reason: "licenses still use the policy",
            });
        }
        if cat.templates.values().any(|t| &t.policy_id == id) {
            return Err(StoreError::Conflict {
                reason: "license templates still use the policy",
            });
        }
        if cat.contracts.values().any(|c| &c.policy_id == id) {
            return Err(StoreError::Conflict {
                reason: "contracts still use the policy",
            });
        }
        cat.policies.remove(id);
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_policies(&self, product: &ProductId, limit: Limit) -> StoreResult<Vec<Policy>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(page(
            cat.policies.values().filter(|p| &p.product_id == product),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn insert_template(&self, t: &LicenseTemplate, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_product(&t.product_id)?;
        cat.require_policy(&t.policy_id)?;
        if cat.templates.contains_key(&t.id) {
            return Err(StoreError::already_exists("license_template", "id"));
        }
        cat.templates.insert(t.id.clone(), t.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_template(&self, id: &TemplateId) -> StoreResult<LicenseTemplate> {
        self.inner
            .catalog
            .read()
            .templates
            .get(id)
            .cloned()
            .ok_or(StoreError::not_found("license_template"))
    }

    async fn update_template(&self, t: &LicenseTemplate, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        if !cat.templates.contains_key(&t.id) {
            return Err(StoreError::not_found("license_template"));
        }
        cat.require_product(&t.product_id)?;
        cat.require_policy(&t.policy_id)?;
        cat.templates.insert(t.id.clone(), t.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn delete_template(&self, id: &TemplateId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        if cat
            .contracts
            .values()
            .any(|c| c.template_id.as_ref() == Some(id))
        {
            return Err(StoreError::Conflict {
                reason: "contracts still use the license template",
            });
        }
        cat.templates
            .remove(id)
            .ok_or(StoreError::not_found("license_template"))?;
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_templates(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<LicenseTemplate>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(page(
            cat.templates.values().filter(|t| &t.product_id == product),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn insert_feature(&self, f: &Feature, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_product(&f.product_id)?;
        if cat.features.contains_key(&f.id) {
            return Err(StoreError::already_exists("feature", "id"));
        }
        if cat.feature_code_taken(f) {
            return Err(StoreError::already_exists("feature", "code"));
        }
        cat.features.insert(f.id.clone(), f.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_feature(&self, id: &FeatureId) -> StoreResult<Feature> {
        self.inner
            .catalog
            .read()
            .features
            .get(id)
            .cloned()
            .ok_or(StoreError::not_found("feature"))
    }

    async fn find_feature(&self, product: &ProductId, code: &FeatureCode) -> StoreResult<Feature> {
        self.inner
            .catalog
            .read()
            .features
            .values()
            .find(|f| &f.product_id == product && &f.code == code)
            .cloned()
            .ok_or(StoreError::not_found("feature"))
    }

    async fn list_features(&self, product: &ProductId, limit: Limit) -> StoreResult<Vec<Feature>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(page(
            cat.features.values().filter(|f| &f.product_id == product),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn insert_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_product(&d.product_id)?;
        if cat.custom_fields.contains_key(&d.id) {
            return Err(StoreError::already_exists("custom_field", "id"));
        }
        if cat.custom_field_code_taken(d) {
            return Err(StoreError::already_exists("custom_field", "code"));
        }
        cat.custom_fields.insert(d.id.clone(), d.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_custom_field(&self, id: &CustomFieldId) -> StoreResult<CustomFieldDefinition> {
        self.inner
            .catalog
            .read()
            .custom_fields
            .get(id)
            .cloned()
            .ok_or(StoreError::not_found("custom_field"))
    }

    async fn update_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let old = cat
            .custom_fields
            .get(&d.id)
            .ok_or(StoreError::not_found("custom_field"))?;
        if old.product_id != d.product_id {
            cat.require_product(&d.product_id)?;
        }
        if cat.custom_field_code_taken(d) {
            return Err(StoreError::already_exists("custom_field", "code"));
        }
        cat.custom_fields.insert(d.id.clone(), d.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn delete_custom_field(
        &self,
        id: &CustomFieldId,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        if !cat.custom_fields.contains_key(id) {
            return Err(StoreError::not_found("custom_field"));
        }
        if cat.custom_values.values().any(|v| v.contains_key(id)) {
            return Err(StoreError::Conflict {
                reason: "custom field values still use the definition",
            });
        }
        cat.remove_custom_field(id);
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_custom_fields(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> StoreResult<Vec<CustomFieldDefinition>> {
        let cat = self.inner.catalog.read();
        cat.require_product(product)?;
        Ok(page(
            cat.custom_fields
                .values()
                .filter(|d| &d.product_id == product),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }
}
