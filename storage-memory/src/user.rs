//! [`UserStore`]: management users by id; e-mails and token hashes are unique, checked by a
//! scan (an operator team is small).

use std::collections::HashMap;

use licentia_core::model::{SecretHash, User, UserId};
use licentia_core::store::{NewEvent, StoreError, StoreResult, UserChange, UserQuery, UserStore};

use crate::MemoryStore;

/// Whether `u` would collide with another user than itself on e-mail or token hash.
fn check_unique(users: &HashMap<UserId, User>, u: &User) -> StoreResult<()> {
    let others = || users.values().filter(|o| o.id != u.id);
    if others().any(|o| o.email == u.email) {
        return Err(StoreError::already_exists("user", "email"));
    }
    if u.token_hash.is_some() && others().any(|o| o.token_hash == u.token_hash) {
        return Err(StoreError::already_exists("user", "token_hash"));
    }
    Ok(())
}

impl UserStore for MemoryStore {
    async fn insert_user(&self, u: &User, events: Vec<NewEvent>) -> StoreResult<()> {
        let mut users = self.inner.users.lock();
        if users.contains_key(&u.id) {
            return Err(StoreError::already_exists("user", "id"));
        }
        check_unique(&users, u)?;
        users.insert(u.id.clone(), u.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<User> {
        let users = self.inner.users.lock();
        users.get(id).cloned().ok_or(StoreError::not_found("user"))
    }

    async fn find_user(&self, email: &str) -> StoreResult<User> {
        let users = self.inner.users.lock();
        let found = users.values().find(|u| u.email == email);
        found.cloned().ok_or(StoreError::not_found("user"))
    }

    async fn find_user_by_token(&self, hash: &SecretHash) -> StoreResult<User> {
        let users = self.inner.users.lock();
        let found = users.values().find(|u| u.token_hash.as_ref() == Some(hash));
        found.cloned().ok_or(StoreError::not_found("user"))
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let users = self.inner.users.lock();
        let mut page: Vec<&User> = users.values().filter(|u| query.matches(u)).collect();
        page.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(page
            .into_iter()
            .take(query.limit.as_usize())
            .cloned()
            .collect())
    }

    async fn modify_user<F>(&self, id: &UserId, decide: F) -> StoreResult<User>
    where
        F: FnOnce(&User) -> UserChange + Send,
    {
        let mut users = self.inner.users.lock();
        let current = users.get(id).ok_or(StoreError::not_found("user"))?;
        let Some((next, events)) = decide(current) else {
            return Ok(current.clone());
        };
        let next = User {
            id: id.clone(),
            ..next
        };
        check_unique(&users, &next)?;
        users.insert(id.clone(), next.clone());
        self.inner.events.lock().append(events);
        Ok(next)
    }
}
