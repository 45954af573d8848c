//! [`DeliveryStore`](crate::store::DeliveryStore): deliveries written with their events,
//! claimed by one caller at a time under a lease, fenced reports, retries, pauses and
//! disabling, paging and deletion with the endpoint.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use crate::model::{DeliveryAttempt, DeliveryId, DeliveryStatus, WebhookEndpoint, WebhookId};
use crate::store::{ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryReport, Limit, Store};

use super::fixtures::{at, event_types_of, system_event, webhook};
use super::{Spawner, expect_already_exists, expect_not_found, ok, run_concurrently};

/// Endpoint `n` subscribed to `types` (empty: everything), active or not, with no events.
async fn endpoint<S: Store>(store: &S, n: u32, types: &[&str], active: bool) -> WebhookEndpoint {
    let mut w = webhook(n);
    w.event_types = types.iter().map(|t| (*t).to_owned()).collect();
    w.is_active = active;
    ok(
        store
            .insert_webhook(&w, &format!("whsec_{n}"), vec![])
            .await,
        "insert_webhook",
    );
    w
}

/// Appends one event of `event_type` at `at(secs)`.
async fn event<S: Store>(store: &S, event_type: &str, secs: i64) {
    ok(
        store
            .append_events(vec![system_event(
                event_type,
                "license",
                "lic_0001",
                at(secs),
            )])
            .await,
        "append_events",
    );
}

fn claim_at(now: i64, limit: u32, per_endpoint: u32) -> DeliveryClaim {
    DeliveryClaim {
        now: at(now),
        lease_until: at(now + 60),
        limit,
        per_endpoint,
    }
}

async fn claim<S: Store>(store: &S, c: DeliveryClaim) -> Vec<ClaimedDelivery> {
    ok(store.claim_deliveries(&c).await, "claim_deliveries")
}

fn attempt(c: &ClaimedDelivery, secs: i64, status: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt {
        attempt: c.attempt,
        started_at: at(secs),
        status_code: status,
        error: status.is_none().then(|| "connection refused".to_owned()),
        duration_ms: 12,
    }
}

async fn report<S: Store>(
    store: &S,
    c: &ClaimedDelivery,
    secs: i64,
    status: Option<u16>,
    outcome: DeliveryOutcome,
) -> bool {
    ok(
        store
            .finish_delivery(DeliveryReport {
                id: c.id,
                webhook_id: c.webhook.id.clone(),
                attempt: attempt(c, secs, status),
                outcome,
                disable: None,
            })
            .await,
        "finish_delivery",
    )
}

fn retry_at(next: i64, paused: i64) -> DeliveryOutcome {
    DeliveryOutcome::RetryAt {
        at: at(next),
        endpoint_paused_until: at(paused),
    }
}

async fn deliveries_of<S: Store>(store: &S, w: &WebhookId) -> Vec<crate::model::Delivery> {
    ok(
        store.list_deliveries(w, None, Limit::new(Some(200))).await,
        "list_deliveries",
    )
    .deliveries
}

fn ids(claimed: &[ClaimedDelivery]) -> Vec<DeliveryId> {
    claimed.iter().map(|c| c.id).collect()
}

/// An appended event gets one pending delivery per active endpoint subscribed to it, due at
/// the event's time; endpoints created later, inactive or subscribed elsewhere get none, and
/// a failed write writes none.
pub async fn deliveries_are_written_with_their_events<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    event(&store, "license.created", 1).await;
    let all = endpoint(&store, 1, &[], true).await;
    let some = endpoint(&store, 2, &["license.created"], true).await;
    let off = endpoint(&store, 3, &[], false).await;
    event(&store, "license.created", 10).await;
    event(&store, "device.activated", 11).await;
    // A failed write (a duplicate endpoint) appends no event, so no delivery either.
    let dup = webhook(1);
    expect_already_exists(
        store
            .insert_webhook(
                &dup,
                "whsec_x",
                vec![system_event(
                    "license.created",
                    "webhook",
                    "whk_0001",
                    at(12),
                )],
            )
            .await,
        "insert_webhook of a taken id",
    );

    assert_eq!(
        ok(
            store.count_pending_deliveries().await,
            "count_pending_deliveries"
        ),
        3
    );
    assert!(
        claim(&store, claim_at(9, 100, 100)).await.is_empty(),
        "a delivery is due at its event's created_at, not before"
    );
    let claimed = claim(&store, claim_at(100, 100, 100)).await;
    let mut seen: Vec<(String, String, u32)> = claimed
        .iter()
        .map(|c| {
            (
                c.webhook.id.to_string(),
                c.event.event_type.clone(),
                c.attempt,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("whk_0001".into(), "device.activated".into(), 1),
            ("whk_0001".into(), "license.created".into(), 1),
            ("whk_0002".into(), "license.created".into(), 1),
        ],
        "one delivery per subscribed active endpoint, none for older events or inactive endpoints"
    );
    for c in &claimed {
        assert_eq!(
            c.secret,
            format!(
                "whsec_{}",
                &c.webhook.id.as_str()[4..].trim_start_matches('0')
            )
        );
        assert_eq!(c.series_started_at, c.event.created_at);
        assert_eq!(
            c.event.resource_id.as_deref(),
            Some("lic_0001"),
            "the claim carries the event"
        );
    }
    for (w, n) in [(&all, 2), (&some, 1), (&off, 0)] {
        let listed = deliveries_of(&store, &w.id).await;
        assert_eq!(listed.len(), n, "list_deliveries of {}", w.id);
        for d in listed {
            assert_eq!(d.status, DeliveryStatus::Pending);
            assert!(d.attempts.is_empty(), "no attempt is reported yet");
            assert!(d.event_id.starts_with("evt_"));
        }
    }
}

/// A claimed delivery is leased: nobody else gets it until the lease runs out; then it is
/// claimed again with the next attempt number, the first holder's late report is recorded
/// but changes nothing, and the second holder's report applies.
pub async fn claims_are_leased_and_reports_fenced<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let w = endpoint(&store, 1, &[], true).await;
    event(&store, "license.created", 1).await;
    let first = claim(&store, claim_at(10, 10, 10)).await;
    assert_eq!(first.len(), 1);
    assert!(
        claim(&store, claim_at(69, 10, 10)).await.is_empty(),
        "a leased delivery is not claimed again before its lease runs out"
    );
    let second = claim(&store, claim_at(70, 10, 10)).await;
    assert_eq!(
        ids(&second),
        ids(&first),
        "an expired lease is claimed again"
    );
    assert_eq!(second[0].attempt, 2, "the new claim is the next attempt");

    assert!(
        !report(&store, &first[0], 10, Some(200), DeliveryOutcome::Delivered).await,
        "a report of an attempt that is no longer the latest is not applied"
    );
    let d = &deliveries_of(&store, &w.id).await[0];
    assert_eq!(
        d.status,
        DeliveryStatus::Pending,
        "the stale success changed nothing"
    );
    assert_eq!(d.attempts.len(), 1, "but its attempt is in the history");

    assert!(
        report(
            &store,
            &second[0],
            70,
            Some(204),
            DeliveryOutcome::Delivered
        )
        .await
    );
    let d = &deliveries_of(&store, &w.id).await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(
        d.attempts
            .iter()
            .map(|a| (a.attempt, a.status_code))
            .collect::<Vec<_>>(),
        [(1, Some(200)), (2, Some(204))],
        "attempts are listed oldest first"
    );
    assert_eq!(ok(store.count_pending_deliveries().await, "count"), 0);
    assert!(
        claim(&store, claim_at(1000, 10, 10)).await.is_empty(),
        "delivered is done"
    );
    let (w, _) = ok(store.get_webhook(&w.id).await, "get_webhook");
    assert_eq!(w.last_delivery_at, Some(at(70)));
    assert_eq!(w.last_delivery_status, Some(DeliveryStatus::Delivered));
    assert_eq!(w.last_status_code, Some(204));
    assert_eq!(w.failing_since, None);
}

/// A failure schedules the next attempt and pauses the endpoint (its other deliveries wait
/// too, other endpoints do not); `Failed` ends the delivery; a success clears the failure
/// state; an update lifts the pause; `disable` turns a still-failing endpoint off with its
/// events, after which nothing of it is claimed.
pub async fn failures_retry_pause_and_disable<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let dead = endpoint(&store, 1, &[], true).await;
    let live = endpoint(&store, 2, &[], true).await;
    for s in 1..=3 {
        event(&store, "license.created", s).await;
    }
    let first = claim(&store, claim_at(10, 100, 1)).await;
    assert_eq!(first.len(), 2, "one per endpoint");
    let (c, live_first): (Vec<_>, Vec<_>) =
        first.into_iter().partition(|c| c.webhook.id == dead.id);
    assert!(
        report(
            &store,
            &live_first[0],
            10,
            Some(200),
            DeliveryOutcome::Delivered
        )
        .await
    );
    assert!(report(&store, &c[0], 10, Some(503), retry_at(100, 50)).await);
    let (w, _) = ok(store.get_webhook(&dead.id).await, "get_webhook");
    assert_eq!(
        w.failing_since,
        Some(at(10)),
        "a failure starts failing_since"
    );
    assert_eq!(w.last_delivery_status, Some(DeliveryStatus::Failed));
    assert_eq!(w.last_status_code, Some(503));
    let d = deliveries_of(&store, &dead.id).await;
    let failed = d.iter().find(|d| d.id == c[0].id).expect("listed");
    assert_eq!(failed.next_attempt_at, Some(at(100)));
    assert_eq!(failed.attempts[0].error, None);

    let during = claim(&store, claim_at(20, 100, 100)).await;
    assert!(
        during.iter().all(|c| c.webhook.id == live.id) && during.len() == 2,
        "a paused endpoint gets nothing; the others are unaffected: {:?}",
        ids(&during)
    );
    for c in &during {
        assert!(report(&store, c, 20, Some(200), DeliveryOutcome::Delivered).await);
    }
    let after = claim(&store, claim_at(50, 100, 100)).await;
    assert_eq!(
        after.len(),
        2,
        "after the pause the endpoint's due deliveries are claimed"
    );
    // A second failure keeps failing_since and never shortens the pause.
    assert!(report(&store, &after[0], 50, None, retry_at(500, 400)).await);
    assert!(report(&store, &after[1], 50, None, retry_at(300, 60)).await);
    let (w, _) = ok(store.get_webhook(&dead.id).await, "get_webhook");
    assert_eq!(
        w.failing_since,
        Some(at(10)),
        "failing_since is kept while failing"
    );
    assert_eq!(w.last_status_code, None, "no answer, no status code");
    assert!(
        claim(&store, claim_at(399, 100, 100)).await.is_empty(),
        "the longer pause holds"
    );

    // An update lifts the pause at once.
    let mut updated = w.clone();
    updated.failing_since = None;
    updated.updated_at = at(120);
    ok(
        store.update_webhook(&updated, None, vec![]).await,
        "update_webhook",
    );
    let c = claim(&store, claim_at(120, 100, 100)).await;
    assert_eq!(ids(&c), vec![failed.id], "only the delivery due by now");
    assert!(
        report(
            &store,
            &c[0],
            120,
            Some(500),
            DeliveryOutcome::Failed {
                endpoint_paused_until: at(130)
            }
        )
        .await
    );
    let d = deliveries_of(&store, &dead.id).await;
    let done = d.iter().find(|d| d.id == failed.id).expect("listed");
    assert_eq!(
        (done.status, done.next_attempt_at),
        (DeliveryStatus::Failed, None)
    );

    // Disabling: only while the endpoint is still failing.
    let c = claim(&store, claim_at(500, 100, 100)).await;
    assert_eq!(c.len(), 2);
    let disable = vec![system_event(
        "webhook.disabled",
        "webhook",
        dead.id.as_str(),
        at(500),
    )];
    assert!(ok(
        store
            .finish_delivery(DeliveryReport {
                id: c[0].id,
                webhook_id: dead.id.clone(),
                attempt: attempt(&c[0], 500, Some(500)),
                outcome: retry_at(900, 510),
                disable: Some(disable.clone()),
            })
            .await,
        "finish_delivery with disable"
    ));
    let (w, _) = ok(store.get_webhook(&dead.id).await, "get_webhook");
    assert!(!w.is_active, "a failing endpoint is disabled");
    assert_eq!(w.updated_at, at(500));
    assert_eq!(
        event_types_of(&store, dead.id.as_str()).await,
        ["webhook.disabled"],
        "with its events, once"
    );
    // The other claimed delivery still reports; a second disable request writes nothing.
    ok(
        store
            .finish_delivery(DeliveryReport {
                id: c[1].id,
                webhook_id: dead.id.clone(),
                attempt: attempt(&c[1], 500, Some(500)),
                outcome: retry_at(900, 510),
                disable: Some(disable),
            })
            .await,
        "finish_delivery",
    );
    assert_eq!(
        event_types_of(&store, dead.id.as_str()).await,
        ["webhook.disabled"]
    );
    let later = claim(&store, claim_at(10_000, 100, 100)).await;
    assert!(
        later.iter().all(|c| c.webhook.id != dead.id),
        "a disabled endpoint's deliveries are not claimed"
    );
    for c in &later {
        assert_eq!(
            c.event.event_type, "webhook.disabled",
            "the others get the event"
        );
        assert!(report(&store, c, 10_000, Some(200), DeliveryOutcome::Delivered).await);
    }

    // A success clears the failure state, and a disable request then does nothing.
    let healthy = endpoint(&store, 3, &[], true).await;
    event(&store, "license.created", 600).await;
    let c = claim(&store, claim_at(600, 100, 100)).await;
    let mine: Vec<_> = c.iter().filter(|c| c.webhook.id == healthy.id).collect();
    assert_eq!(mine.len(), 1);
    assert!(report(&store, mine[0], 600, Some(200), DeliveryOutcome::Delivered).await);
    let (w, _) = ok(store.get_webhook(&healthy.id).await, "get_webhook");
    assert!(w.is_active && w.failing_since.is_none());
}

/// At most `per_endpoint` deliveries of one endpoint are in flight (counting earlier claims
/// still leased); `limit` caps one claim; other endpoints fill the rest.
pub async fn claims_respect_the_per_endpoint_and_batch_limits<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let busy = endpoint(&store, 1, &["license.created"], true).await;
    let other = endpoint(&store, 2, &["device.activated"], true).await;
    for s in 1..=10 {
        event(&store, "license.created", s).await;
    }
    event(&store, "device.activated", 20).await;
    let first = claim(&store, claim_at(30, 100, 3)).await;
    let of = |c: &[ClaimedDelivery], w: &WebhookEndpoint| {
        c.iter().filter(|c| c.webhook.id == w.id).count()
    };
    assert_eq!((of(&first, &busy), of(&first, &other)), (3, 1));
    assert!(
        claim(&store, claim_at(31, 100, 3)).await.is_empty(),
        "three in flight: the endpoint gets no more"
    );
    let busy_claims: Vec<_> = first.iter().filter(|c| c.webhook.id == busy.id).collect();
    assert!(
        report(
            &store,
            busy_claims[0],
            32,
            Some(200),
            DeliveryOutcome::Delivered
        )
        .await
    );
    let next = claim(&store, claim_at(33, 100, 3)).await;
    assert_eq!(of(&next, &busy), 1, "one finished, one more may go");
    let capped = claim(&store, claim_at(1000, 2, 100)).await;
    assert_eq!(capped.len(), 2, "limit caps a claim");
    // Round-robin: a newer delivery of a quiet endpoint goes before an older backlog.
    event(&store, "device.activated", 2000).await;
    let fair = claim(&store, claim_at(2000, 2, 100)).await;
    assert_eq!(
        (of(&fair, &busy), of(&fair, &other)),
        (1, 1),
        "every endpoint's first due delivery before anyone's second"
    );
}

/// A retry request makes a failed delivery pending and due now with a new window; unknown
/// deliveries (or another endpoint's) are `NotFound`; pages go newest first by cursor;
/// deleting an endpoint deletes its deliveries.
pub async fn retries_pages_and_deletes<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let w = endpoint(&store, 1, &[], true).await;
    let other = endpoint(&store, 2, &["none.such"], true).await;
    for s in 1..=5 {
        event(&store, "license.created", s).await;
    }
    let c = claim(&store, claim_at(10, 1, 10)).await;
    assert!(
        report(
            &store,
            &c[0],
            10,
            Some(410),
            DeliveryOutcome::Failed {
                endpoint_paused_until: at(11)
            }
        )
        .await
    );
    let retry = vec![system_event(
        "webhook.delivery_retried",
        "webhook",
        w.id.as_str(),
        at(5000),
    )];
    let d = ok(
        store.retry_delivery(&w.id, c[0].id, at(5000), retry).await,
        "retry_delivery",
    );
    assert_eq!(
        (d.status, d.next_attempt_at),
        (DeliveryStatus::Pending, Some(at(5000)))
    );
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(
        event_types_of(&store, w.id.as_str()).await,
        ["webhook.delivery_retried"]
    );
    let again = claim(&store, claim_at(5000, 10, 10)).await;
    let mine = again
        .iter()
        .find(|a| a.id == c[0].id)
        .expect("the retried delivery is due");
    assert_eq!((mine.attempt, mine.series_started_at), (2, at(5000)));

    expect_not_found(
        store
            .retry_delivery(&other.id, c[0].id, at(5001), vec![])
            .await,
        "retry_delivery of another endpoint's delivery",
    );
    expect_not_found(
        store
            .retry_delivery(&w.id, DeliveryId::new(999_999), at(5001), vec![])
            .await,
        "retry_delivery of an unknown delivery",
    );
    let unknown: WebhookId = super::fixtures::parse("whk_9999");
    expect_not_found(
        store
            .list_deliveries(&unknown, None, Limit::default())
            .await,
        "list_deliveries of an unknown endpoint",
    );

    let all = deliveries_of(&store, &w.id).await;
    assert_eq!(all.len(), 6, "five events plus the retry event");
    assert!(all.windows(2).all(|p| p[0].id > p[1].id), "newest first");
    let p1 = ok(
        store
            .list_deliveries(&w.id, None, Limit::new(Some(4)))
            .await,
        "page 1",
    );
    assert_eq!(p1.deliveries, all[..4]);
    assert_eq!(p1.next_cursor, Some(all[3].id));
    let p2 = ok(
        store
            .list_deliveries(&w.id, p1.next_cursor, Limit::new(Some(4)))
            .await,
        "page 2",
    );
    assert_eq!(p2.deliveries, all[4..]);
    assert_eq!(p2.next_cursor, None);

    // Purging takes finished deliveries whose series started before the cutoff, never
    // pending ones, at most `limit` at a time.
    let pending_before = ok(store.count_pending_deliveries().await, "count");
    assert_eq!(
        ok(
            store.purge_deliveries(at(6000), 100).await,
            "purge_deliveries"
        ),
        0,
        "nothing is finished yet"
    );
    for c in claim(&store, claim_at(6000, 100, 100)).await {
        assert!(report(&store, &c, 6000, Some(200), DeliveryOutcome::Delivered).await);
    }
    assert_eq!(
        ok(
            store.purge_deliveries(at(5000), 100).await,
            "purge_deliveries"
        ),
        4,
        "the finished ones whose series started before the cutoff (the retried one's and \
         the retry event's started at 5000)"
    );
    assert_eq!(
        ok(
            store.purge_deliveries(at(6000), 1).await,
            "purge_deliveries"
        ),
        1,
        "at most limit"
    );
    assert_eq!(
        ok(
            store.purge_deliveries(at(6000), 100).await,
            "purge_deliveries"
        ),
        1
    );
    assert!(deliveries_of(&store, &w.id).await.is_empty() && pending_before > 0);

    ok(store.delete_webhook(&w.id, vec![]).await, "delete_webhook");
    assert_eq!(
        ok(store.count_pending_deliveries().await, "count"),
        0,
        "gone with the endpoint"
    );
    assert!(claim(&store, claim_at(9000, 100, 100)).await.is_empty());
    assert!(
        !ok(
            store
                .finish_delivery(DeliveryReport {
                    id: mine.id,
                    webhook_id: w.id.clone(),
                    attempt: attempt(mine, 9000, Some(200)),
                    outcome: DeliveryOutcome::Delivered,
                    disable: None,
                })
                .await,
            "finish_delivery after the endpoint was deleted"
        ),
        "a report on a deleted endpoint applies nothing"
    );
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Many callers claiming at once: every due delivery goes to exactly one of them.
pub async fn concurrent_claims_hand_each_delivery_to_one_caller<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    for n in 1..=4 {
        endpoint(&store, n, &[], true).await;
    }
    for s in 1..=30 {
        event(&store, "license.created", s).await;
    }
    let tasks: Vec<Boxed<Vec<DeliveryId>>> = (0..8)
        .map(|_| {
            let store = store.clone();
            Box::pin(async move {
                let mut mine = Vec::new();
                loop {
                    let c = claim(&store, claim_at(100, 3, 1000)).await;
                    if c.is_empty() {
                        return mine;
                    }
                    mine.extend(ids(&c));
                }
            }) as Boxed<_>
        })
        .collect();
    let all: Vec<DeliveryId> = run_concurrently(&spawner, tasks).await.concat();
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no delivery was claimed twice");
    assert_eq!(all.len(), 120, "every delivery was claimed");
}
