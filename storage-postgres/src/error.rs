//! sqlx errors mapped to [`StoreError`]s, by SQLSTATE and constraint name.
//!
//! Constraint names are declared in the migrations; every unique or foreign key constraint a
//! write can hit is listed here, so a collision or a dangling reference is a domain error,
//! never a string.

use licentia_core::store::StoreError;

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE of a foreign key violation.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// Maps an error of a read or of an insert/update: a unique violation is `AlreadyExists`, a
/// reference to a missing record is `NotFound` for that record.
pub(crate) fn map(e: sqlx::Error) -> StoreError {
    map_with(e, |constraint| match referenced_entity(constraint) {
        Some(entity) => StoreError::not_found(entity),
        None => StoreError::Conflict {
            reason: "a reference constraint refused the write",
        },
    })
}

/// Maps an error of a delete: a row other records still reference is `Conflict`.
pub(crate) fn map_delete(e: sqlx::Error) -> StoreError {
    map_with(e, |constraint| StoreError::Conflict {
        reason: still_referenced_reason(constraint),
    })
}

fn map_with(e: sqlx::Error, foreign_key: impl FnOnce(&str) -> StoreError) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        let constraint = db.constraint().unwrap_or_default();
        match db.code().as_deref() {
            Some(UNIQUE_VIOLATION) => {
                if let Some((entity, what)) = unique_constraint(constraint) {
                    return StoreError::already_exists(entity, what);
                }
            }
            Some(FOREIGN_KEY_VIOLATION) => return foreign_key(constraint),
            Some(code) if is_unavailable_state(code) => return unavailable(e),
            _ => {}
        }
        return backend(e);
    }
    if is_unavailable(&e) {
        unavailable(e)
    } else {
        backend(e)
    }
}

/// Whether the database could not be reached or went away: worth retrying later.
fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// SQLSTATEs that mean "not now": connection exceptions (class 08), too many connections,
/// and the server shutting down or starting up (57P01–57P03).
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable {
        source: Box::new(e),
    }
}

pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend {
        source: Box::new(e),
    }
}

/// (entity, unique value) of each unique constraint in the schema.
fn unique_constraint(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "products_pkey" => ("product", "id"),
        "products_code_key" => ("product", "code"),
        "product_versions_pkey" => ("product_version", "id"),
        "product_versions_version_key" => ("product_version", "version"),
        "policies_pkey" => ("policy", "id"),
        "policies_code_key" => ("policy", "code"),
        "features_pkey" => ("feature", "id"),
        "features_code_key" => ("feature", "code"),
        "custom_fields_pkey" => ("custom_field", "id"),
        "custom_fields_code_key" => ("custom_field", "code"),
        "customers_pkey" => ("customer", "id"),
        "customers_code_key" => ("customer", "code"),
        "subscriptions_pkey" => ("subscription", "id"),
        "subscriptions_external_key" => ("subscription", "external_id"),
        "orders_pkey" => ("order", "id"),
        "orders_external_key" => ("order", "external_id"),
        "licenses_pkey" => ("license", "id"),
        "licenses_key_hash_key" => ("license", "key_hash"),
        "devices_pkey" => ("device", "id"),
        "devices_live_binding_key" => ("device", "binding_key"),
        "leases_pkey" => ("lease", "id"),
        "leases_token_hash_key" => ("lease", "token_hash"),
        "consumptions_event_id_key" => ("consumption", "event_id"),
        "license_templates_pkey" => ("license_template", "id"),
        "contracts_pkey" => ("contract", "id"),
        "artifacts_pkey" => ("artifact", "id"),
        "device_registrations_pkey" => ("device_registration", "id"),
        "device_registrations_serial_key" => ("device_registration", "serial"),
        "device_registrations_session_key" => ("device_registration", "session_token_hash"),
        "idempotency_records_key" => ("idempotency_record", "key"),
        "api_keys_pkey" => ("api_key", "id"),
        "api_keys_token_hash_key" => ("api_key", "token_hash"),
        "webhooks_pkey" => ("webhook", "id"),
        "signing_keys_pkey" => ("signing_key", "kid"),
        "signing_keys_one_active" => ("signing_key", "active"),
        "users_pkey" => ("user", "id"),
        "users_email_key" => ("user", "email"),
        "users_token_hash_key" => ("user", "token_hash"),
        _ => return None,
    })
}

/// The record a foreign key constraint points at (constraints are named
/// `<table>_<referenced>_fkey`).
fn referenced_entity(name: &str) -> Option<&'static str> {
    let stem = name.strip_suffix("_fkey")?;
    [
        ("_product", "product"),
        ("_policy", "policy"),
        ("_customer", "customer"),
        ("_order", "order"),
        ("_subscription", "subscription"),
        ("_license", "license"),
        ("_feature", "feature"),
        ("_definition", "custom_field"),
        ("_template", "license_template"),
        ("_version", "product_version"),
        ("_contract", "contract"),
    ]
    .into_iter()
    .find(|(suffix, _)| stem.ends_with(suffix))
    .map(|(_, entity)| entity)
}

/// Why a delete was refused, from the referencing constraint that refused it.
fn still_referenced_reason(name: &str) -> &'static str {
    match name {
        "policies_product_fkey" => "the product still has policies",
        "features_product_fkey" => "the product still has features",
        "licenses_product_fkey" => "the product still has licenses",
        "orders_product_fkey" | "subscriptions_product_fkey" => {
            "orders or subscriptions still reference the product"
        }
        "licenses_policy_fkey" => "licenses still use the policy",
        "license_templates_product_fkey" => "the product still has license templates",
        "license_templates_policy_fkey" => "license templates still use the policy",
        "licenses_customer_fkey" => "licenses still reference the customer",
        "contracts_customer_fkey" => "contracts still reference the customer",
        "contracts_policy_fkey" => "contracts still use the policy",
        "contracts_template_fkey" => "contracts still use the license template",
        "contracts_product_fkey" => "contracts still reference the product",
        "artifacts_product_fkey" | "artifacts_version_fkey" => "artifacts still reference it",
        "orders_customer_fkey" | "subscriptions_customer_fkey" => {
            "orders or subscriptions still reference the customer"
        }
        _ => "other records still reference it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_name_the_record_they_point_at() {
        assert_eq!(referenced_entity("licenses_policy_fkey"), Some("policy"));
        assert_eq!(
            referenced_entity("orders_subscription_fkey"),
            Some("subscription")
        );
        assert_eq!(
            referenced_entity("custom_values_definition_fkey"),
            Some("custom_field")
        );
        assert_eq!(referenced_entity("licenses_key_hash_key"), None);
    }

    #[test]
    fn pool_and_io_failures_are_unavailable() {
        assert!(matches!(
            map(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable { .. }
        ));
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            map(sqlx::Error::Io(io)),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(
            map(sqlx::Error::RowNotFound),
            StoreError::Backend { .. }
        ));
    }
}
