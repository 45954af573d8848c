//! The webhook outbox: deliveries written with their events, claimed by one sender at a time.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{Limit, NewEvent, StoreResult};
use crate::model::{Delivery, DeliveryAttempt, DeliveryId, Event, WebhookEndpoint, WebhookId};
pub use crate::rules::delivery::DeliveryOutcome;

/// What [`DeliveryStore::claim_deliveries`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryClaim {
    /// The caller's clock: what is due, and which leases have run out.
    pub now: DateTime<Utc>,
    /// Until when the claimed deliveries are the caller's. The caller finishes each before
    /// then; one not finished by then may be claimed again (at-least-once).
    pub lease_until: DateTime<Utc>,
    /// At most this many deliveries.
    pub limit: u32,
    /// At most this many deliveries per endpoint in flight (claimed and not finished, by any
    /// sender), counting those already in flight.
    pub per_endpoint: u32,
}

/// A delivery the caller now holds, with what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// The number of the attempt this claim makes (1 for the first).
    pub attempt: u32,
    /// When the delivery's current series of attempts began: its creation, or the last
    /// retry request. The retry window counts from here.
    pub series_started_at: DateTime<Utc>,
    /// The event to deliver.
    pub event: Event,
    /// The endpoint as it is now (including `failing_since`).
    pub webhook: WebhookEndpoint,
    /// The endpoint's secret, to sign the body with.
    pub secret: String,
}

/// The report of one attempt of a claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryReport {
    /// The delivery.
    pub id: DeliveryId,
    /// Its endpoint.
    pub webhook_id: WebhookId,
    /// The attempt, numbered as claimed.
    pub attempt: DeliveryAttempt,
    /// What happens next.
    pub outcome: DeliveryOutcome,
    /// When given, the endpoint is disabled with these events, provided it is still active
    /// and still failing (a success or an update in the meantime cancels it).
    pub disable: Option<Vec<NewEvent>>,
}

/// A newest-first page of deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPage {
    /// The deliveries, each with its attempts.
    pub deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<DeliveryId>,
}

/// The webhook outbox.
///
/// # Contract
///
/// - **Written with the event.** Every write that appends an event also writes, in the same
///   transaction, one pending delivery for each endpoint that is active at that moment and
///   whose `event_types` is empty or names the event's type, due at the event's
///   `created_at`. A write that fails leaves no delivery; an event never misses one because
///   of a commit that lands late. Deleting an endpoint deletes its deliveries.
/// - **One sender per attempt.** [`claim_deliveries`](Self::claim_deliveries) hands a due,
///   unleased, pending delivery of an active, unpaused endpoint to exactly one caller, however
///   many claim at once (on PostgreSQL, across instances), numbering the attempt. A delivery
///   whose lease runs out unfinished is claimed again with the next number, so each delivery
///   is sent at least once, and no attempt number is sent twice.
/// - **Reports are fenced.** [`finish_delivery`](Self::finish_delivery) records the attempt,
///   and applies the outcome only while the attempt is the delivery's latest and the
///   delivery is pending; a report that comes after its lease was claimed again changes
///   nothing but the attempt history. The endpoint's `last_delivery_*` fields follow every
///   report; `Delivered` clears `failing_since` and the pause, a failure sets `failing_since`
///   if it is unset and never shortens a pause.
/// - **An update resets.** [`AccessStore::update_webhook`](super::AccessStore::update_webhook)
///   lifts the endpoint's pause (the record it writes carries `failing_since` as the engine
///   set it).
/// - Stores do not read the clock: `now` and every timestamp come from the caller.
///
/// # Errors
///
/// `NotFound` for an unknown endpoint or delivery (a delivery of another endpoint is
/// unknown), `Unavailable` when the backend cannot be reached, `Backend` otherwise.
pub trait DeliveryStore: Send + Sync {
    /// Claims due deliveries within the limits of `claim`, round-robin across endpoints:
    /// every endpoint's oldest due delivery before any endpoint's second (so a backlog on
    /// one endpoint does not delay another), oldest due first within a round.
    fn claim_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> impl Future<Output = StoreResult<Vec<ClaimedDelivery>>> + Send;

    /// Records an attempt of a claimed delivery and what follows from it. Returns whether
    /// the outcome was applied (see the fencing rule above).
    fn finish_delivery(
        &self,
        report: DeliveryReport,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The deliveries of endpoint `webhook`, newest first, before `before` when given.
    fn list_deliveries(
        &self,
        webhook: &WebhookId,
        before: Option<DeliveryId>,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<DeliveryPage>> + Send;

    /// Makes delivery `id` of endpoint `webhook` pending and due at `now`, opening a new
    /// retry window from `now`, with `events`; returns it. A delivery in flight keeps its
    /// lease (the retry is the next attempt after it).
    fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<Delivery>> + Send;

    /// Deletes at most `limit` finished (delivered or failed) deliveries, with their attempts,
    /// whose series started before `started_before`; returns how many. Pending ones are never
    /// deleted. Safe to run on several instances at once.
    fn purge_deliveries(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// How many deliveries are pending (the queue's depth).
    fn count_pending_deliveries(&self) -> impl Future<Output = StoreResult<u64>> + Send;
}
