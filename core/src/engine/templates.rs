//! License templates (an extension): a product's policy plus a new license's defaults
//! ([`LicenseTemplate`]). Bulk creation names one (`template_id`); each license made from it
//! gets its feature assignments by the same rule as `POST /api/v1/licenses/{id}/features`.

use chrono::{DateTime, Duration, Utc};
use rand_core::CryptoRng;
use serde_json::json;

use super::catalog::{check_name, parse_id};
use super::customers::{custom_value, value_record};
use super::requests::CustomValueUpsert;
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{
    CustomFieldDefinition, CustomFieldResourceType, CustomFieldValue, CustomValue, Feature,
    License, LicenseFeature, LicenseTemplate, LicenseTemplateFields, LicenseTerms, Policy,
    ProductId, TemplateId,
};
use crate::rules::{DenialCode, DomainEvent, LicenseAggregate, VersionCatalogView, lifecycle};
use crate::store::{Limit, Store};

/// Longest template duration, in days (100 years).
pub const MAX_TEMPLATE_DAYS: u32 = 36_500;

/// A new license made from a template: the license with its assignments applied, the
/// assignments, and their events.
pub(super) type FromTemplate = (License, Vec<LicenseFeature>, Vec<DomainEvent>);

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Creates a template on product `product`.
    ///
    /// # Errors
    ///
    /// `INVALID_FIELD` for a missing name or policy, a duration over [`MAX_TEMPLATE_DAYS`], a
    /// feature named twice or an assignment the feature rule refuses; `CROSS_PRODUCT_LINK` for
    /// a policy or feature of another product; `NotFound` product, policy or feature.
    pub async fn create_template(
        &self,
        actor: &Actor,
        product: &str,
        req: LicenseTemplateFields,
    ) -> Result<LicenseTemplate, EngineError> {
        let product = self
            .store
            .get_product(&parse_id(product, "product")?)
            .await?;
        let now = self.now();
        let policy_id = req
            .policy_id
            .as_deref()
            .ok_or_else(|| EngineError::invalid("policy_id", "policy_id is required"))?;
        let mut t = LicenseTemplate {
            id: self.with_rng(|r| TemplateId::generate(r)),
            product_id: product.id,
            name: check_name("name", req.name.as_deref().unwrap_or_default())?,
            policy_id: parse_id(policy_id, "policy")?,
            duration_days: None,
            features: Vec::new(),
            metadata: req.metadata.clone().unwrap_or_default(),
            custom_fields: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.fill_template(&mut t, req, now).await?;
        let e = DomainEvent::new(
            "license_template.created",
            "license_template",
            t.id.as_str(),
            [("product_id", json!(t.product_id))],
        );
        self.store
            .insert_template(&t, vec![actor.event(e, now)])
            .await?;
        Ok(t)
    }

    /// The template `id` of product `product`.
    ///
    /// # Errors
    ///
    /// `NotFound` (also for a template of another product).
    pub async fn get_template(
        &self,
        product: &str,
        id: &str,
    ) -> Result<LicenseTemplate, EngineError> {
        let product: ProductId = parse_id(product, "product")?;
        match self
            .store
            .get_template(&parse_id(id, "license_template")?)
            .await?
        {
            t if t.product_id == product => Ok(t),
            _ => Err(EngineError::NotFound {
                entity: "license_template",
            }),
        }
    }

    /// A product's templates, newest first.
    ///
    /// # Errors
    ///
    /// `NotFound` product.
    pub async fn list_templates(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<LicenseTemplate>, EngineError> {
        Ok(self
            .store
            .list_templates(&parse_id(product, "product")?, limit)
            .await?)
    }

    /// Updates a template: each member given replaces the template's (`duration_days: 0`
    /// removes the duration). Licenses made from it before are not changed.
    ///
    /// # Errors
    ///
    /// As [`Self::create_template`].
    pub async fn update_template(
        &self,
        actor: &Actor,
        product: &str,
        id: &str,
        req: LicenseTemplateFields,
    ) -> Result<LicenseTemplate, EngineError> {
        let mut t = self.get_template(product, id).await?;
        let now = self.now();
        if let Some(name) = &req.name {
            t.name = check_name("name", name)?;
        }
        if let Some(policy) = &req.policy_id {
            t.policy_id = parse_id(policy, "policy")?;
        }
        if let Some(m) = &req.metadata {
            t.metadata = m.clone();
        }
        t.updated_at = now;
        self.fill_template(&mut t, req, now).await?;
        let e = DomainEvent::new(
            "license_template.updated",
            "license_template",
            t.id.as_str(),
            [],
        );
        self.store
            .update_template(&t, vec![actor.event(e, now)])
            .await?;
        Ok(t)
    }

    /// Deletes a template (licenses made from it stay as they are).
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub async fn delete_template(
        &self,
        actor: &Actor,
        product: &str,
        id: &str,
    ) -> Result<(), EngineError> {
        let t = self.get_template(product, id).await?;
        let now = self.now();
        let e = DomainEvent::new(
            "license_template.deleted",
            "license_template",
            t.id.as_str(),
            [],
        );
        Ok(self
            .store
            .delete_template(&t.id, vec![actor.event(e, now)])
            .await?)
    }

    /// Sets the duration and features `req` gives and checks the whole template: its policy
    /// and features are the product's, and a license made from it now would be admitted.
    async fn fill_template(
        &self,
        t: &mut LicenseTemplate,
        req: LicenseTemplateFields,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        match req.duration_days {
            Some(0) => t.duration_days = None,
            Some(d) if d > MAX_TEMPLATE_DAYS => {
                return Err(EngineError::invalid(
                    "duration_days",
                    format!("duration_days must be at most {MAX_TEMPLATE_DAYS}"),
                ));
            }
            Some(d) => t.duration_days = Some(d),
            None => {}
        }
        if let Some(features) = req.features {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = features.iter().find(|f| !seen.insert(f.feature_id.clone())) {
                return Err(EngineError::invalid(
                    "features",
                    format!("feature {} is named twice", dup.feature_id),
                ));
            }
            t.features = features;
        }
        if let Some(values) = req.custom_fields {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = values.iter().find(|v| !seen.insert(v.field_id.clone())) {
                return Err(EngineError::invalid(
                    "custom_fields",
                    format!("custom field {} is named twice", dup.field_id),
                ));
            }
            t.custom_fields = values;
        }
        let TemplateParts {
            policy, features, ..
        } = self.template_parts(t).await?;
        // A license made from it now, to refuse a template that could make none (a request
        // for a type that must expire names its expiry when the template has no duration).
        let expires_at = Self::template_expiry(t, now).or_else(|| {
            policy
                .license_type
                .requires_expiry()
                .then(|| now + Duration::days(1))
        });
        let terms = LicenseTerms {
            expires_at,
            ..LicenseTerms::default()
        };
        let (preview, _) = self.new_license(t.product_id.clone(), &policy, terms, now)?;
        apply_template(t, &policy, &features, preview.outcome, now).map(|_| ())
    }

    /// The template's policy, features and custom field values, checked to be its
    /// product's (and each value to be one its definition takes).
    pub(super) async fn template_parts(
        &self,
        t: &LicenseTemplate,
    ) -> Result<TemplateParts, EngineError> {
        let cross = |what: &str| {
            EngineError::denied(
                DenialCode::CrossProductLink,
                None,
                format!("the {what} belongs to another product"),
            )
        };
        let policy = self.store.get_policy(&t.policy_id).await?;
        if policy.product_id != t.product_id {
            return Err(cross("policy"));
        }
        let mut features = Vec::with_capacity(t.features.len());
        for f in &t.features {
            let feature = self.store.get_feature(&f.feature_id).await?;
            if feature.product_id != t.product_id {
                return Err(cross("feature"));
            }
            features.push(feature);
        }
        let mut custom = Vec::with_capacity(t.custom_fields.len());
        for v in &t.custom_fields {
            let d = self.store.get_custom_field(&v.field_id).await?;
            if d.product_id != t.product_id {
                return Err(cross("custom field"));
            }
            if d.resource_type != CustomFieldResourceType::License {
                return Err(EngineError::invalid(
                    "custom_fields",
                    format!("custom field {} is not a license field", d.id),
                ));
            }
            let upsert = CustomValueUpsert {
                clear: None,
                string_value: v.string_value.clone(),
                integer_value: v.integer_value,
                boolean_value: v.boolean_value,
                datetime_value: v.datetime_value,
                enum_value: v.enum_value.clone(),
            };
            // Exactly one value is given (`clear` is not), so there is one.
            if let Some(value) = custom_value(&d, upsert)? {
                custom.push((d, value));
            }
        }
        Ok(TemplateParts {
            policy,
            features,
            custom,
        })
    }

    /// When a license made from `t` at `now` expires unless the request says.
    pub(super) fn template_expiry(
        t: &LicenseTemplate,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        t.duration_days
            .and_then(|d| now.checked_add_signed(Duration::days(i64::from(d))))
    }
}

/// What a template's licenses are made of, loaded and checked.
pub(super) struct TemplateParts {
    pub(super) policy: Policy,
    pub(super) features: Vec<Feature>,
    /// Each custom field value with its definition.
    pub(super) custom: Vec<(CustomFieldDefinition, CustomValue)>,
}

impl TemplateParts {
    /// The template's custom field values on `license`, with a `custom_field_value.set`
    /// event each (as setting them one by one would append).
    pub(super) fn values_for(
        &self,
        license: &License,
        now: DateTime<Utc>,
    ) -> (Vec<CustomFieldValue>, Vec<DomainEvent>) {
        self.custom
            .iter()
            .map(|(d, v)| {
                let record = value_record(d, license.id.as_str(), v.clone(), now);
                let e = DomainEvent::new(
                    "custom_field_value.set",
                    CustomFieldResourceType::License.as_str(),
                    license.id.as_str(),
                    [("code", json!(d.code))],
                );
                (record, e)
            })
            .unzip()
    }
}

/// `license` (new, under `policy`) with the template's assignments applied by the
/// feature rule.
pub(super) fn apply_template(
    t: &LicenseTemplate,
    policy: &Policy,
    features: &[Feature],
    license: License,
    now: DateTime<Utc>,
) -> Result<FromTemplate, EngineError> {
    let mut agg = LicenseAggregate {
        license,
        policy: policy.clone(),
        devices: Vec::new(),
        features: Vec::new(),
        leases: Vec::new(),
        versions: VersionCatalogView::default(),
        consumption: None,
    };
    let mut events = Vec::new();
    for (req, feature) in t.features.iter().zip(features) {
        let plan = lifecycle::assign_feature(&agg, feature, req, now)?;
        agg.apply(&plan.mutations);
        events.extend(plan.events.into_iter().map(|e| e.about(&agg.license)));
    }
    Ok((agg.license, agg.features, events))
}
