//! Sign-in of management users: what a password attempt does to the account.
//!
//! After [`MAX_FAILED_SIGN_INS`] wrong passwords in a row the account is locked for
//! [`LOCKOUT`]; while locked, no attempt is judged (not even a right password), so guessing
//! gains nothing. A right password resets the count. The host rate-limits attempts per
//! address on top of this.

use chrono::{DateTime, Duration, Utc};

use crate::model::{User, UserStatus};

/// Wrong passwords in a row that lock the account.
pub const MAX_FAILED_SIGN_INS: u32 = 5;

/// How long a locked account refuses every sign-in.
pub const LOCKOUT: Duration = Duration::minutes(15);

/// How an attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The right password: signed in.
    Accepted,
    /// A wrong password (or an account that may not sign in): refused; the account may now
    /// be locked.
    Refused,
    /// The account is locked until then: the password was not judged.
    Locked(DateTime<Utc>),
}

/// When a locked account opens again, if it is locked at `now`.
pub fn locked_until(user: &User, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    user.locked_until.filter(|until| *until > now)
}

/// The second factor of an attempt: `Some(None)` when the user has none, `Some(Some(step))`
/// when `code` is the user's TOTP code at `now` for a step newer than the last accepted (a
/// code is accepted once), `None` when it is missing or wrong.
pub fn second_factor(user: &User, code: Option<&str>, now: DateTime<Utc>) -> Option<Option<u64>> {
    let secret = match (&user.totp_secret, user.totp_enabled) {
        (Some(secret), true) => secret,
        _ => return Some(None),
    };
    let step = secret.check(code?, now)?;
    match user.totp_last_step.is_none_or(|last| step > last) {
        true => Some(Some(step)),
        false => None,
    }
}

/// The account after an attempt at `now` whose password (and second factor) was `right`,
/// and how it ended.
pub fn attempt(user: &User, right: bool, now: DateTime<Utc>) -> (User, Attempt) {
    let mut next = user.clone();
    if let Some(until) = locked_until(user, now) {
        return (next, Attempt::Locked(until));
    }
    next.updated_at = now;
    if right && user.status == UserStatus::Active {
        next.failed_sign_ins = 0;
        next.locked_until = None;
        next.last_sign_in_at = Some(now);
        return (next, Attempt::Accepted);
    }
    next.failed_sign_ins = user.failed_sign_ins.saturating_add(1);
    if next.failed_sign_ins >= MAX_FAILED_SIGN_INS {
        // Locked; the count starts again when the lock ends.
        next.failed_sign_ins = 0;
        next.locked_until = Some(now + LOCKOUT);
    }
    (next, Attempt::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserRole;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
    }

    fn user() -> User {
        User {
            id: "usr_aaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            email: "ops@example.com".into(),
            role: UserRole::Support,
            status: UserStatus::Active,
            failed_sign_ins: 0,
            locked_until: None,
            last_sign_in_at: None,
            password_set_at: None,
            pending: None,
            created_at: now(),
            updated_at: now(),
            password_hash: None,
            token_hash: None,
            totp_enabled: false,
            totp_last_step: None,
            totp_secret: None,
        }
    }

    #[test]
    fn five_wrong_passwords_lock_for_fifteen_minutes_and_a_right_one_resets() {
        let mut u = user();
        for i in 1..MAX_FAILED_SIGN_INS {
            let (next, a) = attempt(&u, false, now());
            assert_eq!(a, Attempt::Refused);
            assert_eq!(next.failed_sign_ins, i);
            u = next;
        }
        let (right, a) = attempt(&u, true, now());
        assert_eq!(a, Attempt::Accepted);
        assert_eq!(right.failed_sign_ins, 0);
        assert_eq!(right.last_sign_in_at, Some(now()));

        let (locked, a) = attempt(&u, false, now());
        assert_eq!(a, Attempt::Refused);
        assert_eq!(locked.locked_until, Some(now() + LOCKOUT));
        // While locked even the right password is not judged, and nothing changes.
        let later = now() + Duration::minutes(14);
        let (same, a) = attempt(&locked, true, later);
        assert_eq!(a, Attempt::Locked(now() + LOCKOUT));
        assert_eq!(same, locked);
        // Once the lock ends, the right password signs in again.
        let (open, a) = attempt(&locked, true, now() + LOCKOUT);
        assert_eq!(a, Attempt::Accepted);
        assert_eq!(open.locked_until, None);
    }

    #[test]
    fn an_account_that_is_not_active_never_signs_in() {
        for status in [UserStatus::Invited, UserStatus::Disabled] {
            let u = User { status, ..user() };
            assert_eq!(attempt(&u, true, now()).1, Attempt::Refused);
        }
    }
}
