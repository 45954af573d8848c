//! Management users (an extension): invitations and password resets by one-time token,
//! sign-in for a session with lockout, and roles that map to the management scopes.
//!
//! A session is a management token ([`ApiKey`] with `user_id`) that expires after
//! [`SESSION_TTL`]; [`Engine::authenticate`] gives it the user's *current* role's scopes and
//! refuses it once the user is disabled, so a role change or a disable takes effect at once.
//! Events of a session name the user ([`Actor::user`]).
//!
//! Hashing a password takes tens of milliseconds on purpose (Argon2id): it happens before
//! any lock is taken, and a host runs these calls where blocking that long is fine.

use chrono::{DateTime, Duration, Utc};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::catalog::parse_id;
use super::{Actor, Clock, Engine, EngineError};
use crate::crypto::{ManagementToken, PasswordHash, TotpSecret, UserToken, password};
use crate::model::{
    ApiKey, ApiKeyId, AuditActorType, PendingToken, User, UserId, UserRole, UserStatus,
    UserTokenPurpose,
};
use crate::rules::sign_in::{self, Attempt};
use crate::rules::{DenialCode, DomainEvent};
use crate::store::{Store, StoreError, UserQuery};

/// How long a sign-in session lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);
/// How long an invitation can be accepted.
pub const INVITATION_TTL: Duration = Duration::days(7);
/// How long a password reset can be used.
pub const PASSWORD_RESET_TTL: Duration = Duration::hours(1);
/// Longest accepted e-mail address, in bytes (RFC 5321).
pub const MAX_EMAIL_LEN: usize = 254;

/// `POST /api/v1/users`: invite a management user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInvite {
    pub email: String,
    pub role: UserRole,
}

/// `PATCH /api/v1/users/{id}`: change a user's role, or disable or re-enable them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default)]
    pub role: Option<UserRole>,
    /// `active` or `disabled` (an invited user becomes active by accepting).
    #[serde(default)]
    pub status: Option<UserStatus>,
}

/// A user with a one-time token, shown once (invitation or password reset).
#[derive(Debug, Clone, Serialize)]
pub struct UserWithToken {
    pub user: User,
    /// The token to hand to the person (`ust_…`); stored only as a hash.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Which side of the service a user is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Operators: every role but [`UserRole::Licensee`].
    Operator,
    /// License users.
    Licensee,
}

/// A password sign-in attempt.
#[derive(Debug, Clone)]
pub struct SignInAttempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    /// The TOTP code, for a user with a second factor.
    pub totp: Option<&'a str>,
    /// The caller's address, recorded in events.
    pub ip_address: Option<String>,
}

/// A sign-in's session, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct SignedIn {
    pub user: User,
    /// The session's bearer token (`Authorization: Bearer …`).
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A TOTP enrollment, shown once: what an authenticator app takes.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrollment {
    /// The secret in base32, to type in.
    pub secret: String,
    /// The `otpauth://` URL, to show as a QR code or open.
    pub otpauth_url: String,
}

/// An e-mail address as stored: trimmed and lowercased, with one `@` between non-empty
/// parts, no space or control character, at most [`MAX_EMAIL_LEN`] bytes.
fn check_email(raw: &str) -> Result<String, EngineError> {
    let email = raw.trim().to_lowercase();
    let well_formed = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    match well_formed {
        true => Ok(email),
        false => Err(EngineError::invalid(
            "email",
            "email must be an address such as ops@example.com",
        )),
    }
}

fn check_password(p: &str) -> Result<(), EngineError> {
    password::check_new_password(p)
        .map(drop)
        .map_err(|e| EngineError::invalid("password", e.to_string()))
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Invites a management user: the user exists with no password, and the returned token
    /// (good for [`INVITATION_TTL`]) sets it ([`Self::redeem_user_token`]). Only an owner
    /// (or a machine token, or the system) may invite an owner.
    ///
    /// # Errors
    ///
    /// Invalid e-mail; `AlreadyExists` when the e-mail is taken; `Conflict` for an owner
    /// invited by a non-owner; storage failures.
    pub async fn invite_user(
        &self,
        actor: &Actor,
        req: UserInvite,
    ) -> Result<UserWithToken, EngineError> {
        let email = check_email(&req.email)?;
        self.check_may_grant(actor, req.role).await?;
        let now = self.now();
        let (id, token) = self.with_rng(|r| (UserId::generate(r), UserToken::generate(r)));
        let expires_at = now + INVITATION_TTL;
        let user = User {
            id,
            email,
            role: req.role,
            status: UserStatus::Invited,
            failed_sign_ins: 0,
            locked_until: None,
            last_sign_in_at: None,
            password_set_at: None,
            pending: Some(PendingToken {
                purpose: UserTokenPurpose::Invitation,
                expires_at,
            }),
            created_at: now,
            updated_at: now,
            password_hash: None,
            token_hash: Some(token.hash()),
            totp_enabled: false,
            totp_last_step: None,
            totp_secret: None,
        };
        let e = DomainEvent::new(
            "user.invited",
            "user",
            user.id.as_str(),
            [("role", json!(user.role))],
        );
        self.store
            .insert_user(&user, vec![actor.event(e, now)])
            .await?;
        Ok(UserWithToken {
            user,
            token: token.expose_secret().to_owned(),
            expires_at,
        })
    }

    /// Issues a password reset for the user with `email` (the CLI prints it; no mail server
    /// is needed): a token good for [`PASSWORD_RESET_TTL`], replacing any earlier one. An
    /// invited user gets a fresh invitation instead.
    ///
    /// # Errors
    ///
    /// `NotFound` user; storage failures.
    pub async fn issue_password_reset(
        &self,
        actor: &Actor,
        email: &str,
    ) -> Result<UserWithToken, EngineError> {
        let user = self.store.find_user(&check_email(email)?).await?;
        let now = self.now();
        let token = self.with_rng(|r| UserToken::generate(r));
        let hash = token.hash();
        let mut expires_at = now;
        let user = self
            .store
            .modify_user(&user.id, |u| {
                let (purpose, ttl) = match u.status {
                    UserStatus::Invited => (UserTokenPurpose::Invitation, INVITATION_TTL),
                    _ => (UserTokenPurpose::PasswordReset, PASSWORD_RESET_TTL),
                };
                expires_at = now + ttl;
                let mut next = u.clone();
                next.pending = Some(PendingToken {
                    purpose,
                    expires_at,
                });
                next.token_hash = Some(hash);
                next.updated_at = now;
                let e = DomainEvent::new(
                    "user.password_reset_issued",
                    "user",
                    u.id.as_str(),
                    [("purpose", json!(purpose))],
                );
                Some((next, vec![actor.event(e, now)]))
            })
            .await?;
        Ok(UserWithToken {
            user,
            token: token.expose_secret().to_owned(),
            expires_at,
        })
    }

    /// Sets a user's password with a one-time token (an invitation or a password reset): the
    /// token is used up, an invited user becomes active, and a lock is lifted.
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` for a malformed, unknown, used or expired token, or a disabled
    /// user; an invalid password (too short or too long); storage failures.
    pub async fn redeem_user_token(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<User, EngineError> {
        let hash = UserToken::parse(token)
            .map_err(|_| EngineError::InvalidCredentials)?
            .hash();
        check_password(new_password)?;
        let user = match self.store.find_user_by_token(&hash).await {
            Ok(u) => u,
            Err(StoreError::NotFound { .. }) => return Err(EngineError::InvalidCredentials),
            Err(e) => return Err(e.into()),
        };
        // Hashed before the user's lock is taken: it is the slow part.
        let password_hash = self.with_rng(|r| PasswordHash::new(new_password, r));
        let now = self.now();
        let mut redeemed = false;
        let user = self
            .store
            .modify_user(&user.id, |u| {
                let usable = u.token_hash == Some(hash)
                    && u.status != UserStatus::Disabled
                    && u.pending.is_some_and(|p| p.expires_at > now);
                if !usable {
                    return None;
                }
                redeemed = true;
                let mut next = u.clone();
                // A reset is how an operator who lost the second factor gets back in: it
                // clears it (the CLI that prints resets needs the database itself).
                if u.pending
                    .is_some_and(|p| p.purpose == UserTokenPurpose::PasswordReset)
                {
                    next.totp_enabled = false;
                    next.totp_secret = None;
                    next.totp_last_step = None;
                }
                next.password_hash = Some(password_hash);
                // Every session opened before now stops working.
                next.password_set_at = Some(now);
                next.token_hash = None;
                next.pending = None;
                next.status = UserStatus::Active;
                next.failed_sign_ins = 0;
                next.locked_until = None;
                next.updated_at = now;
                let e = DomainEvent::new("user.password_set", "user", u.id.as_str(), []);
                Some((next, vec![Actor::user(&u.id, None).event(e, now)]))
            })
            .await?;
        match redeemed {
            true => Ok(user),
            false => Err(EngineError::InvalidCredentials),
        }
    }

    /// Signs a management user in with e-mail and password: a session token good for
    /// [`SESSION_TTL`]. Five wrong passwords in a row lock the account for 15 minutes
    /// ([`rules::sign_in`](crate::rules::sign_in)).
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` for an unknown e-mail, a wrong password, a missing, wrong or
    /// reused TOTP code of a user with a second factor, or a user who may not sign in (the
    /// same answer for all); `ACCOUNT_LOCKED` (403) while locked; storage failures.
    pub async fn sign_in(
        &self,
        email: &str,
        given: &str,
        totp: Option<&str>,
        ip_address: Option<String>,
    ) -> Result<SignedIn, EngineError> {
        let attempt = SignInAttempt {
            email,
            password: given,
            totp,
            ip_address,
        };
        let (user, now) = self.judge(Side::Operator, &attempt, true).await?;
        self.open_session(user, attempt.ip_address, now).await
    }

    /// Signs a license user ([`UserRole::Licensee`]) in, as [`Self::sign_in`] does an
    /// operator: its session token is a runtime credential (`Authorization: Bearer …`) for
    /// the licenses assigned to it, with no management scope.
    ///
    /// # Errors
    ///
    /// As [`Self::sign_in`]; an operator's e-mail is `InvalidCredentials` here.
    pub async fn sign_in_license_user(
        &self,
        attempt: SignInAttempt<'_>,
    ) -> Result<SignedIn, EngineError> {
        let (user, now) = self.judge(Side::Licensee, &attempt, true).await?;
        self.open_session(user, attempt.ip_address, now).await
    }

    /// The license user whose e-mail and password these are (a runtime call's
    /// `Authorization: User …`), judged as a sign-in is (wrong passwords count towards the
    /// lock) but writing nothing when a right one changes nothing. A user with a second
    /// factor signs in for a session instead.
    ///
    /// # Errors
    ///
    /// As [`Self::sign_in_license_user`].
    pub(super) async fn license_user_by_password(
        &self,
        email: &str,
        password: &str,
        ip_address: Option<&str>,
    ) -> Result<User, EngineError> {
        let attempt = SignInAttempt {
            email,
            password,
            totp: None,
            ip_address: ip_address.map(str::to_owned),
        };
        Ok(self.judge(Side::Licensee, &attempt, false).await?.0)
    }

    /// The license user of a session token (`Authorization: Bearer …` on a runtime call).
    /// Runtime calls do not stamp the session's `last_used_at` (they are the hot path).
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` for anything but a usable session of an active license user;
    /// storage failures.
    pub(super) async fn license_user_by_session(&self, token: &str) -> Result<User, EngineError> {
        Ok(self.license_session(token).await?.1)
    }

    /// The session key of `token` and its license user.
    async fn license_session(&self, token: &str) -> Result<(ApiKey, User), EngineError> {
        let key = self.usable_api_key(token).await?;
        let user = key
            .user_id
            .as_ref()
            .ok_or(EngineError::InvalidCredentials)?;
        match self.session_user(user, key.created_at).await? {
            Some(u) if !u.role.is_operator() => Ok((key, u)),
            _ => Err(EngineError::InvalidCredentials),
        }
    }

    /// Ends a license user's session (`POST /api/v1/license/users/sign-out`).
    ///
    /// # Errors
    ///
    /// As [`Self::sign_out`], and `InvalidCredentials` for an operator's session.
    pub async fn sign_out_license_user(&self, token: &str) -> Result<(), EngineError> {
        let (key, _) = self.license_session(token).await?;
        self.sign_out(&key).await
    }

    /// Judges a password attempt on `side` at now: the user it signs in, recorded with the
    /// attempt (a wrong one counts towards the lock; a right one is recorded only when
    /// `record_success` or when it clears failures). A user of the other side is judged as
    /// an unknown e-mail.
    async fn judge(
        &self,
        side: Side,
        attempt: &SignInAttempt<'_>,
        record_success: bool,
    ) -> Result<(User, DateTime<Utc>), EngineError> {
        let SignInAttempt {
            email,
            password: given,
            totp,
            ..
        } = *attempt;
        let ip_address = attempt.ip_address.clone();
        let found = match check_email(email) {
            Ok(email) => match self.store.find_user(&email).await {
                Ok(u) if u.role.is_operator() == (side == Side::Operator) => Some(u),
                Ok(_) | Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        };
        let now = self.now();
        if let Some(until) = found.as_ref().and_then(|u| sign_in::locked_until(u, now)) {
            return Err(locked(until));
        }
        // An unknown user costs the same hash as a known one: timing tells nothing.
        let right = match found.as_ref().and_then(|u| u.password_hash.as_ref()) {
            Some(h) => h.verify(given),
            None => {
                let dummy = DUMMY.get_or_init(|| {
                    self.with_rng(|r| PasswordHash::new("licentia: no such user", r))
                });
                let _ = dummy.verify(given);
                false
            }
        };
        let Some(found) = found else {
            return Err(EngineError::InvalidCredentials);
        };
        // A right password that would change nothing is not written (a runtime call's
        // credential): no lock is taken for it.
        let unchanged = right
            && found.status == UserStatus::Active
            && found.failed_sign_ins == 0
            && !found.totp_enabled;
        if unchanged && !record_success {
            return Ok((found, now));
        }
        let mut outcome = Attempt::Refused;
        let user = self
            .store
            .modify_user(&found.id, |u| {
                // The code is judged on the record under the lock: a code is used once.
                let factor = sign_in::second_factor(u, totp, now);
                let (mut next, attempt) = sign_in::attempt(u, right && factor.is_some(), now);
                if attempt == Attempt::Accepted
                    && let Some(Some(step)) = factor
                {
                    next.totp_last_step = Some(step);
                }
                outcome = attempt;
                let actor = Actor::user(&u.id, ip_address.clone());
                let e = match attempt {
                    Attempt::Accepted if !record_success && u.failed_sign_ins == 0 => return None,
                    Attempt::Accepted => {
                        DomainEvent::new("user.signed_in", "user", u.id.as_str(), [])
                    }
                    Attempt::Refused => DomainEvent::new(
                        "user.sign_in_failed",
                        "user",
                        u.id.as_str(),
                        [("locked_until", json!(next.locked_until))],
                    ),
                    Attempt::Locked(_) => return None,
                };
                Some((next, vec![actor.event(e, now)]))
            })
            .await?;
        match outcome {
            Attempt::Accepted => Ok((user, now)),
            Attempt::Locked(until) => Err(locked(until)),
            Attempt::Refused => Err(EngineError::InvalidCredentials),
        }
    }

    async fn open_session(
        &self,
        user: User,
        ip_address: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, EngineError> {
        let (id, token) = self.with_rng(|r| (ApiKeyId::generate(r), ManagementToken::generate(r)));
        let expires_at = now + SESSION_TTL;
        let key = ApiKey {
            id,
            name: format!("session of {}", user.email),
            key_prefix: token.prefix().to_owned(),
            // A session's scopes are its user's role's at each request (`authenticate`); none
            // are stored, so a session never counts as a machine admin token.
            scopes: Vec::new(),
            allowed_cidrs: Vec::new(),
            is_active: true,
            expires_at: Some(expires_at),
            last_used_at: None,
            user_id: Some(user.id.clone()),
            created_at: now,
            token_hash: token.hash(),
        };
        let e = DomainEvent::new("user.session_opened", "api_key", key.id.as_str(), []);
        let actor = Actor::user(&user.id, ip_address);
        self.store
            .insert_api_key(&key, vec![actor.event(e, now)])
            .await?;
        Ok(SignedIn {
            user,
            token: token.expose_secret().to_owned(),
            expires_at,
        })
    }

    /// Ends the session `key` (a user's sign-in token): refused from its next request on.
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` when `key` is not a session; storage failures.
    pub async fn sign_out(&self, key: &ApiKey) -> Result<(), EngineError> {
        let Some(user) = &key.user_id else {
            return Err(EngineError::InvalidCredentials);
        };
        let now = self.now();
        let e = DomainEvent::new("user.signed_out", "api_key", key.id.as_str(), []);
        let event = Actor::user(user, None).event(e, now);
        self.store.revoke_api_key(&key.id, now, vec![event]).await?;
        Ok(())
    }

    /// Starts a second factor for the signed-in user of `key`: a fresh TOTP secret, in use
    /// once [`Self::set_totp`] sees a code from it.
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` when `key` is not a session; `Conflict` when TOTP is already on;
    /// storage failures.
    pub async fn enroll_totp(&self, key: &ApiKey) -> Result<TotpEnrollment, EngineError> {
        let user = key
            .user_id
            .as_ref()
            .ok_or(EngineError::InvalidCredentials)?;
        let secret = self.with_rng(|r| TotpSecret::generate(r));
        let now = self.now();
        let mut already = false;
        let user = self
            .store
            .modify_user(user, |u| {
                if u.totp_enabled {
                    already = true;
                    return None;
                }
                let mut next = u.clone();
                next.totp_secret = Some(secret.clone());
                next.totp_last_step = None;
                next.updated_at = now;
                let e = DomainEvent::new("user.totp_enrolled", "user", u.id.as_str(), []);
                Some((next, vec![Actor::user(&u.id, None).event(e, now)]))
            })
            .await?;
        if already {
            return Err(EngineError::Conflict(
                "TOTP is already on: turn it off first",
            ));
        }
        Ok(TotpEnrollment {
            secret: secret.to_base32(),
            otpauth_url: secret.otpauth_url(&user.email),
        })
    }

    /// Turns the enrolled second factor on with a `code` from it (sign-in asks for a code
    /// from then on), or off (`on: false`, also with a current code, so a session alone
    /// cannot remove it).
    ///
    /// # Errors
    ///
    /// `InvalidCredentials` when `key` is not a session; `INVALID_FIELD` `code` when it does
    /// not match (or nothing is enrolled); storage failures.
    pub async fn set_totp(&self, key: &ApiKey, code: &str, on: bool) -> Result<User, EngineError> {
        let user = key
            .user_id
            .as_ref()
            .ok_or(EngineError::InvalidCredentials)?;
        let now = self.now();
        let mut matched = false;
        let user = self
            .store
            .modify_user(user, |u| {
                let step = u.totp_secret.as_ref()?.check(code, now)?;
                if u.totp_last_step.is_some_and(|last| step <= last) || u.totp_enabled == on {
                    return None;
                }
                matched = true;
                let mut next = u.clone();
                next.totp_enabled = on;
                next.totp_last_step = Some(step);
                if !on {
                    next.totp_secret = None;
                }
                next.updated_at = now;
                let kind = if on {
                    "user.totp_enabled"
                } else {
                    "user.totp_disabled"
                };
                let e = DomainEvent::new(kind, "user", u.id.as_str(), []);
                Some((next, vec![Actor::user(&u.id, None).event(e, now)]))
            })
            .await?;
        match matched {
            true => Ok(user),
            false => Err(EngineError::invalid(
                "code",
                "the code does not match the enrolled TOTP secret (or was used already)",
            )),
        }
    }

    /// The users that match `query`, by e-mail.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, EngineError> {
        Ok(self.store.list_users(query).await?)
    }

    /// The user with `id`.
    ///
    /// # Errors
    ///
    /// `NotFound`, storage failures.
    pub async fn get_user(&self, id: &str) -> Result<User, EngineError> {
        Ok(self.store.get_user(&parse_id(id, "user")?).await?)
    }

    /// Changes a user's role or disables (re-enables) them; effective at once for their
    /// sessions. Only an owner (or a machine token) changes an owner or makes one.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` for an owner changed by a non-owner, or an invited user enabled
    /// before accepting; storage failures.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: &str,
        req: UserUpdate,
    ) -> Result<User, EngineError> {
        let id: UserId = parse_id(id, "user")?;
        let current = self.store.get_user(&id).await?;
        if let Some(role) = req.role {
            if role.is_operator() != current.role.is_operator() {
                return Err(EngineError::invalid(
                    "role",
                    "a license user stays a license user and an operator an operator",
                ));
            }
            self.check_may_grant(actor, role).await?;
        }
        self.check_may_grant(actor, current.role).await?;
        if req.status == Some(UserStatus::Invited) {
            return Err(EngineError::invalid(
                "status",
                "status can be set to active or disabled",
            ));
        }
        let now = self.now();
        let mut refused = None;
        let user = self
            .store
            .modify_user(&id, |u| {
                let mut next = u.clone();
                if let Some(role) = req.role {
                    next.role = role;
                }
                match (req.status, u.status) {
                    (Some(UserStatus::Active), UserStatus::Invited) => {
                        refused =
                            Some("an invited user becomes active by accepting the invitation");
                        return None;
                    }
                    (Some(s), _) => next.status = s,
                    (None, _) => {}
                }
                next.updated_at = now;
                let e = DomainEvent::new(
                    "user.updated",
                    "user",
                    u.id.as_str(),
                    [("role", json!(next.role)), ("status", json!(next.status))],
                );
                Some((next, vec![actor.event(e, now)]))
            })
            .await?;
        match refused {
            Some(reason) => Err(EngineError::Conflict(reason)),
            None => Ok(user),
        }
    }

    /// The scopes a session opened at `opened` acts with now: its user's current role's, if
    /// the user is active and has not set a new password since; `None` when it may no longer
    /// act (disabled, gone, or the password changed).
    pub(super) async fn session_scopes(
        &self,
        user: &UserId,
        opened: DateTime<Utc>,
    ) -> Result<Option<Vec<crate::model::ManagementScope>>, EngineError> {
        Ok(self
            .session_user(user, opened)
            .await?
            .filter(|u| u.role.is_operator())
            .map(|u| u.role.scopes()))
    }

    /// The user of a session opened at `opened`, if it may still act: active, and no new
    /// password set since.
    async fn session_user(
        &self,
        user: &UserId,
        opened: DateTime<Utc>,
    ) -> Result<Option<User>, EngineError> {
        match self.store.get_user(user).await {
            Ok(u)
                if u.status == UserStatus::Active
                    && u.password_set_at.is_none_or(|at| opened >= at) =>
            {
                Ok(Some(u))
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Owners are made and changed only by owners (or by machine tokens and the system,
    /// which act with full authority).
    async fn check_may_grant(&self, actor: &Actor, role: UserRole) -> Result<(), EngineError> {
        if role != UserRole::Owner || actor.actor_type != AuditActorType::User {
            return Ok(());
        }
        let caller = self
            .store
            .get_user(&parse_id(&actor.actor_id, "user")?)
            .await;
        match caller {
            Ok(u) if u.role == UserRole::Owner => Ok(()),
            Ok(_) | Err(StoreError::NotFound { .. }) => Err(EngineError::Conflict(
                "only an owner can make or change an owner",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

fn locked(until: DateTime<Utc>) -> EngineError {
    EngineError::denied(
        DenialCode::AccountLocked,
        None,
        format!(
            "too many wrong passwords: the account is locked until {}",
            until.to_rfc3339()
        ),
    )
}

/// A hash an unknown e-mail's attempt is checked against, so that it costs what a known
/// one does.
static DUMMY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
