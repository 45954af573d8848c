//! Pools and reseller contracts (extensions; the rules are in
//! [`rules::allocation`](crate::rules::allocation)).
//!
//! - A pool is filled by `POST /api/v1/licenses/bulk` with `pool`: licenses without a
//!   customer. [`Engine::assign_pool`] hands N of them, picked at random, to one customer.
//! - A contract gives a reseller a quota of licenses of one product and policy (or template).
//!   [`Engine::create_contract_licenses`] issues them within the quota;
//!   [`Engine::revoke_contract_license`] revokes one, which gives its place back.
//!
//! Both writes take an idempotency key like bulk creation (same scope: the caller), so a
//! retried call answers the first call's bytes instead of assigning or issuing again.

use rand_core::CryptoRng;
use serde::Serialize;
use serde_json::json;

use super::bulk::{Creation, Destination, Shape, check_count, creation_scope, parse_pool};
use super::catalog::{check_name, parse_id};
use super::licenses::{ManagementCall, present};
use super::requests::LicenseCreate;
use super::runner::{Idempotency, ResponseBody, plain_body};
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{
    Contract, ContractCreate, ContractId, ContractLicensesCreate, CustomerId, License,
    LicenseStatus, PoolAssign,
};
use crate::rules::{DomainEvent, allocation};
use crate::store::{Decision, IdempotencyRecord, Limit, Store};

/// The largest quota a contract may have.
pub const MAX_CONTRACT_QUOTA: u32 = 1_000_000;

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Creates a reseller contract.
    ///
    /// # Errors
    ///
    /// `INVALID_FIELD` for a quota of 0 or over [`MAX_CONTRACT_QUOTA`], a name too long, or
    /// neither a template nor a product and policy; `CROSS_PRODUCT_LINK` for a policy of
    /// another product or a product or policy other than the template's; `NotFound` customer,
    /// product, policy or template.
    pub async fn create_contract(
        &self,
        actor: &Actor,
        req: ContractCreate,
    ) -> Result<Contract, EngineError> {
        if !(1..=MAX_CONTRACT_QUOTA).contains(&req.license_quota) {
            return Err(EngineError::invalid(
                "license_quota",
                format!("license_quota must be 1 to {MAX_CONTRACT_QUOTA}"),
            ));
        }
        let now = self.now();
        let mut terms = LicenseCreate {
            product_id: req.product_id.clone().unwrap_or_default(),
            policy_id: req.policy_id.clone().unwrap_or_default(),
            customer_id: Some(req.customer_id.clone()),
            ..LicenseCreate::default()
        };
        let template_id = match &req.template_id {
            Some(id) => Some(self.template_for(id, &mut terms, now).await?.id),
            None => {
                for (field, value) in [
                    ("product_id", &terms.product_id),
                    ("policy_id", &terms.policy_id),
                ] {
                    if value.is_empty() {
                        return Err(EngineError::invalid(
                            field,
                            format!("{field} is required without a template_id"),
                        ));
                    }
                }
                None
            }
        };
        // The same checks as a license of these terms gets.
        let (product_id, policy, license) = self.license_terms(&terms).await?;
        let customer_id = license
            .customer_id
            .ok_or_else(|| EngineError::invalid("customer_id", "customer_id is required"))?;
        let contract = Contract {
            id: self.with_rng(|r| ContractId::generate(r)),
            name: check_name("name", req.name.as_deref().unwrap_or("Contract"))?,
            customer_id,
            product_id,
            policy_id: policy.id,
            template_id,
            license_quota: req.license_quota,
            licenses_issued: 0,
            metadata: req.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "contract.created",
            "contract",
            contract.id.as_str(),
            [
                ("customer_id", json!(contract.customer_id)),
                ("product_id", json!(contract.product_id)),
                ("license_quota", json!(contract.license_quota)),
            ],
        );
        self.store
            .insert_contract(&contract, vec![actor.event(e, now)])
            .await?;
        Ok(contract)
    }

    /// The contract `id`, with how many of its licenses are issued and not revoked.
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub async fn get_contract(&self, id: &str) -> Result<Contract, EngineError> {
        Ok(self.store.get_contract(&parse_id(id, "contract")?).await?)
    }

    /// Contracts, newest first; only `customer`'s when given (a malformed id lists none).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_contracts(
        &self,
        customer: Option<&str>,
        limit: Limit,
    ) -> Result<Vec<Contract>, EngineError> {
        let customer = match customer {
            Some(raw) => match raw.parse::<CustomerId>() {
                Ok(id) => Some(id),
                Err(_) => return Ok(Vec::new()),
            },
            None => None,
        };
        Ok(self.store.list_contracts(customer.as_ref(), limit).await?)
    }

    /// Issues `req.count` licenses under contract `id`, all or none, for its reseller, as
    /// its template or policy makes them; answered and keyed by `call.idempotency_key` as
    /// [`Self::create_licenses`].
    ///
    /// # Errors
    ///
    /// `INVALID_FIELD` for a `count` of 0 or over the bulk maximum; `CONTRACT_QUOTA_EXCEEDED`
    /// when the quota leaves fewer (counted exactly, under concurrency too);
    /// `IdempotencyConflict`; `NotFound` contract.
    pub async fn create_contract_licenses(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        id: &str,
        req: ContractLicensesCreate,
    ) -> Result<ResponseBody, EngineError> {
        #[derive(Serialize)]
        struct Hashed<'a> {
            contract_id: &'a str,
            count: u32,
        }
        let count = check_count(req.count)?;
        let contract = self.get_contract(id).await?;
        let template = contract.template_id.as_ref().map(|t| t.as_str().to_owned());
        // A contract made from a template follows it (its policy may have changed since).
        let policy_id = match &template {
            Some(_) => String::new(),
            None => contract.policy_id.as_str().to_owned(),
        };
        let license = LicenseCreate {
            product_id: contract.product_id.as_str().to_owned(),
            policy_id,
            customer_id: Some(contract.customer_id.as_str().to_owned()),
            ..LicenseCreate::default()
        };
        let hashed = Hashed {
            contract_id: contract.id.as_str(),
            count: req.count,
        };
        let hashed = serde_json::to_value(&hashed).map_err(EngineError::internal)?;
        self.create(
            actor,
            call,
            Creation {
                op: "create_contract_licenses",
                hashed: &hashed,
                license,
                template: template.as_deref(),
                count,
                shape: Shape::Many,
                destination: Destination::Contract(contract),
            },
        )
        .await
    }

    /// Revokes license `license` of contract `id`, which gives its place in the quota back.
    /// A license already revoked is answered as it is.
    ///
    /// # Errors
    ///
    /// `NotFound` contract, or license (also one not issued under the contract).
    pub async fn revoke_contract_license(
        &self,
        actor: &Actor,
        id: &str,
        license: &str,
    ) -> Result<License, EngineError> {
        let contract = self.get_contract(id).await?;
        let found = self
            .store
            .get_license(&parse_id(license, "license")?)
            .await?;
        if found.contract_id.as_ref() != Some(&contract.id) {
            return Err(EngineError::NotFound { entity: "license" });
        }
        if found.status == LicenseStatus::Revoked {
            return Ok(found);
        }
        self.revoke_license(actor, license).await
    }

    /// Assigns `req.count` licenses of `pool`, picked at random, to `req.customer_id`, all or
    /// none, answered as `{"data":[<License>…],"meta":…}`; keyed by `call.idempotency_key` as
    /// [`Self::create_licenses`]. Two calls at once never assign the same license.
    ///
    /// # Errors
    ///
    /// `INVALID_FIELD` for a malformed pool name or a `count` of 0 or over the bulk maximum;
    /// `POOL_EXHAUSTED` when the pool holds fewer unassigned licenses (the message says how
    /// many); `IdempotencyConflict`; `NotFound` customer.
    pub async fn assign_pool(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        pool: &str,
        req: PoolAssign,
    ) -> Result<ResponseBody, EngineError> {
        let pool = parse_pool(pool)?;
        check_count(req.count)?;
        let hashed = json!({"pool": pool, "customer_id": req.customer_id, "count": req.count});
        let idempotency = Idempotency::new(
            creation_scope(actor),
            call.idempotency_key,
            "assign_pool",
            &hashed,
        )?;
        if let Some(asked) = &idempotency
            && let Some(stored) = self.store.find_idempotency(&asked.key).await?
        {
            return ResponseBody::replay(stored, asked);
        }
        let customer = self
            .store
            .get_customer(&parse_id(&req.customer_id, "customer")?)
            .await?
            .id;
        let now = self.now();
        let decided = self
            .store
            .assign_pool(&pool, req.count, |found| {
                let (licenses, policies): (Vec<_>, Vec<_>) = found.into_iter().unzip();
                let plan =
                    match allocation::assign_pooled(licenses, &pool, req.count, &customer, now) {
                        Ok(plan) => plan,
                        Err(d) => return Decision::nothing(Err(EngineError::Denied(d))),
                    };
                let shown: Vec<License> = plan
                    .outcome
                    .iter()
                    .zip(&policies)
                    .map(|(l, p)| present(l.clone(), p, now))
                    .collect();
                let body = match plain_body(&shown, call.request_id, now) {
                    Ok(body) => body,
                    Err(e) => return Decision::nothing(Err(e)),
                };
                Decision {
                    mutations: plan.mutations,
                    events: actor.events(plan.events, now),
                    idempotency: idempotency.as_ref().map(|i| IdempotencyRecord {
                        key: i.key.clone(),
                        request_hash: i.request_hash,
                        status: 200,
                        body: body.clone(),
                        created_at: now,
                    }),
                    outcome: Ok(body),
                }
            })
            .await;
        match decided {
            Ok(Ok(body)) => Ok(ResponseBody::fresh(body)),
            Ok(Err(refused)) => self.refused(refused, idempotency.as_ref()).await,
            Err(e) => self.raced(e, idempotency.as_ref()).await,
        }
    }
}
