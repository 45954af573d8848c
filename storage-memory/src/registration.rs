//! [`RegistrationStore`]: device registrations by id, with indexes by serial and by session
//! token hash. A registration's activation is written by the license's commit
//! ([`Registrations::check`] then [`Registrations::put`], under the license's lock).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use licentia_core::model::{DeviceId, DeviceRegistration, LicenseId, RegistrationId, SecretHash};
use licentia_core::store::{
    Limit, NewEvent, REGISTRATION_CHANGED, RegistrationStore, StoreError, StoreResult,
};

use crate::MemoryStore;

#[derive(Debug, Default)]
pub(crate) struct Registrations {
    by_id: HashMap<RegistrationId, DeviceRegistration>,
    by_serial: HashMap<String, RegistrationId>,
    by_session: HashMap<SecretHash, RegistrationId>,
}

impl Registrations {
    /// Whether an activation of `r` expecting `expected` may be written.
    pub(crate) fn check(
        &self,
        r: &DeviceRegistration,
        expected: &Option<DeviceId>,
    ) -> StoreResult<()> {
        match self.by_id.get(&r.id) {
            Some(current)
                if current.device_id == *expected && current.license_id == r.license_id =>
            {
                Ok(())
            }
            _ => Err(StoreError::Conflict {
                reason: REGISTRATION_CHANGED,
            }),
        }
    }

    /// Stores `r` over the record with its id, keeping the indexes right.
    pub(crate) fn put(&mut self, r: DeviceRegistration) {
        if let Some(old) = self.by_id.get(&r.id)
            && let Some(s) = &old.session
        {
            self.by_session.remove(&s.token_hash);
        }
        if let Some(s) = &r.session {
            self.by_session.insert(s.token_hash, r.id.clone());
        }
        self.by_serial.insert(r.serial.clone(), r.id.clone());
        self.by_id.insert(r.id.clone(), r);
    }

    fn remove(&mut self, id: &RegistrationId) -> Option<DeviceRegistration> {
        let r = self.by_id.remove(id)?;
        self.by_serial.remove(&r.serial);
        if let Some(s) = &r.session {
            self.by_session.remove(&s.token_hash);
        }
        Some(r)
    }

    fn require(&self, id: &RegistrationId) -> StoreResult<&DeviceRegistration> {
        self.by_id
            .get(id)
            .ok_or(StoreError::not_found("device_registration"))
    }
}

impl RegistrationStore for MemoryStore {
    async fn insert_registration(
        &self,
        r: &DeviceRegistration,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        // The index stays read-locked so the license cannot appear half-made meanwhile.
        let licenses = self.inner.licenses.read();
        if !licenses.by_id.contains_key(&r.license_id) {
            return Err(StoreError::not_found("license"));
        }
        let mut regs = self.inner.registrations.lock();
        if regs.by_id.contains_key(&r.id) {
            return Err(StoreError::already_exists("device_registration", "id"));
        }
        if regs.by_serial.contains_key(&r.serial) {
            return Err(StoreError::already_exists("device_registration", "serial"));
        }
        regs.put(r.clone());
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn get_registration(&self, id: &RegistrationId) -> StoreResult<DeviceRegistration> {
        self.inner.registrations.lock().require(id).cloned()
    }

    async fn find_registration(&self, serial: &str) -> StoreResult<DeviceRegistration> {
        let regs = self.inner.registrations.lock();
        let id = regs
            .by_serial
            .get(serial)
            .ok_or(StoreError::not_found("device_registration"))?;
        regs.require(id).cloned()
    }

    async fn find_session(&self, token_hash: &SecretHash) -> StoreResult<DeviceRegistration> {
        let regs = self.inner.registrations.lock();
        let id = regs
            .by_session
            .get(token_hash)
            .ok_or(StoreError::not_found("device_registration"))?;
        regs.require(id).cloned()
    }

    async fn list_registrations(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> StoreResult<Vec<DeviceRegistration>> {
        let regs = self.inner.registrations.lock();
        let mut out: Vec<DeviceRegistration> = regs
            .by_id
            .values()
            .filter(|r| &r.license_id == license)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.serial.cmp(&b.serial));
        out.truncate(limit.as_usize());
        Ok(out)
    }

    async fn delete_registration(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let mut regs = self.inner.registrations.lock();
        regs.remove(id)
            .ok_or(StoreError::not_found("device_registration"))?;
        self.inner.events.lock().append(events);
        Ok(())
    }

    async fn end_session(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> StoreResult<DeviceRegistration> {
        let mut regs = self.inner.registrations.lock();
        let before = regs.require(id)?.clone();
        let mut after = before.clone();
        after.session = None;
        regs.put(after);
        self.inner.events.lock().append(events);
        Ok(before)
    }

    async fn extend_session(
        &self,
        id: &RegistrationId,
        token_hash: &SecretHash,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut regs = self.inner.registrations.lock();
        let Some(r) = regs.by_id.get_mut(id) else {
            return Ok(false);
        };
        match &mut r.session {
            Some(s) if s.token_hash == *token_hash => {
                s.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
