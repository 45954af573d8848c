//! Release artifacts (an extension): the description of each file of a product version.
//! The bytes are not the store's: a host keeps them in its artifact store and records here
//! where they are ([`ArtifactSource`](crate::model::ArtifactSource)).

use std::future::Future;

use super::{NewEvent, StoreResult};
use crate::model::{Artifact, ArtifactId, ProductVersionId};

/// Artifact storage.
///
/// # Contract
///
/// - `insert_artifact` stores the record and appends `events` atomically; a product or
///   version that does not exist is `NotFound`, a taken id `AlreadyExists`.
/// - `get_artifact` returns it as written, or `NotFound { entity: "artifact" }`.
/// - `list_artifacts` returns a version's artifacts ordered by name, platform, arch, id; an
///   unknown version lists nothing.
///
/// # Errors
///
/// As above, `Unavailable` when the backend cannot be reached, `Backend` for anything else.
pub trait ArtifactStore: Send + Sync {
    /// Stores a new artifact.
    fn insert_artifact(
        &self,
        artifact: &Artifact,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The artifact `id`.
    fn get_artifact(&self, id: &ArtifactId) -> impl Future<Output = StoreResult<Artifact>> + Send;

    /// A version's artifacts.
    fn list_artifacts(
        &self,
        version: &ProductVersionId,
    ) -> impl Future<Output = StoreResult<Vec<Artifact>>> + Send;
}
