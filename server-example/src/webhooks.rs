//! Webhook delivery (DESIGN 5): a background task reads the event log, the outbox, oldest
//! first, and `POST`s each event to every active endpoint whose `event_types` is empty or names
//! the event's type. The body is `{"id","type","created_at","data": Event}`; the
//! `Licentia-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>` header signs it
//! (DESIGN 4.3). A delivery that fails (connection error or a non-2xx answer) is retried with
//! exponential backoff: 1 s, 2 s, 4 s, … for [`MAX_ATTEMPTS`] attempts.
//!
//! Limits of this example server: deliveries go to plain `http://` endpoints (it carries no
//! TLS client; an `https://` endpoint is logged and skipped), and the task's position in the
//! log lives in memory, starting at the newest event when the server starts, so deliveries
//! still pending at shutdown are not resumed after a restart, and several servers on one
//! PostgreSQL database each deliver every event.

use std::time::Duration;

use chrono::Utc;
use licentia_core::crypto::sign_webhook_with_secret;
use licentia_core::model::{Event, WebhookEndpoint};
use licentia_core::rules::webhook_target;
use licentia_core::store::{EventQuery, Limit, Store, StoreError};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::state::App;

/// Delivery attempts per event and endpoint.
pub const MAX_ATTEMPTS: u32 = 6;
/// How often the log is read for new events.
const POLL: Duration = Duration::from_millis(500);
/// Connect + write + read budget of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the delivery task; abort the handle to stop it.
pub fn spawn<S: Store + 'static>(app: App<S>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = newest_sequence(&app).await;
        loop {
            tokio::time::sleep(POLL).await;
            let events = match events_after(&app, last).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: cannot read the event log");
                    continue;
                }
            };
            if events.is_empty() {
                continue;
            }
            // One read of the endpoints (and their secrets) per batch, not per event.
            let endpoints = match endpoints(&app).await {
                Ok(endpoints) => endpoints,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: cannot list endpoints");
                    continue;
                }
            };
            for event in events {
                last = last.max(event.sequence);
                dispatch(&endpoints, &event, app.engine().private_webhook_targets());
            }
        }
    })
}

/// The newest sequence in the log, waiting for the store when it is unavailable (starting from
/// 0 then would deliver the whole history once it comes back).
async fn newest_sequence<S: Store + 'static>(app: &App<S>) -> i64 {
    let query = EventQuery {
        limit: Limit::new(Some(1)),
        ..EventQuery::default()
    };
    loop {
        match app.engine().list_events(&query).await {
            Ok(page) => return page.events.first().map_or(0, |e| e.sequence),
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: cannot read the event log yet");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Events with a sequence above `last`, oldest first.
async fn events_after<S: Store + 'static>(
    app: &App<S>,
    last: i64,
) -> Result<Vec<Event>, licentia_core::engine::EngineError> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let query = EventQuery {
            before,
            limit: Limit::new(Some(200)),
            ..EventQuery::default()
        };
        let page = app.engine().list_events(&query).await?;
        let mut done = page.next_cursor.is_none();
        for e in page.events {
            if e.sequence <= last {
                done = true;
                break;
            }
            out.push(e);
        }
        if done {
            break;
        }
        before = page.next_cursor;
    }
    out.reverse();
    Ok(out)
}

/// The active endpoints with their secrets.
async fn endpoints<S: Store + 'static>(
    app: &App<S>,
) -> Result<Vec<(WebhookEndpoint, String)>, StoreError> {
    let store = app.engine().store();
    let mut out = Vec::new();
    for w in store.list_webhooks(Limit::new(Some(200))).await? {
        if w.is_active {
            out.push(store.get_webhook(&w.id).await?);
        }
    }
    Ok(out)
}

/// Starts one delivery of `event` to each endpoint subscribed to it.
fn dispatch(endpoints: &[(WebhookEndpoint, String)], event: &Event, allow_private: bool) {
    for (w, secret) in endpoints {
        // An endpoint receives the events recorded while it exists and is active.
        if w.created_at > event.created_at
            || !(w.event_types.is_empty() || w.event_types.contains(&event.event_type))
        {
            continue;
        }
        let body = match serde_json::to_vec(&json!({
            "id": format!("evt_{}", event.sequence),
            "type": event.event_type,
            "created_at": event.created_at,
            "data": event,
        })) {
            Ok(b) => b,
            Err(_) => continue,
        };
        let secret = secret.clone();
        let url = w.url.clone();
        let id = w.id.to_string();
        tokio::spawn(async move {
            crate::metrics::webhooks_in_flight(1.0);
            let _in_flight = InFlight;
            for attempt in 0..MAX_ATTEMPTS {
                let signature = sign_webhook_with_secret(&secret, &body, Utc::now());
                let attempt_post = post(&url, &body, &signature, allow_private);
                match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt_post).await {
                    Ok(Ok(status)) if (200..300).contains(&status) => {
                        crate::metrics::webhook_delivery("delivered");
                        tracing::info!(webhook = %id, status, "webhook delivered");
                        return;
                    }
                    Ok(Ok(status)) => {
                        crate::metrics::webhook_delivery("refused");
                        tracing::warn!(webhook = %id, status, attempt, "webhook refused");
                    }
                    Ok(Err(e)) => {
                        crate::metrics::webhook_delivery("failed");
                        tracing::warn!(webhook = %id, error = %e, attempt, "webhook failed");
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
                        ) {
                            return;
                        }
                    }
                    Err(_) => {
                        crate::metrics::webhook_delivery("failed");
                        tracing::warn!(webhook = %id, attempt, "webhook timed out");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
            crate::metrics::webhook_delivery("given_up");
        });
    }
}

/// Lowers the in-flight gauge when a delivery task ends, however it ends.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::metrics::webhooks_in_flight(-1.0);
    }
}

/// One HTTP/1.1 `POST` of `body` to an `http://` URL; returns the answer's status code.
///
/// The host is resolved here and every address it names is checked against
/// [`webhook_target::ip_allowed`] before connecting: a name accepted when the endpoint was
/// created may point at a private address by now.
async fn post(
    url: &str,
    body: &[u8],
    signature: &str,
    allow_private: bool,
) -> std::io::Result<u16> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "only http:// endpoints are delivered by this server",
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    }) {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(addr.as_str()).await?.collect();
    if let Some(refused) = addrs
        .iter()
        .find(|a| !webhook_target::ip_allowed(a.ip(), allow_private))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} resolves to {}, which deliveries may not reach",
                authority,
                refused.ip()
            ),
        ));
    }
    let mut stream = tokio::net::TcpStream::connect(&addrs[..]).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: licentia-webhooks\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Licentia-Signature: {signature}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_checked_again_after_resolution() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://localhost:{port}/hook");
        let refused = post(&url, b"{}", "t=1,v1=00", false).await.unwrap_err();
        assert_eq!(
            refused.kind(),
            std::io::ErrorKind::PermissionDenied,
            "{refused}"
        );
        // With private targets allowed the same name is delivered to.
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
        });
        assert_eq!(post(&url, b"{}", "t=1,v1=00", true).await.unwrap(), 204);
        server.await.unwrap();
    }
}
