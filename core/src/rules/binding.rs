//! Who is asking: the device binding of a runtime request.
//!
//! A hardware binding is keyed by its `fingerprint`. A container binding is keyed by its
//! container identity, written `container:<cluster_id>/<namespace>/<pod_name>/<container_id>`
//! with absent parts empty. The key is what activation seats, blacklists and the offline
//! envelope's `binding_sha256` (SHA-256 of the key's UTF-8 bytes, lowercase hex) refer to, so
//! a client that wants to check an offline envelope computes it the same way.

use crate::model::{DeviceBindingKind, RuntimeBindingRequest};

use super::{DenialCode, DenialReason};

/// Longest accepted binding field, in bytes.
pub const MAX_BINDING_FIELD_LEN: usize = 256;

/// A validated binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    kind: DeviceBindingKind,
    key: String,
    request: RuntimeBindingRequest,
}

impl Binding {
    /// Validates a request's binding fields. Returns every problem found.
    pub fn from_request(req: &RuntimeBindingRequest) -> Result<Binding, Vec<DenialReason>> {
        let mut reasons = Vec::new();
        let fields: [(&'static str, &Option<String>); 7] = [
            ("fingerprint", &req.fingerprint),
            ("hostname", &req.hostname),
            ("os", &req.os),
            ("container_id", &req.container_id),
            ("cluster_id", &req.cluster_id),
            ("namespace", &req.namespace),
            ("pod_name", &req.pod_name),
        ];
        for (name, value) in fields {
            if let Some(v) = value
                && (v.len() > MAX_BINDING_FIELD_LEN || v.chars().any(char::is_control))
            {
                reasons.push(DenialReason::field(
                        DenialCode::InvalidBindingField,
                        name,
                        format!(
                            "{name} must be at most {MAX_BINDING_FIELD_LEN} bytes without control characters"
                        ),
                    ));
            }
        }
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let (kind, key) = if req.is_container {
            let parts = [
                &req.cluster_id,
                &req.namespace,
                &req.pod_name,
                &req.container_id,
            ];
            if !parts.iter().any(|p| present(p)) {
                reasons.push(DenialReason::field(
                    DenialCode::ContainerIdentityRequired,
                    "is_container",
                    "a container binding needs at least one of cluster_id, namespace, pod_name or container_id",
                ));
            }
            let joined: Vec<&str> = parts.iter().map(|p| p.as_deref().unwrap_or("")).collect();
            (
                DeviceBindingKind::Container,
                format!("container:{}", joined.join("/")),
            )
        } else {
            if !present(&req.fingerprint) {
                reasons.push(DenialReason::field(
                    DenialCode::FingerprintRequired,
                    "fingerprint",
                    "a hardware binding needs a fingerprint",
                ));
            }
            (
                DeviceBindingKind::Hardware,
                req.fingerprint.clone().unwrap_or_default(),
            )
        };
        if reasons.is_empty() {
            Ok(Binding {
                kind,
                key,
                request: req.clone(),
            })
        } else {
            Err(reasons)
        }
    }

    /// Hardware or container.
    pub fn kind(&self) -> DeviceBindingKind {
        self.kind
    }

    /// The identity seats and blacklists are keyed by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The request the binding came from.
    pub fn request(&self) -> &RuntimeBindingRequest {
        &self.request
    }

    /// Whether the request says it runs in a VM.
    pub fn is_vm(&self) -> bool {
        self.request.is_vm
    }

    /// Whether this is a container binding.
    pub fn is_container(&self) -> bool {
        self.kind == DeviceBindingKind::Container
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RuntimeBindingRequest {
        RuntimeBindingRequest::default()
    }

    #[test]
    fn hardware_needs_fingerprint() {
        let err = Binding::from_request(&req()).unwrap_err();
        assert_eq!(err[0].code, DenialCode::FingerprintRequired);
        let blank = RuntimeBindingRequest {
            fingerprint: Some("  ".into()),
            ..req()
        };
        assert!(Binding::from_request(&blank).is_err());
        let ok = RuntimeBindingRequest {
            fingerprint: Some("fp-1".into()),
            ..req()
        };
        let b = Binding::from_request(&ok).unwrap();
        assert_eq!(b.key(), "fp-1");
        assert_eq!(b.kind(), DeviceBindingKind::Hardware);
    }

    #[test]
    fn container_needs_identity_and_keys_by_it() {
        let bare = RuntimeBindingRequest {
            is_container: true,
            ..req()
        };
        let err = Binding::from_request(&bare).unwrap_err();
        assert_eq!(err[0].code, DenialCode::ContainerIdentityRequired);
        let ok = RuntimeBindingRequest {
            is_container: true,
            namespace: Some("prod".into()),
            pod_name: Some("api-1".into()),
            fingerprint: Some("ignored".into()),
            ..req()
        };
        let b = Binding::from_request(&ok).unwrap();
        assert_eq!(b.key(), "container:/prod/api-1/");
        assert!(b.is_container());
    }

    #[test]
    fn reports_every_bad_field() {
        let bad = RuntimeBindingRequest {
            hostname: Some("x".repeat(MAX_BINDING_FIELD_LEN + 1)),
            os: Some("linux\n".into()),
            ..req()
        };
        let err = Binding::from_request(&bad).unwrap_err();
        let codes: Vec<_> = err.iter().map(|r| (r.code, r.field)).collect();
        assert_eq!(
            codes,
            vec![
                (DenialCode::InvalidBindingField, Some("hostname")),
                (DenialCode::InvalidBindingField, Some("os")),
                (DenialCode::FingerprintRequired, Some("fingerprint")),
            ]
        );
    }
}
