//! Air-gapped activation (an extension): management posts a device's request file and gets
//! back its offline envelope file, a seat taken as an online activation takes it; a release
//! file signed by the device gives the seat back. See
//! [`crypto::air_gap`](crate::crypto::air_gap) for the files and
//! [`rules::air_gap`](crate::rules::air_gap) for the rules.

use rand_core::CryptoRng;

use super::catalog::parse_id;
use super::licenses::map_not_found;
use super::runner::{Caller, Idempotency, ResponseBody, plain_body};
use super::runtime::binding_hints;
use super::{Actor, Clock, Engine, EngineError, ManagementCall};
use crate::crypto::air_gap::{
    ACTIVATION_FORMAT, ActivationRequestFile, OfflineActivationFile, ReleaseFile,
};
use crate::crypto::seal;
use crate::model::{Device, DeviceId, LicenseId};
use crate::rules::air_gap;
use crate::store::{AggregateQuery, LicenseSelector, Store};

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Activates the device of an air-gapped request file on license `license` and answers
    /// `{"data":<OfflineActivationFile>,"meta":…}`: its offline envelope, sealed to the
    /// license key's SHA-256 (the server never holds the key). Posting the same file again
    /// (same nonce) answers the same bytes; `call.idempotency_key` is not used.
    ///
    /// # Errors
    ///
    /// `NotFound` license; `Denied` with `INVALID_FIELD` for a malformed, foreign, future or
    /// stale request, `OFFLINE_NOT_ALLOWED`, or any refusal of activate;
    /// `IdempotencyConflict` for another request with the same nonce; storage failures.
    pub async fn offline_activate(
        &self,
        actor: &Actor,
        call: ManagementCall<'_>,
        license: &str,
        req: &ActivationRequestFile,
    ) -> Result<ResponseBody, EngineError> {
        let id: LicenseId = parse_id(license, "license")?;
        let key = format!("offline-activation:{}", req.nonce);
        let idempotency = Idempotency::new(
            Idempotency::management_scope(&id),
            Some(&key),
            "offline_activation",
            req,
        )?;
        let (binding_key, app_version) = binding_hints(&req.binding);
        let query = AggregateQuery {
            selector: Some(LicenseSelector::Id(id.clone())),
            binding_key,
            app_version,
            ..AggregateQuery::default()
        };
        let device_id = self.with_rng(|rng| DeviceId::generate(rng));
        let seal_secret = req.license_key_sha256.to_hex();
        let answer = self
            .transact(query, idempotency, Caller::Actor(actor), |agg, now| {
                let plan = air_gap::activate(agg, req, device_id, now)?;
                let envelope = self
                    .with_signer(Some(&agg.license.product_id), |keys| {
                        self.with_rng(|rng| seal(keys, &seal_secret, &plan.outcome, rng))
                    })
                    .map_err(EngineError::internal)?;
                let file = OfflineActivationFile {
                    format: ACTIVATION_FORMAT.to_owned(),
                    license_id: agg.license.id.clone(),
                    device_id: plan.outcome.entitlement.device_id.clone(),
                    offline_expires_at: plan.outcome.offline_expires_at.get(),
                    envelope,
                };
                let body = plain_body(&file, call.request_id, now)?;
                Ok(plan.map(|_| ResponseBody::fresh(body)))
            })
            .await
            .map_err(map_not_found)?;
        Ok(answer.into_response())
    }

    /// Frees the seat of the air-gapped device a release file names, when the device's
    /// release key signed it. Returns the device; a device that holds no seat is returned
    /// unchanged.
    ///
    /// # Errors
    ///
    /// `NotFound` license or device; `Denied` with `INVALID_FIELD` for a file of another
    /// license, a device not activated by a request file, or a bad signature.
    pub async fn offline_release(
        &self,
        actor: &Actor,
        license: &str,
        file: &ReleaseFile,
    ) -> Result<Device, EngineError> {
        let (_, query) = self.device_query(license, file.device_id.as_str()).await?;
        self.admin_with(actor, license, query, |agg, now| {
            air_gap::release(agg, file, now)
        })
        .await
    }
}
