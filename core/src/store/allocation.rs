//! Pools and reseller contracts (an extension): see [`rules::allocation`](crate::rules::allocation).

use std::future::Future;

use super::{Decision, IdempotencyRecord, Limit, NewEvent, NewLicenses, StoreResult};
use crate::model::{Contract, ContractId, CustomerId, License, Policy, PoolName};
use crate::rules::Denial;

/// The `Conflict` reason of `insert_license` and `insert_licenses` for a license naming a
/// contract: those are issued by `insert_contract_licenses`, within the quota, only.
pub const OUTSIDE_CONTRACT_QUOTA: &str = "a contract's licenses are issued within its quota only";

/// What `insert_license` and `insert_licenses` check first: no license of theirs names a
/// contract (`Conflict` with [`OUTSIDE_CONTRACT_QUOTA`]).
///
/// # Errors
///
/// As above.
pub fn outside_contracts<'a>(licenses: impl IntoIterator<Item = &'a License>) -> StoreResult<()> {
    if licenses.into_iter().any(|l| l.contract_id.is_some()) {
        return Err(super::StoreError::Conflict {
            reason: OUTSIDE_CONTRACT_QUOTA,
        });
    }
    Ok(())
}

/// What `insert_contract_licenses` checks first: every license names contract `id`.
///
/// # Errors
///
/// `Conflict` otherwise.
pub fn all_under(id: &ContractId, batch: &NewLicenses<'_>) -> StoreResult<()> {
    if batch
        .licenses
        .iter()
        .any(|l| l.contract_id.as_ref() != Some(id))
    {
        return Err(super::StoreError::Conflict {
            reason: "a license issued under a contract must name it",
        });
    }
    Ok(())
}

/// Storage of contracts, and the two writes whose exactness under concurrency is the store's:
/// taking licenses out of a pool and issuing licenses within a contract's quota.
///
/// A pooled license is a [`License`] with `pool` set and no customer; a contract's license
/// names it in `contract_id`. Both are written by
/// [`LicenseStore::insert_licenses`](super::LicenseStore::insert_licenses) like any other
/// license, except a contract's, which go through `insert_contract_licenses` only (elsewhere
/// they are `Conflict` with [`OUTSIDE_CONTRACT_QUOTA`]).
///
/// # Contract
///
/// - `insert_contract` stores the record and appends `events` atomically; a customer, product,
///   policy or template that does not exist is `NotFound`.
/// - `get_contract` and `list_contracts` (newest first, optionally one reseller's) return
///   `licenses_issued` counted from the licenses: those naming the contract and not revoked.
///   An unknown contract is `NotFound { entity: "contract" }`.
/// - `insert_contract_licenses` locks the contract against other calls of itself, counts its
///   `licenses_issued`, and calls `admit` with the contract so counted, exactly once. When
///   `admit` refuses, nothing is written and its denial is returned as `Ok(Err(_))`;
///   otherwise the licenses (each naming the contract), their assignments, events and
///   idempotency record are written as `insert_licenses` writes them, all or none. Concurrent
///   calls never issue more than the quota between them.
/// - `assign_pool` picks at most `count` licenses that wait unassigned in `pool`
///   ([`is_unassigned_in`](crate::rules::allocation::is_unassigned_in)), at random, each under
///   its license's exclusive lock (one another call holds is skipped, not waited for: two
///   concurrent assigns never get the same license), calls `decide` with them and their
///   policies exactly once,
///   and applies its decision atomically: only [`Mutation::License`](crate::rules::Mutation)
///   rows of the licenses picked (anything else is `Conflict` and writes nothing), its events
///   and its idempotency record (a taken key is `AlreadyExists`). Under contention a call may
///   see fewer licenses than the pool will hold once the others finish; never more.
///
/// # Errors
///
/// As above, `Unavailable` when the backend cannot be reached, `Backend` for anything else.
pub trait AllocationStore: Send + Sync {
    /// Stores a new contract.
    fn insert_contract(
        &self,
        contract: &Contract,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The contract `id`, its `licenses_issued` counted.
    fn get_contract(&self, id: &ContractId) -> impl Future<Output = StoreResult<Contract>> + Send;

    /// Contracts newest first, only `customer`'s when given.
    fn list_contracts(
        &self,
        customer: Option<&CustomerId>,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Contract>>> + Send;

    /// Issues `licenses` under contract `id` when `admit` allows it, counted under the
    /// contract's lock.
    fn insert_contract_licenses<F>(
        &self,
        id: &ContractId,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
        admit: F,
    ) -> impl Future<Output = StoreResult<Result<(), Denial>>> + Send
    where
        F: FnOnce(&Contract) -> Result<(), Denial> + Send;

    /// Runs `decide` on up to `count` licenses picked at random from `pool`, each locked and
    /// with its policy, and applies the decision atomically.
    fn assign_pool<T, F>(
        &self,
        pool: &PoolName,
        count: u32,
        decide: F,
    ) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: FnOnce(Vec<(License, Policy)>) -> Decision<T> + Send;
}
