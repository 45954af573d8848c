//! The storage conformance suite: one set of checks every backend runs (DESIGN 3).
//!
//! Enabled by the `conformance` feature. The suite turns the written contract of
//! [`store`](crate::store) into executable checks, so the in-memory and the PostgreSQL backend
//! (and any later one) are held to exactly the same behaviour.
//!
//! # What the suite guarantees
//!
//! A backend that passes every check:
//!
//! - implements every method of every storage trait with round-trip fidelity (what is written
//!   is read back equal, including metadata, optional fields and timestamps);
//! - enforces every uniqueness rule of the contract with [`StoreError::AlreadyExists`], never
//!   an overwrite; refuses deletes of records in use with [`StoreError::Conflict`]; reports
//!   missing records with [`StoreError::NotFound`];
//! - honours [`Limit`](crate::store::Limit) (default 50, clamp to 200) and lists newest
//!   first;
//! - pages the event log newest first by cursor, filters it, numbers events with strictly
//!   increasing sequences, appends the events of a write exactly once and the events of a
//!   failed write never;
//! - writes each event's webhook deliveries with it, hands each due delivery to one caller
//!   at a time under a lease, fences late reports, pauses and disables failing endpoints;
//! - runs [`transact_license`](crate::store::LicenseStore::transact_license) as the contract
//!   says: `NotFound` without calling the closure, the closure called exactly once, the
//!   aggregate holding what the query names, mutations, events and idempotency record applied
//!   all together or not at all;
//! - serves [`read_license`](crate::store::LicenseStore::read_license) snapshots that never
//!   show half of a write, even while writers commit on the same license, and applies
//!   [`record_touches`](crate::store::LicenseStore::record_touches) batches that only move
//!   timestamps forward;
//! - keeps the licensing rules true over time when `now` moves (expiry and grace, floating
//!   lease timeouts, consumption periods), with no background job and no clock read;
//! - keeps them true under concurrency: many tasks activating, checking out and consuming on
//!   one license at once never get more seats, leases or units than the limit, replays count
//!   once, and unrelated licenses do not interfere.
//!
//! The checks never sleep and never read the clock: every instant is a fixed value derived
//! from [`fixtures::t0`] (2026-11-22T10:00:00Z). Ids are deterministic (`lic_0001`, …).
//!
//! # How a backend uses it
//!
//! Add the feature and `tokio` as dev-dependencies of the backend crate, then write
//! `tests/conformance.rs` with one line. The argument is an expression evaluated inside each
//! (async) test to produce a **fresh, empty** store; it may `.await`:
//!
//! ```ignore
//! // storage-memory/tests/conformance.rs
//! licentia_core::conformance_suite!(licentia_storage_memory::MemoryStore::new());
//!
//! // storage-postgres/tests/conformance.rs: a fresh database per test
//! licentia_core::conformance_suite!(common::fresh_store().await);
//! ```
//!
//! (Marked `ignore` because core's doctests have neither a backend nor tokio.)
//!
//! [`conformance_suite!`](crate::conformance_suite) expands to one named
//! `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per check, so a failure names
//! the rule that broke. The checks themselves are plain `pub async fn`s taking the store (and,
//! for concurrent checks, a [`Spawner`]); they do not depend on any runtime, so a backend may
//! also call them from its own harness. Each check panics with a message naming the contract
//! rule it saw violated.
//!
//! | module | checks |
//! |---|---|
//! | [`catalog`] | products, versions, policies, features, custom field definitions |
//! | [`customers`] | customers and custom field values |
//! | [`commerce`] | orders and subscriptions |
//! | [`access`] | API keys, webhook endpoints, signing keys |
//! | [`lists`] | page sizes and list order |
//! | [`events`] | the event log |
//! | [`deliveries`] | the webhook outbox |
//! | [`licenses`] | licenses, devices and `transact_license` |
//! | [`creation`] | licenses created together, with their assignments and idempotency record; license templates |
//! | [`reads`] | `read_license` snapshots and `record_touches` |
//! | [`reports`] | usage sums and ledger, activity feed, runtime error counts, exports |
//! | [`telemetry`] | telemetry records |
//! | [`registrations`] | device registrations and their sessions |
//! | [`allocation`] | pools and reseller contracts, exact under concurrency |
//! | [`artifacts`] | release artifacts per version |
//! | [`time_travel`] | rules over moving `now` |
//! | [`concurrency`] | many tasks on one license at once |

pub mod access;
pub mod allocation;
pub mod artifacts;
pub mod catalog;
pub mod commerce;
pub mod concurrency;
pub mod creation;
pub mod customers;
pub mod deliveries;
pub mod events;
pub mod fixtures;
pub mod licenses;
pub mod lists;
pub mod reads;
pub mod registrations;
pub mod reports;
pub mod telemetry;
pub mod time_travel;
pub mod users;

mod gate;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::rules::{Denial, DomainEvent, LicenseAggregate, Plan};
use crate::store::{Actor, Decision, NewEvent, StoreError, StoreResult};

/// A boxed task for a [`Spawner`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs tasks concurrently on the host's runtime, so the suite stays runtime-agnostic.
///
/// [`spawn`](Spawner::spawn) starts `fut` at once (on another thread where the runtime has
/// several) and returns a future that resolves when the task has finished. A panic in the
/// task must propagate out of the returned future (tokio: resume the `JoinError`'s panic).
pub trait Spawner: Clone + Send + Sync + 'static {
    /// Starts `fut`; the returned future resolves when it has finished.
    fn spawn(&self, fut: Task) -> Task;
}

/// Converts a rule's answer into a [`Decision`] the way the engine does
/// ([`Decision::planned`], actor `license` at `now`); a denial writes nothing. The outcome is
/// the rule's result, so checks see denials too.
pub fn decision<T>(
    aggregate: &LicenseAggregate,
    now: DateTime<Utc>,
    planned: Result<Plan<T>, Denial>,
) -> Decision<Result<T, Denial>> {
    match planned {
        Ok(plan) => Decision::planned(plan, &license_actor(aggregate), now).map(Ok),
        Err(denial) => Decision::nothing(Err(denial)),
    }
}

/// The license itself as the actor of its runtime events.
pub fn license_actor(aggregate: &LicenseAggregate) -> Actor {
    Actor::license(&aggregate.license.id, None)
}

/// A domain event as the license itself caused it.
pub fn license_event(aggregate: &LicenseAggregate, e: DomainEvent, now: DateTime<Utc>) -> NewEvent {
    license_actor(aggregate).event(e, now)
}

/// Spawns every task at once through `spawner`, releases them together, waits for all and
/// returns their outputs in task order. Panics in a task propagate.
pub async fn run_concurrently<Sp, T>(
    spawner: &Sp,
    tasks: Vec<Pin<Box<dyn Future<Output = T> + Send + 'static>>>,
) -> Vec<T>
where
    Sp: Spawner,
    T: Send + 'static,
{
    use std::sync::{Arc, Mutex, PoisonError};

    let gate = gate::Gate::default();
    let results: Arc<Mutex<Vec<Option<T>>>> =
        Arc::new(Mutex::new((0..tasks.len()).map(|_| None).collect()));
    let mut handles = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.into_iter().enumerate() {
        let gate = gate.clone();
        let results = Arc::clone(&results);
        handles.push(spawner.spawn(Box::pin(async move {
            gate.wait().await;
            let out = task.await;
            results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(out);
        })));
    }
    gate.open();
    for h in handles {
        h.await;
    }
    let mut results = results.lock().unwrap_or_else(PoisonError::into_inner);
    results
        .drain(..)
        .map(|r| r.expect("every finished task stored its output"))
        .collect()
}

/// Unwraps a store result, naming the call that failed.
#[track_caller]
pub(crate) fn ok<T>(r: StoreResult<T>, call: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{call}: expected success, got {e:?}"),
    }
}

/// Asserts `NotFound`.
#[track_caller]
pub(crate) fn expect_not_found<T: Debug>(r: StoreResult<T>, call: &str) {
    match r {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{call}: the contract says NotFound for a missing record, got {other:?}"),
    }
}

/// Asserts `AlreadyExists`.
#[track_caller]
pub(crate) fn expect_already_exists<T: Debug>(r: StoreResult<T>, call: &str) {
    match r {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!(
            "{call}: the contract says a unique collision is AlreadyExists (never an overwrite), got {other:?}"
        ),
    }
}

/// Asserts `Conflict`.
#[track_caller]
pub(crate) fn expect_conflict<T: Debug>(r: StoreResult<T>, call: &str) {
    match r {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{call}: the contract says Conflict, got {other:?}"),
    }
}

/// Expands to one named `#[tokio::test]` per conformance check.
///
/// `$setup` is an expression evaluated inside each async test to build a fresh, empty store
/// (it may use `.await`). The store type must implement
/// [`Store`](crate::store::Store) `+ Clone + Send + Sync + 'static`. The calling crate needs
/// `tokio` (with the `macros` and `rt-multi-thread` features) as a dependency, usually a
/// dev-dependency. See the [module docs](crate::conformance).
#[macro_export]
macro_rules! conformance_suite {
    ($setup:expr $(,)?) => {
        /// Runs conformance tasks on tokio; a panicking task panics the test.
        #[derive(Debug, Clone, Copy)]
        struct ConformanceTokioSpawner;

        impl $crate::conformance::Spawner for ConformanceTokioSpawner {
            fn spawn(&self, fut: $crate::conformance::Task) -> $crate::conformance::Task {
                let handle = ::tokio::spawn(fut);
                ::std::boxed::Box::pin(async move {
                    match handle.await {
                        ::std::result::Result::Ok(()) => {}
                        ::std::result::Result::Err(e) => match e.try_into_panic() {
                            ::std::result::Result::Ok(payload) => {
                                ::std::panic::resume_unwind(payload)
                            }
                            ::std::result::Result::Err(e) => {
                                ::std::panic!("conformance task did not finish: {e}")
                            }
                        },
                    }
                })
            }
        }

        $crate::__conformance_tests! { $setup;
            store catalog::products_round_trip,
            store catalog::product_code_is_unique,
            store catalog::product_versions_round_trip,
            store catalog::policies_round_trip,
            store catalog::policy_code_is_unique_per_product,
            store catalog::features_round_trip,
            store catalog::feature_code_is_unique_per_product,
            store catalog::custom_fields_round_trip,
            store catalog::custom_field_code_is_unique_per_product_and_resource_type,
            store catalog::deleting_catalog_records_in_use_conflicts,
            store catalog::missing_catalog_records_are_not_found,
            store catalog::duplicate_ids_already_exist,
            store customers::customers_round_trip,
            store customers::customer_code_is_unique,
            store customers::deleting_a_customer_in_use_conflicts,
            store customers::custom_values_put_clear_and_list,
            store customers::a_custom_field_with_values_is_in_use,
            store customers::missing_customers_are_not_found,
            store commerce::orders_round_trip,
            store commerce::subscriptions_round_trip,
            store commerce::external_ids_are_unique_per_product_and_kind,
            store commerce::missing_orders_and_subscriptions_are_not_found,
            store access::api_keys_round_trip,
            store access::api_key_token_hash_is_unique,
            store access::expired_sessions_are_purged,
            store access::api_keys_revoke_but_keep_the_last_admin,
            store access::webhooks_round_trip_with_their_secret,
            store access::signing_keys_replace_with_compare_and_swap,
            store access::missing_access_records_are_not_found,
            store users::users_round_trip,
            store users::users_list_by_role_status_and_cursor,
            store lists::lists_default_to_50_and_clamp_to_200,
            store lists::every_list_honours_its_limit_and_order,
            store lists::equal_timestamps_list_by_id_descending,
            store events::appended_events_round_trip_with_increasing_sequences,
            store events::events_page_newest_first_by_cursor,
            store events::next_cursor_is_none_when_the_last_page_is_full,
            store events::events_filter_by_type_resource_and_actor,
            store events::event_lists_default_to_50_and_clamp_to_200,
            store events::write_methods_append_their_events_exactly_once,
            store events::failed_writes_append_no_events,
            store deliveries::deliveries_are_written_with_their_events,
            store deliveries::claims_are_leased_and_reports_fenced,
            store deliveries::failures_retry_pause_and_disable,
            store deliveries::claims_respect_the_per_endpoint_and_batch_limits,
            store deliveries::retries_pages_and_deletes,
            spawn deliveries::concurrent_claims_hand_each_delivery_to_one_caller,
            store telemetry::telemetry_round_trips_pages_and_purges,
            spawn telemetry::concurrent_telemetry_inserts_get_distinct_ids,
            store registrations::registrations_round_trip_and_stay_unique,
            store registrations::registration_activations_compare_and_set,
            spawn registrations::concurrent_activations_of_one_serial_bind_it_once,
            store artifacts::artifacts_round_trip_per_version,
            store allocation::pool_assignment_takes_only_unassigned_licenses,
            spawn allocation::concurrent_pool_assignments_hand_each_license_out_once,
            store allocation::contracts_count_their_licenses_and_hold_their_references,
            spawn allocation::concurrent_contract_issues_never_pass_the_quota,
            store reports::usage_reports_sum_group_and_page,
            store reports::activities_filter_by_subject_and_page,
            store reports::runtime_errors_add_up_group_and_purge,
            store reports::exports_are_claimed_once_finished_and_purged,
            spawn reports::concurrent_export_claims_hand_each_export_to_one_producer,
            store licenses::licenses_round_trip_and_filter,
            store creation::insert_licenses_is_all_or_nothing,
            spawn creation::concurrent_creations_under_one_key_write_once,
            store creation::licenses_inserted_with_features_load_them,
            store creation::licenses_inserted_with_custom_values_list_them,
            store creation::templates_round_trip_and_hold_their_references,
            store licenses::license_key_hash_is_unique,
            store licenses::missing_licenses_are_not_found_without_calling_the_closure,
            store licenses::transact_calls_the_closure_once_by_id_and_by_key_hash,
            store licenses::transact_loads_the_aggregate_the_contract_names,
            store licenses::transact_looks_up_the_queried_version,
            store licenses::transact_loads_the_named_consumption_and_idempotency_records,
            store licenses::transact_applies_mutations_events_and_idempotency_together,
            store licenses::duplicate_consumption_event_id_applies_nothing,
            store licenses::duplicate_idempotency_key_applies_nothing,
            store licenses::idempotency_records_expire,
            store licenses::read_only_decisions_write_nothing,
            store licenses::mutations_upsert_and_remove_by_key,
            store licenses::devices_and_license_features_list,
            store reads::read_license_loads_what_transact_loads,
            store reads::read_license_of_a_missing_license_is_not_found,
            store reads::touches_move_timestamps_forward_only,
            store reads::touches_append_their_events_and_skip_missing_records,
            spawn reads::snapshots_never_show_half_a_write,
            store time_travel::expiry_and_grace_follow_now,
            store time_travel::trials_end_without_grace,
            store time_travel::floating_lease_timeout_frees_the_slot,
            store time_travel::heartbeats_keep_a_lease_alive,
            store time_travel::consumption_resumes_in_the_next_period,
            store time_travel::deactivation_frees_the_seat_and_keeps_the_device,
            store time_travel::blacklisted_bindings_stay_refused,
            store time_travel::suspend_reinstate_and_revoke_persist,
            store time_travel::silent_devices_are_listed_by_the_heartbeat_rule,
            spawn concurrency::concurrent_activations_never_exceed_max_activations,
            spawn concurrency::concurrent_sweeps_release_each_silent_device_once,
            spawn concurrency::concurrent_activations_and_deactivations_keep_the_count_true,
            spawn concurrency::concurrent_checkouts_never_exceed_max_floating_users,
            spawn concurrency::concurrent_checkouts_hold_each_pool_apart,
            spawn concurrency::concurrent_consumption_never_exceeds_the_quota,
            spawn concurrency::concurrent_replays_of_one_event_id_count_once,
            spawn concurrency::concurrent_idempotent_requests_apply_once,
            spawn concurrency::distinct_licenses_do_not_interfere,
            spawn concurrency::concurrent_inserts_of_one_code_create_one_record,
            spawn concurrency::concurrent_appends_get_distinct_sequences,
            spawn access::signing_key_rings_are_replaced_alone,
            spawn users::concurrent_user_changes_are_serialized,
        }
    };
}

/// Implementation detail of [`conformance_suite!`](crate::conformance_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($setup:expr; $($kind:ident $module:ident :: $check:ident),* $(,)?) => {
        $( $crate::__conformance_tests!(@one $kind $setup; $module :: $check); )*
    };
    (@one store $setup:expr; $module:ident :: $check:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let store = $setup;
            $crate::conformance::$module::$check(store).await;
        }
    };
    (@one spawn $setup:expr; $module:ident :: $check:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let store = $setup;
            $crate::conformance::$module::$check(store, ConformanceTokioSpawner).await;
        }
    };
}
