//! [`LicenseStore`]: licenses and the per-license transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use licentia_core::model::{Device, DeviceId, DeviceStatus, License, LicenseFeature, LicenseId};
use licentia_core::rules::{
    Denial, LicenseAggregate, Mutation, VersionCatalogView, device_heartbeat, version,
};
use licentia_core::store::{
    AggregateQuery, Decision, IdempotencyKey, IdempotencyRecord, LicenseQuery, LicenseSelector,
    LicenseStore, Limit, Loaded, NewEvent, NewLicenses, StoreError, StoreResult, TouchRecord,
};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::MemoryStore;
use crate::state::{
    Catalog, LicenseCell, LicenseEntry, LicenseIndex, LicenseState, newest_first, page,
};

impl MemoryStore {
    /// The locks of the license `selector` names.
    fn license_cell(&self, selector: &LicenseSelector) -> StoreResult<Arc<LicenseCell>> {
        let index = self.inner.licenses.read();
        let id = match selector {
            LicenseSelector::Id(id) => id,
            LicenseSelector::KeyHash(hash) => index
                .by_key
                .get(hash)
                .ok_or(StoreError::not_found("license"))?,
        };
        index
            .by_id
            .get(id)
            .map(|e| Arc::clone(&e.cell))
            .ok_or(StoreError::not_found("license"))
    }

    /// The aggregate `query` names, copied out of the license's committed state under a
    /// brief shared lock, with the stored idempotency record it names.
    fn snapshot(
        &self,
        cell: &LicenseCell,
        query: &AggregateQuery,
    ) -> StoreResult<(LicenseAggregate, Option<IdempotencyRecord>)> {
        let selector = query
            .selector
            .as_ref()
            .ok_or(StoreError::not_found("license"))?;
        let state = cell.state.read();
        // The key may have been replaced between the lookup and the lock: the license the
        // caller named by that key no longer exists under it.
        if let LicenseSelector::KeyHash(hash) = selector
            && &state.license.key_hash != hash
        {
            return Err(StoreError::not_found("license"));
        }
        let aggregate = load(&state, &self.inner.catalog.read(), query)?;
        let idempotency = query
            .idempotency
            .as_ref()
            .and_then(|k| self.inner.idempotency.lock().get(k).cloned());
        Ok((aggregate, idempotency))
    }

    /// Applies one license's touches and appends their events; skips touches of devices the
    /// license does not have (and every touch of a license that does not exist).
    async fn touch_license(&self, id: &LicenseId, touches: Vec<TouchRecord>) {
        let Ok(cell) = self.license_cell(&LicenseSelector::Id(id.clone())) else {
            return;
        };
        // Queued with the writers, so a transaction never writes back a device it loaded
        // before the touch (which would move its timestamps back).
        let _writer = cell.writer.lock().await;
        let mut state = cell.state.write();
        let mut license = state.license.clone();
        let mut events = Vec::with_capacity(touches.len());
        for TouchRecord { touch, event } in touches {
            let Some(device) = state.devices.get_mut(&touch.device_id) else {
                continue;
            };
            touch.apply_to_device(device);
            touch.apply_to_license(&mut license);
            events.push(event);
        }
        if license != state.license {
            let index = self.inner.licenses.read();
            if let Some(entry) = index.by_id.get(id) {
                *entry.row.write() = license.clone();
            }
            state.license = license;
        }
        self.inner.events.lock().append(events);
    }

    /// Inserts `licenses` with `features`, `events` and `idempotency`, all or none.
    /// Inserts `licenses` (with their assignments, events and idempotency record) when
    /// `admit`, called with the catalog and the license index locked for the insert, allows
    /// it; all or nothing.
    pub(crate) fn insert_all<F>(
        &self,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
        admit: F,
    ) -> StoreResult<Result<(), Denial>>
    where
        F: FnOnce(&Catalog, &LicenseIndex) -> StoreResult<Result<(), Denial>>,
    {
        let NewLicenses {
            licenses,
            features,
            custom_values,
        } = batch;
        // Values are written into the catalog: then it is locked for writing, in the same
        // order (catalog, then index) as every other writer.
        let mut catalog = if custom_values.is_empty() {
            CatalogGuard::Read(self.inner.catalog.read())
        } else {
            CatalogGuard::Write(self.inner.catalog.write())
        };
        for license in licenses {
            catalog.check_license_refs(license, None)?;
        }
        if !batch.references_hold() {
            return Err(StoreError::not_found("license"));
        }
        for v in custom_values {
            if !catalog.custom_fields.contains_key(&v.definition_id) {
                return Err(StoreError::not_found("custom_field"));
            }
        }
        let mut index = self.inner.licenses.write();
        if let Err(refused) = admit(&catalog, &index)? {
            return Ok(Err(refused));
        }
        let (mut ids, mut hashes) = (HashSet::new(), HashSet::new());
        for license in licenses {
            if index.by_id.contains_key(&license.id) || !ids.insert(&license.id) {
                return Err(StoreError::already_exists("license", "id"));
            }
            if index.by_key.contains_key(&license.key_hash) || !hashes.insert(license.key_hash) {
                return Err(StoreError::already_exists("license", "key_hash"));
            }
        }
        for f in features {
            if !catalog.features.contains_key(&f.feature_id) {
                return Err(StoreError::not_found("feature"));
            }
        }
        let mut records = self.inner.idempotency.lock();
        if let Some(record) = &idempotency
            && records.contains_key(&record.key)
        {
            return Err(StoreError::already_exists("idempotency_record", "key"));
        }
        let mut log = self.inner.events.lock();
        for license in licenses {
            let cell = LicenseCell::new(license.clone());
            cell.state.write().features = features
                .iter()
                .filter(|f| f.license_id == license.id)
                .map(|f| (f.feature_id.clone(), f.clone()))
                .collect();
            index.by_key.insert(license.key_hash, license.id.clone());
            index.by_id.insert(
                license.id.clone(),
                LicenseEntry {
                    row: RwLock::new(license.clone()),
                    cell: Arc::new(cell),
                },
            );
        }
        if let CatalogGuard::Write(catalog) = &mut catalog {
            for v in custom_values {
                if let Some(def) = catalog.custom_fields.get(&v.definition_id) {
                    let stored = v.joined_with(def, &v.resource_id);
                    catalog
                        .custom_values
                        .entry(v.resource_id.clone())
                        .or_default()
                        .insert(v.definition_id.clone(), stored);
                }
            }
        }
        if let Some(record) = idempotency {
            records.insert(record.key.clone(), record);
        }
        log.append(events);
        Ok(Ok(()))
    }

    /// Validates `decision` against the locked `state` and applies it, all or nothing.
    fn commit<T>(
        &self,
        state: &mut LicenseState,
        mut aggregate: LicenseAggregate,
        decision: Decision<T>,
    ) -> StoreResult<T> {
        let Decision {
            mutations,
            events,
            idempotency,
            outcome,
        } = decision;

        // Validate everything before writing anything.
        let id = state.license.id.clone();
        let mut new_event_ids = HashSet::new();
        for m in &mutations {
            if m.license_id().is_some_and(|owner| owner != &id) {
                return Err(StoreError::Conflict {
                    reason: "a mutation names another license than the one locked",
                });
            }
            if let Mutation::Consumption(c) = m
                && (state.consumptions.contains_key(&c.event_id)
                    || !new_event_ids.insert(c.event_id.as_str()))
            {
                return Err(StoreError::already_exists("consumption", "event_id"));
            }
        }
        if !mutations.is_empty() {
            aggregate.apply(&mutations);
        }
        let new_row = &aggregate.license;
        let old_row = &state.license;
        let row_changed = new_row != old_row;
        let key_changed = new_row.key_hash != old_row.key_hash;

        // New references must exist. Keep the catalog read-locked until the new row is
        // visible, so a concurrent delete cannot remove what it names in between.
        let catalog = references_changed(new_row, old_row).then(|| self.inner.catalog.read());
        if let Some(catalog) = &catalog {
            catalog.check_license_refs(new_row, Some(old_row))?;
        }
        // Publishing a row needs only a shared lock on the index (the row has its own
        // lock); a new key hash changes the index itself.
        let mut index = match (row_changed, key_changed) {
            (false, _) => None,
            (true, false) => Some(IndexGuard::Shared(self.inner.licenses.read())),
            (true, true) => Some(IndexGuard::Exclusive(self.inner.licenses.write())),
        };
        if let Some(IndexGuard::Exclusive(index)) = &index
            && index.by_key.contains_key(&new_row.key_hash)
        {
            return Err(StoreError::already_exists("license", "key_hash"));
        }
        let mut idempotency_records = idempotency.as_ref().map(|_| self.inner.idempotency.lock());
        if let (Some(record), Some(records)) = (&idempotency, &idempotency_records)
            && records.contains_key(&record.key)
        {
            return Err(StoreError::already_exists("idempotency_record", "key"));
        }
        let mut registrations = mutations
            .iter()
            .any(|m| matches!(m, Mutation::Registration { .. }))
            .then(|| self.inner.registrations.lock());
        if let Some(registrations) = &registrations {
            for m in &mutations {
                if let Mutation::Registration {
                    registration,
                    expected_device,
                } = m
                {
                    registrations.check(registration, expected_device)?;
                }
            }
        }
        let mut log = self.inner.events.lock();

        // Write: nothing below can fail.
        if let Some(IndexGuard::Exclusive(index)) = &mut index {
            index.by_key.remove(&old_row.key_hash);
            index.by_key.insert(new_row.key_hash, id.clone());
        }
        if let Some(entry) = index.as_ref().and_then(|i| i.get().by_id.get(&id)) {
            *entry.row.write() = new_row.clone();
        }
        if !mutations.is_empty() {
            write_back(state, aggregate, &mutations);
        }
        if let (Some(record), Some(records)) = (idempotency, &mut idempotency_records) {
            records.insert(record.key.clone(), record);
        }
        for m in &mutations {
            match m {
                Mutation::Consumption(c) => log.record_usage(c.clone()),
                Mutation::Registration { registration, .. } => {
                    if let Some(registrations) = &mut registrations {
                        registrations.put(registration.clone());
                    }
                }
                _ => {}
            }
        }
        log.append(events);
        drop(log);
        drop(registrations);
        drop(idempotency_records);
        drop(index);
        drop(catalog);
        Ok(outcome)
    }
}

/// The catalog, locked shared or exclusive.
enum CatalogGuard<'a> {
    Read(RwLockReadGuard<'a, Catalog>),
    Write(RwLockWriteGuard<'a, Catalog>),
}

impl std::ops::Deref for CatalogGuard<'_> {
    type Target = Catalog;

    fn deref(&self) -> &Catalog {
        match self {
            Self::Read(g) => g,
            Self::Write(g) => g,
        }
    }
}

/// The index, locked shared or exclusive.
enum IndexGuard<'a> {
    Shared(RwLockReadGuard<'a, LicenseIndex>),
    Exclusive(RwLockWriteGuard<'a, LicenseIndex>),
}

impl IndexGuard<'_> {
    fn get(&self) -> &LicenseIndex {
        match self {
            Self::Shared(g) => g,
            Self::Exclusive(g) => g,
        }
    }
}

/// Whether `a` names other records than `b` does.
fn references_changed(a: &License, b: &License) -> bool {
    a.product_id != b.product_id
        || a.policy_id != b.policy_id
        || a.customer_id != b.customer_id
        || a.order_id != b.order_id
        || a.subscription_id != b.subscription_id
}

/// Stores the aggregate after [`LicenseAggregate::apply`], so a mutation means here exactly
/// what it means there. Features and leases were loaded whole, so they are replaced; devices
/// were loaded in part, and `apply` never removes one, so each loaded device is written back.
fn write_back(state: &mut LicenseState, aggregate: LicenseAggregate, mutations: &[Mutation]) {
    let LicenseAggregate {
        license,
        devices,
        features,
        leases,
        ..
    } = aggregate;
    state.license = license;
    for d in devices {
        state.devices.insert(d.id.clone(), d);
    }
    state.features = features
        .into_iter()
        .map(|f| (f.feature_id.clone(), f))
        .collect();
    state.leases = leases.into_iter().map(|l| (l.id.clone(), l)).collect();
    // The aggregate keeps only the consumption its query named; every recorded one is kept.
    for m in mutations {
        if let Mutation::Consumption(c) = m {
            state.consumptions.insert(c.event_id.clone(), c.clone());
        }
    }
}

/// Builds the aggregate `query` asks for from the locked `state`.
fn load(
    state: &LicenseState,
    catalog: &Catalog,
    query: &AggregateQuery,
) -> StoreResult<LicenseAggregate> {
    let license = state.license.clone();
    let policy = catalog.require_policy(&license.policy_id)?.clone();

    let mut devices: Vec<Device> = state
        .devices
        .values()
        .filter(|d| {
            matches!(d.status, DeviceStatus::Active | DeviceStatus::Blacklisted)
                || query.binding_key.as_deref() == Some(d.binding_key.as_str())
        })
        .cloned()
        .collect();
    devices.sort_unstable_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));

    let mut features: Vec<LicenseFeature> = state.features.values().cloned().collect();
    features.sort_unstable_by(|a, b| {
        (&a.feature_code, &a.feature_id).cmp(&(&b.feature_code, &b.feature_id))
    });

    let mut leases: Vec<_> = state.leases.values().cloned().collect();
    leases.sort_unstable_by(|a, b| (a.checked_out_at, &a.id).cmp(&(b.checked_out_at, &b.id)));

    let versions = VersionCatalogView {
        has_catalog: catalog
            .versions
            .get(&license.product_id)
            .is_some_and(|v| !v.is_empty()),
        entry: query
            .app_version
            .as_ref()
            .and_then(|v| {
                catalog
                    .version_lookup
                    .get(&license.product_id)?
                    .get(&version::precedence_key(v))
            })
            .cloned(),
    };

    let consumption = query
        .consumption_event_id
        .as_ref()
        .and_then(|e| state.consumptions.get(e))
        .cloned();

    Ok(LicenseAggregate {
        license,
        policy,
        devices,
        features,
        leases,
        versions,
        consumption,
    })
}

impl LicenseStore for MemoryStore {
    async fn insert_license(&self, license: &License, events: Vec<NewEvent>) -> StoreResult<()> {
        licentia_core::store::outside_contracts([license])?;
        self.insert_all(
            NewLicenses::of(std::slice::from_ref(license)),
            events,
            None,
            |_, _| Ok(Ok(())),
        )
        .map(|_| ())
    }

    async fn insert_licenses(
        &self,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreResult<()> {
        licentia_core::store::outside_contracts(batch.licenses)?;
        self.insert_all(batch, events, idempotency, |_, _| Ok(Ok(())))
            .map(|_| ())
    }

    async fn find_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self.inner.idempotency.lock().get(key).cloned())
    }

    async fn get_license(&self, id: &LicenseId) -> StoreResult<License> {
        self.inner
            .licenses
            .read()
            .by_id
            .get(id)
            .map(|e| e.row.read().clone())
            .ok_or(StoreError::not_found("license"))
    }

    async fn list_licenses(&self, query: &LicenseQuery) -> StoreResult<Vec<License>> {
        let index = self.inner.licenses.read();
        // Each commit writes only its own row, so holding several row read locks at once
        // cannot deadlock with it.
        let rows: Vec<RwLockReadGuard<'_, License>> = index
            .by_id
            .values()
            .map(|e| e.row.read())
            .filter(|l| query.matches(l) && query.is_after_cursor(l))
            .collect();
        Ok(page(
            rows.iter().map(|row| &**row),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            query.limit,
        ))
    }

    async fn transact_license<T, F>(&self, query: AggregateQuery, decide: F) -> StoreResult<T>
    where
        T: Send,
        F: FnOnce(Loaded<'_>) -> Decision<T> + Send,
    {
        let selector = query
            .selector
            .as_ref()
            .ok_or(StoreError::not_found("license"))?;
        let cell = self.license_cell(selector)?;
        let _writer = cell.writer.lock().await;
        // Writers are serialised by the lock above, so the state cannot change between this
        // snapshot and the commit below; readers keep reading the committed state meanwhile.
        let (aggregate, idempotency) = self.snapshot(&cell, &query)?;
        let decision = decide(Loaded {
            aggregate: &aggregate,
            idempotency: idempotency.as_ref(),
        });
        let mut state = cell.state.write();
        self.commit(&mut state, aggregate, decision)
    }

    async fn read_license(&self, query: &AggregateQuery) -> StoreResult<LicenseAggregate> {
        let selector = query
            .selector
            .as_ref()
            .ok_or(StoreError::not_found("license"))?;
        let cell = self.license_cell(selector)?;
        let query = AggregateQuery {
            idempotency: None,
            ..query.clone()
        };
        Ok(self.snapshot(&cell, &query)?.0)
    }

    async fn purge_idempotency(
        &self,
        created_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut records = self.inner.idempotency.lock();
        let mut left = limit;
        records.retain(|_, r| {
            if left > 0 && r.created_at < created_before {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok(u64::from(limit - left))
    }

    async fn record_touches(&self, touches: Vec<TouchRecord>) -> StoreResult<()> {
        let mut by_license: HashMap<LicenseId, Vec<TouchRecord>> = HashMap::new();
        for t in touches {
            by_license
                .entry(t.touch.license_id.clone())
                .or_default()
                .push(t);
        }
        for (id, touches) in by_license {
            self.touch_license(&id, touches).await;
        }
        Ok(())
    }

    async fn silent_device_licenses(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        margin: chrono::Duration,
        limit: u32,
    ) -> StoreResult<Vec<LicenseId>> {
        // The policies that require heartbeats, copied out first so no catalog lock is held
        // while license locks are taken.
        let policies: HashMap<_, _> = self
            .inner
            .catalog
            .read()
            .policies
            .values()
            .filter(|p| p.device_heartbeat_minutes.is_some())
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        if policies.is_empty() {
            return Ok(Vec::new());
        }
        let cells: Vec<Arc<LicenseCell>> = self
            .inner
            .licenses
            .read()
            .by_id
            .values()
            .map(|e| Arc::clone(&e.cell))
            .collect();
        let mut silent: Vec<(chrono::DateTime<chrono::Utc>, LicenseId)> = cells
            .iter()
            .filter_map(|cell| {
                let state = cell.state.read();
                let policy = policies.get(&state.license.policy_id)?;
                state
                    .devices
                    .values()
                    .filter(|d| device_heartbeat::is_silent(policy, d, margin, now))
                    .map(|d| d.last_seen_at)
                    .min()
                    .map(|since| (since, state.license.id.clone()))
            })
            .collect();
        silent.sort_unstable();
        silent.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(silent.into_iter().map(|(_, id)| id).collect())
    }

    async fn list_devices(&self, license: &LicenseId, limit: Limit) -> StoreResult<Vec<Device>> {
        let cell = self.license_cell(&LicenseSelector::Id(license.clone()))?;
        let state = cell.state.read();
        Ok(page(
            state.devices.values(),
            |a, b| newest_first((a.created_at, &a.id), (b.created_at, &b.id)),
            limit,
        ))
    }

    async fn get_device(&self, license: &LicenseId, device: &DeviceId) -> StoreResult<Device> {
        let cell = self.license_cell(&LicenseSelector::Id(license.clone()))?;
        let state = cell.state.read();
        state
            .devices
            .get(device)
            .cloned()
            .ok_or(StoreError::not_found("device"))
    }

    async fn list_license_features(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> StoreResult<Vec<LicenseFeature>> {
        let cell = self.license_cell(&LicenseSelector::Id(license.clone()))?;
        let state = cell.state.read();
        Ok(page(
            state.features.values(),
            |a, b| (&a.feature_code, &a.feature_id).cmp(&(&b.feature_code, &b.feature_id)),
            limit,
        ))
    }
}
