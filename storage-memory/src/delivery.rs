//! [`DeliveryStore`]: the webhook outbox, kept beside the event log under its lock.
//!
//! The log holds a copy of what fan-out needs of each endpoint (active, event types), kept
//! current by the webhook writes (which take `access`, then `events`), so appending an event
//! writes its deliveries under the same lock, as one step: a reader never sees an event
//! without its deliveries. Like the rest of this store, the outbox is not durable: it lives
//! as long as the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use licentia_core::model::{
    Delivery, DeliveryAttempt, DeliveryId, DeliveryStatus, Event, WebhookEndpoint, WebhookId,
};
use licentia_core::store::{
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryPage, DeliveryReport, DeliveryStore,
    Limit, NewEvent, StoreError, StoreResult,
};

use crate::MemoryStore;
use crate::state::Access;

/// What fan-out needs of an endpoint.
#[derive(Debug, Clone)]
struct Subscriber {
    active: bool,
    /// Empty means every event.
    event_types: Vec<String>,
}

impl Subscriber {
    fn wants(&self, event_type: &str) -> bool {
        self.active
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
    }
}

/// One delivery and its attempts.
#[derive(Debug, Clone)]
struct Entry {
    webhook_id: WebhookId,
    sequence: i64,
    event_type: String,
    status: DeliveryStatus,
    /// The number of the latest claimed attempt.
    claimed: u32,
    attempts: Vec<DeliveryAttempt>,
    next_attempt_at: DateTime<Utc>,
    lease_until: Option<DateTime<Utc>>,
    series_started_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl Entry {
    fn leased_at(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|l| l > now)
    }

    fn to_delivery(&self, id: i64) -> Delivery {
        Delivery {
            id: DeliveryId::new(id),
            webhook_id: self.webhook_id.clone(),
            event_id: Delivery::event_id_of(self.sequence),
            event_type: self.event_type.clone(),
            status: self.status,
            next_attempt_at: (self.status == DeliveryStatus::Pending)
                .then_some(self.next_attempt_at),
            attempts: self.attempts.clone(),
            created_at: self.created_at,
        }
    }
}

/// The outbox: every delivery, the pending ones indexed, and the endpoints' pauses.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    subscribers: HashMap<WebhookId, Subscriber>,
    deliveries: BTreeMap<i64, Entry>,
    pending: BTreeSet<i64>,
    last_id: i64,
    paused_until: HashMap<WebhookId, DateTime<Utc>>,
}

impl Outbox {
    /// Mirrors an inserted or updated endpoint; an update lifts its pause.
    pub(crate) fn subscribe(&mut self, w: &WebhookEndpoint) {
        self.subscribers.insert(
            w.id.clone(),
            Subscriber {
                active: w.is_active,
                event_types: w.event_types.clone(),
            },
        );
        self.paused_until.remove(&w.id);
    }

    /// Forgets a deleted endpoint and its deliveries.
    pub(crate) fn unsubscribe(&mut self, id: &WebhookId) {
        self.subscribers.remove(id);
        self.paused_until.remove(id);
        let pending = &mut self.pending;
        self.deliveries.retain(|n, d| {
            let keep = d.webhook_id != *id;
            if !keep {
                pending.remove(n);
            }
            keep
        });
    }

    /// Writes the deliveries of a just-appended event.
    pub(crate) fn fan_out(&mut self, event: &Event) {
        for (id, s) in &self.subscribers {
            if !s.wants(&event.event_type) {
                continue;
            }
            self.last_id += 1;
            self.pending.insert(self.last_id);
            self.deliveries.insert(
                self.last_id,
                Entry {
                    webhook_id: id.clone(),
                    sequence: event.sequence,
                    event_type: event.event_type.clone(),
                    status: DeliveryStatus::Pending,
                    claimed: 0,
                    attempts: Vec::new(),
                    next_attempt_at: event.created_at,
                    lease_until: None,
                    series_started_at: event.created_at,
                    created_at: event.created_at,
                },
            );
        }
    }

    fn claim(
        &mut self,
        claim: &DeliveryClaim,
        access: &Access,
        events: &[Event],
    ) -> Vec<ClaimedDelivery> {
        let now = claim.now;
        let mut in_flight: HashMap<&WebhookId, u32> = HashMap::new();
        let mut due = Vec::new();
        for n in &self.pending {
            let d = &self.deliveries[n];
            if d.leased_at(now) {
                *in_flight.entry(&d.webhook_id).or_default() += 1;
            } else if d.next_attempt_at <= now {
                let eligible = access.webhooks.get(&d.webhook_id).is_some_and(|(w, _)| {
                    w.is_active && self.paused_until.get(&w.id).is_none_or(|p| *p <= now)
                });
                if eligible {
                    due.push((&d.webhook_id, d.next_attempt_at, *n));
                }
            }
        }
        // Each due delivery's slot: the endpoint's deliveries in flight plus its rank among
        // the endpoint's due ones, oldest first. Taking the lowest slots first goes
        // round-robin across endpoints.
        due.sort_unstable_by_key(|(w, at, n)| (*w, *at, *n));
        let mut ranked = Vec::with_capacity(due.len());
        let mut rank = 0;
        for (i, (w, at, n)) in due.iter().enumerate() {
            rank = if i > 0 && due[i - 1].0 == *w {
                rank + 1
            } else {
                1
            };
            let slot = rank + in_flight.get(w).copied().unwrap_or(0);
            if slot <= claim.per_endpoint {
                ranked.push((slot, *at, *n));
            }
        }
        ranked.sort_unstable();
        ranked.truncate(claim.limit as usize);
        let mut claimed = Vec::with_capacity(ranked.len());
        for (_, _, n) in ranked {
            let d = self.deliveries.get_mut(&n).expect("ranked from the map");
            let (Some((webhook, secret)), Some(event)) = (
                access.webhooks.get(&d.webhook_id),
                event_at(events, d.sequence),
            ) else {
                continue;
            };
            d.claimed += 1;
            d.lease_until = Some(claim.lease_until);
            claimed.push(ClaimedDelivery {
                id: DeliveryId::new(n),
                attempt: d.claimed,
                series_started_at: d.series_started_at,
                event: event.clone(),
                webhook: webhook.clone(),
                secret: secret.clone(),
            });
        }
        claimed
    }

    /// Applies a report to the delivery; returns whether it was applied.
    fn finish(&mut self, report: &DeliveryReport) -> Option<bool> {
        let n = report.id.get();
        let d = self.deliveries.get_mut(&n)?;
        if d.webhook_id != report.webhook_id {
            return None;
        }
        d.attempts.push(report.attempt.clone());
        d.attempts.sort_by_key(|a| a.attempt);
        if d.claimed != report.attempt.attempt || d.status != DeliveryStatus::Pending {
            return Some(false);
        }
        d.lease_until = None;
        let pause = match report.outcome {
            DeliveryOutcome::Delivered => {
                d.status = DeliveryStatus::Delivered;
                None
            }
            DeliveryOutcome::RetryAt {
                at,
                endpoint_paused_until,
            } => {
                d.next_attempt_at = at;
                Some(endpoint_paused_until)
            }
            DeliveryOutcome::Failed {
                endpoint_paused_until,
            } => {
                d.status = DeliveryStatus::Failed;
                Some(endpoint_paused_until)
            }
        };
        if d.status != DeliveryStatus::Pending {
            self.pending.remove(&n);
        }
        match pause {
            None => {
                self.paused_until.remove(&report.webhook_id);
            }
            Some(p) => {
                let until = self
                    .paused_until
                    .entry(report.webhook_id.clone())
                    .or_insert(p);
                *until = (*until).max(p);
            }
        }
        Some(true)
    }

    fn page(&self, webhook: &WebhookId, before: Option<DeliveryId>, limit: Limit) -> DeliveryPage {
        let end = before.map_or(i64::MAX, DeliveryId::get);
        let mut deliveries = Vec::with_capacity(limit.as_usize());
        let mut more = false;
        for (n, d) in self.deliveries.range(..end).rev() {
            if d.webhook_id != *webhook {
                continue;
            }
            if deliveries.len() == limit.as_usize() {
                more = true;
                break;
            }
            deliveries.push(d.to_delivery(*n));
        }
        let next_cursor = if more {
            deliveries.last().map(|d: &Delivery| d.id)
        } else {
            None
        };
        DeliveryPage {
            deliveries,
            next_cursor,
        }
    }
}

/// The event with `sequence` (the log is in sequence order).
fn event_at(events: &[Event], sequence: i64) -> Option<&Event> {
    let i = events.partition_point(|e| e.sequence < sequence);
    events.get(i).filter(|e| e.sequence == sequence)
}

/// The endpoint's record after a report: last attempt, and failure state.
fn record_on_endpoint(w: &mut WebhookEndpoint, report: &DeliveryReport) {
    let a = &report.attempt;
    w.last_delivery_at = Some(
        w.last_delivery_at
            .map_or(a.started_at, |t| t.max(a.started_at)),
    );
    w.last_status_code = a.status_code;
    if matches!(report.outcome, DeliveryOutcome::Delivered) {
        w.last_delivery_status = Some(DeliveryStatus::Delivered);
        w.failing_since = None;
    } else {
        w.last_delivery_status = Some(DeliveryStatus::Failed);
        w.failing_since = w.failing_since.or(Some(a.started_at));
    }
}

impl DeliveryStore for MemoryStore {
    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> StoreResult<Vec<ClaimedDelivery>> {
        let access = self.inner.access.read();
        let mut log = self.inner.events.lock();
        let (outbox, events) = log.outbox_and_events();
        Ok(outbox.claim(claim, &access, events))
    }

    async fn finish_delivery(&self, report: DeliveryReport) -> StoreResult<bool> {
        let mut access = self.inner.access.write();
        let mut log = self.inner.events.lock();
        let Some(applied) = log.outbox().finish(&report) else {
            return Ok(false);
        };
        let Some((w, _)) = access.webhooks.get_mut(&report.webhook_id) else {
            return Ok(applied);
        };
        record_on_endpoint(w, &report);
        if let Some(events) = report
            .disable
            .filter(|_| w.is_active && w.failing_since.is_some())
        {
            w.is_active = false;
            if let Some(e) = events.first() {
                w.updated_at = e.created_at;
            }
            log.outbox().subscribe(w);
            log.append(events);
        }
        Ok(applied)
    }

    async fn list_deliveries(
        &self,
        webhook: &WebhookId,
        before: Option<DeliveryId>,
        limit: Limit,
    ) -> StoreResult<DeliveryPage> {
        let access = self.inner.access.read();
        if !access.webhooks.contains_key(webhook) {
            return Err(StoreError::not_found("webhook"));
        }
        let mut log = self.inner.events.lock();
        Ok(log.outbox().page(webhook, before, limit))
    }

    async fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Delivery> {
        let access = self.inner.access.read();
        if !access.webhooks.contains_key(webhook) {
            return Err(StoreError::not_found("webhook"));
        }
        let mut log = self.inner.events.lock();
        let outbox = log.outbox();
        let d = outbox
            .deliveries
            .get_mut(&id.get())
            .filter(|d| d.webhook_id == *webhook)
            .ok_or(StoreError::not_found("delivery"))?;
        d.status = DeliveryStatus::Pending;
        d.next_attempt_at = now;
        d.series_started_at = now;
        let delivery = d.to_delivery(id.get());
        outbox.pending.insert(id.get());
        log.append(events);
        Ok(delivery)
    }

    async fn purge_deliveries(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut log = self.inner.events.lock();
        let outbox = log.outbox();
        let mut left = limit;
        outbox.deliveries.retain(|_, d| {
            let old = d.status != DeliveryStatus::Pending && d.series_started_at < started_before;
            if old && left > 0 {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok(u64::from(limit - left))
    }

    async fn count_pending_deliveries(&self) -> StoreResult<u64> {
        Ok(self.inner.events.lock().outbox().pending.len() as u64)
    }
}
