//! The shared state of the handlers: the engine and the configuration.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use getrandom::SysRng;
use licentia_core::engine::{Clock, Engine, EngineError};
use licentia_core::store::Store;
use rand_core::UnwrapErr;

use crate::config::Config;
use crate::ratelimit::Limiter;

pub use licentia_core::engine::SystemClock;

/// The system time.
pub fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// The engine as the server runs it: system clock, OS randomness.
pub type ServerEngine<S> = Engine<S, SystemClock, UnwrapErr<SysRng>>;

/// Handler state: cheap to clone.
#[derive(Debug)]
pub struct App<S> {
    inner: Arc<Inner<S>>,
}

#[derive(Debug)]
struct Inner<S> {
    engine: ServerEngine<S>,
    config: Config,
    limiter: Option<Arc<Limiter>>,
    /// Wakes the export producer when an export is created.
    exports: tokio::sync::Notify,
    /// Where artifacts' bytes are.
    artifacts: Arc<dyn object_store::ObjectStore>,
    /// Raw uploads being read (each held in memory until stored).
    uploads: Arc<tokio::sync::Semaphore>,
}

impl<S> Clone for App<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Store> App<S> {
    /// Starts the engine over `store` (loading or creating the signing keys).
    ///
    /// # Errors
    ///
    /// Storage failures or unusable stored keys.
    pub async fn start(store: S, config: Config) -> Result<Self, EngineError> {
        let interval = i64::try_from(config.touch_interval_secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(chrono::TimeDelta::MAX);
        let engine = Engine::start(store, SystemClock, UnwrapErr(SysRng))
            .await?
            .with_touch_interval(interval)
            .with_private_webhook_targets(config.webhook_allow_private)
            .with_idempotency_ttl(
                i64::try_from(config.idempotency_ttl_secs)
                    .ok()
                    .and_then(chrono::TimeDelta::try_seconds)
                    .unwrap_or(chrono::TimeDelta::MAX),
            )
            .with_retry_policy(config.webhooks.retry_policy())
            .with_delivery_retention(
                chrono::Duration::from_std(config.webhooks.retention)
                    .unwrap_or(chrono::TimeDelta::MAX),
            )
            .with_telemetry_retention(
                i64::try_from(config.telemetry_retention_secs)
                    .ok()
                    .and_then(chrono::TimeDelta::try_seconds)
                    .unwrap_or(chrono::TimeDelta::MAX),
            )
            .with_session_ttl(
                i64::try_from(config.session_ttl_secs)
                    .ok()
                    .and_then(chrono::TimeDelta::try_seconds)
                    .unwrap_or(chrono::TimeDelta::MAX),
            );
        let limiter = config.rate_limits.map(|l| Arc::new(Limiter::new(l)));
        let uploads = Arc::new(tokio::sync::Semaphore::new(
            config.artifacts.concurrent_uploads.max(1),
        ));
        let artifacts = crate::artifacts::open(&config.artifacts.url)
            .map_err(|e| EngineError::Internal(e.into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config,
                limiter,
                exports: tokio::sync::Notify::new(),
                artifacts,
                uploads,
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &ServerEngine<S> {
        &self.inner.engine
    }

    /// A turn to read a raw upload: at most `concurrent_uploads` are read at once.
    pub async fn upload_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.inner.uploads).acquire_owned().await.ok()
    }

    /// Where artifacts' bytes are.
    pub fn artifacts(&self) -> &Arc<dyn object_store::ObjectStore> {
        &self.inner.artifacts
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Tells the export producer that an export waits.
    pub fn exports_pending(&self) {
        self.inner.exports.notify_one();
    }

    /// Resolves when [`Self::exports_pending`] was called since the last time.
    pub async fn exports_notified(&self) {
        self.inner.exports.notified().await;
    }

    /// The rate limiters, unless rate limits are off.
    pub fn limiter(&self) -> Option<Arc<Limiter>> {
        self.inner.limiter.clone()
    }
}
