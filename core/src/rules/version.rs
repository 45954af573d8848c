//! Version eligibility: may this license run this `app_version`?
//!
//! `app_version` is parsed as semver (a leading `v` or any other deviation is refused with
//! `INVALID_APP_VERSION`). A product without a version catalog does not enforce anything
//! (`enforced: false`). Otherwise a version is entitled when it is in the catalog (equal by
//! semver precedence, so build metadata is ignored) and was released on or before
//! `eligible_through`: `maintenance_expires_at` for perpetual licenses, else `expires_at`;
//! absent means unbounded. A version missing from the catalog is refused with
//! `VERSION_UNKNOWN`, one released too late with `VERSION_NOT_ENTITLED`.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use semver::Version;

use crate::model::{License, LicenseType, ProductVersion, Timestamp, VersionEligibility};

use super::{DenialCode, DenialReason, VersionCatalogView};

/// Parses a client's `app_version`.
pub fn parse_app_version(raw: &str) -> Result<Version, DenialReason> {
    Version::parse(raw).map_err(|_| {
        DenialReason::field(
            DenialCode::InvalidAppVersion,
            "app_version",
            "app_version must be a semantic version such as 1.4.2",
        )
    })
}

/// The order catalogs are listed and searched in: newest release first; equal release times
/// by semver precedence (highest first), then id (highest first).
pub fn release_order(a: &ProductVersion, b: &ProductVersion) -> Ordering {
    let semver = |v: &ProductVersion| Version::parse(&v.version).ok();
    b.released_at
        .cmp(&a.released_at)
        .then_with(|| match (semver(a), semver(b)) {
            (Some(x), Some(y)) => y.cmp_precedence(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| b.id.cmp(&a.id))
}

/// The catalog entry for `version`, if any (for stores that hold the catalog in memory).
///
/// This scans the catalog and parses every entry: fine for a handful of versions, linear in
/// the catalog's size. A store on the hot path indexes its catalog by [`precedence_key`]
/// instead and keeps, per key, the first entry this function would return.
pub fn find_in_catalog<'a>(
    catalog: &'a [ProductVersion],
    version: &Version,
) -> Option<&'a ProductVersion> {
    catalog
        .iter()
        .find(|v| Version::parse(&v.version).is_ok_and(|cv| cv.cmp_precedence(version).is_eq()))
}

/// `version` without build metadata: two versions have the same key exactly when they are
/// equal by semver precedence, so the key can index a catalog (`1.2.3+linux` and
/// `1.2.3+mac` are both `1.2.3`).
pub fn precedence_key(version: &Version) -> Version {
    Version {
        build: semver::BuildMetadata::EMPTY,
        ..version.clone()
    }
}

/// The cutoff for this license: maintenance for perpetual licenses, else expiry.
pub fn eligible_through(license: &License, license_type: LicenseType) -> Option<DateTime<Utc>> {
    if license_type == LicenseType::Perpetual {
        license.maintenance_expires_at
    } else {
        license.expires_at
    }
}

/// Decides eligibility. Returns the data to sign and, when refused, why.
pub fn eligibility(
    license: &License,
    license_type: LicenseType,
    catalog: &VersionCatalogView,
    app_version: &Version,
) -> (VersionEligibility, Option<DenialReason>) {
    let through = eligible_through(license, license_type);
    let mut data = VersionEligibility {
        app_version: app_version.to_string(),
        is_entitled: true,
        enforced: catalog.has_catalog,
        released_at: None,
        eligible_through: through.map(Timestamp::new),
    };
    if !catalog.has_catalog {
        return (data, None);
    }
    let Some(entry) = &catalog.entry else {
        data.is_entitled = false;
        let reason = DenialReason::field(
            DenialCode::VersionUnknown,
            "app_version",
            "this version is not in the product's version catalog",
        );
        return (data, Some(reason));
    };
    data.released_at = Some(Timestamp::new(entry.released_at));
    if through.is_some_and(|t| entry.released_at > t) {
        data.is_entitled = false;
        let reason = DenialReason::field(
            DenialCode::VersionNotEntitled,
            "app_version",
            "this version was released after the license's eligibility cutoff",
        );
        return (data, Some(reason));
    }
    (data, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{license, policy, product_version, t0};
    use chrono::Duration;

    #[test]
    fn parses_strict_semver() {
        assert!(parse_app_version("1.2.3").is_ok());
        assert!(parse_app_version("1.2.3-beta.1+build.5").is_ok());
        for bad in ["v1.2.3", "1.2", "", "1.2.3.4", "01.2.3"] {
            assert_eq!(
                parse_app_version(bad).unwrap_err().code,
                DenialCode::InvalidAppVersion,
                "{bad}"
            );
        }
    }

    #[test]
    fn no_catalog_is_not_enforced() {
        let p = policy(LicenseType::TimeLimited);
        let l = license(&p);
        let (d, r) = eligibility(
            &l,
            p.license_type,
            &VersionCatalogView::default(),
            &Version::new(9, 9, 9),
        );
        assert!(d.is_entitled && !d.enforced && r.is_none());
    }

    #[test]
    fn unknown_and_too_new_have_their_own_codes() {
        let p = policy(LicenseType::Perpetual);
        let mut l = license(&p);
        l.maintenance_expires_at = Some(t0());
        let v = Version::new(1, 0, 0);
        let unknown = VersionCatalogView {
            has_catalog: true,
            entry: None,
        };
        let (d, r) = eligibility(&l, p.license_type, &unknown, &v);
        assert!(!d.is_entitled && d.enforced);
        assert_eq!(r.unwrap().code, DenialCode::VersionUnknown);

        let old = VersionCatalogView {
            has_catalog: true,
            entry: Some(product_version("1.0.0", t0())),
        };
        let (d, r) = eligibility(&l, p.license_type, &old, &v);
        assert!(
            d.is_entitled && r.is_none(),
            "released exactly at the cutoff is entitled"
        );

        let new = VersionCatalogView {
            has_catalog: true,
            entry: Some(product_version("1.0.0", t0() + Duration::seconds(1))),
        };
        let (d, r) = eligibility(&l, p.license_type, &new, &v);
        assert!(!d.is_entitled);
        assert_eq!(r.unwrap().code, DenialCode::VersionNotEntitled);
    }

    #[test]
    fn catalog_lookup_ignores_build_metadata() {
        let cat = vec![
            product_version("1.0.0+abc", t0()),
            product_version("2.0.0", t0()),
        ];
        assert!(find_in_catalog(&cat, &Version::parse("1.0.0").unwrap()).is_some());
        assert!(find_in_catalog(&cat, &Version::parse("1.0.1").unwrap()).is_none());
    }
}
