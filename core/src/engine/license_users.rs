//! User-based licenses (an extension), the management side: license users assigned to a
//! license with a seat limit each, and the licenses a signed-in user holds. The rules are
//! [`rules::license_users`](crate::rules::license_users); the runtime side is
//! [`Credential::User`](super::Credential::User) and
//! [`Credential::UserSession`](super::Credential::UserSession).

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use super::catalog::parse_id;
use super::licenses::present;
use super::{Actor, Clock, Credential, Engine, EngineError};
use crate::model::{AssignedUser, License, User, UserId, UserRole, UserStatus};
use crate::rules::license_users::{self, DEFAULT_USER_ACTIVATIONS};
use crate::store::{AggregateQuery, LicenseQuery, Limit, Store, StoreError};

/// `POST /api/v1/licenses/{id}/users`: assign a license user, by id or by e-mail (exactly
/// one), with a seat limit (default [`DEFAULT_USER_ACTIVATIONS`]). Assigning again changes
/// the limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseUserAssign {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub max_activations: Option<u32>,
}

/// A license user's assignment as management shows it: the seat with who holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LicenseUserSeat {
    pub user_id: UserId,
    pub email: String,
    pub status: UserStatus,
    pub max_activations: u32,
    pub assigned_at: DateTime<Utc>,
}

impl LicenseUserSeat {
    fn of(seat: &AssignedUser, user: &User) -> Self {
        Self {
            user_id: seat.user_id.clone(),
            email: user.email.clone(),
            status: user.status,
            max_activations: seat.max_activations,
            assigned_at: seat.assigned_at,
        }
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Assigns a license user to `license` (or changes its seat limit). The user may still
    /// be invited; an operator or a disabled user is refused.
    ///
    /// # Errors
    ///
    /// `NotFound` license or user; `INVALID_FIELD` for neither or both of `user_id` and
    /// `email`, or a user who is not a license user or is disabled; `INVALID_AMOUNT` for a
    /// zero limit; storage failures.
    pub async fn assign_license_user(
        &self,
        actor: &Actor,
        license: &str,
        req: &LicenseUserAssign,
    ) -> Result<LicenseUserSeat, EngineError> {
        let user = match (&req.user_id, &req.email) {
            (Some(id), None) => self.store.get_user(&parse_id(id, "user")?).await?,
            (None, Some(email)) => self.store.find_user(&email.trim().to_lowercase()).await?,
            _ => {
                return Err(EngineError::invalid(
                    "user_id",
                    "give exactly one of user_id and email",
                ));
            }
        };
        if user.role != UserRole::Licensee || user.status == UserStatus::Disabled {
            return Err(EngineError::invalid(
                "user_id",
                "only an invited or active license user (role licensee) can be assigned",
            ));
        }
        let max = req.max_activations.unwrap_or(DEFAULT_USER_ACTIVATIONS);
        let seat = self
            .admin_with(actor, license, AggregateQuery::default(), |agg, now| {
                license_users::assign(agg, &user.id, max, now)
            })
            .await?;
        Ok(LicenseUserSeat::of(&seat, &user))
    }

    /// Unassigns a license user: every device it holds on the license is released.
    ///
    /// # Errors
    ///
    /// `NotFound` license, or `license_user` when the user is not assigned; storage
    /// failures.
    pub async fn unassign_license_user(
        &self,
        actor: &Actor,
        license: &str,
        user: &str,
    ) -> Result<(), EngineError> {
        let user: UserId = parse_id(user, "user")?;
        self.admin_with(actor, license, AggregateQuery::default(), |agg, now| {
            license_users::unassign(agg, &user, now)
        })
        .await
    }

    /// The users assigned to `license`, in assignment order.
    ///
    /// # Errors
    ///
    /// `NotFound` license; storage failures.
    pub async fn list_license_users(
        &self,
        license: &str,
    ) -> Result<Vec<LicenseUserSeat>, EngineError> {
        let license = self
            .store
            .get_license(&parse_id(license, "license")?)
            .await?;
        let mut seats = Vec::with_capacity(license.users.len());
        for seat in &license.users {
            match self.store.get_user(&seat.user_id).await {
                Ok(u) => seats.push(LicenseUserSeat::of(seat, &u)),
                // A user is never deleted; skipped rather than failing the list if one were.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(seats)
    }

    /// The licenses assigned to the license user a runtime credential names (its e-mail and
    /// password, or its session), newest first, as management shows them (never a key).
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` for any other credential or a wrong one; `ACCOUNT_LOCKED`;
    /// storage failures.
    pub async fn licenses_of_user(
        &self,
        credential: Credential<'_>,
        ip_address: Option<&str>,
    ) -> Result<Vec<License>, EngineError> {
        let user = match credential {
            Credential::User {
                email, password, ..
            } => {
                self.license_user_by_password(email, password, ip_address)
                    .await?
            }
            Credential::UserSession { token, .. } => self.license_user_by_session(token).await?,
            Credential::LicenseKey(_) | Credential::Session(_) => {
                return Err(EngineError::InvalidCredentials);
            }
        };
        let query = LicenseQuery {
            user_id: Some(user.id),
            limit: Limit::MAX,
            ..LicenseQuery::default()
        };
        let now = self.now();
        // A user's licenses mostly share a policy or two: each is read once.
        let mut policies = std::collections::HashMap::new();
        let mut shown = Vec::new();
        for l in self.store.list_licenses(&query).await? {
            if !policies.contains_key(&l.policy_id) {
                let policy = self.store.get_policy(&l.policy_id).await?;
                policies.insert(l.policy_id.clone(), policy);
            }
            let policy = &policies[&l.policy_id];
            shown.push(present(l, policy, now));
        }
        Ok(shown)
    }
}
