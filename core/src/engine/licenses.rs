//! License management: create, read, list, lifecycle, devices, feature assignments, usage.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde::Serialize;

use super::catalog::parse_id;
use super::requests::LicenseCreate;
use super::runner::{Answer, Caller, Idempotency, ResponseBody, Unrecorded, plain_body};
use super::{Actor, Clock, Engine, EngineError};
use crate::crypto::LicenseKey;
use crate::model::{
    CustomerId, Device, DeviceId, FeatureAssignRequest, Lease, License, LicenseFeature, LicenseId,
    LicenseStatus, LicenseTerms, Policy, PolicyId, ProductId, RenewRequest, TransferRequest,
    UsageResetRequest,
};
use crate::rules::{
    Denial, DenialCode, LicenseAggregate, Plan, activation, lifecycle, metering, status,
};
use crate::store::{AggregateQuery, LicenseQuery, LicenseSelector, Limit, Store};

/// A created license and its key, which is shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseCreated {
    /// The license (effective status).
    pub license: License,
    /// The full license key; only its hash is stored.
    pub license_key: String,
}

/// Idempotency and bookkeeping of a management call that takes an `Idempotency-Key`.
#[derive(Debug, Clone, Copy)]
pub struct ManagementCall<'a> {
    /// The `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// Echoed in `meta.request_id`.
    pub request_id: &'a str,
}

/// `license` as clients see it: the effective status at `now` instead of the stored one.
pub fn present(mut license: License, policy: &Policy, now: DateTime<Utc>) -> License {
    license.status = status::effective_status(&license, policy, now);
    license
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Creates a license and returns its key once.
    ///
    /// The policy must belong to the product; so must the order and subscription when given.
    /// An order linked to a subscription sets the license's subscription when none is given.
    ///
    /// # Errors
    ///
    /// `NotFound` for a missing product, policy, customer, order or subscription;
    /// `CROSS_PRODUCT_LINK` and date rules as `Denied`; storage failures.
    pub async fn create_license(
        &self,
        actor: &Actor,
        req: LicenseCreate,
    ) -> Result<LicenseCreated, EngineError> {
        let (product, policy, terms) = self.license_terms(&req).await?;
        let now = self.now();
        let (license, key) = self.new_license(product, &policy, terms, now)?;
        self.store
            .insert_license(&license.outcome, actor.events(license.events, now))
            .await?;
        Ok(LicenseCreated {
            license: present(license.outcome, &policy, now),
            license_key: key.expose_secret().to_owned(),
        })
    }

    /// What a new license of `req` is made of: its product, its policy and its terms, every
    /// reference checked.
    pub(super) async fn license_terms(
        &self,
        req: &LicenseCreate,
    ) -> Result<(ProductId, Policy, LicenseTerms), EngineError> {
        let product = self
            .store
            .get_product(&parse_id(&req.product_id, "product")?)
            .await?;
        let policy = self
            .store
            .get_policy(&parse_id::<PolicyId>(&req.policy_id, "policy")?)
            .await?;
        let cross = |what: &str| {
            EngineError::denied(
                DenialCode::CrossProductLink,
                None,
                format!("the {what} belongs to another product"),
            )
        };
        if policy.product_id != product.id {
            return Err(cross("policy"));
        }
        let customer_id = match non_empty(&req.customer_id) {
            Some(raw) => Some(
                self.store
                    .get_customer(&parse_id(raw, "customer")?)
                    .await?
                    .id,
            ),
            None => None,
        };
        let order = match non_empty(&req.order_id) {
            Some(raw) => Some(self.store.get_order(&parse_id(raw, "order")?).await?),
            None => None,
        };
        if order.as_ref().is_some_and(|o| o.product_id != product.id) {
            return Err(cross("order"));
        }
        let subscription_id = match non_empty(&req.subscription_id) {
            Some(raw) => {
                let s = self
                    .store
                    .get_subscription(&parse_id(raw, "subscription")?)
                    .await?;
                if s.product_id != product.id {
                    return Err(cross("subscription"));
                }
                Some(s.id)
            }
            None => order.as_ref().and_then(|o| o.subscription_id.clone()),
        };
        let terms = LicenseTerms {
            customer_id,
            order_id: order.map(|o| o.id),
            subscription_id,
            customer_email: req.customer_email.clone(),
            customer_name: req.customer_name.clone(),
            starts_at: req.starts_at,
            expires_at: req.expires_at,
            maintenance_expires_at: req.maintenance_expires_at,
            metadata: req.metadata.clone().unwrap_or_default(),
        };
        Ok((product.id, policy, terms))
    }

    /// A new license under `policy` with a fresh id and key (not stored yet).
    pub(super) fn new_license(
        &self,
        product: ProductId,
        policy: &Policy,
        terms: LicenseTerms,
        now: DateTime<Utc>,
    ) -> Result<(Plan<License>, LicenseKey), EngineError> {
        let (id, key) = self.with_rng(|r| (LicenseId::generate(r), LicenseKey::generate(r)));
        let display = lifecycle::KeyDisplay {
            hash: key.hash(),
            prefix: key.prefix().to_owned(),
            last4: key.last4().to_owned(),
        };
        let plan = lifecycle::create_license(id, product, policy, terms, display, now)?;
        Ok((plan, key))
    }

    /// The license with `id`, with its effective status.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_license(&self, id: &str) -> Result<License, EngineError> {
        let license = self.store.get_license(&parse_id(id, "license")?).await?;
        let policy = self.store.get_policy(&license.policy_id).await?;
        Ok(present(license, &policy, self.now()))
    }

    /// Licenses matching `query`; `status` filters by effective status at now.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_licenses(
        &self,
        mut query: LicenseQuery,
        status: Option<LicenseStatus>,
    ) -> Result<Vec<License>, EngineError> {
        let now = self.now();
        let want = query.limit.as_usize();
        query.stored_status = match status {
            Some(s @ (LicenseStatus::Suspended | LicenseStatus::Revoked)) => Some(s),
            Some(_) => Some(LicenseStatus::Active),
            None => None,
        };
        query.limit = Limit::MAX;
        let mut policies: HashMap<PolicyId, Policy> = HashMap::new();
        let mut out = Vec::with_capacity(want);
        loop {
            let page = self.store.list_licenses(&query).await?;
            let exhausted = page.len() < query.limit.as_usize();
            for l in page {
                query.after = Some((l.created_at, l.id.clone()));
                if !policies.contains_key(&l.policy_id) {
                    let p = self.store.get_policy(&l.policy_id).await?;
                    policies.insert(p.id.clone(), p);
                }
                let l = present(l.clone(), &policies[&l.policy_id], now);
                if status.is_none_or(|s| l.status == s) {
                    out.push(l);
                    if out.len() == want {
                        return Ok(out);
                    }
                }
            }
            if exhausted {
                return Ok(out);
            }
        }
    }

    /// Renews a license (idempotent).
    ///
    /// # Errors
    ///
    /// `NotFound`; `Denied` (both or neither field, perpetual, revoked); idempotency conflict.
    pub async fn renew_license(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        id: &str,
        req: &RenewRequest,
    ) -> Result<ResponseBody, EngineError> {
        let id: LicenseId = parse_id(id, "license")?;
        // Renewal sources are validated and recorded in the event, never linked (contract).
        let mut sources = Vec::new();
        if let Some(o) = &req.order_id {
            sources.push(("order_id", self.store.get_order(o).await?.product_id));
        }
        if let Some(s) = &req.subscription_id {
            sources.push((
                "subscription_id",
                self.store.get_subscription(s).await?.product_id,
            ));
        }
        if !sources.is_empty() {
            let license = self.store.get_license(&id).await?;
            if let Some((field, _)) = sources.iter().find(|(_, p)| p != &license.product_id) {
                return Err(EngineError::denied(
                    DenialCode::CrossProductLink,
                    Some(field),
                    "it belongs to another product",
                ));
            }
        }
        self.idempotent(actor, call, "renew", &id, req, |agg, now| {
            lifecycle::renew(agg, req, now)
        })
        .await
    }

    /// Transfers a license (idempotent). `customer_id: ""` clears the customer.
    ///
    /// # Errors
    ///
    /// `NotFound` license or customer; `Denied`; idempotency conflict.
    pub async fn transfer_license(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        id: &str,
        req: &TransferRequest,
    ) -> Result<ResponseBody, EngineError> {
        let id: LicenseId = parse_id(id, "license")?;
        let customer: Option<Option<CustomerId>> = match req.customer_id.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(raw) => Some(Some(
                self.store
                    .get_customer(&parse_id(raw, "customer")?)
                    .await?
                    .id,
            )),
        };
        self.idempotent(actor, call, "transfer", &id, req, |agg, now| {
            lifecycle::transfer(agg, req, customer, now)
        })
        .await
    }

    /// Suspends a license.
    ///
    /// # Errors
    ///
    /// `NotFound`; revoked licenses cannot change.
    pub async fn suspend_license(&self, actor: &Actor, id: &str) -> Result<License, EngineError> {
        self.admin(actor, id, lifecycle::suspend).await
    }

    /// Reinstates a suspended license.
    ///
    /// # Errors
    ///
    /// As [`Self::suspend_license`].
    pub async fn reinstate_license(&self, actor: &Actor, id: &str) -> Result<License, EngineError> {
        self.admin(actor, id, lifecycle::reinstate).await
    }

    /// Revokes a license for good, releasing every seat and lease.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn revoke_license(&self, actor: &Actor, id: &str) -> Result<License, EngineError> {
        self.admin(actor, id, lifecycle::revoke).await
    }

    /// A license's devices.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn list_devices(
        &self,
        license: &str,
        limit: Limit,
    ) -> Result<Vec<Device>, EngineError> {
        Ok(self
            .store
            .list_devices(&parse_id(license, "license")?, limit)
            .await?)
    }

    /// The floating leases holding a seat of a license now (not checked in, not past their
    /// expiry), in checkout order. Read from a snapshot, like validate.
    ///
    /// # Errors
    ///
    /// `NotFound` (a malformed id names no license too), storage failures.
    pub async fn list_leases(&self, license: &str) -> Result<Vec<Lease>, EngineError> {
        let now = self.now();
        let query = AggregateQuery {
            selector: Some(LicenseSelector::Id(parse_id(license, "license")?)),
            ..AggregateQuery::default()
        };
        let aggregate = self.store.read_license(&query).await?;
        Ok(aggregate
            .leases
            .into_iter()
            .filter(|l| l.is_live_at(now))
            .collect())
    }

    /// One device of a license.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_device(&self, license: &str, device: &str) -> Result<Device, EngineError> {
        Ok(self
            .store
            .get_device(&parse_id(license, "license")?, &parse_id(device, "device")?)
            .await?)
    }

    /// Releases a device's seat.
    ///
    /// # Errors
    ///
    /// `NotFound` license or device.
    pub async fn reset_device(
        &self,
        actor: &Actor,
        license: &str,
        device: &str,
    ) -> Result<Device, EngineError> {
        let (device, query) = self.device_query(license, device).await?;
        self.admin_with(actor, license, query, |agg, now| {
            activation::reset_device(agg, &device, now)
        })
        .await
    }

    /// Blacklists a device: its seat is freed and its binding refused forever.
    ///
    /// # Errors
    ///
    /// `NotFound` license or device.
    pub async fn blacklist_device(
        &self,
        actor: &Actor,
        license: &str,
        device: &str,
    ) -> Result<Device, EngineError> {
        let (device, query) = self.device_query(license, device).await?;
        self.admin_with(actor, license, query, |agg, now| {
            activation::blacklist_device(agg, &device, now)
        })
        .await
    }

    /// The id of `device` on `license` and an aggregate query that loads it whatever its
    /// status: an aggregate holds the active devices only, and a deactivated or reset device
    /// can still be blacklisted (or reset again, which changes nothing).
    pub(super) async fn device_query(
        &self,
        license: &str,
        device: &str,
    ) -> Result<(DeviceId, AggregateQuery), EngineError> {
        let d = self
            .store
            .get_device(&parse_id(license, "license")?, &parse_id(device, "device")?)
            .await?;
        let query = AggregateQuery {
            binding_key: Some(d.binding_key.clone()),
            ..AggregateQuery::default()
        };
        Ok((d.id, query))
    }

    /// A license's feature assignments with current-period usage.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn list_license_features(
        &self,
        license: &str,
        limit: Limit,
    ) -> Result<Vec<LicenseFeature>, EngineError> {
        let now = self.now();
        let fs = self
            .store
            .list_license_features(&parse_id(license, "license")?, limit)
            .await?;
        Ok(fs.iter().map(|f| metering::rolled(f, now)).collect())
    }

    /// Assigns a feature of the license's product.
    ///
    /// # Errors
    ///
    /// `NotFound` license or feature; `CROSS_PRODUCT_LINK`; invalid amounts.
    pub async fn assign_feature(
        &self,
        actor: &Actor,
        license: &str,
        req: &FeatureAssignRequest,
    ) -> Result<LicenseFeature, EngineError> {
        let feature = self.store.get_feature(&req.feature_id).await?;
        self.admin_with(actor, license, AggregateQuery::default(), |agg, now| {
            if feature.product_id != agg.license.product_id {
                return Err(Denial::one(crate::rules::DenialReason::field(
                    DenialCode::CrossProductLink,
                    "feature_id",
                    "the feature belongs to another product",
                )));
            }
            lifecycle::assign_feature(agg, &feature, req, now)
        })
        .await
    }

    /// Removes a feature assignment.
    ///
    /// # Errors
    ///
    /// `NotFound` license or assignment.
    pub async fn remove_feature(
        &self,
        actor: &Actor,
        license: &str,
        feature: &str,
    ) -> Result<(), EngineError> {
        let feature = parse_id(feature, "feature")?;
        self.admin_with(actor, license, AggregateQuery::default(), |agg, now| {
            lifecycle::remove_feature(agg, &feature, now)
        })
        .await
    }

    /// The contract's usage reset, selecting the assignment by `feature_id` or `feature_code`.
    ///
    /// # Errors
    ///
    /// `NotFound` license or assignment; `USAGE_RESET_INVALID`.
    pub async fn reset_usage(
        &self,
        actor: &Actor,
        license: &str,
        req: &UsageResetRequest,
    ) -> Result<LicenseFeature, EngineError> {
        self.admin_with(actor, license, AggregateQuery::default(), |agg, now| {
            metering::reset_usage(agg, req, now)
        })
        .await
    }

    async fn admin(
        &self,
        actor: &Actor,
        id: &str,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<License>, Denial> + Send,
    ) -> Result<License, EngineError> {
        let license = self.admin_with(actor, id, AggregateQuery::default(), |agg, now| {
            decide(agg, now).map(|p| p.map(|l| (l, agg.policy.clone())))
        });
        let (license, policy) = license.await?;
        Ok(present(license, &policy, self.now()))
    }

    /// Runs a management rule on one license under its lock (not idempotent: the outcome is a
    /// value, not a stored body).
    pub(crate) async fn admin_with<T: Send>(
        &self,
        actor: &Actor,
        id: &str,
        mut query: AggregateQuery,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<T>, Denial> + Send,
    ) -> Result<T, EngineError> {
        query.selector = Some(LicenseSelector::Id(parse_id(id, "license")?));
        let answer = self
            .transact(query, None, Caller::Actor(actor), |agg, now| {
                Ok(decide(agg, now)?.map(Unrecorded))
            })
            .await
            .map_err(map_not_found)?;
        match answer {
            Answer::Fresh(Unrecorded(t)) => Ok(t),
            // Only an idempotency key replays, and none was given: a runner defect.
            Answer::Replayed(_) => Err(EngineError::internal(std::io::Error::other(
                "a replay without an idempotency key",
            ))),
        }
    }

    /// Runs an idempotent management rule whose outcome is a license, answered as
    /// `{"data":<license>,"meta":…}` and stored for replay with the effect.
    async fn idempotent<Q: Serialize + Sync>(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        op: &'static str,
        id: &LicenseId,
        req: &Q,
        decide: impl FnOnce(&LicenseAggregate, DateTime<Utc>) -> Result<Plan<License>, Denial> + Send,
    ) -> Result<ResponseBody, EngineError> {
        let scope = Idempotency::management_scope(id);
        let idempotency = Idempotency::new(scope, call.idempotency_key, op, req)?;
        let query = AggregateQuery::new(LicenseSelector::Id(id.clone()));
        let answer = self
            .transact(query, idempotency, Caller::Actor(actor), |agg, now| {
                let plan = decide(agg, now)?;
                let shown = present(plan.outcome.clone(), &agg.policy, now);
                let body = plain_body(&shown, call.request_id, now)?;
                Ok(plan.map(|_| ResponseBody::fresh(body)))
            })
            .await?;
        Ok(answer.into_response())
    }
}

/// Rules report a missing device or assignment as a denial of kind `NotFound`; management
/// callers get them as plain `NotFound`.
pub(super) fn map_not_found(e: EngineError) -> EngineError {
    match &e {
        EngineError::Denied(d) if d.has(DenialCode::DeviceNotFound) => {
            EngineError::NotFound { entity: "device" }
        }
        EngineError::Denied(d) if d.has(DenialCode::FeatureNotAssigned) => EngineError::NotFound {
            entity: "license_feature",
        },
        EngineError::Denied(d) if d.has(DenialCode::LicenseNotAssigned) => EngineError::NotFound {
            entity: "license_user",
        },
        _ => e,
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}
