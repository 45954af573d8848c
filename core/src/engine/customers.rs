//! Customers, custom field definitions and their values.

use rand_core::CryptoRng;
use serde_json::json;

use super::catalog::{check_name, parse_code, parse_id};
use super::requests::{CustomFieldFields, CustomValueUpsert, CustomerFields};
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{
    CustomFieldCode, CustomFieldDefinition, CustomFieldId, CustomFieldResourceType,
    CustomFieldValue, CustomFieldValueType, CustomValue, Customer, CustomerCode, CustomerId,
    ProductId,
};
use crate::rules::DomainEvent;
use crate::store::{Limit, Store};

/// Longest accepted string custom value and enum option, in characters.
const MAX_VALUE_LEN: usize = 1024;

fn check_email(email: &str) -> Result<String, EngineError> {
    let e = email.trim();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !e.chars().any(char::is_whitespace);
    if ok {
        Ok(e.to_owned())
    } else {
        Err(EngineError::invalid(
            "email",
            "email must be an address like name@example.com",
        ))
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Creates a customer.
    ///
    /// # Errors
    ///
    /// Missing or invalid name, code or email; `AlreadyExists` code.
    pub async fn create_customer(
        &self,
        actor: &Actor,
        req: CustomerFields,
    ) -> Result<Customer, EngineError> {
        let now = self.now();
        let c = Customer {
            id: self.with_rng(|r| CustomerId::generate(r)),
            name: check_name("name", req.name.as_deref().unwrap_or_default())?,
            code: parse_code::<CustomerCode>(req.code.as_deref().unwrap_or_default())?,
            email: req.email.as_deref().map(check_email).transpose()?,
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "customer.created",
            "customer",
            c.id.as_str(),
            [("code", json!(c.code))],
        );
        self.store
            .insert_customer(&c, vec![actor.event(e, now)])
            .await?;
        Ok(c)
    }

    /// The customer with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_customer(&self, id: &str) -> Result<Customer, EngineError> {
        Ok(self.store.get_customer(&parse_id(id, "customer")?).await?)
    }

    /// Customers, newest first.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_customers(&self, limit: Limit) -> Result<Vec<Customer>, EngineError> {
        Ok(self.store.list_customers(limit).await?)
    }

    /// Updates a customer.
    ///
    /// # Errors
    ///
    /// As [`Self::create_customer`], plus `NotFound`.
    pub async fn update_customer(
        &self,
        actor: &Actor,
        id: &str,
        req: CustomerFields,
    ) -> Result<Customer, EngineError> {
        let mut c = self.get_customer(id).await?;
        let now = self.now();
        if let Some(n) = &req.name {
            c.name = check_name("name", n)?;
        }
        if let Some(code) = &req.code {
            c.code = parse_code(code)?;
        }
        if let Some(e) = &req.email {
            c.email = if e.is_empty() {
                None
            } else {
                Some(check_email(e)?)
            };
        }
        if let Some(m) = req.metadata {
            c.metadata = m;
        }
        c.updated_at = now;
        let e = DomainEvent::new("customer.updated", "customer", c.id.as_str(), []);
        self.store
            .update_customer(&c, vec![actor.event(e, now)])
            .await?;
        Ok(c)
    }

    /// Deletes a customer no license references.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` while licenses reference it.
    pub async fn delete_customer(&self, actor: &Actor, id: &str) -> Result<(), EngineError> {
        let id: CustomerId = parse_id(id, "customer")?;
        let now = self.now();
        let e = DomainEvent::new("customer.deleted", "customer", id.as_str(), []);
        Ok(self
            .store
            .delete_customer(&id, vec![actor.event(e, now)])
            .await?)
    }

    /// Creates a custom field definition on a product.
    ///
    /// # Errors
    ///
    /// `NotFound` product; missing or invalid fields (enum fields need options, other types
    /// take none); `AlreadyExists` code for the product and resource type.
    pub async fn create_custom_field(
        &self,
        actor: &Actor,
        product: &str,
        req: CustomFieldFields,
    ) -> Result<CustomFieldDefinition, EngineError> {
        let product = self.get_product(product).await?;
        let now = self.now();
        let resource_type = req
            .resource_type
            .ok_or_else(|| EngineError::invalid("resource_type", "resource_type is required"))?;
        let value_type = req
            .value_type
            .ok_or_else(|| EngineError::invalid("value_type", "value_type is required"))?;
        let d = CustomFieldDefinition {
            id: self.with_rng(|r| CustomFieldId::generate(r)),
            product_id: product.id,
            resource_type,
            code: parse_code::<CustomFieldCode>(req.code.as_deref().unwrap_or_default())?,
            name: check_name("name", req.name.as_deref().unwrap_or_default())?,
            value_type,
            is_required: req.is_required.unwrap_or(false),
            enum_options: check_options(value_type, req.enum_options.unwrap_or_default())?,
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "custom_field.created",
            "custom_field",
            d.id.as_str(),
            [("code", json!(d.code))],
        );
        self.store
            .insert_custom_field(&d, vec![actor.event(e, now)])
            .await?;
        Ok(d)
    }

    /// The definition `field` of `product`.
    ///
    /// # Errors
    ///
    /// `NotFound` (also when it belongs to another product).
    pub async fn get_custom_field(
        &self,
        product: &str,
        field: &str,
    ) -> Result<CustomFieldDefinition, EngineError> {
        let product: ProductId = parse_id(product, "product")?;
        let d = self
            .store
            .get_custom_field(&parse_id(field, "custom_field")?)
            .await?;
        if d.product_id != product {
            return Err(EngineError::NotFound {
                entity: "custom_field",
            });
        }
        Ok(d)
    }

    /// A product's definitions.
    ///
    /// # Errors
    ///
    /// `NotFound` product, storage failures.
    pub async fn list_custom_fields(
        &self,
        product: &str,
        limit: Limit,
    ) -> Result<Vec<CustomFieldDefinition>, EngineError> {
        let product = self.get_product(product).await?;
        Ok(self.store.list_custom_fields(&product.id, limit).await?)
    }

    /// Updates a definition (`resource_type` and `value_type` are fixed).
    ///
    /// # Errors
    ///
    /// As [`Self::create_custom_field`]; changing the fixed fields is invalid.
    pub async fn update_custom_field(
        &self,
        actor: &Actor,
        product: &str,
        field: &str,
        req: CustomFieldFields,
    ) -> Result<CustomFieldDefinition, EngineError> {
        let mut d = self.get_custom_field(product, field).await?;
        if req.resource_type.is_some_and(|t| t != d.resource_type)
            || req.value_type.is_some_and(|t| t != d.value_type)
        {
            return Err(EngineError::invalid(
                "value_type",
                "resource_type and value_type cannot change",
            ));
        }
        let now = self.now();
        if let Some(c) = &req.code {
            d.code = parse_code(c)?;
        }
        if let Some(n) = &req.name {
            d.name = check_name("name", n)?;
        }
        if let Some(r) = req.is_required {
            d.is_required = r;
        }
        if let Some(o) = req.enum_options {
            d.enum_options = check_options(d.value_type, o)?;
        }
        if let Some(m) = req.metadata {
            d.metadata = m;
        }
        d.updated_at = now;
        let e = DomainEvent::new("custom_field.updated", "custom_field", d.id.as_str(), []);
        self.store
            .update_custom_field(&d, vec![actor.event(e, now)])
            .await?;
        Ok(d)
    }

    /// Deletes a definition that no value uses.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` (409) while a value is set for it; storage failures.
    pub async fn delete_custom_field(
        &self,
        actor: &Actor,
        product: &str,
        field: &str,
    ) -> Result<(), EngineError> {
        let d = self.get_custom_field(product, field).await?;
        let now = self.now();
        let e = DomainEvent::new("custom_field.deleted", "custom_field", d.id.as_str(), []);
        Ok(self
            .store
            .delete_custom_field(&d.id, vec![actor.event(e, now)])
            .await?)
    }

    /// Sets or clears a custom value on a license or customer. Returns the value, or `None`
    /// when cleared.
    ///
    /// # Errors
    ///
    /// `NotFound` resource or definition (a definition of another product or resource type is
    /// not found for this resource); a value of the wrong type or not exactly one value is
    /// invalid (422).
    pub async fn put_custom_value(
        &self,
        actor: &Actor,
        resource_type: CustomFieldResourceType,
        resource_id: &str,
        field: &str,
        req: CustomValueUpsert,
    ) -> Result<Option<CustomFieldValue>, EngineError> {
        let product = self.resource_product(resource_type, resource_id).await?;
        let d = self
            .store
            .get_custom_field(&parse_id(field, "custom_field")?)
            .await?;
        if d.resource_type != resource_type || product.as_ref().is_some_and(|p| p != &d.product_id)
        {
            return Err(EngineError::NotFound {
                entity: "custom_field",
            });
        }
        let now = self.now();
        let value = custom_value(&d, req)?;
        let stored = value.map(|v| value_record(&d, resource_id, v, now));
        let (kind, meta) = match &stored {
            Some(_) => ("custom_field_value.set", json!(d.code)),
            None => ("custom_field_value.cleared", json!(d.code)),
        };
        let e = DomainEvent::new(
            kind,
            resource_type.as_str(),
            resource_id.to_owned(),
            [("code", meta)],
        );
        self.store
            .put_custom_value(
                &d.id,
                resource_id,
                stored.as_ref(),
                vec![actor.event(e, now)],
            )
            .await?;
        Ok(stored)
    }

    /// Custom values set on a license or customer.
    ///
    /// # Errors
    ///
    /// `NotFound` resource, storage failures.
    pub async fn list_custom_values(
        &self,
        resource_type: CustomFieldResourceType,
        resource_id: &str,
        limit: Limit,
    ) -> Result<Vec<CustomFieldValue>, EngineError> {
        self.resource_product(resource_type, resource_id).await?;
        Ok(self
            .store
            .list_custom_values(resource_type, resource_id, limit)
            .await?)
    }

    /// Checks the resource exists; a license's values must use its product's definitions.
    async fn resource_product(
        &self,
        resource_type: CustomFieldResourceType,
        id: &str,
    ) -> Result<Option<ProductId>, EngineError> {
        match resource_type {
            CustomFieldResourceType::License => Ok(Some(
                self.store
                    .get_license(&parse_id(id, "license")?)
                    .await?
                    .product_id,
            )),
            _ => self.get_customer(id).await.map(|_| None),
        }
    }
}

fn check_options(
    value_type: CustomFieldValueType,
    options: Vec<String>,
) -> Result<Vec<String>, EngineError> {
    let bad = |m: &str| EngineError::invalid("enum_options", m);
    match value_type {
        CustomFieldValueType::Enum => {
            if options.is_empty() {
                return Err(bad("an enum field needs at least one option"));
            }
            let mut seen = std::collections::HashSet::new();
            if options.iter().any(|o| {
                o.is_empty() || o.chars().count() > MAX_VALUE_LEN || !seen.insert(o.as_str())
            }) {
                return Err(bad("options must be distinct non-empty strings"));
            }
            Ok(options)
        }
        _ if options.is_empty() => Ok(options),
        _ => Err(bad("only enum fields take options")),
    }
}

/// Exactly one typed value matching the definition, or `clear: true` (`None`).
pub(super) fn custom_value(
    d: &CustomFieldDefinition,
    req: CustomValueUpsert,
) -> Result<Option<CustomValue>, EngineError> {
    let mut given = Vec::new();
    if let Some(v) = req.string_value {
        given.push(CustomValue::String(v));
    }
    if let Some(v) = req.integer_value {
        given.push(CustomValue::Integer(v));
    }
    if let Some(v) = req.boolean_value {
        given.push(CustomValue::Boolean(v));
    }
    if let Some(v) = req.datetime_value {
        given.push(CustomValue::Datetime(v));
    }
    if let Some(v) = req.enum_value {
        given.push(CustomValue::Enum(v));
    }
    let clear = req.clear == Some(true);
    match (clear, given.len()) {
        (true, 0) => return Ok(None),
        (false, 1) => {}
        _ => {
            return Err(EngineError::invalid(
                "value",
                "provide exactly one typed value, or clear: true",
            ));
        }
    }
    let v = given.remove(0);
    if v.value_type() != d.value_type {
        return Err(EngineError::invalid(
            "value",
            format!("this field takes a {} value", d.value_type),
        ));
    }
    match &v {
        CustomValue::String(s) if s.chars().count() > MAX_VALUE_LEN => Err(EngineError::invalid(
            "string_value",
            format!("at most {MAX_VALUE_LEN} characters"),
        )),
        CustomValue::Enum(e) if !d.enum_options.contains(e) => Err(EngineError::invalid(
            "enum_value",
            "not one of the field's enum_options",
        )),
        _ => Ok(Some(v)),
    }
}

pub(super) fn value_record(
    d: &CustomFieldDefinition,
    resource_id: &str,
    v: CustomValue,
    now: chrono::DateTime<chrono::Utc>,
) -> CustomFieldValue {
    let mut r = CustomFieldValue {
        definition_id: d.id.clone(),
        product_id: d.product_id.clone(),
        resource_type: d.resource_type,
        resource_id: resource_id.to_owned(),
        code: d.code.clone(),
        name: d.name.clone(),
        value_type: d.value_type,
        is_required: d.is_required,
        enum_options: d.enum_options.clone(),
        metadata: d.metadata.clone(),
        string_value: None,
        integer_value: None,
        boolean_value: None,
        datetime_value: None,
        enum_value: None,
        updated_at: now,
    };
    match v {
        CustomValue::String(s) => r.string_value = Some(s),
        CustomValue::Integer(i) => r.integer_value = Some(i),
        CustomValue::Boolean(b) => r.boolean_value = Some(b),
        CustomValue::Datetime(t) => r.datetime_value = Some(t),
        CustomValue::Enum(e) => r.enum_value = Some(e),
    }
    r
}
