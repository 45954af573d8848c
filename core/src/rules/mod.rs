//! The licensing rules: pure, synchronous functions from a [`LicenseAggregate`], a request and
//! `now` to a [`Plan`] (mutations, events, outcome) or a [`Denial`] listing every failing rule.
//!
//! No function here reads the clock, an RNG, the environment or any I/O: `now` and anything
//! random (new ids, lease tokens) are arguments. A store runs one of these inside its
//! per-license transaction and applies the plan atomically (DESIGN 3).
//!
//! | module | decides |
//! |---|---|
//! | [`status`] | effective status and what each license type requires |
//! | [`activation`] | activate, validate, check, deactivate, device reset and blacklist |
//! | [`floating`] | floating checkout, heartbeat, checkin |
//! | [`device_heartbeat`] | device heartbeats and the release of silent devices |
//! | [`registration`] | pre-registered devices' activation and sessions |
//! | [`metering`] | consume and usage reset |
//! | [`period`] | usage periods and what an assignment used in one |
//! | [`version`] | `app_version` eligibility |
//! | [`lifecycle`] | create, renew, suspend, reinstate, revoke, transfer, feature assignment |
//! | [`allocation`] | pools (assigning unassigned licenses) and reseller contracts' quotas |
//! | [`offline`] | offline license payloads |
//! | [`air_gap`] | activation and release by files, for devices that never reach the server |
//! | [`policy`] | policy defaults and validation |
//! | [`telemetry`] | whether a telemetry record follows the documented schema |
//! | [`delivery`] | webhook retries, endpoint pauses and disabling |

pub mod activation;
mod aggregate;
pub mod air_gap;
pub mod allocation;
mod binding;
pub mod delivery;
mod denial;
pub mod device_heartbeat;
pub mod entitlement;
pub mod floating;
pub mod license_users;
pub mod lifecycle;
pub mod metering;
pub mod offline;
pub mod period;
mod plan;
pub mod policy;
pub mod registration;
mod runtime_gate;
pub mod sign_in;
pub mod status;
pub mod telemetry;
pub mod version;
pub mod webhook_target;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
pub(crate) mod testing;

pub use aggregate::{LicenseAggregate, VersionCatalogView};
pub use binding::{Binding, MAX_BINDING_FIELD_LEN};
pub use denial::{Denial, DenialCode, DenialKind, DenialReason};
pub use plan::{DomainEvent, Mutation, Plan, Read, Touch, TouchKind};
