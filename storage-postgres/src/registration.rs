//! [`RegistrationStore`]: one row per registration (migration 0009); its hashes in columns of
//! their own, the rest in `body`. An activation is written by the license's transaction
//! ([`write_activation`]).

use chrono::{DateTime, Utc};
use licentia_core::model::{DeviceId, DeviceRegistration, LicenseId, RegistrationId, SecretHash};
use licentia_core::store::{
    Limit, NewEvent, REGISTRATION_CHANGED, RegistrationStore, StoreError, StoreResult,
};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::PostgresStore;
use crate::access::hash_bytes;
use crate::error::map;
use crate::rows::touched;

/// `SELECT` of what [`from_row`] reads, followed by `$rest`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT body, secret_hash, session_token_hash FROM device_registrations ",
            $rest
        )
    };
}

type Row = (Json<DeviceRegistration>, Vec<u8>, Option<Vec<u8>>);

fn from_row((body, secret_hash, session_hash): Row) -> StoreResult<DeviceRegistration> {
    let mut r = body.0;
    r.secret_hash = SecretHash::from_bytes(hash_bytes(&secret_hash)?);
    if let (Some(session), Some(hash)) = (r.session.as_mut(), session_hash) {
        session.token_hash = SecretHash::from_bytes(hash_bytes(&hash)?);
    }
    Ok(r)
}

fn session_hash(r: &DeviceRegistration) -> Option<Vec<u8>> {
    r.session.as_ref().map(|s| s.token_hash.as_bytes().to_vec())
}

/// Writes an activation of `r` on `conn` (inside the license's transaction), only while its
/// device is still `expected`: otherwise `Conflict` with [`REGISTRATION_CHANGED`].
pub(crate) async fn write_activation(
    conn: &mut PgConnection,
    r: &DeviceRegistration,
    expected: Option<&DeviceId>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE device_registrations SET device_id = $3, session_token_hash = $4, body = $5 \
         WHERE id = $1 AND license_id = $2 AND device_id IS NOT DISTINCT FROM $6",
    )
    .bind(r.id.as_str())
    .bind(r.license_id.as_str())
    .bind(r.device_id.as_ref().map(DeviceId::as_str))
    .bind(session_hash(r))
    .bind(Json(r))
    .bind(expected.map(DeviceId::as_str))
    .execute(conn)
    .await
    .map_err(map)?;
    match done.rows_affected() {
        1 => Ok(()),
        _ => Err(StoreError::Conflict {
            reason: REGISTRATION_CHANGED,
        }),
    }
}

impl PostgresStore {
    /// The registration `sql` (one of [`select!`]'s, with one parameter) finds by `key`.
    async fn registration_by<'q>(
        &self,
        sql: &'static str,
        key: impl sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + 'q,
    ) -> StoreResult<DeviceRegistration> {
        let mut conn = self.conn().await?;
        let row: Option<Row> = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?;
        from_row(row.ok_or(StoreError::not_found("device_registration"))?)
    }
}

impl RegistrationStore for PostgresStore {
    async fn insert_registration(
        &self,
        r: &DeviceRegistration,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO device_registrations (id, license_id, serial, secret_hash, device_id, \
                 session_token_hash, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.id.as_str())
        .bind(r.license_id.as_str())
        .bind(r.serial.as_str())
        .bind(&r.secret_hash.as_bytes()[..])
        .bind(r.device_id.as_ref().map(DeviceId::as_str))
        .bind(session_hash(r))
        .bind(r.created_at)
        .bind(Json(r))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await
    }

    async fn get_registration(&self, id: &RegistrationId) -> StoreResult<DeviceRegistration> {
        self.registration_by(select!("WHERE id = $1"), id.as_str().to_owned())
            .await
    }

    async fn find_registration(&self, serial: &str) -> StoreResult<DeviceRegistration> {
        self.registration_by(select!("WHERE serial = $1"), serial.to_owned())
            .await
    }

    async fn find_session(&self, token_hash: &SecretHash) -> StoreResult<DeviceRegistration> {
        self.registration_by(
            select!("WHERE session_token_hash = $1"),
            token_hash.as_bytes().to_vec(),
        )
        .await
    }

    async fn list_registrations(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> StoreResult<Vec<DeviceRegistration>> {
        let mut conn = self.conn().await?;
        let rows: Vec<Row> =
            sqlx::query_as(select!("WHERE license_id = $1 ORDER BY serial LIMIT $2"))
                .bind(license.as_str())
                .bind(i64::try_from(limit.as_usize()).unwrap_or(i64::MAX))
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
        rows.into_iter().map(from_row).collect()
    }

    async fn delete_registration(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM device_registrations WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        touched(done.rows_affected(), "device_registration")?;
        self.commit(tx, events).await
    }

    async fn end_session(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> StoreResult<DeviceRegistration> {
        let mut tx = self.begin().await?;
        // The row as it was, locked until the commit.
        let row: Option<Row> = sqlx::query_as(select!("WHERE id = $1 FOR UPDATE"))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
        let before = from_row(row.ok_or(StoreError::not_found("device_registration"))?)?;
        let mut after = before.clone();
        after.session = None;
        sqlx::query(
            "UPDATE device_registrations SET session_token_hash = NULL, body = $2 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(Json(&after))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.commit(tx, events).await?;
        Ok(before)
    }

    async fn extend_session(
        &self,
        id: &RegistrationId,
        token_hash: &SecretHash,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let hash = &token_hash.as_bytes()[..];
        let row: Option<Row> = sqlx::query_as(select!("WHERE id = $1 AND session_token_hash = $2"))
            .bind(id.as_str())
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?;
        let Some(mut r) = row.map(from_row).transpose()? else {
            return Ok(false);
        };
        if let Some(s) = r.session.as_mut() {
            s.expires_at = expires_at;
        }
        // Written only if the session is still this one: an activation or an end meanwhile
        // changed the token hash, and wins.
        let done = sqlx::query(
            "UPDATE device_registrations SET body = $3 WHERE id = $1 AND session_token_hash = $2",
        )
        .bind(id.as_str())
        .bind(hash)
        .bind(Json(&r))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }
}
