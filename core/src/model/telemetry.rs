//! Telemetry a device sends (an extension): stored as sent, with whether it follows the
//! documented schema ([`rules::telemetry`](crate::rules::telemetry)) and why not.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::LicenseId;

super::ids::define_seq_id!(
    /// Id of a [`TelemetryRecord`]: `tel_<n>`, numbered by the store in the order received.
    TelemetryId, "tel_"
);

/// A telemetry record to store; the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTelemetry {
    /// The license whose key sent it.
    pub license_id: LicenseId,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// Whether it follows the documented schema.
    pub well_formed: bool,
    /// Why it does not (empty when well formed).
    pub problems: Vec<String>,
    /// The object as sent.
    pub payload: Map<String, Value>,
}

/// A stored telemetry record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryRecord {
    pub id: TelemetryId,
    pub license_id: LicenseId,
    pub received_at: DateTime<Utc>,
    pub well_formed: bool,
    /// Why the payload does not follow the schema (empty when it does).
    pub problems: Vec<String>,
    /// The object as sent.
    pub payload: Map<String, Value>,
}

impl TelemetryRecord {
    /// `new` as stored under `id`.
    pub fn stored(id: TelemetryId, new: NewTelemetry) -> Self {
        Self {
            id,
            license_id: new.license_id,
            received_at: new.received_at,
            well_formed: new.well_formed,
            problems: new.problems,
            payload: new.payload,
        }
    }
}
