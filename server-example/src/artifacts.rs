//! Release artifacts' bytes: kept in an [`ObjectStore`] (`LICENTIA_ARTIFACTS`: the local
//! filesystem, or an S3-compatible bucket once one machine is outgrown), served to
//! whoever holds a download token, with single byte ranges (`Range: bytes=…`) for resumed
//! and parallel downloads.
//!
//! The engine decides who may download what ([`licentia_core::engine`]'s artifact
//! operations); this module only moves bytes.

use std::ops::Range;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;

/// The artifact store `url` names (see [`crate::config::ArtifactConfig::url`]).
///
/// # Errors
///
/// A message for a URL of another scheme, a relative path, or a directory that cannot be
/// created.
pub fn open(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    if url == "memory://" {
        return Ok(Arc::new(InMemory::new()));
    }
    if url.starts_with("s3://") {
        // The HTTPS client's crypto is ring's, as for webhooks.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Credentials, region and endpoint (for S3-compatible stores) come from the
        // standard AWS_* variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
        // AWS_ENDPOINT, AWS_ALLOW_HTTP.
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let s3 = AmazonS3Builder::from_env()
            .with_url(format!("s3://{bucket}"))
            .build()
            .map_err(|e| format!("LICENTIA_ARTIFACTS: {url}: {e}"))?;
        let prefix = prefix.trim_matches('/');
        return Ok(if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        });
    }
    let dir = if url.is_empty() {
        std::env::temp_dir().join("licentia-artifacts")
    } else if let Some(path) = url.strip_prefix("file://") {
        let path = std::path::PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!(
                "LICENTIA_ARTIFACTS: {url} names a relative path; use file:///absolute/path"
            ));
        }
        path
    } else {
        return Err(format!(
            "LICENTIA_ARTIFACTS: {url} is not supported; use file:///absolute/path, s3://bucket[/prefix] or memory://"
        ));
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("LICENTIA_ARTIFACTS: cannot create {}: {e}", dir.display()))?;
    LocalFileSystem::new_with_prefix(&dir)
        .map(|fs| Arc::new(fs) as Arc<dyn ObjectStore>)
        .map_err(|e| format!("LICENTIA_ARTIFACTS: {}: {e}", dir.display()))
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The whole object (no header, or one this server does not honour, such as several
    /// ranges: a client may always be sent the whole).
    Whole,
    /// These bytes.
    Part(Range<u64>),
    /// A range that starts past the end (416).
    Unsatisfiable,
}

/// Parses `header` (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against an object of `size` bytes.
pub fn wanted(header: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((from, to)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let range = match (from.trim().is_empty(), to.trim().is_empty()) {
        // The last n bytes.
        (true, false) => match number(to) {
            Some(0) => return Wanted::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
            None => return Wanted::Whole,
        },
        (false, true) => match number(from) {
            Some(a) => a..size,
            None => return Wanted::Whole,
        },
        (false, false) => match (number(from), number(to)) {
            (Some(a), Some(b)) if a <= b => a..b.saturating_add(1).min(size),
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if range.start >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-3"), 10), Wanted::Part(0..4));
        assert_eq!(wanted(Some("bytes=4-"), 10), Wanted::Part(4..10));
        assert_eq!(wanted(Some("bytes=-3"), 10), Wanted::Part(7..10));
        assert_eq!(wanted(Some("bytes=-30"), 10), Wanted::Part(0..10));
        assert_eq!(wanted(Some("bytes=5-100"), 10), Wanted::Part(5..10));
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,4-5"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=5-2"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=x-1"), 10), Wanted::Whole);
    }

    #[test]
    fn only_absolute_file_urls_and_memory_open() {
        assert!(open("memory://").is_ok());
        assert!(open("file://relative/dir").is_err());
        assert!(open("gs://bucket").is_err());
        // Opening an S3 store reaches nothing yet (requests are made when used).
        assert!(open("s3://licentia-artifacts").is_ok());
        let dir = std::env::temp_dir().join(format!("licentia-open-{}", std::process::id()));
        assert!(open(&format!("file://{}", dir.display())).is_ok());
        assert!(dir.is_dir(), "created when missing");
        let _ = std::fs::remove_dir_all(dir);
    }
}
