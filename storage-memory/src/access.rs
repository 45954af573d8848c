//! [`AccessStore`]: API keys, webhook endpoints, signing keys and the event log.

use chrono::{DateTime, Utc};
use licentia_core::crypto::StoredKey;
use licentia_core::model::{
    ApiKey, ApiKeyId, KeyStatus, ProductId, SecretHash, WebhookEndpoint, WebhookId,
};
use licentia_core::store::{
    AccessStore, EventPage, EventQuery, Limit, NewEvent, StoreError, StoreResult, revocation,
};

use crate::MemoryStore;
use crate::state::{newest_first, page};

/// The kid of the active key of `ring` (the global one or a product's), if any.
fn active_kid<'a>(keys: &'a [StoredKey], ring: Option<&ProductId>) -> Option<&'a str> {
    keys.iter()
        .find(|k| k.product_id.as_ref() == ring && k.status == KeyStatus::Active)
        .map(|k| k.kid.as_str())
}

impl AccessStore for MemoryStore {
    async fn insert_api_key(&self, k: &ApiKey, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut access = self.inner.access.write();
        if access.api_keys.contains_key(&k.id) {
            return Err(StoreError::already_exists("api_key", "id"));
        }
        if access.api_key_hashes.contains_key(&k.token_hash) {
            return Err(StoreError::already_exists("api_key", "token_hash"));
        }
        access.api_key_hashes.insert(k.token_hash, k.id.clone());
        access.api_keys.insert(k.id.clone(), k.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn find_api_key(&self, hash: &SecretHash) -> StoreResult<ApiKey> {
        let access = self.inner.access.read();
        access
            .api_key_hashes
            .get(hash)
            .and_then(|id| access.api_keys.get(id))
            .cloned()
            .ok_or(StoreError::not_found("api_key"))
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let mut access = self.inner.access.write();
        let key = access
            .api_keys
            .get_mut(id)
            .ok_or(StoreError::not_found("api_key"))?;
        // Concurrent requests may report their uses out of order: keep the latest.
        key.last_used_at = key.last_used_at.max(Some(at));
        Ok(())
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> StoreResult<ApiKey> {
        self.inner
            .access
            .read()
            .api_keys
            .get(id)
            .cloned()
            .ok_or(StoreError::not_found("api_key"))
    }

    async fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> StoreResult<ApiKey> {
        let mut access = self.inner.access.write();
        let key = access
            .api_keys
            .get(id)
            .ok_or(StoreError::not_found("api_key"))?;
        let Some(revoked) = revocation(key, access.api_keys.values(), now)? else {
            return Ok(key.clone());
        };
        access.api_keys.insert(id.clone(), revoked.clone());
        self.inner.events.lock().append(events);
        Ok(revoked)
    }

    async fn list_api_keys(&self, limit: Limit) -> StoreResult<Vec<ApiKey>> {
        let access = self.inner.access.read();
        Ok(page(
            access.api_keys.values(),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn count_api_keys(&self) -> StoreResult<u64> {
        Ok(self.inner.access.read().api_keys.len() as u64)
    }

    async fn purge_sessions(&self, expired_before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let mut access = self.inner.access.write();
        let expired: Vec<ApiKeyId> = access
            .api_keys
            .values()
            .filter(|k| k.is_session_expired_before(expired_before))
            .take(limit as usize)
            .map(|k| k.id.clone())
            .collect();
        for id in &expired {
            if let Some(k) = access.api_keys.remove(id) {
                access.api_key_hashes.remove(&k.token_hash);
            }
        }
        Ok(expired.len() as u64)
    }

    async fn insert_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: &str,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut access = self.inner.access.write();
        if access.webhooks.contains_key(&w.id) {
            return Err(StoreError::already_exists("webhook", "id"));
        }
        access
            .webhooks
            .insert(w.id.clone(), (w.clone(), secret.to_owned()));
        let mut log = self.inner.events.lock();
        log.outbox().subscribe(w);
        log.append(events);
        Ok(())
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<(WebhookEndpoint, String)> {
        self.inner
            .access
            .read()
            .webhooks
            .get(id)
            .cloned()
            .ok_or(StoreError::not_found("webhook"))
    }

    async fn update_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: Option<&str>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut access = self.inner.access.write();
        let (endpoint, stored_secret) = access
            .webhooks
            .get_mut(&w.id)
            .ok_or(StoreError::not_found("webhook"))?;
        *endpoint = w.clone();
        if let Some(secret) = secret {
            *stored_secret = secret.to_owned();
        }
        let mut log = self.inner.events.lock();
        log.outbox().subscribe(w);
        log.append(events);
        Ok(())
    }

    async fn delete_webhook(&self, id: &WebhookId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut access = self.inner.access.write();
        if access.webhooks.remove(id).is_none() {
            return Err(StoreError::not_found("webhook"));
        }
        let mut log = self.inner.events.lock();
        log.outbox().unsubscribe(id);
        log.append(events);
        Ok(())
    }

    async fn list_webhooks(&self, limit: Limit) -> StoreResult<Vec<WebhookEndpoint>> {
        let access = self.inner.access.read();
        Ok(page(
            access.webhooks.values().map(|(w, _)| w),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn load_signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        Ok(self.inner.access.read().signing_keys.clone())
    }

    async fn replace_signing_keys(
        &self,
        ring: Option<&ProductId>,
        expected_active: Option<&str>,
        keys: &[StoredKey],
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut access = self.inner.access.write();
        if active_kid(&access.signing_keys, ring) != expected_active {
            return Err(StoreError::Conflict {
                reason: "the signing keys changed since they were read",
            });
        }
        // A kid is unique across rings, as PostgreSQL's primary key has it.
        let others = |k: &&StoredKey| k.product_id.as_ref() != ring;
        if keys.iter().any(|new| {
            access
                .signing_keys
                .iter()
                .filter(others)
                .any(|k| k.kid == new.kid)
        }) {
            return Err(StoreError::already_exists("signing_key", "kid"));
        }
        access
            .signing_keys
            .retain(|k| k.product_id.as_ref() != ring);
        access.signing_keys.extend(keys.iter().map(|k| StoredKey {
            product_id: ring.cloned(),
            ..k.clone()
        }));
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn list_events(&self, query: &EventQuery) -> StoreResult<EventPage> {
        Ok(self.inner.events.lock().page(query))
    }

    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<()> {
        self.inner.events.lock().append(events);
        Ok(())
    }
}
