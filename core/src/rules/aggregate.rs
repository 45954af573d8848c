//! The unit of consistency: one license with everything its rules read.

use crate::model::{
    ConsumptionRecord, Device, DeviceStatus, Lease, License, LicenseFeature, Policy, ProductVersion,
};

use super::Mutation;

/// What the product's version catalog says about the request's `app_version`.
///
/// Stores look the version up instead of loading the whole catalog, so the cost of a runtime
/// call does not grow with the catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionCatalogView {
    /// Whether the product has any version at all (no catalog: not enforced).
    pub has_catalog: bool,
    /// The catalog entry equal to the requested version, if any.
    pub entry: Option<ProductVersion>,
}

/// A license with its policy, devices, feature assignments and live leases, loaded under the
/// license's exclusive lock (DESIGN 3).
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseAggregate {
    /// The license row.
    pub license: License,
    /// Its policy.
    pub policy: Policy,
    /// Its devices: at least every active and every blacklisted one, plus any other with the
    /// request's binding.
    pub devices: Vec<Device>,
    /// Its feature assignments.
    pub features: Vec<LicenseFeature>,
    /// Its leases that are not checked in (expired ones may still be present).
    pub leases: Vec<Lease>,
    /// Catalog lookup for the request's `app_version`.
    pub versions: VersionCatalogView,
    /// The earlier consumption with the request's `event_id`, if any.
    pub consumption: Option<ConsumptionRecord>,
}

impl LicenseAggregate {
    /// The active device with `binding_key`, if any.
    pub fn active_device(&self, binding_key: &str) -> Option<&Device> {
        self.devices
            .iter()
            .find(|d| d.status == DeviceStatus::Active && d.binding_key == binding_key)
    }

    /// Whether `binding_key` was ever blacklisted on this license.
    pub fn is_blacklisted(&self, binding_key: &str) -> bool {
        self.devices
            .iter()
            .any(|d| d.status == DeviceStatus::Blacklisted && d.binding_key == binding_key)
    }

    /// Devices holding an activation seat.
    pub fn active_devices(&self) -> impl Iterator<Item = &Device> {
        self.devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Active)
    }

    /// Leases holding a floating slot at `now`.
    pub fn live_leases(&self, now: chrono::DateTime<chrono::Utc>) -> impl Iterator<Item = &Lease> {
        self.leases.iter().filter(move |l| l.is_live_at(now))
    }

    /// Applies a plan's mutations, as a store does. Memory backends and tests use this so the
    /// meaning of a mutation is written once.
    pub fn apply(&mut self, mutations: &[Mutation]) {
        for m in mutations {
            match m {
                Mutation::License(l) => self.license = l.clone(),
                Mutation::Device(d) => upsert(&mut self.devices, d, |x| x.id == d.id),
                Mutation::Lease(l) => {
                    if l.checked_in_at.is_some() {
                        self.leases.retain(|x| x.id != l.id);
                    } else {
                        upsert(&mut self.leases, l, |x| x.id == l.id);
                    }
                }
                Mutation::LicenseFeature(f) => {
                    upsert(&mut self.features, f, |x| x.feature_id == f.feature_id)
                }
                Mutation::RemoveLicenseFeature(id) => self.features.retain(|x| &x.feature_id != id),
                // Replays are looked up per request; the aggregate keeps only the one asked for.
                Mutation::Consumption(c) => self.consumption = Some(c.clone()),
                // Registrations are not part of the aggregate.
                Mutation::Registration { .. } => {}
            }
        }
    }
}

fn upsert<T: Clone>(items: &mut Vec<T>, item: &T, same: impl Fn(&T) -> bool) {
    match items.iter_mut().find(|x| same(x)) {
        Some(slot) => *slot = item.clone(),
        None => items.push(item.clone()),
    }
}
