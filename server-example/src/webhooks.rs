//! Webhook delivery (DESIGN 5): the sender that drains the store's outbox.
//!
//! Every event's deliveries are written with the event (one per subscribed active endpoint,
//! [`DeliveryStore`](licentia_core::store::DeliveryStore)). This task claims the due ones
//! under a lease — on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so with several instances
//! exactly one sends each attempt — `POST`s each body signed with
//! `Licentia-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>` (DESIGN 4.3),
//! and reports the attempt; the engine's retry rules
//! ([`rules::delivery`](licentia_core::rules::delivery)) decide what follows. Deliveries are
//! at-least-once: an attempt whose report is lost (a crash, `kill -9`) is sent again once its
//! lease runs out, by whichever instance claims it. Receivers deduplicate by the body's `id`.
//!
//! - **The client** is `reqwest` over rustls (ring): `https://` and `http://`, no redirects
//!   followed, a connect timeout and a total timeout per attempt, at most 64 KiB of the answer
//!   read, `User-Agent: licentia/<version>`. Every address a host name resolves to is checked
//!   when connecting ([`webhook_target::ip_allowed`]): a name accepted when the endpoint was
//!   created may point at a private address by now. Extra trusted roots (PEM) come from
//!   `LICENTIA_WEBHOOK_CA_FILE`.
//! - **Limits.** At most [`WebhookConfig::concurrency`] attempts at once per instance and
//!   [`WebhookConfig::per_endpoint`] per endpoint across instances, so a slow endpoint never
//!   holds up the others. A failing endpoint is paused (it gets one probe per pause instead
//!   of an attempt per pending delivery) and disabled with a `webhook.disabled` event once it
//!   has failed for [`WebhookConfig::disable_after`]. Memory does not grow with the backlog:
//!   the backlog is in the store.
//! - **Logs.** A failure is logged once per endpoint per minute (with how many were not
//!   logged), never per attempt.
//! - **Metrics.** `licentia_webhook_deliveries_total{outcome}`, the in-flight gauge,
//!   `licentia_webhook_queue_depth` and `licentia_webhook_delivery_duration_seconds`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use licentia_core::crypto::sign_webhook_with_secret;
use licentia_core::engine::delivery_body;
use licentia_core::model::{DeliveryAttempt, WebhookId};
use licentia_core::rules::delivery::{DeliveryOutcome, RetryPolicy};
use licentia_core::rules::webhook_target;
use licentia_core::store::{ClaimedDelivery, Store};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::state::App;

/// How the sender runs.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Attempts in flight at once on this instance.
    pub concurrency: usize,
    /// Attempts in flight at once per endpoint (across instances).
    pub per_endpoint: u32,
    /// Connect timeout of an attempt.
    pub connect_timeout: Duration,
    /// Total budget of an attempt (connect, send, answer).
    pub attempt_timeout: Duration,
    /// How often the outbox is polled when it had nothing due.
    pub poll: Duration,
    /// PEM file of extra roots to trust for `https://` endpoints.
    pub ca_file: Option<PathBuf>,
    /// The delay before the second attempt, and the shortest pause of a failing endpoint.
    pub first_retry: Duration,
    /// An endpoint failing for this long is disabled.
    pub disable_after: Duration,
    /// Finished deliveries are kept this long (at least a day), then purged.
    pub retention: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            per_endpoint: 4,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            ca_file: None,
            first_retry: Duration::from_secs(5),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl WebhookConfig {
    /// The engine's retry rules with this configuration's first retry and disable time.
    pub fn retry_policy(&self) -> RetryPolicy {
        let defaults = RetryPolicy::default();
        let first = chrono::Duration::from_std(self.first_retry).unwrap_or(defaults.min_pause);
        RetryPolicy {
            first_delay: self.first_retry,
            min_pause: first,
            max_pause: defaults.max_pause.max(first),
            disable_after: chrono::Duration::from_std(self.disable_after)
                .unwrap_or(defaults.disable_after),
            ..defaults
        }
    }

    /// How long a claim is held: twice an attempt's budget and some, so a live sender
    /// always reports before another may take it over.
    pub fn lease(&self) -> Duration {
        self.attempt_timeout * 2 + Duration::from_secs(5)
    }
}

/// At most this much of an endpoint's answer is read.
const MAX_ANSWER: usize = 64 * 1024;
/// A failing endpoint is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// The queue-depth gauge is refreshed this often.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read or parsed.
    #[error("LICENTIA_WEBHOOK_CA_FILE {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("the webhook HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Resolves host names and refuses any that names an address deliveries may not reach.
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(refused) = addrs
                .iter()
                .find(|a| !webhook_target::ip_allowed(a.ip(), allow_private))
            {
                return Err(format!(
                    "{host} resolves to {}, which deliveries may not reach",
                    refused.ip()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The delivery client (see the module docs).
///
/// # Errors
///
/// An unreadable CA file; a configuration reqwest refuses.
pub fn client(config: &WebhookConfig, allow_private: bool) -> Result<reqwest::Client, ClientError> {
    // rustls needs a process-wide provider; ring is the one the workspace builds (an error
    // means one is installed already, which is as good).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .timeout(config.attempt_timeout)
        .user_agent(concat!("licentia/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .pool_max_idle_per_host(config.per_endpoint as usize);
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| ClientError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no certificate in the file".into()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    Ok(builder.build()?)
}

/// The running sender: stop it with [`Sender::shutdown`] (waits for the attempts in flight)
/// or [`Sender::abort`] (does not; their deliveries are sent again after their lease).
#[derive(Debug)]
pub struct Sender {
    task: tokio::task::JoinHandle<()>,
    slots: Arc<Semaphore>,
    concurrency: u32,
}

impl Sender {
    /// Stops claiming and returns at once; attempts in flight finish on their own.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Stops claiming, then waits up to `grace` for the attempts in flight to be sent and
    /// reported, so a restart does not send them again. Returns whether they all finished.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.task.abort();
        tokio::time::timeout(grace, self.slots.acquire_many(self.concurrency))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }
}

/// Starts the sender.
///
/// # Errors
///
/// The client cannot be built ([`client`]).
pub fn spawn<S: Store + 'static>(app: App<S>) -> Result<Sender, ClientError> {
    let config = app.config().webhooks.clone();
    let http = client(&config, app.engine().private_webhook_targets())?;
    let concurrency = config
        .concurrency
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(concurrency));
    let task = tokio::spawn(run(app, http, config, Arc::clone(&slots)));
    Ok(Sender {
        task,
        slots,
        concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
    })
}

async fn run<S: Store + 'static>(
    app: App<S>,
    http: reqwest::Client,
    config: WebhookConfig,
    slots: Arc<Semaphore>,
) {
    let log = Arc::new(FailureLog::default());
    let lease = chrono::Duration::from_std(config.lease()).unwrap_or(chrono::Duration::MAX);
    let mut store_failing = false;
    let mut depth_at = Instant::now() - DEPTH_EVERY;
    loop {
        if depth_at.elapsed() >= DEPTH_EVERY {
            depth_at = Instant::now();
            if let Ok(n) = app.engine().pending_deliveries().await {
                crate::metrics::webhook_queue_depth(n as f64);
            }
        }
        // Claim only what can start now, so nothing claimed waits for a slot.
        let free = slots.available_permits();
        if free == 0 {
            let _ = slots.acquire().await.map(drop);
            continue;
        }
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        let claimed = match app
            .engine()
            .claim_deliveries(limit, config.per_endpoint, lease)
            .await
        {
            Ok(c) => {
                store_failing = false;
                c
            }
            Err(e) => {
                if !store_failing {
                    tracing::warn!(error = %e, "webhooks: cannot read the outbox; retrying");
                }
                store_failing = true;
                tokio::time::sleep(config.poll * 4).await;
                continue;
            }
        };
        let full = claimed.len() == free;
        for delivery in claimed {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (app, http, log) = (app.clone(), http.clone(), Arc::clone(&log));
            tokio::spawn(async move {
                let _permit = permit;
                crate::metrics::webhooks_in_flight(1.0);
                let _in_flight = InFlight;
                deliver(&app, &http, &log, delivery).await;
            });
        }
        if !full {
            tokio::time::sleep(config.poll).await;
        }
    }
}

/// Sends one claimed delivery and reports the attempt.
async fn deliver<S: Store + 'static>(
    app: &App<S>,
    http: &reqwest::Client,
    log: &FailureLog,
    delivery: ClaimedDelivery,
) {
    let started_at = app.engine().now();
    let clock = Instant::now();
    let body = delivery_body(&delivery.event);
    let sent = post(
        http,
        &delivery,
        body,
        app.engine().private_webhook_targets(),
        started_at,
    )
    .await;
    let elapsed = clock.elapsed();
    crate::metrics::webhook_delivery_duration(elapsed.as_secs_f64());
    let (status_code, error) = match sent {
        Ok(code) => (Some(code), None),
        Err(e) => (None, Some(e)),
    };
    let attempt = DeliveryAttempt {
        attempt: delivery.attempt,
        started_at,
        status_code,
        error: error.clone().or_else(|| {
            status_code
                .filter(|c| !(200..300).contains(c))
                .map(|c| format!("answered {c}"))
        }),
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    let succeeded = attempt.succeeded();
    let finished = app
        .engine()
        .finish_delivery(&delivery, attempt.clone())
        .await;
    let id = &delivery.webhook.id;
    match finished {
        Ok(f) => {
            let outcome = match f.outcome {
                DeliveryOutcome::Delivered => "delivered",
                DeliveryOutcome::RetryAt { .. } if status_code.is_some() => "refused",
                DeliveryOutcome::RetryAt { .. } => "failed",
                DeliveryOutcome::Failed { .. } => "given_up",
            };
            crate::metrics::webhook_delivery(outcome);
            if succeeded {
                log.recovered(id);
                tracing::debug!(webhook = %id, delivery = %delivery.id, "webhook delivered");
            } else {
                log.failed(id, &attempt, f.disabled_endpoint);
            }
        }
        Err(e) => {
            // The lease runs out and the delivery is sent again: at-least-once.
            tracing::warn!(webhook = %id, delivery = %delivery.id, error = %e,
                "webhooks: the attempt could not be recorded; it will be sent again");
        }
    }
}

/// One `POST` of `body` to the delivery's endpoint; the answer's status code, or why there
/// is none. Besides the signature, `Licentia-Delivery-Id` and `Licentia-Delivery-Attempt`
/// say which delivery and attempt this is (the body's `id` names the event).
async fn post(
    http: &reqwest::Client,
    delivery: &ClaimedDelivery,
    body: Vec<u8>,
    allow_private: bool,
    now: chrono::DateTime<Utc>,
) -> Result<u16, String> {
    // An address literal is not resolved, so it is checked here (it may have been accepted
    // while private targets were allowed).
    let parsed = webhook_target::check_url(&delivery.webhook.url, allow_private)
        .map_err(|e| e.to_string())?;
    let signature = sign_webhook_with_secret(&delivery.secret, &body, now);
    let mut answer = http
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Licentia-Signature", signature)
        .header("Licentia-Delivery-Id", delivery.id.to_string())
        .header("Licentia-Delivery-Attempt", delivery.attempt.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = answer.status().as_u16();
    // Read (and drop) at most MAX_ANSWER of the body, so the connection can be reused
    // without letting an endpoint make us read without end.
    let mut read = 0usize;
    while read < MAX_ANSWER {
        match answer.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(status)
}

/// A short reason for a failed request, without the URL's query (which may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let mut reason = String::from(kind);
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason.chars().take(500).collect()
}

/// Failures logged once per endpoint per [`LOG_EVERY`].
#[derive(Debug, Default)]
struct FailureLog {
    endpoints: Mutex<HashMap<WebhookId, (Instant, u64)>>,
}

impl FailureLog {
    fn failed(&self, id: &WebhookId, attempt: &DeliveryAttempt, disabled: bool) {
        let mut endpoints = self.endpoints.lock();
        let now = Instant::now();
        let entry = endpoints.entry(id.clone()).or_insert((now - LOG_EVERY, 0));
        if disabled || now.duration_since(entry.0) >= LOG_EVERY {
            tracing::warn!(
                webhook = %id,
                status = attempt.status_code,
                error = attempt.error.as_deref().unwrap_or_default(),
                not_logged = entry.1,
                disabled,
                "webhook endpoint failing"
            );
            *entry = (now, 0);
        } else {
            entry.1 += 1;
        }
    }

    fn recovered(&self, id: &WebhookId) {
        if self.endpoints.lock().remove(id).is_some() {
            tracing::info!(webhook = %id, "webhook endpoint delivering again");
        }
    }
}

/// Lowers the in-flight gauge when a delivery task ends, however it ends.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::metrics::webhooks_in_flight(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licentia_core::model::{AuditActorType, DeliveryId, Event, WebhookEndpoint};

    fn claimed(url: String) -> ClaimedDelivery {
        let now = Utc::now();
        ClaimedDelivery {
            id: DeliveryId::new(1),
            attempt: 1,
            series_started_at: now,
            event: Event {
                sequence: 1,
                event_type: "test".into(),
                actor_type: AuditActorType::System,
                actor_id: "system".into(),
                resource_type: "test".into(),
                resource_id: None,
                metadata: Default::default(),
                ip_address: None,
                created_at: now,
            },
            webhook: WebhookEndpoint {
                id: "whk_1".parse().unwrap(),
                name: "t".into(),
                url,
                secret_prefix: "whsec_x".into(),
                event_types: vec![],
                is_active: true,
                last_delivery_at: None,
                last_delivery_status: None,
                last_status_code: None,
                failing_since: None,
                created_at: now,
                updated_at: now,
            },
            secret: "whsec_x".into(),
        }
    }

    #[tokio::test]
    async fn names_are_checked_again_when_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = client(&WebhookConfig::default(), false).unwrap();
        // The URL passes (private targets allowed for it), the resolved address does not.
        let named = claimed(format!("http://localhost:{port}/hook"));
        let refused = post(&strict, &named, b"{}".to_vec(), true, Utc::now())
            .await
            .unwrap_err();
        assert!(refused.contains("may not reach"), "{refused}");
        // An address literal is refused before any connection.
        let literal = claimed(format!("http://127.0.0.1:{port}/hook"));
        let refused = post(&strict, &literal, b"{}".to_vec(), false, Utc::now())
            .await
            .unwrap_err();
        assert!(refused.contains("may not go to"), "{refused}");
    }
}
