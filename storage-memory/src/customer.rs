//! [`CustomerStore`]: customers and custom field values.

use licentia_core::model::{
    CustomFieldId, CustomFieldResourceType, CustomFieldValue, Customer, CustomerId,
};
use licentia_core::store::{CustomerStore, Limit, NewEvent, StoreError, StoreResult};

use crate::MemoryStore;
use crate::state::{newest_first, page};

impl CustomerStore for MemoryStore {
    async fn insert_customer(&self, c: &Customer, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        if cat.customers.contains_key(&c.id) {
            return Err(StoreError::already_exists("customer", "id"));
        }
        if cat.customer_codes.contains_key(&c.code) {
            return Err(StoreError::already_exists("customer", "code"));
        }
        cat.customer_codes.insert(c.code.clone(), c.id.clone());
        cat.customers.insert(c.id.clone(), c.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_customer(&self, id: &CustomerId) -> StoreResult<Customer> {
        self.inner.catalog.read().require_customer(id).cloned()
    }

    async fn update_customer(&self, c: &Customer, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let old_code = cat.require_customer(&c.id)?.code.clone();
        if old_code != c.code {
            if cat.customer_codes.contains_key(&c.code) {
                return Err(StoreError::already_exists("customer", "code"));
            }
            cat.customer_codes.remove(&old_code);
            cat.customer_codes.insert(c.code.clone(), c.id.clone());
        }
        cat.customers.insert(c.id.clone(), c.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn delete_customer(&self, id: &CustomerId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let code = cat.require_customer(id)?.code.clone();
        if self
            .inner
            .licenses
            .read()
            .any(|l| l.customer_id.as_ref() == Some(id))
        {
            return Err(StoreError::Conflict {
                reason: "licenses still reference the customer",
            });
        }
        if cat
            .orders
            .values()
            .any(|o| o.customer_id.as_ref() == Some(id))
            || cat
                .subscriptions
                .values()
                .any(|s| s.customer_id.as_ref() == Some(id))
        {
            return Err(StoreError::Conflict {
                reason: "orders or subscriptions still reference the customer",
            });
        }
        if cat.contracts.values().any(|c| &c.customer_id == id) {
            return Err(StoreError::Conflict {
                reason: "contracts still reference the customer",
            });
        }
        // The customer's custom field values go with it.
        let catalog = &mut *cat;
        if let Some(values) = catalog.custom_values.get_mut(id.as_str()) {
            let fields = &catalog.custom_fields;
            values.retain(|def, _| {
                fields
                    .get(def)
                    .is_none_or(|d| d.resource_type != CustomFieldResourceType::Customer)
            });
            if values.is_empty() {
                catalog.custom_values.remove(id.as_str());
            }
        }
        cat.customer_codes.remove(&code);
        cat.customers.remove(id);
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_customers(&self, limit: Limit) -> StoreResult<Vec<Customer>> {
        let cat = self.inner.catalog.read();
        Ok(page(
            cat.customers.values(),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn put_custom_value(
        &self,
        definition: &CustomFieldId,
        resource_id: &str,
        value: Option<&CustomFieldValue>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        let def = cat
            .custom_fields
            .get(definition)
            .ok_or(StoreError::not_found("custom_field"))?;
        match value {
            Some(v) => {
                let stored = v.joined_with(def, resource_id);
                cat.custom_values
                    .entry(resource_id.to_owned())
                    .or_default()
                    .insert(definition.clone(), stored);
            }
            None => {
                if let Some(values) = cat.custom_values.get_mut(resource_id) {
                    values.remove(definition);
                    if values.is_empty() {
                        cat.custom_values.remove(resource_id);
                    }
                }
            }
        }
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_custom_values(
        &self,
        resource_type: CustomFieldResourceType,
        resource_id: &str,
        limit: Limit,
    ) -> StoreResult<Vec<CustomFieldValue>> {
        let cat = self.inner.catalog.read();
        let Some(values) = cat.custom_values.get(resource_id) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<CustomFieldValue> = values
            .iter()
            .filter_map(|(def, v)| {
                let def = cat.custom_fields.get(def)?;
                (def.resource_type == resource_type).then(|| v.joined_with(def, resource_id))
            })
            .collect();
        out.sort_unstable_by(|a, b| (&a.code, &a.definition_id).cmp(&(&b.code, &b.definition_id)));
        out.truncate(limit.as_usize());
        Ok(out)
    }
}
