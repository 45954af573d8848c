//! [`UserStore`]: one row per management user (migration 0015); the password hash and the
//! pending token's hash in columns of their own, the rest in `body`.

use licentia_core::crypto::{PasswordHash, TotpSecret};
use licentia_core::model::{SecretHash, User, UserId};
use licentia_core::store::{NewEvent, StoreError, StoreResult, UserChange, UserQuery, UserStore};
use sqlx::types::Json;
use zeroize::Zeroizing;

use crate::PostgresStore;
use crate::access::hash_bytes;
use crate::error::map;

/// `SELECT` of what [`from_row`] reads, followed by `$rest`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT body, password_hash, token_hash, totp_secret, totp_secret_sealed FROM users ",
            $rest
        )
    };
}

type Row = (
    Json<User>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

fn token_bytes(u: &User) -> Option<Vec<u8>> {
    u.token_hash.as_ref().map(|h| h.as_bytes().to_vec())
}

/// What authenticates a user's sealed TOTP secret: it opens for that user only.
pub(crate) fn totp_aad(id: &str) -> String {
    format!("totp:{id}")
}

impl PostgresStore {
    fn user_from_row(
        &self,
        (body, password_hash, token_hash, clear, sealed): Row,
    ) -> StoreResult<User> {
        let mut u = body.0;
        u.password_hash = password_hash.map(PasswordHash::from_stored);
        u.token_hash = token_hash
            .map(|h| hash_bytes(&h).map(SecretHash::from_bytes))
            .transpose()?;
        let bytes = match (clear, sealed, &self.master) {
            (Some(clear), _, _) => Some(Zeroizing::new(clear)),
            (None, Some(sealed), Some(master)) => Some(
                master
                    .open_secret(&totp_aad(u.id.as_str()), &sealed)
                    .map_err(|_| StoreError::Backend {
                        source: crate::access::WRONG_MASTER_KEY.into(),
                    })?,
            ),
            (None, Some(_), None) => {
                return Err(StoreError::Backend {
                    source: crate::access::NO_MASTER_KEY.into(),
                });
            }
            (None, None, _) => None,
        };
        u.totp_secret = match bytes {
            Some(b) => Some(
                TotpSecret::from_bytes(&b).ok_or_else(|| StoreError::Backend {
                    source: "a stored TOTP secret is not 20 bytes long".into(),
                })?,
            ),
            None => None,
        };
        Ok(u)
    }

    /// The TOTP columns of `u`: (clear, sealed), sealed under the master key when there is one.
    fn totp_columns(&self, u: &User) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match (&u.totp_secret, &self.master) {
            (None, _) => (None, None),
            (Some(s), Some(master)) => (
                None,
                Some(master.seal_secret(&totp_aad(u.id.as_str()), s.expose_secret())),
            ),
            (Some(s), None) => (Some(s.expose_secret().to_vec()), None),
        }
    }
}

impl PostgresStore {
    /// The user `sql` (one of [`select!`]'s, with one parameter) finds by `key`.
    async fn user_by<'q>(
        &self,
        sql: &'static str,
        key: impl sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + 'q,
    ) -> StoreResult<User> {
        let mut conn = self.conn().await?;
        let row: Option<Row> = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?;
        self.user_from_row(row.ok_or(StoreError::not_found("user"))?)
    }
}

impl UserStore for PostgresStore {
    async fn insert_user(&self, u: &User, events: Vec<NewEvent>) -> StoreResult<()> {
        let (clear, sealed) = self.totp_columns(u);
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, token_hash, created_at, body, \
                 totp_secret, totp_secret_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.id.as_str())
        .bind(u.email.as_str())
        .bind(u.password_hash.as_ref().map(PasswordHash::as_str))
        .bind(token_bytes(u))
        .bind(u.created_at)
        .bind(Json(u))
        .bind(clear)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<User> {
        self.user_by(select!("WHERE id = $1"), id.as_str().to_owned())
            .await
    }

    async fn find_user(&self, email: &str) -> StoreResult<User> {
        self.user_by(select!("WHERE email = $1"), email.to_owned())
            .await
    }

    async fn find_user_by_token(&self, hash: &SecretHash) -> StoreResult<User> {
        self.user_by(select!("WHERE token_hash = $1"), hash.as_bytes().to_vec())
            .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let mut conn = self.conn().await?;
        // Byte order ("C"), as the contract says, whatever the database's collation.
        let rows: Vec<Row> = sqlx::query_as(select!(
            "WHERE ($2::text IS NULL OR body->>'role' = $2) \
               AND ($3::text IS NULL OR body->>'status' = $3) \
               AND ($4::text IS NULL OR email COLLATE \"C\" > $4) \
             ORDER BY email COLLATE \"C\" LIMIT $1"
        ))
        .bind(i64::from(query.limit.get()))
        .bind(query.role.map(|r| r.as_str()))
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.after.as_deref())
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
        rows.into_iter().map(|r| self.user_from_row(r)).collect()
    }

    async fn modify_user<F>(&self, id: &UserId, decide: F) -> StoreResult<User>
    where
        F: FnOnce(&User) -> UserChange + Send,
    {
        let mut tx = self.begin().await?;
        let row: Option<Row> = sqlx::query_as(select!("WHERE id = $1 FOR UPDATE"))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
        let current = self.user_from_row(row.ok_or(StoreError::not_found("user"))?)?;
        let Some((next, events)) = decide(&current) else {
            return Ok(current);
        };
        let next = User {
            id: id.clone(),
            ..next
        };
        let (clear, sealed) = self.totp_columns(&next);
        sqlx::query(
            "UPDATE users SET email = $2, password_hash = $3, token_hash = $4, body = $5, \
                 totp_secret = $6, totp_secret_sealed = $7 \
             WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(next.email.as_str())
        .bind(next.password_hash.as_ref().map(PasswordHash::as_str))
        .bind(token_bytes(&next))
        .bind(Json(&next))
        .bind(clear)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await?;
        Ok(next)
    }
}
