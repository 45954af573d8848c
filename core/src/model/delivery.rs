//! Webhook deliveries: one per (event, subscribed endpoint), with the attempts made to send it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryStatus, WebhookId};

super::ids::define_seq_id!(
    /// Id of a [`Delivery`]: `dlv_<n>`, where `n` is the store's number for it.
    ///
    /// Deliveries are created by the store in the transaction of their event (no randomness is
    /// at hand there), so the id is a number the store assigns rather than a random one.
    DeliveryId, "dlv_"
);

/// One try at sending a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    /// The endpoint's answer; absent when none came (connection refused, timeout, TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why the attempt failed, when it did; never holds the secret or the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl DeliveryAttempt {
    /// Whether the endpoint accepted the delivery (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    /// The delivered body's `id` (`evt_<sequence>`).
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The attempts so far, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    pub created_at: DateTime<Utc>,
}

impl Delivery {
    /// The `id` of the event's delivered body.
    pub fn event_id_of(sequence: i64) -> String {
        format!("evt_{sequence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_anything_else() {
        let id = DeliveryId::new(42);
        assert_eq!(id.to_string(), "dlv_42");
        assert_eq!("dlv_42".parse::<DeliveryId>().unwrap(), id);
        for bad in [
            "dlv_",
            "dlv_-1",
            "dlv_1x",
            "whk_1",
            "42",
            "dlv_99999999999999999999",
        ] {
            assert!(bad.parse::<DeliveryId>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"dlv_42\"");
        assert_eq!(serde_json::from_str::<DeliveryId>(&json).unwrap(), id);
    }

    #[test]
    fn only_a_2xx_answer_is_a_success() {
        let mut a = DeliveryAttempt {
            attempt: 1,
            started_at: DateTime::UNIX_EPOCH,
            status_code: Some(204),
            error: None,
            duration_ms: 3,
        };
        assert!(a.succeeded());
        for code in [None, Some(199), Some(301), Some(500)] {
            a.status_code = code;
            assert!(!a.succeeded(), "{code:?}");
        }
    }
}
