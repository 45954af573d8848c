//! Management users (an extension): see [`User`](crate::model::User).

use std::future::Future;

use super::{Limit, NewEvent, StoreResult};
use crate::model::{SecretHash, User, UserId, UserRole, UserStatus};

/// Which users [`UserStore::list_users`] returns: the filters, a page of them by e-mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Only users with this role.
    pub role: Option<UserRole>,
    /// Only users in this status.
    pub status: Option<UserStatus>,
    /// Continue after this e-mail (exclusive): the last e-mail of the page before.
    pub after: Option<String>,
    /// Page size.
    pub limit: Limit,
}

impl UserQuery {
    /// Whether `u` passes the filters and comes after the cursor.
    pub fn matches(&self, u: &User) -> bool {
        self.role.is_none_or(|r| u.role == r)
            && self.status.is_none_or(|s| u.status == s)
            && self.after.as_ref().is_none_or(|after| u.email > *after)
    }
}

/// What a [`UserStore::modify_user`] decision makes of a user: the record to store with its
/// events, or `None` to leave it as it is.
pub type UserChange = Option<(User, Vec<NewEvent>)>;

/// Management user storage.
///
/// # Contract
///
/// - `insert_user` stores the record, its password hash and token hash included, and appends
///   `events` atomically. An e-mail already taken is
///   `AlreadyExists { entity: "user", field: "email" }`; a token hash already held by another
///   user is `AlreadyExists { entity: "user", field: "token_hash" }`.
/// - `get_user`, `find_user` (by e-mail, exactly as stored) and `find_user_by_token` (by the
///   pending token's hash) return the record as last written, hashes included, or
///   `NotFound { entity: "user" }`.
/// - `list_users` returns the users [`UserQuery::matches`], by e-mail (as stored, compared
///   byte by byte), at most `query.limit` of them.
/// - `modify_user` reads the user under an exclusive lock (concurrent calls for one user run
///   one after another), passes it to `decide`, and stores what `decide` returns with its
///   events atomically, e-mail uniqueness as for `insert_user`; it returns the record as
///   stored afterwards (unchanged when `decide` returns `None`). An unknown user is
///   `NotFound` and `decide` is not called. `decide` runs exactly once.
///
/// # Errors
///
/// As above, `Unavailable` when the backend cannot be reached, `Backend` for anything else.
pub trait UserStore: Send + Sync {
    /// Stores a new user.
    fn insert_user(
        &self,
        u: &User,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The user with `id`.
    fn get_user(&self, id: &UserId) -> impl Future<Output = StoreResult<User>> + Send;

    /// The user with `email`.
    fn find_user(&self, email: &str) -> impl Future<Output = StoreResult<User>> + Send;

    /// The user whose pending one-time token hashes to `hash`.
    fn find_user_by_token(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = StoreResult<User>> + Send;

    /// Users that match `query`, by e-mail.
    fn list_users(&self, query: &UserQuery) -> impl Future<Output = StoreResult<Vec<User>>> + Send;

    /// Decides on a user under its lock and stores the decision.
    fn modify_user<F>(
        &self,
        id: &UserId,
        decide: F,
    ) -> impl Future<Output = StoreResult<User>> + Send
    where
        F: FnOnce(&User) -> UserChange + Send;
}
