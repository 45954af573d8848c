//! The operating system's clock, for hosts.
//!
//! Nothing in the core reads it: the engine reads the [`Clock`] its host hands it, once per
//! call. This adapter is here so that every host (the server, an embedding service, the
//! examples) uses one implementation instead of writing its own; CI allows the OS clock in
//! this file only.

use chrono::{DateTime, Utc};

use super::Clock;

/// The system time (`SystemTime::now`), as a [`Clock`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        std::time::SystemTime::now().into()
    }
}
