//! Contracts, and the pool and quota writes of [`AllocationStore`].

use std::hash::BuildHasher;

use licentia_core::model::{
    Contract, ContractId, CustomerId, License, LicenseStatus, Policy, PoolName,
};
use licentia_core::rules::allocation::is_unassigned_in;
use licentia_core::rules::{Denial, Mutation};
use licentia_core::store::{
    AllocationStore, Decision, IdempotencyRecord, Limit, NewEvent, NewLicenses, StoreError,
    StoreResult,
};

use crate::MemoryStore;
use crate::state::{Catalog, LicenseIndex, newest_first, page};

/// `c` with its `licenses_issued` counted from `index`.
fn counted(mut c: Contract, index: &LicenseIndex) -> Contract {
    let issued = index
        .by_id
        .values()
        .filter(|e| {
            let l = e.row.read();
            l.contract_id.as_ref() == Some(&c.id) && l.status != LicenseStatus::Revoked
        })
        .count();
    c.licenses_issued = u32::try_from(issued).unwrap_or(u32::MAX);
    c
}

fn contract<'a>(catalog: &'a Catalog, id: &ContractId) -> StoreResult<&'a Contract> {
    catalog
        .contracts
        .get(id)
        .ok_or(StoreError::not_found("contract"))
}

impl AllocationStore for MemoryStore {
    async fn insert_contract(&self, c: &Contract, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut cat = self.inner.catalog.write();
        cat.require_customer(&c.customer_id)?;
        cat.require_product(&c.product_id)?;
        cat.require_policy(&c.policy_id)?;
        if let Some(t) = &c.template_id
            && !cat.templates.contains_key(t)
        {
            return Err(StoreError::not_found("license_template"));
        }
        if cat.contracts.contains_key(&c.id) {
            return Err(StoreError::already_exists("contract", "id"));
        }
        cat.contracts.insert(c.id.clone(), c.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_contract(&self, id: &ContractId) -> StoreResult<Contract> {
        let c = contract(&self.inner.catalog.read(), id)?.clone();
        Ok(counted(c, &self.inner.licenses.read()))
    }

    async fn list_contracts(
        &self,
        customer: Option<&CustomerId>,
        limit: Limit,
    ) -> StoreResult<Vec<Contract>> {
        let cat = self.inner.catalog.read();
        let listed = page(
            cat.contracts
                .values()
                .filter(|c| customer.is_none_or(|x| &c.customer_id == x)),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        );
        drop(cat);
        let index = self.inner.licenses.read();
        Ok(listed.into_iter().map(|c| counted(c, &index)).collect())
    }

    async fn insert_contract_licenses<F>(
        &self,
        id: &ContractId,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
        admit: F,
    ) -> StoreResult<Result<(), Denial>>
    where
        F: FnOnce(&Contract) -> Result<(), Denial> + Send,
    {
        licentia_core::store::all_under(id, &batch)?;
        // Inserts are serialised by the license index's write lock, held from the count to
        // the insert: two calls cannot both see the same room in the quota.
        self.insert_all(batch, events, idempotency, |catalog, index| {
            let c = counted(contract(catalog, id)?.clone(), index);
            Ok(admit(&c))
        })
    }

    async fn assign_pool<T, F>(&self, pool: &PoolName, count: u32, decide: F) -> StoreResult<T>
    where
        T: Send,
        F: FnOnce(Vec<(License, Policy)>) -> Decision<T> + Send,
    {
        // Candidates in a random order: a fresh hasher's keys are random per call.
        let order = std::collections::hash_map::RandomState::new();
        let mut candidates: Vec<_> = self
            .inner
            .licenses
            .read()
            .by_id
            .iter()
            .filter(|(_, e)| is_unassigned_in(&e.row.read(), pool))
            .map(|(id, e)| (order.hash_one(id), e.cell.clone()))
            .collect();
        candidates.sort_unstable_by_key(|(rank, _)| *rank);

        // Each under its writer lock, skipping one another writer holds (as SKIP LOCKED
        // does), and checked again under it: it may have been assigned meanwhile.
        let wanted = count as usize;
        let mut picked = Vec::with_capacity(wanted.min(candidates.len()));
        for (_, cell) in &candidates {
            if picked.len() == wanted {
                break;
            }
            let Ok(writer) = cell.writer.try_lock() else {
                continue;
            };
            let license = cell.state.read().license.clone();
            if is_unassigned_in(&license, pool) {
                picked.push((cell, writer, license));
            }
        }
        let found = {
            let catalog = self.inner.catalog.read();
            picked
                .iter()
                .map(|(_, _, l)| Ok((l.clone(), catalog.require_policy(&l.policy_id)?.clone())))
                .collect::<StoreResult<Vec<_>>>()?
        };
        let Decision {
            mutations,
            events,
            idempotency,
            outcome,
        } = decide(found);

        // Only the picked licenses' rows, each at most once.
        let mut rows = Vec::with_capacity(mutations.len());
        for m in mutations {
            let Mutation::License(new) = m else {
                return Err(StoreError::Conflict {
                    reason: "a pool assignment writes only license rows",
                });
            };
            match picked.iter().position(|(_, _, old)| old.id == new.id) {
                Some(i) if !rows.iter().any(|(j, _)| *j == i) => rows.push((i, new)),
                _ => {
                    return Err(StoreError::Conflict {
                        reason: "a mutation names a license the pool assignment did not pick",
                    });
                }
            }
        }
        // The lock order of a license transaction: its state, the catalog, the index, the
        // idempotency records, the event log.
        let mut states: Vec<_> = rows
            .iter()
            .map(|(i, _)| picked[*i].0.state.write())
            .collect();
        let catalog = self.inner.catalog.read();
        for (i, new) in &rows {
            catalog.check_license_refs(new, Some(&picked[*i].2))?;
        }
        let index = self.inner.licenses.write();
        let mut records = self.inner.idempotency.lock();
        if let Some(record) = &idempotency
            && records.contains_key(&record.key)
        {
            return Err(StoreError::already_exists("idempotency_record", "key"));
        }
        let mut log = self.inner.events.lock();
        for ((_, new), state) in rows.into_iter().zip(&mut states) {
            if let Some(entry) = index.by_id.get(&new.id) {
                *entry.row.write() = new.clone();
            }
            state.license = new;
        }
        if let Some(record) = idempotency {
            records.insert(record.key.clone(), record);
        }
        log.append(events);
        Ok(outcome)
    }
}
