//! What follows a webhook delivery attempt: retry when, give up when, pause and disable the
//! endpoint when.
//!
//! A failed delivery is retried with exponential backoff and jitter ([`backon`]'s schedule,
//! seeded by the caller so this stays free of randomness): 5 s, 10 s, 20 s, … up to 2 h
//! between attempts, each delay stretched by a random fraction of itself, until the next
//! attempt would fall outside the retry window (a day from the series' start); then the
//! delivery has failed. An endpoint that fails is paused — nothing is sent to it for as long
//! as it has been failing, between 5 s and 10 min — so a dead endpoint costs one probe per
//! pause instead of one attempt per pending delivery, and deliveries to other endpoints never
//! wait for it. An endpoint failing for longer than `disable_after` (default 5 days) is
//! disabled.

use std::time::Duration as StdDuration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Duration, Utc};

use crate::model::DeliveryAttempt;

/// The retry schedule and the endpoint limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before the second attempt (later ones double it).
    pub first_delay: StdDuration,
    /// The longest delay between two attempts.
    pub max_delay: StdDuration,
    /// How long after its series started a delivery may still be attempted.
    pub window: Duration,
    /// The shortest pause of a failing endpoint.
    pub min_pause: Duration,
    /// The longest pause of a failing endpoint.
    pub max_pause: Duration,
    /// An endpoint failing for this long is disabled.
    pub disable_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: StdDuration::from_secs(5),
            max_delay: StdDuration::from_secs(2 * 3600),
            window: Duration::days(1),
            min_pause: Duration::seconds(5),
            max_pause: Duration::minutes(10),
            disable_after: Duration::days(5),
        }
    }
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint accepted it; the endpoint's failure state is cleared.
    Delivered,
    /// The attempt failed; try again at `at`. The endpoint is failing and is sent nothing
    /// before `endpoint_paused_until`.
    RetryAt {
        /// When the next attempt is due.
        at: DateTime<Utc>,
        /// The endpoint's pause.
        endpoint_paused_until: DateTime<Utc>,
    },
    /// The attempt failed and the retry window is closed.
    Failed {
        /// The endpoint's pause.
        endpoint_paused_until: DateTime<Utc>,
    },
}

/// The verdict on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What happens to the delivery.
    pub outcome: DeliveryOutcome,
    /// Whether the endpoint has been failing long enough to be disabled.
    pub disable_endpoint: bool,
}

/// Decides what follows `attempt`, the `attempt.attempt`-th of a series that started at
/// `series_started_at`, to an endpoint failing since `failing_since` (as last read), at `now`.
/// `jitter_seed` seeds the delay's jitter.
pub fn after_attempt(
    policy: &RetryPolicy,
    attempt: &DeliveryAttempt,
    series_started_at: DateTime<Utc>,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    jitter_seed: u64,
) -> Verdict {
    if attempt.succeeded() {
        return Verdict {
            outcome: DeliveryOutcome::Delivered,
            disable_endpoint: false,
        };
    }
    let failing_since = failing_since.unwrap_or(now).min(now);
    let failing_for = now - failing_since;
    let endpoint_paused_until =
        now + failing_for.clamp(policy.min_pause, policy.max_pause.max(policy.min_pause));
    let delay = retry_delay(policy, attempt.attempt, jitter_seed);
    let next = now + delay;
    let outcome = if next <= series_started_at + policy.window {
        DeliveryOutcome::RetryAt {
            // The endpoint's pause comes first when it is longer.
            at: next.max(endpoint_paused_until),
            endpoint_paused_until,
        }
    } else {
        DeliveryOutcome::Failed {
            endpoint_paused_until,
        }
    };
    Verdict {
        outcome,
        disable_endpoint: failing_for >= policy.disable_after,
    }
}

/// The delay after the `attempt`-th failed attempt (1-based), jittered.
pub fn retry_delay(policy: &RetryPolicy, attempt: u32, jitter_seed: u64) -> Duration {
    let delay = ExponentialBuilder::new()
        .with_jitter()
        .with_jitter_seed(jitter_seed)
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(policy.max_delay);
    Duration::from_std(delay).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::seconds(secs)
    }

    fn attempt(n: u32, code: Option<u16>) -> DeliveryAttempt {
        DeliveryAttempt {
            attempt: n,
            started_at: at(0),
            status_code: code,
            error: None,
            duration_ms: 1,
        }
    }

    #[test]
    fn a_success_is_delivered_whatever_the_endpoint_did_before() {
        let v = after_attempt(
            &RetryPolicy::default(),
            &attempt(9, Some(200)),
            at(0),
            Some(at(-1_000_000)),
            at(100),
            7,
        );
        assert_eq!(v.outcome, DeliveryOutcome::Delivered);
        assert!(!v.disable_endpoint);
    }

    #[test]
    fn delays_grow_with_jitter_up_to_the_cap() {
        let p = RetryPolicy::default();
        for seed in [0, 1, 42, u64::MAX] {
            for n in 1..40 {
                let base = (5.0 * 2f64.powi(n as i32 - 1)).min(7200.0);
                let d = retry_delay(&p, n, seed).num_milliseconds() as f64 / 1000.0;
                assert!(
                    d >= base && d <= 2.0 * base,
                    "attempt {n}: {d} s vs {base} s"
                );
            }
        }
        // Different seeds spread the same attempt out.
        let spread: std::collections::HashSet<_> =
            (0..20).map(|seed| retry_delay(&p, 3, seed)).collect();
        assert!(spread.len() > 10);
    }

    #[test]
    fn attempts_stop_once_the_window_closes_about_a_day_later() {
        let p = RetryPolicy::default();
        let mut now = at(0);
        let mut n = 1;
        loop {
            let v = after_attempt(
                &p,
                &attempt(n, Some(500)),
                at(0),
                Some(at(0)),
                now,
                n.into(),
            );
            match v.outcome {
                DeliveryOutcome::RetryAt { at: next, .. } => {
                    assert!(next > now);
                    now = next;
                    n += 1;
                }
                DeliveryOutcome::Failed { .. } => break,
                DeliveryOutcome::Delivered => unreachable!(),
            }
        }
        assert!(now <= at(86_400), "last attempt inside the window");
        assert!(now >= at(86_400 - 4 * 7200), "the window is used: {now}");
        assert!((10..40).contains(&n), "{n} attempts");
    }

    #[test]
    fn a_failing_endpoint_is_paused_longer_the_longer_it_fails_and_then_disabled() {
        let p = RetryPolicy::default();
        let pause = |failing_for: i64| {
            let v = after_attempt(
                &p,
                &attempt(1, None),
                at(0),
                Some(at(1000 - failing_for)),
                at(1000),
                1,
            );
            match v.outcome {
                DeliveryOutcome::RetryAt {
                    endpoint_paused_until,
                    at: next,
                } => {
                    assert!(next >= endpoint_paused_until);
                    (
                        (endpoint_paused_until - at(1000)).num_seconds(),
                        v.disable_endpoint,
                    )
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(pause(0), (5, false));
        assert_eq!(pause(60), (60, false));
        assert_eq!(pause(3600), (600, false));
        // No failure recorded yet counts as failing from now.
        let first = after_attempt(&p, &attempt(1, Some(503)), at(0), None, at(1000), 1);
        assert!(!first.disable_endpoint);
        let v = after_attempt(
            &p,
            &attempt(1, Some(503)),
            at(0),
            Some(at(1000) - p.disable_after),
            at(1000),
            1,
        );
        assert!(v.disable_endpoint);
    }
}
