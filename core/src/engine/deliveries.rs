//! Webhook deliveries: the outbox a sender drains, and the management view of it.
//!
//! A host's sender loops over [`Engine::claim_deliveries`], sends each claimed delivery's
//! [`delivery_body`] signed with its endpoint's secret, and reports the attempt with
//! [`Engine::finish_delivery`]; [`rules::delivery`](crate::rules::delivery) decides what
//! follows. The engine holds no queue of its own: the store's outbox is the queue, so a
//! restart or a second instance picks up where the first stopped.

use rand_core::CryptoRng;
use serde_json::json;

use super::catalog::parse_id;
use super::{Actor, Clock, Engine, EngineError};
use crate::model::{Delivery, DeliveryAttempt, DeliveryId, Event};
use crate::rules::DomainEvent;
use crate::rules::delivery::{self, DeliveryOutcome, RetryPolicy};
use crate::store::{ClaimedDelivery, DeliveryClaim, DeliveryPage, DeliveryReport, Limit, Store};

/// The body of a delivery of `event`: `{"id","type","created_at","data"}` (DESIGN 4.3).
pub fn delivery_body(event: &Event) -> Vec<u8> {
    json!({
        "id": Delivery::event_id_of(event.sequence),
        "type": event.event_type,
        "created_at": event.created_at,
        "data": event,
    })
    .to_string()
    .into_bytes()
}

/// What [`Engine::finish_delivery`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// What follows for the delivery.
    pub outcome: DeliveryOutcome,
    /// Whether the report was applied (`false` when the lease had been claimed again).
    pub applied: bool,
    /// Whether the endpoint was found failing for long enough to be disabled.
    pub disabled_endpoint: bool,
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// The same engine with another retry schedule and endpoint limits.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// The retry schedule and endpoint limits deliveries follow.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry_policy
    }

    /// Claims up to `limit` due deliveries for `lease`, at most `per_endpoint` in flight per
    /// endpoint (DESIGN 5).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        per_endpoint: u32,
        lease: chrono::Duration,
    ) -> Result<Vec<ClaimedDelivery>, EngineError> {
        let now = self.now();
        let claim = DeliveryClaim {
            now,
            lease_until: now + lease,
            limit,
            per_endpoint,
        };
        Ok(self.store.claim_deliveries(&claim).await?)
    }

    /// Reports `attempt` of `claimed` and applies what the retry rules decide; an endpoint
    /// failing for long enough is disabled with a `webhook.disabled` event.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn finish_delivery(
        &self,
        claimed: &ClaimedDelivery,
        attempt: DeliveryAttempt,
    ) -> Result<Finished, EngineError> {
        let now = self.now();
        let seed = self.with_rng(|r| r.next_u64());
        let verdict = delivery::after_attempt(
            &self.retry_policy,
            &attempt,
            claimed.series_started_at,
            claimed.webhook.failing_since,
            now,
            seed,
        );
        let disable = verdict.disable_endpoint.then(|| {
            let e = DomainEvent::new(
                "webhook.disabled",
                "webhook",
                claimed.webhook.id.as_str(),
                [("reason", json!("failing"))],
            );
            vec![Actor::system().event(e, now)]
        });
        let applied = self
            .store
            .finish_delivery(DeliveryReport {
                id: claimed.id,
                webhook_id: claimed.webhook.id.clone(),
                attempt,
                outcome: verdict.outcome,
                disable,
            })
            .await?;
        Ok(Finished {
            outcome: verdict.outcome,
            applied,
            disabled_endpoint: verdict.disable_endpoint,
        })
    }

    /// The deliveries of endpoint `webhook`, newest first, each with its attempts, before
    /// `before` when given.
    ///
    /// # Errors
    ///
    /// A malformed id; `NotFound` for an unknown endpoint; storage failures.
    pub async fn list_deliveries(
        &self,
        webhook: &str,
        before: Option<DeliveryId>,
        limit: Limit,
    ) -> Result<DeliveryPage, EngineError> {
        let webhook = parse_id(webhook, "webhook")?;
        Ok(self.store.list_deliveries(&webhook, before, limit).await?)
    }

    /// Sends delivery `delivery` of endpoint `webhook` again, now, with a new retry window.
    ///
    /// # Errors
    ///
    /// Malformed ids; `NotFound` for an unknown endpoint or delivery; storage failures.
    pub async fn retry_delivery(
        &self,
        actor: &Actor,
        webhook: &str,
        delivery: &str,
    ) -> Result<Delivery, EngineError> {
        let webhook: crate::model::WebhookId = parse_id(webhook, "webhook")?;
        let id: DeliveryId = delivery
            .parse()
            .map_err(|_| EngineError::NotFound { entity: "delivery" })?;
        let now = self.now();
        let e = DomainEvent::new(
            "webhook.delivery_retried",
            "webhook",
            webhook.as_str(),
            [("delivery_id", json!(id.to_string()))],
        );
        Ok(self
            .store
            .retry_delivery(&webhook, id, now, vec![actor.event(e, now)])
            .await?)
    }

    /// How many deliveries are pending.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn pending_deliveries(&self) -> Result<u64, EngineError> {
        Ok(self.store.count_pending_deliveries().await?)
    }
}
