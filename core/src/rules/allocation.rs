//! Pools and reseller contracts: who may take licenses made ahead of a sale.
//!
//! A pooled license is unassigned (no customer) and names its pool; assigning hands N of them
//! to one customer and takes them out of the pool, all or none. A contract's licenses count
//! against its quota while they are not revoked, so revoking one gives its place back. Which
//! licenses a pool still holds and how many a contract has issued are the store's to count
//! under its lock; these rules decide from those counts.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::{Contract, CustomerId, License, LicenseStatus, PoolName};

use super::{Denial, DenialCode, DenialReason, DomainEvent, Mutation, Plan};

/// Whether `license` waits in a pool for a customer: pooled, unassigned and not revoked.
pub fn is_unassigned_in(license: &License, pool: &PoolName) -> bool {
    license.pool.as_ref() == Some(pool)
        && license.customer_id.is_none()
        && license.status != LicenseStatus::Revoked
}

/// Assigns `found` (up to `count` unassigned licenses of `pool`, as the store picked them) to
/// `customer`: each leaves the pool and gets a `license.assigned` event.
///
/// # Errors
///
/// `POOL_EXHAUSTED` when fewer than `count` were found; the message says how many remain.
pub fn assign_pooled(
    found: Vec<License>,
    pool: &PoolName,
    count: u32,
    customer: &CustomerId,
    now: DateTime<Utc>,
) -> Result<Plan<Vec<License>>, Denial> {
    let available = u32::try_from(found.len()).unwrap_or(u32::MAX);
    if available < count || found.iter().any(|l| !is_unassigned_in(l, pool)) {
        return Err(Denial::one(DenialReason::field(
            DenialCode::PoolExhausted,
            "count",
            format!("pool {pool} holds {available} unassigned licenses; {count} were asked for"),
        )));
    }
    let mut plan = Plan {
        mutations: Vec::with_capacity(found.len()),
        events: Vec::with_capacity(found.len()),
        outcome: Vec::with_capacity(found.len()),
    };
    for mut license in found {
        license.customer_id = Some(customer.clone());
        license.pool = None;
        license.updated_at = now;
        plan.events.push(
            DomainEvent::new(
                "license.assigned",
                "license",
                license.id.as_str(),
                [("pool", json!(pool))],
            )
            .about(&license),
        );
        plan.mutations.push(Mutation::License(license.clone()));
        plan.outcome.push(license);
    }
    Ok(plan)
}

/// Whether `contract` (with `licenses_issued` as the store counted it under its lock) may
/// issue `count` more licenses.
///
/// # Errors
///
/// `CONTRACT_QUOTA_EXCEEDED` when the quota leaves fewer; the message says how many remain.
pub fn admit(contract: &Contract, count: u32) -> Result<(), Denial> {
    let remaining = contract.remaining();
    if count > remaining {
        return Err(Denial::one(DenialReason::field(
            DenialCode::ContractQuotaExceeded,
            "count",
            format!(
                "contract {} has {remaining} of {} licenses left; {count} were asked for",
                contract.id, contract.license_quota
            ),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LicenseType;
    use crate::rules::testing::{license, policy, t0};

    fn pool() -> PoolName {
        "spring-promo".parse().unwrap()
    }

    fn pooled(n: usize) -> Vec<License> {
        (0..n)
            .map(|i| {
                let mut l = license(&policy(LicenseType::Perpetual));
                l.id = format!("lic_pool{i}").parse().unwrap();
                l.customer_id = None;
                l.pool = Some(pool());
                l
            })
            .collect()
    }

    #[test]
    fn assigning_takes_licenses_out_of_the_pool_with_an_event_each() {
        let customer: CustomerId = "cus_reseller".parse().unwrap();
        let plan = assign_pooled(pooled(3), &pool(), 3, &customer, t0()).unwrap();
        assert_eq!(plan.outcome.len(), 3);
        for l in &plan.outcome {
            assert_eq!(l.customer_id.as_ref(), Some(&customer));
            assert_eq!(l.pool, None);
            assert!(!is_unassigned_in(l, &pool()));
        }
        assert!(
            plan.events
                .iter()
                .all(|e| e.event_type == "license.assigned")
        );
        assert_eq!(plan.mutations.len(), 3);
    }

    #[test]
    fn a_short_pool_is_refused_with_what_remains() {
        let customer: CustomerId = "cus_reseller".parse().unwrap();
        let d = assign_pooled(pooled(2), &pool(), 3, &customer, t0()).unwrap_err();
        assert!(d.has(DenialCode::PoolExhausted));
        assert!(d.primary().message.contains("holds 2"), "{d}");
    }

    #[test]
    fn a_license_no_longer_unassigned_is_refused() {
        let customer: CustomerId = "cus_reseller".parse().unwrap();
        let mut found = pooled(1);
        found[0].customer_id = Some(customer.clone());
        assert!(assign_pooled(found, &pool(), 1, &customer, t0()).is_err());
    }

    #[test]
    fn a_quota_admits_exactly_what_is_left() {
        let p = policy(LicenseType::Perpetual);
        let contract = Contract {
            id: "ctr_one".parse().unwrap(),
            name: "Reseller".into(),
            customer_id: "cus_reseller".parse().unwrap(),
            product_id: p.product_id.clone(),
            policy_id: p.id.clone(),
            template_id: None,
            license_quota: 10,
            licenses_issued: 7,
            metadata: Default::default(),
            created_at: t0(),
            updated_at: t0(),
        };
        assert!(admit(&contract, 3).is_ok());
        let d = admit(&contract, 4).unwrap_err();
        assert!(d.has(DenialCode::ContractQuotaExceeded));
        assert!(d.primary().message.contains("3 of 10"), "{d}");
    }
}
