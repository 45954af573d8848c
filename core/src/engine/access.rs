//! Management API keys, webhook endpoints and the event log.

use rand_core::CryptoRng;
use serde::Serialize;
use serde_json::json;

use super::catalog::{check_name, parse_id};
use super::requests::{ApiKeyCreate, WebhookFields};
use super::{Actor, Clock, Engine, EngineError};
use crate::crypto::{ManagementToken, WebhookSecret};
use crate::model::{ApiKey, ApiKeyId, ManagementScope, WebhookEndpoint, WebhookId};
use crate::rules::webhook_target::{self, TargetError};
use crate::rules::{DenialCode, DomainEvent};
use crate::store::{EventPage, EventQuery, Limit, Store, StoreError};

/// A created API key and its token, which is shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyCreated {
    /// The key record.
    pub api_key: ApiKey,
    /// The full token; only its hash is stored.
    pub token: String,
}

/// A webhook endpoint with its secret, shown on create and rotation only.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookWithSecret {
    /// The endpoint.
    pub webhook: WebhookEndpoint,
    /// The shared secret deliveries are signed with.
    pub secret: String,
}

/// Longest accepted webhook secret supplied by a caller, in bytes.
const MAX_SECRET_LEN: usize = 256;
/// Shortest accepted webhook secret supplied by a caller, in bytes.
const MIN_SECRET_LEN: usize = 16;

fn secret_prefix(secret: &str) -> String {
    secret.chars().take(10).collect()
}

/// The URL as given, once [`webhook_target::check_url`] accepts it.
fn check_url(url: &str, allow_private: bool) -> Result<String, EngineError> {
    match webhook_target::check_url(url, allow_private) {
        Ok(_) => Ok(url.to_owned()),
        Err(e @ TargetError::NotAllowed(_)) => Err(EngineError::denied(
            DenialCode::WebhookUrlNotAllowed,
            Some("url"),
            e.to_string(),
        )),
        Err(e) => Err(EngineError::invalid("url", e.to_string())),
    }
}

fn check_secret(secret: &str) -> Result<(), EngineError> {
    if (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) && secret.is_ascii() {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "secret",
            format!("secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} ASCII characters"),
        ))
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Creates a management API key (scopes default to `admin`).
    ///
    /// # Errors
    ///
    /// Invalid name, CIDRs or expiry; storage failures.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        req: ApiKeyCreate,
    ) -> Result<ApiKeyCreated, EngineError> {
        let now = self.now();
        let name = check_name("name", &req.name)?;
        let cidrs = req.allowed_cidrs.unwrap_or_default();
        if let Some(bad) = cidrs.iter().find(|c| !looks_like_cidr(c)) {
            return Err(EngineError::invalid(
                "allowed_cidrs",
                format!("{bad:?} is not a CIDR block"),
            ));
        }
        if req.expires_at.is_some_and(|e| e <= now) {
            return Err(EngineError::invalid(
                "expires_at",
                "expires_at must be in the future",
            ));
        }
        let mut scopes = req.scopes.unwrap_or_else(|| vec![ManagementScope::Admin]);
        scopes.dedup();
        if scopes.is_empty() {
            return Err(EngineError::invalid(
                "scopes",
                "a key needs at least one scope",
            ));
        }
        let (id, token) = self.with_rng(|r| (ApiKeyId::generate(r), ManagementToken::generate(r)));
        let key = ApiKey {
            id,
            name,
            key_prefix: token.prefix().to_owned(),
            scopes,
            allowed_cidrs: cidrs,
            is_active: true,
            expires_at: req.expires_at,
            last_used_at: None,
            user_id: None,
            created_at: now,
            token_hash: token.hash(),
        };
        let e = DomainEvent::new(
            "api_key.created",
            "api_key",
            key.id.as_str(),
            [("scopes", json!(key.scopes))],
        );
        self.store
            .insert_api_key(&key, vec![actor.event(e, now)])
            .await?;
        Ok(ApiKeyCreated {
            api_key: key,
            token: token.expose_secret().to_owned(),
        })
    }

    /// Creates the first admin key when the store has none, with `token` when given (for a
    /// bootstrap token supplied by the operator). Returns `None` when keys exist already.
    ///
    /// # Errors
    ///
    /// A malformed `token`; storage failures.
    pub async fn bootstrap_admin(
        &self,
        token: Option<&str>,
    ) -> Result<Option<ApiKeyCreated>, EngineError> {
        if self.store.count_api_keys().await? > 0 {
            return Ok(None);
        }
        let now = self.now();
        let token = match token {
            Some(t) => ManagementToken::parse(t).map_err(|_| {
                EngineError::invalid(
                    "token",
                    "a bootstrap token must look like lkm_ followed by 32 base32 characters",
                )
            })?,
            None => self.with_rng(|r| ManagementToken::generate(r)),
        };
        let key = ApiKey {
            id: self.with_rng(|r| ApiKeyId::generate(r)),
            name: "bootstrap admin".into(),
            key_prefix: token.prefix().to_owned(),
            scopes: vec![ManagementScope::Admin],
            allowed_cidrs: vec![],
            is_active: true,
            expires_at: None,
            last_used_at: None,
            user_id: None,
            created_at: now,
            token_hash: token.hash(),
        };
        let e = DomainEvent::new(
            "api_key.created",
            "api_key",
            key.id.as_str(),
            [("bootstrap", json!(true))],
        );
        match self
            .store
            .insert_api_key(&key, vec![Actor::system().event(e, now)])
            .await
        {
            Ok(()) => Ok(Some(ApiKeyCreated {
                api_key: key,
                token: token.expose_secret().to_owned(),
            })),
            // Another instance bootstrapped the same token at the same moment.
            Err(StoreError::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Authenticates a management token: it must exist, be active and unexpired, and hold
    /// `required` (or `admin`). The host checks `allowed_cidrs` against the peer address with
    /// [`ApiKey::allowed_cidrs`]. Records the use.
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` for a malformed, unknown, inactive or expired token. Scopes are
    /// the host's to enforce per operation with [`ApiKey::has_scope`] (and `TOKEN_SCOPE_DENIED`
    /// its to report), since only the host knows which operation is being called.
    pub async fn authenticate(&self, token: &str) -> Result<ApiKey, EngineError> {
        let mut key = self.usable_api_key(token).await?;
        let now = self.now();
        // A user's session acts with the user's role as it is now, while the user is active
        // (a license user's session has no management scope: refused here).
        if let Some(user) = &key.user_id {
            key.scopes = self
                .session_scopes(user, key.created_at)
                .await?
                .ok_or(EngineError::InvalidCredentials)?;
        }
        // Bookkeeping only: losing a last-used stamp must not fail the request.
        let _ = self.store.touch_api_key(&key.id, now).await;
        Ok(key)
    }

    /// The stored key of `token`, if it is usable now.
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` for a malformed, unknown, inactive or expired token; storage
    /// failures.
    pub(super) async fn usable_api_key(&self, token: &str) -> Result<ApiKey, EngineError> {
        let token = ManagementToken::parse(token).map_err(|_| EngineError::InvalidCredentials)?;
        let key = match self.store.find_api_key(&token.hash()).await {
            Ok(k) => k,
            Err(StoreError::NotFound { .. }) => return Err(EngineError::InvalidCredentials),
            Err(e) => return Err(e.into()),
        };
        match key.is_usable_at(self.now()) {
            true => Ok(key),
            false => Err(EngineError::InvalidCredentials),
        }
    }

    /// API keys, newest first (never their tokens).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_api_keys(&self, limit: Limit) -> Result<Vec<ApiKey>, EngineError> {
        Ok(self.store.list_api_keys(limit).await?)
    }

    /// The API key with `id` (never its token).
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey, EngineError> {
        Ok(self.store.get_api_key(&parse_id(id, "api_key")?).await?)
    }

    /// Revokes the API key `id`: its token is refused from its next request on, by every
    /// instance (authentication reads the store). Revoking a revoked key again succeeds and
    /// records nothing.
    ///
    /// # Errors
    ///
    /// `NotFound`; [`DenialCode::LastAdminToken`] (409) when it is the last admin key usable
    /// now, which would lock every operator out; storage failures.
    pub async fn revoke_api_key(&self, actor: &Actor, id: &str) -> Result<ApiKey, EngineError> {
        let id: ApiKeyId = parse_id(id, "api_key")?;
        let now = self.now();
        let event = DomainEvent::new("api_key.revoked", "api_key", id.as_str(), []);
        match self
            .store
            .revoke_api_key(&id, now, vec![actor.event(event, now)])
            .await
        {
            Err(StoreError::Conflict { .. }) => Err(EngineError::denied(
                DenialCode::LastAdminToken,
                None,
                "this is the last active admin token; create another before revoking it",
            )),
            other => Ok(other?),
        }
    }

    /// Creates a webhook endpoint; the secret is generated unless given.
    ///
    /// # Errors
    ///
    /// Missing or invalid name, URL or secret; storage failures.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        req: WebhookFields,
    ) -> Result<WebhookWithSecret, EngineError> {
        let now = self.now();
        let name = check_name("name", req.name.as_deref().unwrap_or_default())?;
        let url = check_url(
            req.url.as_deref().unwrap_or_default(),
            self.private_webhook_targets(),
        )?;
        if req.rotate_secret.is_some() {
            return Err(EngineError::invalid(
                "rotate_secret",
                "rotate_secret applies to updates only",
            ));
        }
        let secret = match req.secret {
            Some(s) => {
                check_secret(&s)?;
                s
            }
            None => self
                .with_rng(|r| WebhookSecret::generate(r))
                .expose_secret()
                .to_owned(),
        };
        let w = WebhookEndpoint {
            id: self.with_rng(|r| WebhookId::generate(r)),
            name,
            url,
            secret_prefix: secret_prefix(&secret),
            event_types: req.event_types.unwrap_or_default(),
            is_active: req.is_active.unwrap_or(true),
            last_delivery_at: None,
            last_delivery_status: None,
            last_status_code: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        let e = DomainEvent::new(
            "webhook.created",
            "webhook",
            w.id.as_str(),
            [("url", json!(w.url))],
        );
        self.store
            .insert_webhook(&w, &secret, vec![actor.event(e, now)])
            .await?;
        Ok(WebhookWithSecret { webhook: w, secret })
    }

    /// The endpoint with `id` (without its secret).
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_webhook(&self, id: &str) -> Result<WebhookEndpoint, EngineError> {
        Ok(self.store.get_webhook(&parse_id(id, "webhook")?).await?.0)
    }

    /// Updates an endpoint. Returns the new secret when it was replaced or rotated.
    ///
    /// # Errors
    ///
    /// `secret` together with `rotate_secret`; invalid fields; `NotFound`.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: &str,
        req: WebhookFields,
    ) -> Result<(WebhookEndpoint, Option<String>), EngineError> {
        let (mut w, _) = self.store.get_webhook(&parse_id(id, "webhook")?).await?;
        let now = self.now();
        if req.secret.is_some() && req.rotate_secret == Some(true) {
            return Err(EngineError::invalid(
                "rotate_secret",
                "rotate_secret cannot be combined with secret",
            ));
        }
        if let Some(n) = &req.name {
            w.name = check_name("name", n)?;
        }
        if let Some(u) = &req.url {
            w.url = check_url(u, self.private_webhook_targets())?;
        }
        if let Some(t) = req.event_types {
            w.event_types = t;
        }
        if let Some(a) = req.is_active {
            w.is_active = a;
        }
        let new_secret = match (req.secret, req.rotate_secret) {
            (Some(s), _) => {
                check_secret(&s)?;
                Some(s)
            }
            (None, Some(true)) => Some(
                self.with_rng(|r| WebhookSecret::generate(r))
                    .expose_secret()
                    .to_owned(),
            ),
            _ => None,
        };
        if let Some(s) = &new_secret {
            w.secret_prefix = secret_prefix(s);
        }
        w.updated_at = now;
        // An update is a fresh start: the endpoint is no longer counted as failing.
        w.failing_since = None;
        let mut events = vec![actor.event(
            DomainEvent::new("webhook.updated", "webhook", w.id.as_str(), []),
            now,
        )];
        if new_secret.is_some() {
            events.push(actor.event(
                DomainEvent::new("webhook.secret_rotated", "webhook", w.id.as_str(), []),
                now,
            ));
        }
        self.store
            .update_webhook(&w, new_secret.as_deref(), events)
            .await?;
        Ok((w, new_secret))
    }

    /// Deletes an endpoint.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn delete_webhook(&self, actor: &Actor, id: &str) -> Result<(), EngineError> {
        let id: WebhookId = parse_id(id, "webhook")?;
        let now = self.now();
        let e = DomainEvent::new("webhook.deleted", "webhook", id.as_str(), []);
        Ok(self
            .store
            .delete_webhook(&id, vec![actor.event(e, now)])
            .await?)
    }

    /// Endpoints, newest first.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_webhooks(&self, limit: Limit) -> Result<Vec<WebhookEndpoint>, EngineError> {
        Ok(self.store.list_webhooks(limit).await?)
    }

    /// The event log, newest first.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_events(&self, query: &EventQuery) -> Result<EventPage, EngineError> {
        Ok(self.store.list_events(query).await?)
    }
}

/// A syntactic check of `a.b.c.d/n` or an IPv6 block; hosts parse them for real when
/// matching peers.
fn looks_like_cidr(s: &str) -> bool {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|n| n <= max))
}
