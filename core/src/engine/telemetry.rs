//! Telemetry (an extension): devices report JSON objects with their license key (or session); each is
//! stored as sent, flagged against the schema of [`rules::telemetry`](crate::rules::telemetry).
//! Telemetry decides nothing, so it is not signed and appends no event (the events feed would
//! drown in it); it is kept for the telemetry retention.

use rand_core::CryptoRng;
use serde_json::{Map, Value};

use super::{Clock, Engine, EngineError, RuntimeCall};
use crate::model::{NewTelemetry, TelemetryId, TelemetryRecord};
use crate::rules::telemetry::{self, MAX_TELEMETRY_BYTES};
use crate::store::{AggregateQuery, Limit, Store, StoreError, TelemetryPage};

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Stores `payload` for the license whose key the call carries, with whether it follows
    /// the schema and why not. Any license the key names may report, whatever its status.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidCredentials`] for an unknown key; `Denied` (`INVALID_FIELD`)
    /// for a payload over [`MAX_TELEMETRY_BYTES`]; storage failures.
    pub async fn record_telemetry(
        &self,
        call: RuntimeCall<'_>,
        payload: Map<String, Value>,
    ) -> Result<TelemetryRecord, EngineError> {
        let size = serde_json::to_vec(&payload)
            .map_err(EngineError::internal)?
            .len();
        if size > MAX_TELEMETRY_BYTES {
            return Err(EngineError::invalid(
                "body",
                format!("telemetry is at most {MAX_TELEMETRY_BYTES} bytes of JSON"),
            ));
        }
        // A session's device is whatever it is bound to: telemetry names no binding.
        let selector = self
            .credential_selector(call.credential, None, call.ip_address)
            .await?
            .selector;
        let license = match self
            .store
            .read_license(&AggregateQuery::new(selector))
            .await
        {
            Ok(agg) => agg.license,
            Err(StoreError::NotFound { entity: "license" }) => {
                return Err(EngineError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        let problems = telemetry::check(&payload);
        let record = NewTelemetry {
            license_id: license.id,
            received_at: self.now(),
            well_formed: problems.is_empty(),
            problems,
            payload,
        };
        Ok(self.store.insert_telemetry(record).await?)
    }

    /// A license's telemetry, newest first, below the cursor `before` (a record id) when given.
    ///
    /// # Errors
    ///
    /// `NotFound` license; storage failures.
    pub async fn list_telemetry(
        &self,
        license: &str,
        before: Option<TelemetryId>,
        limit: Limit,
    ) -> Result<TelemetryPage, EngineError> {
        let license = self.get_license(license).await?.id;
        Ok(self.store.list_telemetry(&license, before, limit).await?)
    }
}
