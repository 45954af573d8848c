//! [`AccessStore`]: API keys, webhook endpoints, signing keys and the event log.

use chrono::{DateTime, Utc};
use licentia_core::crypto::{SecretSeed, StoredKey};
use licentia_core::model::{
    ApiKey, ApiKeyId, KeyStatus, ProductId, SecretHash, Timestamp, WebhookEndpoint, WebhookId,
};
use licentia_core::store::{
    AccessStore, EventPage, EventQuery, Limit, NewEvent, StoreError, StoreResult, revocation,
};
use sqlx::types::Json;
use zeroize::Zeroizing;

use crate::PostgresStore;
use crate::error::{backend, map};
use crate::events;
use crate::rows::{page, require, touched};

const API_KEY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)";

/// A key as stored: `body` lacks the token hash (never part of a record's wire form).
fn api_key((body, token_hash): (Json<ApiKey>, Vec<u8>)) -> StoreResult<ApiKey> {
    let mut key = body.0;
    key.token_hash = SecretHash::from_bytes(hash_bytes(&token_hash)?);
    Ok(key)
}

/// A 32-byte digest read back from a `bytea` column.
pub(crate) fn hash_bytes(bytes: &[u8]) -> StoreResult<[u8; 32]> {
    bytes.try_into().map_err(|_| StoreError::Backend {
        source: "a stored hash is not 32 bytes long".into(),
    })
}

/// A sealed seed or secret read without a master key.
pub(crate) const NO_MASTER_KEY: &str = "the signing keys and webhook secrets in this database are sealed: \
     set LICENTIA_MASTER_KEY to the master key that sealed them";
/// A sealed seed or secret that the configured master key does not open.
pub(crate) const WRONG_MASTER_KEY: &str = "the signing keys and webhook secrets in this database were sealed \
     under another master key: LICENTIA_MASTER_KEY must be the key that sealed them";

type KeyRow = (
    String,
    String,
    DateTime<Utc>,
    bool,
    Vec<u8>,
    Option<DateTime<Utc>>,
    Option<String>,
);
/// A webhook's body and its secret, in the clear or sealed.
type WebhookRow = (Json<WebhookEndpoint>, Option<String>, Option<Vec<u8>>);

impl PostgresStore {
    fn stored_key(
        &self,
        (kid, status, created_at, sealed, seed, activates_at, product_id): KeyRow,
    ) -> StoreResult<StoredKey> {
        let status: KeyStatus = status.parse().map_err(backend)?;
        let product_id = product_id
            .map(|p| p.parse::<ProductId>())
            .transpose()
            .map_err(backend)?;
        let seed = Zeroizing::new(seed);
        let seed = match (sealed, &self.master) {
            (true, Some(master)) => {
                master
                    .open_seed(&kid, &seed)
                    .map_err(|_| StoreError::Backend {
                        source: WRONG_MASTER_KEY.into(),
                    })?
            }
            (true, None) => {
                return Err(StoreError::Backend {
                    source: NO_MASTER_KEY.into(),
                });
            }
            (false, _) => {
                let bytes: [u8; 32] =
                    seed.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Backend {
                            source: "a stored signing seed is not 32 bytes long".into(),
                        })?;
                SecretSeed::from_bytes(bytes)
            }
        };
        Ok(StoredKey {
            kid,
            status,
            created_at: Timestamp::new(created_at),
            activates_at: activates_at.map(Timestamp::new),
            product_id,
            seed,
        })
    }

    /// The seed column of `key` and whether it is sealed.
    fn seal(&self, key: &StoredKey) -> (bool, Zeroizing<Vec<u8>>) {
        match &self.master {
            Some(master) => (true, Zeroizing::new(master.seal_seed(&key.kid, &key.seed))),
            None => (false, Zeroizing::new(key.seed.expose_secret().to_vec())),
        }
    }
}

impl PostgresStore {
    /// The secret columns of endpoint `id`: sealed under the master key when there is one.
    fn seal_webhook_secret(
        &self,
        id: &WebhookId,
        secret: &str,
    ) -> (Option<String>, Option<Vec<u8>>) {
        match &self.master {
            Some(master) => (
                None,
                Some(master.seal_secret(id.as_str(), secret.as_bytes())),
            ),
            None => (Some(secret.to_owned()), None),
        }
    }

    pub(crate) fn open_webhook_secret(
        &self,
        id: &WebhookId,
        clear: Option<String>,
        sealed: Option<Vec<u8>>,
    ) -> StoreResult<String> {
        match (clear, sealed, &self.master) {
            (Some(clear), _, _) => Ok(clear),
            (None, Some(sealed), Some(master)) => {
                let plain =
                    master
                        .open_secret(id.as_str(), &sealed)
                        .map_err(|_| StoreError::Backend {
                            source: WRONG_MASTER_KEY.into(),
                        })?;
                String::from_utf8(plain.to_vec()).map_err(backend)
            }
            (None, Some(_), None) => Err(StoreError::Backend {
                source: NO_MASTER_KEY.into(),
            }),
            (None, None, _) => Err(StoreError::Backend {
                source: "a webhook has no secret".into(),
            }),
        }
    }

    /// Seals what is still in the clear (signing seeds, webhook secrets and users' TOTP
    /// secrets written without a master key) under this store's master key; returns how
    /// many of each it sealed. Without a master key it does nothing. Run at start by the
    /// server.
    ///
    /// # Errors
    ///
    /// Storage failures; a sealed seed or secret that this master key cannot open (it was
    /// sealed under another key) is left as it is and reported by the reads.
    pub async fn seal_clear_secrets(&self) -> StoreResult<SealedSecrets> {
        let Some(master) = &self.master else {
            return Ok(SealedSecrets::default());
        };
        let mut tx = self.begin().await?;
        let clear_seeds: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT kid, seed FROM signing_keys WHERE NOT sealed FOR UPDATE")
                .fetch_all(&mut *tx)
                .await
                .map_err(map)?;
        // Owned, so the clear bytes read are the ones wiped (a copy would leave them).
        let signing_seeds = clear_seeds.len() as u64;
        for (kid, seed) in clear_seeds {
            let seed = Zeroizing::new(seed);
            let bytes: [u8; 32] = seed[..].try_into().map_err(|_| StoreError::Backend {
                source: "a stored seed is not 32 bytes long".into(),
            })?;
            let sealed = master.seal_seed(&kid, &SecretSeed::from_bytes(bytes));
            sqlx::query("UPDATE signing_keys SET sealed = true, seed = $2 WHERE kid = $1")
                .bind(&kid)
                .bind(&sealed[..])
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        let clear_secrets: Vec<(String, String)> =
            sqlx::query_as("SELECT id, secret FROM webhooks WHERE secret IS NOT NULL FOR UPDATE")
                .fetch_all(&mut *tx)
                .await
                .map_err(map)?;
        for (id, secret) in &clear_secrets {
            let sealed = master.seal_secret(id, secret.as_bytes());
            sqlx::query("UPDATE webhooks SET secret = NULL, secret_sealed = $2 WHERE id = $1")
                .bind(id)
                .bind(&sealed[..])
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        let clear_totp: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        let totp_secrets = clear_totp.len() as u64;
        for (id, secret) in clear_totp {
            let secret = Zeroizing::new(secret);
            let sealed = master.seal_secret(&crate::user::totp_aad(&id), &secret);
            sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_secret_sealed = $2 WHERE id = $1",
            )
            .bind(&id)
            .bind(&sealed[..])
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(SealedSecrets {
            signing_seeds,
            webhook_secrets: clear_secrets.len() as u64,
            totp_secrets,
        })
    }

    /// Whether anything is stored in the clear: signing seeds, webhook secrets or TOTP
    /// secrets written without a master key.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn has_clear_secrets(&self) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE NOT sealed) \
                 OR EXISTS (SELECT 1 FROM webhooks WHERE secret IS NOT NULL) \
                 OR EXISTS (SELECT 1 FROM users WHERE totp_secret IS NOT NULL)",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(map)
    }
}

/// What [`PostgresStore::seal_clear_secrets`] sealed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealedSecrets {
    pub signing_seeds: u64,
    pub webhook_secrets: u64,
    /// Users' TOTP secrets.
    pub totp_secrets: u64,
}

impl SealedSecrets {
    /// How many secrets were sealed in all.
    pub fn total(&self) -> u64 {
        self.signing_seeds + self.webhook_secrets + self.totp_secrets
    }
}

impl AccessStore for PostgresStore {
    async fn insert_api_key(&self, k: &ApiKey, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, token_hash, created_at, last_used_at, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(k.id.as_str())
        .bind(&k.token_hash.as_bytes()[..])
        .bind(k.created_at)
        .bind(k.last_used_at)
        .bind(Json(k))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn find_api_key(&self, hash: &SecretHash) -> StoreResult<ApiKey> {
        let mut conn = self.conn().await?;
        let row: Option<(Json<ApiKey>, Vec<u8>)> =
            sqlx::query_as("SELECT body, token_hash FROM api_keys WHERE token_hash = $1")
                .bind(&hash.as_bytes()[..])
                .fetch_optional(&mut *conn)
                .await
                .map_err(map)?;
        api_key(row.ok_or(StoreError::not_found("api_key"))?)
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        // Concurrent requests may report their uses out of order: keep the latest.
        let done = sqlx::query(
            "UPDATE api_keys SET last_used_at = $2, \
                                 body = jsonb_set(body, '{last_used_at}', $3) \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
        )
        .bind(id.as_str())
        .bind(at)
        .bind(Json(at))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        if done.rows_affected() == 0 {
            // Either a later use is recorded already, or there is no such key.
            require(&mut conn, API_KEY_EXISTS, id.as_str(), "api_key").await?;
        }
        Ok(())
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> StoreResult<ApiKey> {
        let mut conn = self.conn().await?;
        let row: Option<(Json<ApiKey>, Vec<u8>)> =
            sqlx::query_as("SELECT body, token_hash FROM api_keys WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map)?;
        api_key(row.ok_or(StoreError::not_found("api_key"))?)
    }

    async fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> StoreResult<ApiKey> {
        let mut tx = self.begin().await?;
        // Revocations (and key creation) queue here, so the check of who else is an admin and
        // the write are one step across every instance.
        sqlx::query("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let active: Vec<(Json<ApiKey>, Vec<u8>)> = sqlx::query_as(
            "SELECT body, token_hash FROM api_keys WHERE id = $1 OR (body->>'is_active')::boolean",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        let keys = active
            .into_iter()
            .map(api_key)
            .collect::<StoreResult<Vec<_>>>()?;
        let key = keys
            .iter()
            .find(|k| &k.id == id)
            .ok_or(StoreError::not_found("api_key"))?;
        let Some(revoked) = revocation(key, &keys, now)? else {
            return Ok(key.clone());
        };
        sqlx::query(
            "UPDATE api_keys SET body = jsonb_set(body, '{is_active}', 'false') WHERE id = $1",
        )
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await?;
        Ok(revoked)
    }

    async fn list_api_keys(&self, limit: Limit) -> StoreResult<Vec<ApiKey>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(Json<ApiKey>, Vec<u8>)> = sqlx::query_as(
            "SELECT body, token_hash FROM api_keys ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit.get()))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        rows.into_iter().map(api_key).collect()
    }

    async fn purge_sessions(&self, expired_before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        // `ApiKey::is_session_expired_before` on the stored record; SKIP LOCKED: instances
        // purging at once take disjoint rows instead of waiting.
        let done = sqlx::query(
            "DELETE FROM api_keys WHERE id IN ( \
                 SELECT id FROM api_keys \
                 WHERE jsonb_typeof(body->'user_id') = 'string' \
                   AND (body->>'expires_at')::timestamptz < $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(expired_before)
        .bind(i64::from(limit))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn count_api_keys(&self) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
            .fetch_one(&mut *conn)
            .await
            .map_err(map)?;
        Ok(n.unsigned_abs())
    }

    async fn insert_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: &str,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let (clear, sealed) = self.seal_webhook_secret(&w.id, secret);
        sqlx::query(
            "INSERT INTO webhooks (id, secret, secret_sealed, created_at, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(w.id.as_str())
        .bind(clear)
        .bind(sealed)
        .bind(w.created_at)
        .bind(Json(w))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<(WebhookEndpoint, String)> {
        let mut conn = self.conn().await?;
        let row: Option<WebhookRow> =
            sqlx::query_as("SELECT body, secret, secret_sealed FROM webhooks WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map)?;
        let (body, clear, sealed) = row.ok_or(StoreError::not_found("webhook"))?;
        let secret = self.open_webhook_secret(id, clear, sealed)?;
        Ok((body.0, secret))
    }

    async fn update_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: Option<&str>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let (clear, sealed) = match secret {
            Some(secret) => self.seal_webhook_secret(&w.id, secret),
            None => (None, None),
        };
        // A new secret replaces both columns; without one both stay as they are.
        // An update lifts the endpoint's pause (DeliveryStore's contract).
        let done = sqlx::query(
            "UPDATE webhooks SET body = $2, paused_until = NULL, \
                 secret = CASE WHEN $5 THEN $3 ELSE secret END, \
                 secret_sealed = CASE WHEN $5 THEN $4 ELSE secret_sealed END \
             WHERE id = $1",
        )
        .bind(w.id.as_str())
        .bind(Json(w))
        .bind(clear)
        .bind(sealed)
        .bind(secret.is_some())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        touched(done.rows_affected(), "webhook")?;
        self.commit(tx, events).await
    }

    async fn delete_webhook(&self, id: &WebhookId, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        touched(done.rows_affected(), "webhook")?;
        self.commit(tx, events).await
    }

    async fn list_webhooks(&self, limit: Limit) -> StoreResult<Vec<WebhookEndpoint>> {
        let mut conn = self.conn().await?;
        page(
            &mut conn,
            "SELECT body FROM webhooks WHERE $1::text IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            None,
            limit,
        )
        .await
    }

    async fn load_signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let mut conn = self.conn().await?;
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, status, created_at, sealed, seed, activates_at, product_id \
             FROM signing_keys ORDER BY product_id NULLS FIRST, position",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        rows.into_iter().map(|row| self.stored_key(row)).collect()
    }

    async fn replace_signing_keys(
        &self,
        ring: Option<&ProductId>,
        expected_active: Option<&str>,
        keys: &[StoredKey],
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let ring = ring.map(ProductId::as_str);
        let mut tx = self.begin().await?;
        // Replacements queue behind each other (readers do not wait), so the compare and
        // the swap below see the same key set.
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let active: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_keys \
                 WHERE status = $1 AND product_id IS NOT DISTINCT FROM $2",
        )
        .bind(KeyStatus::Active.as_str())
        .bind(ring)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if active.as_deref() != expected_active {
            return Err(StoreError::Conflict {
                reason: "the signing keys changed since they were read",
            });
        }
        sqlx::query("DELETE FROM signing_keys WHERE product_id IS NOT DISTINCT FROM $1")
            .bind(ring)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        for (position, key) in keys.iter().enumerate() {
            let (sealed, seed) = self.seal(key);
            sqlx::query(
                "INSERT INTO signing_keys \
                     (kid, position, status, created_at, sealed, seed, activates_at, \
                      product_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&key.kid)
            .bind(i32::try_from(position).map_err(backend)?)
            .bind(key.status.as_str())
            .bind(key.created_at.get())
            .bind(sealed)
            .bind(&seed[..])
            .bind(key.activates_at.map(Timestamp::get))
            .bind(ring)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        // Every instance listening reloads its keys when this commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(crate::KEYS_CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn list_events(&self, query: &EventQuery) -> StoreResult<EventPage> {
        let mut conn = self.conn().await?;
        events::page(&mut conn, query).await
    }

    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<()> {
        let tx = self.begin().await?;
        self.commit(tx, events).await
    }
}
