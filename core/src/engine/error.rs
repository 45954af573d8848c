//! What an engine call can fail with.

use crate::rules::{Denial, DenialCode, DenialReason};
use crate::store::StoreError;

/// Why an engine operation did not succeed.
///
/// Hosts map these to their own error space; the HTTP server maps them to statuses in one
/// table (`Denied` by the kind of its primary reason).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A licensing rule refused; every failing rule is listed.
    #[error("{0}")]
    Denied(Denial),
    /// The license key or management token is malformed, unknown, expired or inactive.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A resource the request names does not exist.
    #[error("{entity} not found")]
    NotFound {
        /// e.g. `product`.
        entity: &'static str,
    },
    /// A unique value is taken (a product code, a feature code within its product, …).
    #[error("{entity} with this {constraint} already exists")]
    AlreadyExists {
        /// e.g. `product`.
        entity: &'static str,
        /// e.g. `code`.
        constraint: &'static str,
    },
    /// The write conflicts with other records (delete while in use).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A query parameter (or an export's filter) that is malformed or out of range
    /// (HTTP 400 `INVALID_QUERY`).
    #[error("invalid query parameter {param}: {message}")]
    InvalidQuery {
        /// The parameter.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// The `Idempotency-Key` was used before with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// Storage cannot be reached now.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else (a backend failure, a signing failure); details are logged, not shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl EngineError {
    /// A single-reason denial.
    pub fn denied(
        code: DenialCode,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        let reason = match field {
            Some(f) => DenialReason::field(code, f, message),
            None => DenialReason::new(code, message),
        };
        Self::Denied(Denial::one(reason))
    }

    /// An internal failure (signing, serialising) whose details are logged, not shown.
    pub(crate) fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// An invalid-input refusal about `field` (HTTP 422).
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::denied(DenialCode::InvalidField, Some(field), message)
    }
}

impl From<Denial> for EngineError {
    fn from(d: Denial) -> Self {
        Self::Denied(d)
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { entity } => Self::NotFound { entity },
            StoreError::AlreadyExists { entity, constraint } => {
                Self::AlreadyExists { entity, constraint }
            }
            StoreError::Conflict { reason } => Self::Conflict(reason),
            e @ StoreError::Unavailable { .. } => Self::Unavailable(e),
            e => Self::Internal(Box::new(e)),
        }
    }
}
