//! Pools and contracts: `assign_pool` hands each unassigned license to one caller, and
//! `insert_contract_licenses` never issues past the quota, under 32 concurrent tasks too.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use crate::model::{Contract, CustomerId, License, LicenseType, Policy, PoolName};
use crate::rules::{Denial, DenialCode, allocation, lifecycle};
use crate::store::{
    Decision, IdempotencyKey, IdempotencyRecord, LicenseQuery, Limit, NewLicenses, Store,
    StoreResult,
};

use super::fixtures::{by_id, customer, license, parse, run, seed, system_event, t0};
use super::{
    Spawner, expect_already_exists, expect_conflict, expect_not_found, ok, run_concurrently,
};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an assignment in these checks answers: the licenses assigned, or the refusal.
type Assigned = Result<Vec<License>, Denial>;

fn pool() -> PoolName {
    parse("spring")
}

/// Licenses `from..to` of `policy`, unassigned in `pool`.
fn pooled(policy: &Policy, pool: &PoolName, from: u32, to: u32) -> Vec<License> {
    (from..to)
        .map(|n| {
            let mut l = license(policy, n);
            l.pool = Some(pool.clone());
            l
        })
        .collect()
}

fn contract(policy: &Policy, customer: &CustomerId, quota: u32) -> Contract {
    Contract {
        id: parse("ctr_0001"),
        name: "Reseller".into(),
        customer_id: customer.clone(),
        product_id: policy.product_id.clone(),
        policy_id: policy.id.clone(),
        template_id: None,
        license_quota: quota,
        licenses_issued: 0,
        metadata: Default::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

/// Licenses `from..to` of `policy` issued under `c`.
fn issued(policy: &Policy, c: &Contract, from: u32, to: u32) -> Vec<License> {
    (from..to)
        .map(|n| {
            let mut l = license(policy, n);
            l.customer_id = Some(c.customer_id.clone());
            l.contract_id = Some(c.id.clone());
            l
        })
        .collect()
}

fn record(key: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey {
            scope: "create:api_key:key_1".into(),
            key: key.into(),
        },
        request_hash: [3; 32],
        status: 200,
        body: b"assigned".to_vec(),
        created_at: t0(),
    }
}

/// The engine's decision for an assignment of `count` to `customer`: the rule's plan, or
/// nothing when it refuses.
fn assignment(
    found: Vec<(License, Policy)>,
    count: u32,
    customer: &CustomerId,
    key: Option<&str>,
) -> Decision<Assigned> {
    let licenses = found.into_iter().map(|(l, _)| l).collect();
    match allocation::assign_pooled(licenses, &pool(), count, customer, t0()) {
        Ok(plan) => Decision {
            events: plan
                .events
                .into_iter()
                .map(|e| crate::store::Actor::system().event(e, t0()))
                .collect(),
            mutations: plan.mutations,
            idempotency: key.map(record),
            outcome: Ok(plan.outcome),
        },
        Err(d) => Decision::nothing(Err(d)),
    }
}

async fn in_pool<S: Store>(store: &S, pool: &PoolName) -> Vec<License> {
    ok(
        store
            .list_licenses(&LicenseQuery {
                pool: Some(pool.clone()),
                limit: Limit::new(Some(200)),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses by pool",
    )
}

async fn of_customer<S: Store>(store: &S, customer: &CustomerId) -> Vec<License> {
    ok(
        store
            .list_licenses(&LicenseQuery {
                customer_id: Some(customer.clone()),
                limit: Limit::new(Some(200)),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses by customer",
    )
}

/// `assign_pool` offers only unassigned, unrevoked licenses of the pool, with their
/// policies, at most `count`; applies license rows, events and the idempotency record
/// together; and writes nothing for a refusal, a row it did not pick, or a taken key.
pub async fn pool_assignment_takes_only_unassigned_licenses<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let buyer = customer(1);
    ok(
        store.insert_customer(&buyer, vec![]).await,
        "insert_customer",
    );
    let mut batch = pooled(&s.policy, &pool(), 10, 15);
    // Not offered: assigned already, revoked, or in another pool.
    batch[3].customer_id = Some(buyer.id.clone());
    batch[4].status = crate::model::LicenseStatus::Revoked;
    batch.extend(pooled(&s.policy, &parse("autumn"), 15, 16));
    ok(
        store
            .insert_licenses(NewLicenses::of(&batch), vec![], None)
            .await,
        "insert_licenses into pools",
    );
    assert_eq!(in_pool(&store, &pool()).await.len(), 5, "listed by pool");

    // More than it holds: every offered license is unassigned in the pool.
    let offered = ok(
        store
            .assign_pool(&pool(), 10, |found| {
                let ids: Vec<_> = found.iter().map(|(l, _)| l.id.clone()).collect();
                assert!(
                    found
                        .iter()
                        .all(|(l, p)| allocation::is_unassigned_in(l, &pool())
                            && p.id == l.policy_id),
                    "offered only unassigned licenses of the pool, with their policies"
                );
                Decision::nothing(ids)
            })
            .await,
        "assign_pool",
    );
    let mut offered_ids: Vec<_> = offered.iter().map(|id| id.as_str().to_owned()).collect();
    offered_ids.sort();
    assert_eq!(offered_ids, ["lic_0010", "lic_0011", "lic_0012"]);

    // A refusal writes nothing.
    let refused = ok(
        store
            .assign_pool(&pool(), 5, |found| {
                assignment(found, 5, &buyer.id, Some("short"))
            })
            .await,
        "assign_pool of a short pool",
    );
    assert!(refused.is_err_and(|d| d.has(DenialCode::PoolExhausted)));
    assert_eq!(in_pool(&store, &pool()).await.len(), 5, "still pooled");

    // Two of three, with their events and record.
    let assigned = ok(
        store
            .assign_pool(&pool(), 2, |found| {
                assignment(found, 2, &buyer.id, Some("k"))
            })
            .await,
        "assign_pool",
    )
    .expect("two unassigned licenses remain");
    assert_eq!(assigned.len(), 2);
    for l in &assigned {
        let stored = ok(store.get_license(&l.id).await, "get_license");
        assert_eq!(stored.customer_id.as_ref(), Some(&buyer.id));
        assert_eq!(stored.pool, None, "an assigned license has left its pool");
        assert_eq!(
            super::fixtures::event_types_of(&store, l.id.as_str()).await,
            ["license.assigned"]
        );
    }
    assert!(ok(store.find_idempotency(&record("k").key).await, "find").is_some());
    assert_eq!(in_pool(&store, &pool()).await.len(), 3);

    // The key is taken now: nothing of a second decision is written.
    expect_already_exists(
        store
            .assign_pool(&pool(), 1, |found| {
                assignment(found, 1, &buyer.id, Some("k"))
            })
            .await,
        "assign_pool with a taken idempotency key",
    );
    // A row it did not pick.
    let other = batch[5].clone();
    expect_conflict(
        store
            .assign_pool(&pool(), 1, |_| {
                let mut l = other.clone();
                l.customer_id = Some(buyer.id.clone());
                Decision {
                    mutations: vec![crate::rules::Mutation::License(l)],
                    events: vec![],
                    idempotency: None,
                    outcome: (),
                }
            })
            .await,
        "assign_pool writing a license it did not pick",
    );
    assert_eq!(in_pool(&store, &pool()).await.len(), 3, "nothing written");
    assert_eq!(
        of_customer(&store, &buyer.id).await.len(),
        3,
        "2 assigned + 1"
    );
}

/// 32 tasks assigning one license each from a pool of 20: exactly 20 get one, never the same.
pub async fn concurrent_pool_assignments_hand_each_license_out_once<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const TASKS: u32 = 32;
    const POOLED: u32 = 20;
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let buyer = customer(1);
    ok(
        store.insert_customer(&buyer, vec![]).await,
        "insert_customer",
    );
    let batch = pooled(&s.policy, &pool(), 100, 100 + POOLED);
    ok(
        store
            .insert_licenses(NewLicenses::of(&batch), vec![], None)
            .await,
        "insert_licenses",
    );
    let tasks: Vec<Boxed<StoreResult<Assigned>>> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            let buyer = buyer.id.clone();
            Box::pin(async move {
                store
                    .assign_pool(&pool(), 1, |found| assignment(found, 1, &buyer, None))
                    .await
            }) as Boxed<_>
        })
        .collect();
    let mut handed = HashSet::new();
    let mut refused = 0;
    for r in run_concurrently(&spawner, tasks).await {
        match ok(r, "assign_pool") {
            Ok(licenses) => {
                for l in licenses {
                    assert!(handed.insert(l.id.clone()), "{} handed out twice", l.id);
                }
            }
            Err(d) => {
                assert!(d.has(DenialCode::PoolExhausted), "got {d}");
                refused += 1;
            }
        }
    }
    assert_eq!(handed.len(), POOLED as usize, "every pooled license, once");
    assert_eq!(refused, TASKS - POOLED);
    assert!(in_pool(&store, &pool()).await.is_empty());
    assert_eq!(of_customer(&store, &buyer.id).await.len(), POOLED as usize);
}

/// Contracts round-trip with `licenses_issued` counted from their unrevoked licenses; a
/// refusal of `admit` writes nothing; a contract's licenses go nowhere else; references hold.
pub async fn contracts_count_their_licenses_and_hold_their_references<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let reseller = customer(1);
    ok(
        store.insert_customer(&reseller, vec![]).await,
        "insert_customer",
    );
    let c = contract(&s.policy, &reseller.id, 3);
    expect_not_found(
        store.get_contract(&c.id).await,
        "get_contract before insert",
    );
    let mut dangling = c.clone();
    dangling.customer_id = parse("cus_missing");
    expect_not_found(
        store.insert_contract(&dangling, vec![]).await,
        "insert_contract naming a missing customer",
    );
    ok(
        store
            .insert_contract(
                &c,
                vec![system_event(
                    "contract.created",
                    "contract",
                    c.id.as_str(),
                    t0(),
                )],
            )
            .await,
        "insert_contract",
    );
    expect_already_exists(
        store.insert_contract(&c, vec![]).await,
        "insert_contract twice",
    );
    assert_eq!(ok(store.get_contract(&c.id).await, "get_contract"), c);

    let two = issued(&s.policy, &c, 10, 12);
    let admitted = ok(
        store
            .insert_contract_licenses(&c.id, NewLicenses::of(&two), vec![], None, |c| {
                assert_eq!(c.licenses_issued, 0, "counted before the insert");
                allocation::admit(c, 2)
            })
            .await,
        "insert_contract_licenses",
    );
    assert!(admitted.is_ok());
    assert_eq!(
        ok(store.get_contract(&c.id).await, "get").licenses_issued,
        2
    );

    // Refused by the quota (one left): nothing written.
    let more = issued(&s.policy, &c, 12, 14);
    let refused = ok(
        store
            .insert_contract_licenses(
                &c.id,
                NewLicenses::of(&more),
                vec![],
                Some(record("c")),
                |c| allocation::admit(c, 2),
            )
            .await,
        "insert_contract_licenses over the quota",
    );
    assert!(refused.is_err_and(|d| d.has(DenialCode::ContractQuotaExceeded)));
    expect_not_found(store.get_license(&more[0].id).await, "a refused license");
    assert!(ok(store.find_idempotency(&record("c").key).await, "find").is_none());

    // Revoking one gives its place back.
    let revoked = run(&store, by_id(&two[0].id), t0(), |agg| {
        lifecycle::revoke(agg, t0())
    })
    .await
    .expect("an active license can be revoked");
    assert_eq!(revoked.status, crate::model::LicenseStatus::Revoked);
    let c_now = ok(store.get_contract(&c.id).await, "get");
    assert_eq!(c_now.licenses_issued, 1, "a revoked license does not count");
    assert_eq!(c_now.remaining(), 2);

    // A contract's licenses are issued within its quota only; and only its own.
    expect_conflict(
        store
            .insert_licenses(NewLicenses::of(&more), vec![], None)
            .await,
        "insert_licenses of a contract's licenses",
    );
    expect_conflict(
        store.insert_license(&more[0], vec![]).await,
        "insert_license of a contract's license",
    );
    let stray = vec![license(&s.policy, 20)];
    expect_conflict(
        store
            .insert_contract_licenses(&c.id, NewLicenses::of(&stray), vec![], None, |_| Ok(()))
            .await,
        "insert_contract_licenses of a license not naming it",
    );
    expect_not_found(
        store
            .insert_contract_licenses(
                &parse("ctr_missing"),
                NewLicenses::of(&[] as &[License]),
                vec![],
                None,
                |_| Ok(()),
            )
            .await,
        "insert_contract_licenses under a missing contract",
    );

    // Listing, by reseller.
    let listed = ok(
        store
            .list_contracts(Some(&reseller.id), Limit::default())
            .await,
        "list",
    );
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].licenses_issued, 1);
    assert!(
        ok(
            store
                .list_contracts(Some(&parse("cus_other")), Limit::default())
                .await,
            "list"
        )
        .is_empty()
    );
    assert_eq!(
        ok(store.list_contracts(None, Limit::default()).await, "list").len(),
        1
    );
    let filtered = ok(
        store
            .list_licenses(&LicenseQuery {
                contract_id: Some(c.id.clone()),
                ..LicenseQuery::default()
            })
            .await,
        "list_licenses by contract",
    );
    assert_eq!(filtered.len(), 2, "revoked ones are still the contract's");

    // What a contract names cannot go while it does.
    expect_conflict(
        store.delete_policy(&s.policy.id, vec![]).await,
        "delete_policy of a contract's policy",
    );
    let fresh = customer(2);
    ok(
        store.insert_customer(&fresh, vec![]).await,
        "insert_customer",
    );
    let mut empty = contract(&s.policy, &fresh.id, 1);
    empty.id = parse("ctr_0002");
    ok(
        store.insert_contract(&empty, vec![]).await,
        "insert_contract",
    );
    expect_conflict(
        store.delete_customer(&fresh.id, vec![]).await,
        "delete_customer of a reseller",
    );
}

/// 32 tasks issuing one license each under a quota of 20: exactly 20 are issued.
pub async fn concurrent_contract_issues_never_pass_the_quota<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const TASKS: u32 = 32;
    const QUOTA: u32 = 20;
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let reseller = customer(1);
    ok(
        store.insert_customer(&reseller, vec![]).await,
        "insert_customer",
    );
    let c = contract(&s.policy, &reseller.id, QUOTA);
    ok(store.insert_contract(&c, vec![]).await, "insert_contract");
    let tasks: Vec<Boxed<StoreResult<Result<(), Denial>>>> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let one = issued(&s.policy, &c, 100 + i, 101 + i);
            let id = c.id.clone();
            Box::pin(async move {
                store
                    .insert_contract_licenses(&id, NewLicenses::of(&one), vec![], None, |c| {
                        allocation::admit(c, 1)
                    })
                    .await
            }) as Boxed<_>
        })
        .collect();
    let mut admitted = 0;
    for r in run_concurrently(&spawner, tasks).await {
        match ok(r, "insert_contract_licenses") {
            Ok(()) => admitted += 1,
            Err(d) => assert!(d.has(DenialCode::ContractQuotaExceeded), "got {d}"),
        }
    }
    assert_eq!(admitted, QUOTA, "exactly the quota");
    assert_eq!(
        ok(store.get_contract(&c.id).await, "get").licenses_issued,
        QUOTA
    );
    assert_eq!(
        of_customer(&store, &reseller.id).await.len(),
        QUOTA as usize
    );
}
