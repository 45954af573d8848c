//! The one error type every backend maps its failures into.

/// A boxed error from a backend, kept whole (never flattened to a string).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a storage operation failed.
///
/// Backends map their own errors into these kinds: a unique violation becomes
/// [`AlreadyExists`](StoreError::AlreadyExists), a foreign key still referenced becomes
/// [`Conflict`](StoreError::Conflict), a refused or lost connection or a pool timeout becomes
/// [`Unavailable`](StoreError::Unavailable). Anything else is
/// [`Backend`](StoreError::Backend) with its source attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{entity} not found")]
    NotFound {
        /// What was looked up, e.g. `license`.
        entity: &'static str,
    },
    /// A record with the same unique value exists.
    #[error("{entity} already exists ({constraint})")]
    AlreadyExists {
        /// What was written, e.g. `product`.
        entity: &'static str,
        /// Which unique value collided, e.g. `code`.
        constraint: &'static str,
    },
    /// The write conflicts with other records, e.g. deleting a policy licenses still use.
    #[error("conflict: {reason}")]
    Conflict {
        /// A sentence for humans.
        reason: &'static str,
    },
    /// The storage cannot be reached now; retrying later may succeed.
    #[error("storage unavailable")]
    Unavailable {
        /// What the backend reported.
        #[source]
        source: BoxError,
    },
    /// Any other backend failure.
    #[error("storage backend error")]
    Backend {
        /// What the backend reported.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// `NotFound` for `entity`.
    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    /// `AlreadyExists` for `entity` on `constraint`.
    pub fn already_exists(entity: &'static str, constraint: &'static str) -> Self {
        Self::AlreadyExists { entity, constraint }
    }
}
