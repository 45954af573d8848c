//! In-process storage backend for licentia.
//!
//! [`MemoryStore`] implements every storage trait of
//! [`licentia_core::store`] ([`LicenseStore`], [`CatalogStore`], [`CustomerStore`],
//! [`CommerceStore`], [`AccessStore`]), so it is a [`Store`]. It is meant for tests, for
//! embedding licentia in a single process, and as the server's default when no database is
//! configured. Nothing survives a restart.
//!
//! Like every store it never reads the clock, never draws randomness and never decides
//! policy: timestamps and ids arrive in the records, refusals come from
//! [`licentia_core::rules`].
//!
//! # Example
//!
//! ```rust
//! use chrono::{TimeZone, Utc};
//! use licentia_core::model::Product;
//! use licentia_core::store::{CatalogStore, Limit, StoreError};
//! use licentia_storage_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
//! let product = Product {
//!     id: "prod_1".parse()?,
//!     name: "Editor".into(),
//!     code: "editor".parse()?,
//!     metadata: Default::default(),
//!     signing: Default::default(),
//!     created_at: now,
//!     updated_at: now,
//! };
//! store.insert_product(&product, vec![]).await?;
//!
//! // Clones share the same data.
//! let other = store.clone();
//! assert_eq!(other.get_product(&product.id).await?, product);
//! assert_eq!(other.list_products(Limit::default()).await?.len(), 1);
//!
//! // Unique values are the store's: a second `editor` is refused, not overwritten.
//! let mut copy = product.clone();
//! copy.id = "prod_2".parse()?;
//! assert!(matches!(
//!     store.insert_product(&copy, vec![]).await,
//!     Err(StoreError::AlreadyExists { entity: "product", constraint: "code" })
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! # Embedding with the engine
//!
//! The engine does the loading, locking, signing and idempotency over this store; the host
//! hands in its clock and randomness (here a manual clock and a seeded RNG, as tests do).
//! `examples/embed.rs` is the same program with the system clock and OS randomness.
//!
//! ```rust
//! use std::sync::Arc;
//! use chrono::{TimeZone, Utc};
//! use licentia_core::crypto::{PublicKeySet, Unverified};
//! use licentia_core::engine::requests::{LicenseCreate, ProductCreate};
//! use licentia_core::engine::{Actor, Credential, Engine, ManualClock, RuntimeCall};
//! use licentia_core::model::{LicenseType, PolicyDraft, RuntimeBindingRequest, RuntimeEntitlementData};
//! use licentia_storage_memory::MemoryStore;
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()));
//! let engine = Engine::start(MemoryStore::new(), clock, ChaCha20Rng::from_seed([1; 32])).await?;
//! let admin = Actor::system();
//! let product = engine
//!     .create_product(&admin, ProductCreate { name: "Editor".into(), code: "editor".into(), metadata: None, signing: None })
//!     .await?;
//! let draft = PolicyDraft {
//!     name: Some("Pro".into()),
//!     code: Some("pro".into()),
//!     license_type: Some(LicenseType::Perpetual),
//!     ..Default::default()
//! };
//! let policy = engine.create_policy(&admin, product.id.as_str(), draft).await?;
//! let created = engine
//!     .create_license(&admin, LicenseCreate {
//!         product_id: product.id.to_string(),
//!         policy_id: policy.id.to_string(),
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! let call = RuntimeCall {
//!     credential: Credential::LicenseKey(&created.license_key),
//!     idempotency_key: Some("activation-1"),
//!     request_id: "req_1",
//!     ip_address: None,
//! };
//! let device = RuntimeBindingRequest { fingerprint: Some("laptop-1".into()), ..Default::default() };
//! let response = engine.activate(call, &device).await?;
//!
//! // The client's side: the published keys verify the exact bytes it received.
//! let keys = licentia_core::crypto::key_set(engine.public_keys())?;
//! let verified = Unverified::<RuntimeEntitlementData>::from_envelope_json(&response.body)?.verify(&keys)?;
//! assert_eq!(verified.data().license_id, created.license.id);
//!
//! // A retry with the same idempotency key gets the same bytes back.
//! assert_eq!(engine.activate(call, &device).await?.body, response.body);
//! # Ok(())
//! # }
//! ```
//!
//! `examples/seats.rs` runs a whole activation through
//! [`LicenseStore::transact_license`].
//!
//! # Locking design
//!
//! The contract asks that every runtime call on one license be atomic and that unrelated
//! licenses never wait on each other (DESIGN 3). The store therefore has one lock per
//! license plus a few short-lived shared locks:
//!
//! | lock | guards | held for |
//! |---|---|---|
//! | one async `writer` mutex per license (tokio's, runtime-agnostic) | the right to change the license | a whole write: [`LicenseStore::transact_license`] (load, the closure, validate, apply) or one license's share of [`LicenseStore::record_touches`] |
//! | one `state: RwLock` per license | the license row, its devices, feature assignments, live leases and consumption records (by `event_id`) | copying a snapshot out (shared), publishing a commit or a touch (exclusive) |
//! | `licenses: RwLock` | the id → license map and the key hash index | a lookup (shared); inserting a license or changing a key hash (exclusive) |
//! | one `RwLock` per license row | the license's committed row, which `get_license` and `list_licenses` read | publishing a changed row |
//! | `idempotency: Mutex` | idempotency records by (scope, key) | one lookup, or one check-and-insert at commit |
//! | `catalog: RwLock` | products, versions, policies, features, custom fields and values, customers, orders, subscriptions | one read or write |
//! | `access: RwLock` | API keys, webhooks with their secrets, signing keys | one read or write |
//! | `events: Mutex` | the append-only event log and its sequence counter, and the webhook outbox (deliveries, attempts, endpoint pauses) | one append, page, claim or report |
//!
//! **Reads never queue behind writes.** [`LicenseStore::read_license`] (validate, check,
//! offline) takes the license's `state` shared just long enough to copy the aggregate out,
//! so any number of readers of one hot license run in parallel, and a write in progress
//! delays them only for the moment it publishes. **Writers queue without blocking a
//! thread.** A write first awaits the license's async `writer` lock (a second writer on the
//! same license yields its runtime worker instead of parking it on a futex), then copies its
//! snapshot out like a reader, runs the closure holding no blocking lock, and takes `state`
//! exclusively only to validate and publish. Because writers are serialised, nothing changes
//! between a writer's snapshot and its commit; touches queue on the same `writer` lock, so a
//! commit never writes back a device it loaded before a touch.
//!
//! `transact_license` finds the license's locks under a brief read of `licenses`, releases
//! that, and never holds a global lock while a closure runs. The catalog is read only while
//! the aggregate is built (policy, version lookup). Reads of license rows (`get_license`,
//! `list_licenses`) use the committed row and never wait for a transaction. A commit that
//! changes the row publishes it under a shared lock of `licenses`; it takes `catalog` only
//! when the row names another policy, product, customer, order or subscription, and
//! `licenses` exclusively only when the key hash changes. `get_device`, `list_devices` and
//! `list_license_features` read `state` shared.
//!
//! Locks are always taken in one order — a license's `writer`, then its `state`, then
//! `catalog`, then `licenses`, then a license row, then `idempotency`, then `access`, then
//! `events` — so no two calls can deadlock. A write takes
//! the event log's lock while it still holds the locks of what it changes, so its events
//! and its change become visible together; sequences are assigned under that lock, so the
//! log is in sequence order and sequences strictly increase.
//!
//! The blocking locks are `parking_lot`'s, which do not poison: a closure that panics unwinds
//! through `transact_license`, releases the license's locks and leaves its state untouched
//! (nothing is written before the closure returns), and every other license keeps working.
//! The only lock awaited is a license's `writer`; no blocking lock is ever held across an
//! `.await`, so every future is `Send`.
//!
//! # Transactions
//!
//! [`LicenseStore::transact_license`] loads the aggregate the contract describes, calls the
//! closure exactly once, then validates the whole [`Decision`](licentia_core::store::Decision)
//! before writing any of it. A [`Mutation::Consumption`](licentia_core::rules::Mutation)
//! whose `event_id` is already recorded on the license (or repeated within the decision), an
//! idempotency key already stored, a mutation naming another license, a changed license row
//! whose key hash is taken or whose references do not exist: each fails the call and
//! nothing is applied. Otherwise the mutations are applied with
//! [`LicenseAggregate::apply`](licentia_core::rules::LicenseAggregate::apply) — the meaning
//! of a mutation is written once, in core — and the result is stored with the events and
//! the idempotency record.
//!
//! # Decisions where the contract is silent
//!
//! - **References behave like foreign keys.** Inserting or updating a record whose product,
//!   policy, customer, order or subscription does not exist is `NotFound` for that entity.
//!   Listing the policies, features, custom fields, versions, orders or subscriptions of a
//!   missing product is `NotFound { entity: "product" }`.
//! - **Deletes.** A product with policies, features, licenses, orders or subscriptions is
//!   `Conflict`; its versions and custom field definitions (with their values) are deleted
//!   with it. A customer that licenses, orders or subscriptions reference is `Conflict`; its
//!   custom field values go with it. Deleting a custom field deletes its values.
//! - **Idempotency records** are unique by (scope, key) across the store, as the contract
//!   says (hosts put the license in the scope, so in practice they are per license). They
//!   live outside the per-license state so that two licenses committing the same scope and
//!   key cannot both succeed.
//! - **Version strings** are unique per product as written; lookups compare by semver
//!   precedence, newest release first.
//! - **Custom field values** are returned joined with their definition as it is now.
//! - **`touch_api_key`** keeps the latest `last_used_at` it was given.
//! - **Leases** that are checked in are removed, as in the aggregate.
//!
//! Entity names in errors: `product`, `product_version`, `policy`, `feature`,
//! `custom_field`, `customer`, `order`, `subscription`, `license`, `device`, `api_key`,
//! `webhook`, `consumption`, `idempotency_record`. Constraint names: `id`, `code`,
//! `version`, `external_id`, `key_hash`, `token_hash`, `event_id`, `key`.
//!
//! [`Store`]: licentia_core::store::Store
//! [`LicenseStore`]: licentia_core::store::LicenseStore
//! [`LicenseStore::transact_license`]: licentia_core::store::LicenseStore::transact_license
//! [`LicenseStore::read_license`]: licentia_core::store::LicenseStore::read_license
//! [`LicenseStore::record_touches`]: licentia_core::store::LicenseStore::record_touches
//! [`CatalogStore`]: licentia_core::store::CatalogStore
//! [`CustomerStore`]: licentia_core::store::CustomerStore
//! [`CommerceStore`]: licentia_core::store::CommerceStore
//! [`AccessStore`]: licentia_core::store::AccessStore

mod access;
mod allocation;
mod artifact;
mod catalog;
mod commerce;
mod customer;
mod delivery;
mod license;
mod registration;
mod report;
mod state;
mod telemetry;
mod user;

use std::fmt;
use std::sync::Arc;

use state::Inner;

/// An in-memory [`Store`](licentia_core::store::Store).
///
/// Cheap to clone: clones share the same data. Thread-safe; see the
/// [crate docs](crate#locking-design) for how it locks.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryStore {
    /// Counts only: the store holds secrets (webhook secrets, signing seeds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let licenses = self.inner.licenses.read().by_id.len();
        let events = self.inner.events.lock().len();
        f.debug_struct("MemoryStore")
            .field("licenses", &licenses)
            .field("events", &events)
            .finish_non_exhaustive()
    }
}
