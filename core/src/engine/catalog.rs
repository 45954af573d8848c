//! Products, versions, policies and features.

use rand_core::CryptoRng;
use serde_json::json;

use super::requests::{FeatureCreate, ProductCreate, ProductUpdate, VersionCreate};
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{
    Feature, FeatureCode, FeatureId, Policy, PolicyDraft, PolicyId, Product, ProductCode,
    ProductId, ProductVersion, ProductVersionId, Signing,
};
use crate::rules::{DomainEvent, policy, version};
use crate::store::{Limit, Store};

/// Longest accepted name, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// Parses an id from a path or body; one that cannot be valid names nothing that exists.
pub(crate) fn parse_id<T: std::str::FromStr>(
    raw: &str,
    entity: &'static str,
) -> Result<T, EngineError> {
    raw.parse().map_err(|_| EngineError::NotFound { entity })
}

/// Parses a code; a malformed one is invalid input.
pub(crate) fn parse_code<T: std::str::FromStr<Err = crate::model::CodeError>>(
    raw: &str,
) -> Result<T, EngineError> {
    raw.parse()
        .map_err(|e: crate::model::CodeError| EngineError::invalid("code", e.to_string()))
}

/// Checks a display name.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<String, EngineError> {
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_NAME_LEN
        || trimmed.chars().any(char::is_control)
    {
        return Err(EngineError::invalid(
            field,
            format!("{field} must be 1 to {MAX_NAME_LEN} characters without control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Creates a product; with `signing: product` it gets a key ring of its own, made right
    /// after the product (should that fail, the product exists and signs with the global
    /// ring until an update asks again).
    ///
    /// # Errors
    ///
    /// Invalid name or code; `AlreadyExists` when the code is taken; storage failures.
    pub async fn create_product(
        &self,
        actor: &Actor,
        req: ProductCreate,
    ) -> Result<Product, EngineError> {
        let now = self.now();
        let product = Product {
            id: self.with_rng(|r| ProductId::generate(r)),
            name: check_name("name", &req.name)?,
            code: parse_code::<ProductCode>(&req.code)?,
            metadata: req.metadata.unwrap_or_default(),
            signing: req.signing.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "product.created",
            "product",
            product.id.as_str(),
            [("code", json!(product.code))],
        );
        self.store
            .insert_product(&product, vec![actor.event(e, now)])
            .await?;
        self.set_signing(actor, &product.id, product.signing)
            .await?;
        Ok(self.present(product))
    }

    /// A product as this engine signs for it: `signing` is the ring that signs its answers
    /// now, whatever was last asked for.
    fn present(&self, mut product: Product) -> Product {
        product.signing = self.signing_of(&product.id);
        product
    }

    /// The product with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_product(&self, id: &str) -> Result<Product, EngineError> {
        let product = self.store.get_product(&parse_id(id, "product")?).await?;
        Ok(self.present(product))
    }

    /// Products, newest first.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_products(&self, limit: Limit) -> Result<Vec<Product>, EngineError> {
        let products = self.store.list_products(limit).await?;
        Ok(products.into_iter().map(|p| self.present(p)).collect())
    }

    /// Updates a product's name, code or metadata, and switches its signing ring when
    /// `signing` asks (after the record is written; a failure there is retried by asking
    /// again).
    ///
    /// # Errors
    ///
    /// As [`Self::create_product`], plus `NotFound`; `Conflict` when another instance changed
    /// the product's keys meanwhile.
    pub async fn update_product(
        &self,
        actor: &Actor,
        id: &str,
        req: ProductUpdate,
    ) -> Result<Product, EngineError> {
        let mut product = self.get_product(id).await?;
        let now = self.now();
        if let Some(name) = &req.name {
            product.name = check_name("name", name)?;
        }
        if let Some(code) = &req.code {
            product.code = parse_code(code)?;
        }
        if let Some(m) = req.metadata {
            product.metadata = m;
        }
        if let Some(signing) = req.signing {
            product.signing = signing;
        }
        product.updated_at = now;
        let e = DomainEvent::new("product.updated", "product", product.id.as_str(), []);
        self.store
            .update_product(&product, vec![actor.event(e, now)])
            .await?;
        self.set_signing(actor, &product.id, product.signing)
            .await?;
        Ok(self.present(product))
    }

    /// Deletes a product that nothing references.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` while policies, features or licenses use it, or while it signs
    /// with its own keys (switch it to the global ring first: its keys are then kept, retired,
    /// for what they signed).
    pub async fn delete_product(&self, actor: &Actor, id: &str) -> Result<(), EngineError> {
        let id: ProductId = parse_id(id, "product")?;
        if self.signing_of(&id) == Signing::Product {
            return Err(EngineError::Conflict(
                "the product signs with its own keys: set its signing to global first",
            ));
        }
        let now = self.now();
        let e = DomainEvent::new("product.deleted", "product", id.as_str(), []);
        Ok(self
            .store
            .delete_product(&id, vec![actor.event(e, now)])
            .await?)
    }

    /// Adds a version to a product's catalog (`released_at` defaults to now).
    ///
    /// # Errors
    ///
    /// `NotFound` product; a version that is not semver; `AlreadyExists`.
    pub async fn create_version(
        &self,
        actor: &Actor,
        product: &str,
        req: VersionCreate,
    ) -> Result<ProductVersion, EngineError> {
        let product = self.get_product(product).await?;
        let parsed = version::parse_app_version(&req.version).map_err(|_| {
            EngineError::invalid(
                "version",
                "version must be a semantic version such as 1.4.2",
            )
        })?;
        let now = self.now();
        let v = ProductVersion {
            id: self.with_rng(|r| ProductVersionId::generate(r)),
            product_id: product.id,
            version: parsed.to_string(),
            released_at: req.released_at.unwrap_or(now),
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "product_version.created",
            "product_version",
            v.id.as_str(),
            [("version", json!(v.version))],
        );
        self.store
            .insert_version(&v, vec![actor.event(e, now)])
            .await?;
        Ok(v)
    }

    /// A product's versions, newest release first.
    ///
    /// # Errors
    ///
    /// `NotFound` product, storage failures.
    pub async fn list_versions(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<ProductVersion>, EngineError> {
        let product = self.get_product(product).await?;
        Ok(self.store.list_versions(&product.id, limit).await?)
    }

    /// Creates a policy; omitted fields get the documented defaults ([`policy`]).
    ///
    /// # Errors
    ///
    /// `NotFound` product; every invalid field at once; `AlreadyExists` code.
    pub async fn create_policy(
        &self,
        actor: &Actor,
        product: &str,
        draft: PolicyDraft,
    ) -> Result<Policy, EngineError> {
        let product = self.get_product(product).await?;
        let now = self.now();
        let id = self.with_rng(|r| PolicyId::generate(r));
        let p = policy::build(id, product.id, None, &draft, now)?;
        let e = DomainEvent::new(
            "policy.created",
            "policy",
            p.id.as_str(),
            [
                ("code", json!(p.code)),
                ("license_type", json!(p.license_type)),
            ],
        );
        self.store
            .insert_policy(&p, vec![actor.event(e, now)])
            .await?;
        Ok(p)
    }

    /// The policy with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_policy(&self, id: &str) -> Result<Policy, EngineError> {
        Ok(self.store.get_policy(&parse_id(id, "policy")?).await?)
    }

    /// A product's policies.
    ///
    /// # Errors
    ///
    /// `NotFound` product, storage failures.
    pub async fn list_policies(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<Policy>, EngineError> {
        let product = self.get_product(product).await?;
        Ok(self.store.list_policies(&product.id, limit).await?)
    }

    /// Updates a policy. Licenses follow their policy, so the change applies to them at their
    /// next runtime call.
    ///
    /// # Errors
    ///
    /// As [`Self::create_policy`].
    pub async fn update_policy(
        &self,
        actor: &Actor,
        id: &str,
        draft: PolicyDraft,
    ) -> Result<Policy, EngineError> {
        let current = self.get_policy(id).await?;
        let now = self.now();
        let p = policy::build(
            current.id.clone(),
            current.product_id.clone(),
            Some(&current),
            &draft,
            now,
        )?;
        let e = DomainEvent::new("policy.updated", "policy", p.id.as_str(), []);
        self.store
            .update_policy(&p, vec![actor.event(e, now)])
            .await?;
        Ok(p)
    }

    /// Deletes a policy no license uses.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` while licenses use it.
    pub async fn delete_policy(&self, actor: &Actor, id: &str) -> Result<(), EngineError> {
        let id: PolicyId = parse_id(id, "policy")?;
        let now = self.now();
        let e = DomainEvent::new("policy.deleted", "policy", id.as_str(), []);
        Ok(self
            .store
            .delete_policy(&id, vec![actor.event(e, now)])
            .await?)
    }

    /// Creates a feature of a product.
    ///
    /// # Errors
    ///
    /// `NotFound` product; invalid name or code; `AlreadyExists` code within the product.
    pub async fn create_feature(
        &self,
        actor: &Actor,
        product: &str,
        req: FeatureCreate,
    ) -> Result<Feature, EngineError> {
        let product = self.get_product(product).await?;
        let now = self.now();
        let f = Feature {
            id: self.with_rng(|r| FeatureId::generate(r)),
            product_id: product.id,
            code: parse_code::<FeatureCode>(&req.code)?,
            name: check_name("name", &req.name)?,
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
        };
        let e = DomainEvent::new(
            "feature.created",
            "feature",
            f.id.as_str(),
            [("code", json!(f.code))],
        );
        self.store
            .insert_feature(&f, vec![actor.event(e, now)])
            .await?;
        Ok(f)
    }

    /// The feature with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_feature(&self, id: &str) -> Result<Feature, EngineError> {
        Ok(self.store.get_feature(&parse_id(id, "feature")?).await?)
    }

    /// A product's features.
    ///
    /// # Errors
    ///
    /// `NotFound` product, storage failures.
    pub async fn list_features(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<Feature>, EngineError> {
        let product = self.get_product(product).await?;
        Ok(self.store.list_features(&product.id, limit).await?)
    }
}
