//! Release artifacts: stored per version, listed in a stable order, references held.

use crate::model::{Artifact, ArtifactSource, LicenseType, ProductVersion};
use crate::store::Store;

use super::fixtures::{parse, product, seed, system_event, t0, version};
use super::{expect_already_exists, expect_not_found, ok};

fn artifact(v: &ProductVersion, n: u32, name: &str, platform: Option<&str>) -> Artifact {
    Artifact {
        id: parse(&format!("art_{n:04}")),
        product_id: v.product_id.clone(),
        version_id: v.id.clone(),
        version: v.version.clone(),
        name: name.into(),
        platform: platform.map(str::to_owned),
        arch: None,
        filename: format!("{name}.bin"),
        size: u64::from(n) * 100,
        sha256: format!("{n:064x}"),
        content_type: "application/octet-stream".into(),
        source: ArtifactSource::Stored {
            key: format!("artifacts/art_{n:04}"),
        },
        created_at: t0(),
    }
}

/// Artifacts round-trip, list per version by name then platform, and name an existing
/// version of their own product.
pub async fn artifacts_round_trip_per_version<S: Store>(store: S) {
    let s = seed(&store, 1, LicenseType::Perpetual, |_| {}).await;
    let (v1, v2) = (
        version(&s.product, 1, "1.0.0", t0()),
        version(&s.product, 2, "2.0.0", t0()),
    );
    for v in [&v1, &v2] {
        ok(store.insert_version(v, vec![]).await, "insert_version");
    }
    assert_eq!(ok(store.get_version(&v2.id).await, "get_version"), v2);
    expect_not_found(
        store.get_version(&parse("ver_missing")).await,
        "get_version",
    );
    let linux = artifact(&v1, 1, "app", Some("linux"));
    let mut mac = artifact(&v1, 2, "app", Some("macos"));
    mac.source = ArtifactSource::External {
        url: "https://downloads.example.com/app.dmg".into(),
    };
    let docs = artifact(&v1, 3, "a-docs", None);
    let other = artifact(&v2, 4, "app", Some("linux"));
    for a in [&mac, &linux, &docs, &other] {
        ok(
            store
                .insert_artifact(
                    a,
                    vec![system_event(
                        "artifact.created",
                        "artifact",
                        a.id.as_str(),
                        t0(),
                    )],
                )
                .await,
            "insert_artifact",
        );
    }
    expect_already_exists(
        store.insert_artifact(&linux, vec![]).await,
        "insert_artifact twice",
    );
    assert_eq!(ok(store.get_artifact(&mac.id).await, "get_artifact"), mac);
    expect_not_found(
        store.get_artifact(&parse("art_missing")).await,
        "get_artifact",
    );
    let listed = ok(store.list_artifacts(&v1.id).await, "list_artifacts");
    assert_eq!(listed, [docs, linux, mac], "by name, then platform");
    assert_eq!(ok(store.list_artifacts(&v2.id).await, "list").len(), 1);
    assert!(ok(store.list_artifacts(&parse("ver_missing")).await, "list").is_empty());

    // The version must exist, and be the product's.
    let mut missing = artifact(&v1, 5, "app", None);
    missing.version_id = parse("ver_missing");
    expect_not_found(
        store.insert_artifact(&missing, vec![]).await,
        "insert_artifact of a missing version",
    );
    let elsewhere = product(9);
    ok(
        store.insert_product(&elsewhere, vec![]).await,
        "insert_product",
    );
    let mut crossed = artifact(&v1, 6, "app", None);
    crossed.product_id = elsewhere.id.clone();
    expect_not_found(
        store.insert_artifact(&crossed, vec![]).await,
        "insert_artifact of another product's version",
    );
}
