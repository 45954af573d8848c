//! Runtime refusals counted in memory per five-minute bucket and what they concern, and
//! written in batches off the request path (like touches): a refused request never waits
//! for storage, and the store gets one row per key and bucket, however many refusals.
//!
//! # Bounds
//!
//! At most [`MAX_PENDING_REFUSAL_KEYS`] distinct keys wait for a flush. Past that, a new
//! key is counted without its license, customer and app version (so a flood of refusals for
//! random keys or versions collapses into a few rows instead of growing memory), and
//! [`Engine::coarsened_refusals`] counts how often that happened.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rand_core::CryptoRng;

use super::{Clock, Engine, EngineError};
use crate::model::{
    ERROR_BUCKET_FINEST, License, ResultClass, RuntimeEndpoint, RuntimeErrorCount, RuntimeErrorKey,
    bucket_start,
};
use crate::rules::DenialKind;
use crate::store::Store;

/// How many distinct refusal keys may wait for a flush before new ones are coarsened.
pub const MAX_PENDING_REFUSAL_KEYS: usize = 10_000;
/// The longest `app_version` kept with a refusal, in bytes.
const MAX_APP_VERSION: usize = 64;

/// What a refusal concerns, once the license is known.
#[derive(Debug, Clone, Default)]
pub(crate) struct RefusalContext {
    pub(crate) license: Option<(crate::model::LicenseId, crate::model::ProductId)>,
    pub(crate) customer: Option<crate::model::CustomerId>,
    pub(crate) app_version: Option<String>,
}

impl RefusalContext {
    /// Before the license is known: only the request's `app_version`.
    pub(crate) fn unknown(app_version: Option<&str>) -> Self {
        Self {
            app_version: app_version.map(str::to_owned),
            ..Self::default()
        }
    }

    pub(crate) fn of_license(license: &License, app_version: Option<&str>) -> Self {
        Self {
            license: Some((license.id.clone(), license.product_id.clone())),
            customer: license.customer_id.clone(),
            app_version: app_version.map(str::to_owned),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct RefusalTally {
    state: Mutex<TallyState>,
}

#[derive(Debug, Default)]
struct TallyState {
    counts: HashMap<RuntimeErrorKey, i64>,
    coarsened: u64,
}

/// The code and class a refusal is counted under; `None` for failures that are not refusals
/// (storage, internal).
pub(crate) fn refusal_of(e: &EngineError) -> Option<(String, ResultClass)> {
    Some(match e {
        EngineError::Denied(d) => {
            let class = match d.primary().code.kind() {
                DenialKind::Forbidden => ResultClass::Denied,
                DenialKind::NotFound => ResultClass::NotFound,
                DenialKind::Conflict => ResultClass::Conflict,
                DenialKind::Invalid => ResultClass::Unprocessable,
            };
            (d.primary().code.as_str().to_owned(), class)
        }
        EngineError::InvalidCredentials => {
            ("INVALID_CREDENTIALS".into(), ResultClass::Unauthorized)
        }
        EngineError::IdempotencyConflict => ("IDEMPOTENCY_CONFLICT".into(), ResultClass::Conflict),
        _ => return None,
    })
}

impl RefusalTally {
    fn lock(&self) -> std::sync::MutexGuard<'_, TallyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn note(&self, key: RuntimeErrorKey) {
        let mut state = self.lock();
        let key =
            if state.counts.len() >= MAX_PENDING_REFUSAL_KEYS && !state.counts.contains_key(&key) {
                state.coarsened += 1;
                RuntimeErrorKey {
                    license_id: None,
                    product_id: None,
                    customer_id: None,
                    app_version: None,
                    ..key
                }
            } else {
                key
            };
        *state.counts.entry(key).or_default() += 1;
    }

    fn take(&self) -> Vec<RuntimeErrorCount> {
        self.lock()
            .counts
            .drain()
            .map(|(key, count)| RuntimeErrorCount { key, count })
            .collect()
    }

    fn put_back(&self, counts: Vec<RuntimeErrorCount>) {
        let mut state = self.lock();
        for c in counts {
            *state.counts.entry(c.key).or_default() += c.count;
        }
    }

    fn pending(&self) -> usize {
        self.lock().counts.len()
    }

    fn coarsened(&self) -> u64 {
        self.lock().coarsened
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Counts a runtime refusal of `endpoint` (nothing for failures that are not refusals).
    /// Only the engine's decisions are counted: a host's own rejections before the engine
    /// sees the request (a malformed body, a rate limit) are not refusals of a license.
    /// Counts a refusal of `endpoint`; operations outside the nine (`None`: the device
    /// heartbeat) are not counted, so the groups name only what the published SDK knows.
    pub(crate) fn note_refusal(
        &self,
        endpoint: Option<RuntimeEndpoint>,
        error: &EngineError,
        context: RefusalContext,
    ) {
        if let (Some(endpoint), Some((code, class))) = (endpoint, refusal_of(error)) {
            self.count_refusal(endpoint, code, class, context);
        }
    }

    fn count_refusal(
        &self,
        endpoint: RuntimeEndpoint,
        reason_code: String,
        result_class: ResultClass,
        context: RefusalContext,
    ) {
        let (license_id, product_id) = context.license.unzip();
        let mut app_version = context.app_version;
        if let Some(v) = &mut app_version {
            let mut end = v.len().min(MAX_APP_VERSION);
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v.truncate(end);
        }
        self.refusals.note(RuntimeErrorKey {
            bucket_start: bucket_start(self.now(), ERROR_BUCKET_FINEST),
            endpoint,
            reason_code,
            result_class,
            license_id,
            product_id,
            customer_id: context.customer,
            app_version,
        });
    }

    /// Writes the refusal counts noted so far and returns how many keys were written. Hosts
    /// call it periodically and at shutdown (the server: with the touches, every second).
    /// **What a crash can lose:** the counts of one flush period; nothing else.
    ///
    /// # Errors
    ///
    /// Storage failures; the counts are kept and written by a later call.
    pub async fn flush_runtime_errors(&self) -> Result<usize, EngineError> {
        let counts = self.refusals.take();
        if counts.is_empty() {
            return Ok(0);
        }
        let n = counts.len();
        if let Err(e) = self.store.record_runtime_errors(counts.clone()).await {
            self.refusals.put_back(counts);
            return Err(e.into());
        }
        Ok(n)
    }

    /// How many refusal keys wait for [`Self::flush_runtime_errors`].
    pub fn pending_runtime_errors(&self) -> usize {
        self.refusals.pending()
    }

    /// How many refusals were counted without their license and app version because too
    /// many keys waited ([`MAX_PENDING_REFUSAL_KEYS`]).
    pub fn coarsened_refusals(&self) -> u64 {
        self.refusals.coarsened()
    }
}
